//! TextNorm confidence normalisation (DESIGN.md section 2).
//!
//! For a row of reward logits l_0..l_K (target at position t) and inverse temperature s:
//! - `Mode::MinMax`: z = s (l - min l) / (max l - min l); a row with max == min is exactly
//!   uniform, 1/(K+1);
//! - `Mode::Temperature`: z = s l;
//!
//! and the confidence is softmax(z)_t. Error bounds against a float64 reference on the same
//! inputs: f64 rows within a few ulps; f32 rows within 1e-6 for probabilities and 2e-6 for
//! log-probabilities when s (max l - min l) <= 100 (min-max: s <= 100).
//!
//! Ensembles over M models: mean of the per-model confidences, or the uncertainty-regularised
//! mean - lam * population variance (`Method::Ur`), or mean - lam * standard deviation.

mod ensemble;
pub mod float;
mod kernel;
mod layout;

pub use ensemble::{ensemble, Method};
pub use float::Float;
pub use layout::Rows;

use crate::error::{Error, Result};
use crate::parallel::for_each_chunk;
use kernel::{first_non_finite, min_max, row_confidence, row_probabilities};

/// How a row of logits becomes a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    MinMax,
    Temperature,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "minmax" => Ok(Mode::MinMax),
            "temperature" => Ok(Mode::Temperature),
            other => Err(Error::parameter(
                "mode",
                "\"minmax\" or \"temperature\"",
                format!("{other:?}"),
            )),
        }
    }
}

/// What a row with NaN or +-Inf gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanPolicy {
    Raise,
    Propagate,
}

/// The inverse temperature: one for all rows or one per row.
#[derive(Debug, Clone, Copy)]
pub enum Scale<'a> {
    All(f64),
    PerRow(&'a [f64]),
}

impl Scale<'_> {
    fn check(&self, n_rows: usize) -> Result<()> {
        let bad = |v: f64| !(v.is_finite() && v > 0.0);
        match *self {
            Scale::All(s) if bad(s) => {
                Err(Error::parameter("scale", "a positive finite number", s))
            }
            Scale::PerRow(s) if s.len() != n_rows => Err(Error::layout(
                "scale",
                format!("a float or one value per row ({n_rows})"),
                format!("{} values", s.len()),
            )),
            Scale::PerRow(s) => match s.iter().position(|&v| bad(v)) {
                Some(b) => Err(Error::parameter(
                    "scale",
                    "positive finite values",
                    format!("scale[{b}] = {}", s[b]),
                )),
                None => Ok(()),
            },
            Scale::All(_) => Ok(()),
        }
    }

    #[inline]
    fn at(&self, b: usize) -> f64 {
        match *self {
            Scale::All(s) => s,
            Scale::PerRow(s) => s[b],
        }
    }
}

/// Where the target sits in each row.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    All(i64),
    PerRow(&'a [i64]),
}

impl Target<'_> {
    fn check<T>(&self, rows: &Rows<T>) -> Result<()> {
        if let Target::PerRow(t) = *self {
            if t.len() != rows.len() {
                return Err(Error::layout(
                    "target",
                    format!("an int or one index per row ({})", rows.len()),
                    format!("{} indices", t.len()),
                ));
            }
        }
        for b in 0..rows.len() {
            let t = self.at(b);
            let n = rows.row(b).len();
            if t < 0 || t as u64 >= n as u64 {
                return Err(Error::layout(
                    "target",
                    format!("an index in [0, {n}) for row {b}"),
                    t,
                ));
            }
        }
        Ok(())
    }

    #[inline]
    fn at(&self, b: usize) -> i64 {
        match *self {
            Target::All(t) => t,
            Target::PerRow(t) => t[b],
        }
    }
}

/// Options shared by every kernel call.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub scale: Scale<'a>,
    pub mode: Mode,
    pub nan: NanPolicy,
}

/// Confidence of the target of every row: `(B,)`. With `log`, its natural log.
pub fn confidence<T: Float>(
    rows: &Rows<T>,
    target: Target,
    opts: Options,
    log: bool,
) -> Result<Vec<T>> {
    opts.scale.check(rows.len())?;
    target.check(rows)?;
    let mut out = vec![T::ZERO; rows.len()];
    for_each_chunk(&mut out, rows.values().len(), |first, chunk| {
        for (i, o) in chunk.iter_mut().enumerate() {
            let b = first + i;
            let row = rows.row(b);
            *o = match extremes(row, b, opts.nan)? {
                Some(ext) => {
                    let t = target.at(b) as usize;
                    row_confidence(row, ext, t, opts.scale.at(b), opts.mode, log)
                }
                None => T::NAN,
            };
        }
        Ok(())
    })?;
    Ok(out)
}

/// Probabilities of every entry, in the layout of the input (padding set to 0).
pub fn probabilities<T: Float>(rows: &Rows<T>, opts: Options) -> Result<Vec<T>> {
    opts.scale.check(rows.len())?;
    let mut out = vec![T::ZERO; rows.values().len()];
    // Hand each row its own disjoint output slice (padding included) so rows run in parallel.
    let mut jobs: Vec<(usize, &mut [T])> = Vec::with_capacity(rows.len());
    let mut rest: &mut [T] = &mut out;
    for b in 0..rows.len() {
        let end = if b + 1 < rows.len() {
            rows.start(b + 1)
        } else {
            rows.values().len()
        };
        let (head, tail) = rest.split_at_mut(end - rows.start(b));
        jobs.push((b, head));
        rest = tail;
    }
    for_each_chunk(&mut jobs, rows.values().len(), |_, chunk| {
        for (b, dst) in chunk.iter_mut() {
            let row = rows.row(*b);
            let dst = &mut dst[..row.len()];
            match extremes(row, *b, opts.nan)? {
                Some(ext) => row_probabilities(row, ext, opts.scale.at(*b), opts.mode, dst),
                None => dst.fill(T::NAN),
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// (min, max) of a finite row; None (propagate) or an error (raise) for a non-finite one.
#[inline]
fn extremes<T: Float>(row: &[T], b: usize, nan: NanPolicy) -> Result<Option<(T, T)>> {
    let (lo, hi, finite) = min_max(row);
    if finite {
        return Ok(Some((lo, hi)));
    }
    match nan {
        NanPolicy::Propagate => Ok(None),
        NanPolicy::Raise => {
            let (pos, value) = first_non_finite(row).unwrap_or((0, f64::NAN));
            Err(Error::NonFinite { row: b, pos, value })
        }
    }
}
