//! PyO3 bindings: extract, validate, release the GIL, call the core, return.
//! Only compiled with the `python` feature.

mod contrast;
mod errors;
mod norm;

use crate::error::Error;
use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;
use pyo3::types::PyBool;
use std::ffi::CString;

/// The compiled core of textnorm.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "BUILD_PROFILE",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    m.add(
        "MAX_THREADS_PER_CORE",
        crate::parallel::MAX_THREADS_PER_CORE,
    )?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    errors::register(m)?;
    contrast::register(m)?;
    norm::register(m)?;
    // TEXTNORM_NUM_THREADS is read once, here: an unusable value is replaced by the default
    // (or capped) and said so, instead of being ignored silently or hanging the first call.
    if let Some(msg) = crate::parallel::env_warning() {
        let py = m.py();
        let msg = CString::new(msg.replace('\0', "?")).unwrap_or_default();
        PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &msg, 1)?;
    }
    Ok(())
}

/// Threads the core uses for large inputs (`TEXTNORM_NUM_THREADS`, else the core count).
#[pyfunction]
fn num_threads() -> usize {
    crate::parallel::num_threads()
}

/// Caps the threads of later calls (at most the pool's size; 0 removes the cap).
#[pyfunction]
fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    let value = if n.is_instance_of::<PyBool>() {
        None
    } else {
        n.extract::<i64>().ok().filter(|&v| v >= 0)
    };
    let Some(value) = value else {
        let got = n.repr().map_or_else(|_| "?".to_string(), |r| r.to_string());
        return Err(
            Error::parameter("n", "an integer in [0, 2**63) (0 removes the cap)", got).into(),
        );
    };
    crate::parallel::set_num_threads(usize::try_from(value).unwrap_or(usize::MAX));
    Ok(())
}
