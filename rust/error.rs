//! One error enum for the whole crate; the bindings map each variant to one Python exception.

use thiserror::Error as ThisError;

/// Everything that can go wrong on user input. Each message names the argument, what was
/// expected and what was received.
#[derive(Debug, Clone, PartialEq, ThisError)]
pub enum Error {
    /// Shapes, offsets, lengths or target positions that do not describe valid rows.
    #[error("{arg}: expected {expected}, got {got}")]
    Layout {
        arg: &'static str,
        expected: String,
        got: String,
    },
    /// A non-finite logit under `nan_policy="raise"`.
    #[error("logits: expected finite values (nan_policy=\"raise\"), got {value} in row {row} at position {pos}")]
    NonFinite { row: usize, pos: usize, value: f64 },
    /// A bad option value: scale, mode, method, lambda, rules.
    #[error("{arg}: expected {expected}, got {got}")]
    Parameter {
        arg: &'static str,
        expected: String,
        got: String,
    },
}

impl Error {
    pub fn layout(arg: &'static str, expected: impl Into<String>, got: impl ToString) -> Self {
        Error::Layout {
            arg,
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    pub fn parameter(arg: &'static str, expected: impl Into<String>, got: impl ToString) -> Self {
        Error::Parameter {
            arg,
            expected: expected.into(),
            got: got.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
