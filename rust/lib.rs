//! textnorm core: TextNorm confidence normalisation over reward matrices.
//!
//! Pure Rust: kernels take slices and numbers and return `Result<_, Error>`; no input panics.
//! The PyO3 bindings live in [`py`] behind the `python` cargo feature, so `cargo test` and
//! Rust benchmarks need no Python.
//!
//! Invariants of the normaliser (see `norm`):
//! - every row's probabilities are finite, in [0, 1] and sum to 1 within a few ulps;
//! - a min-max row with max == min is exactly uniform (no division by zero);
//! - log-confidences are computed as `z_t - m - ln(sum exp(z_i - m))`, never `ln(p)`;
//! - results are independent of the number of threads (rows are computed independently).

pub mod contrast;
pub mod error;
pub mod norm;
pub mod parallel;

#[cfg(feature = "python")]
mod py;

pub use error::Error;
