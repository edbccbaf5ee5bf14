//! PyO3 bindings: extract, validate, release the GIL, call the core, return.
//! Only compiled with the `python` feature.

mod contrast;
mod errors;
mod norm;

use pyo3::prelude::*;

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
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    errors::register(m)?;
    contrast::register(m)?;
    norm::register(m)?;
    Ok(())
}

/// Threads the core uses for large inputs (`TEXTNORM_NUM_THREADS`, else the core count).
#[pyfunction]
fn num_threads() -> usize {
    crate::parallel::num_threads()
}

/// Caps the threads of later calls (at most the pool's size; 0 removes the cap).
#[pyfunction]
fn set_num_threads(n: usize) {
    crate::parallel::set_num_threads(n)
}
