//! One Python exception family rooted at `TextnormError(ValueError)`, one class per
//! `Error` variant, so callers can catch broadly or precisely.

use crate::error::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    textnorm,
    TextnormError,
    PyValueError,
    "Root of every error textnorm raises on bad input."
);
create_exception!(
    textnorm,
    LayoutError,
    TextnormError,
    "Shapes, offsets, lengths or target positions that do not describe valid rows."
);
create_exception!(
    textnorm,
    NonFiniteError,
    TextnormError,
    "NaN or infinite logits under nan_policy=\"raise\"."
);
create_exception!(
    textnorm,
    ParameterError,
    TextnormError,
    "An option with a value outside its domain (scale, mode, method, lam, rules, ...)."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TextnormError", py.get_type::<TextnormError>())?;
    m.add("LayoutError", py.get_type::<LayoutError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("ParameterError", py.get_type::<ParameterError>())?;
    Ok(())
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::Layout { .. } => LayoutError::new_err(msg),
            Error::NonFinite { .. } => NonFiniteError::new_err(msg),
            Error::Parameter { .. } => ParameterError::new_err(msg),
        }
    }
}
