//! TextNorm confidence normalisation (DESIGN.md section 2).
//!
//! For a row of reward logits l_0..l_K (target at position t) and inverse temperature s:
//! - `Mode::MinMax`: z = s (l - min l) / (max l - min l); a row with max == min is exactly
//!   uniform, 1/(K+1);
//! - `Mode::Temperature`: z = s l;
//!
//! and the confidence is softmax(z)_t. Error bounds against a float64 reference on the same
//! inputs: f64 rows within a few ulps; f32 rows within 1e-6 for probabilities and 2e-6 for
//! log-probabilities when s (max l - min l) <= 100 (min-max: s <= 100). Any finite row keeps
//! these bounds: a row whose spread max l - min l overflows its float type (f64
//! `[1e308, -1e308]`, f32 `[3e38, -3e38]`), or whose coefficient s / (max l - min l) would be
//! zero, subnormal or infinite in it, is mapped to z in f64 without overflow (`kernel::Affine`).
//!
//! Ensembles over M models: mean of the per-model confidences, or the uncertainty-regularised
//! mean - lam * population variance (`Method::Ur`), or mean - lam * standard deviation.

mod block;
mod ensemble;
pub mod float;
mod kernel;
mod layout;

pub use ensemble::{ensemble, Method};
pub use float::Float;
pub use layout::Rows;

use crate::error::{Error, Result};
use crate::parallel::for_each_chunk;
use block::{block_confidence, Lane, Scratch, W};
use kernel::{first_non_finite, min_max, row_probabilities};

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
    let done = for_each_chunk(&mut out, rows.values().len(), |first, chunk| {
        let mut scratch = Scratch::new();
        let mut run = |ids: &[usize], chunk: &mut [T]| -> Result<()> {
            let n = ids.len();
            let mut row_refs: [&[T]; W] = [&[]; W];
            let (mut t, mut s, mut res) = ([0usize; W], [0.0f64; W], [T::ZERO; W]);
            for (l, &i) in ids.iter().enumerate() {
                let b = first + i;
                row_refs[l] = rows.row(b);
                t[l] = target.at(b) as usize;
                s[l] = opts.scale.at(b);
            }
            let (rr, t, s) = (&row_refs[..n], &t[..n], &s[..n]);
            let lanes = block_confidence(rr, t, s, opts.mode, log, &mut scratch, &mut res);
            for (l, &i) in ids.iter().enumerate() {
                chunk[i] = res[l];
                if lanes[l] == Lane::NonFinite {
                    chunk[i] = T::NAN;
                    if opts.nan == NanPolicy::Raise {
                        extremes(row_refs[l], first + i, opts.nan)?;
                    }
                }
            }
            Ok(())
        };
        let n = chunk.len();
        if rows.is_dense() {
            let mut ids = [0usize; W];
            for b0 in (0..n).step_by(W) {
                let m = W.min(n - b0);
                for (l, id) in ids[..m].iter_mut().enumerate() {
                    *id = b0 + l;
                }
                run(&ids[..m], chunk)?;
            }
        } else {
            // Ragged rows: group rows of equal length so blocks need no padding, within
            // windows of rows small enough to stay in cache.
            for w0 in (0..n).step_by(GROUP_WINDOW) {
                let w1 = n.min(w0 + GROUP_WINDOW);
                for group in rows_by_length(rows, first, w0..w1) {
                    for ids in group.chunks(W) {
                        run(ids, chunk)?;
                    }
                }
            }
        }
        Ok(())
    });
    match done {
        Ok(()) => Ok(out),
        // Report the first bad row in row order, whatever the threads or grouping met first.
        Err(Error::NonFinite { .. }) => {
            for b in 0..rows.len() {
                extremes(rows.row(b), b, NanPolicy::Raise)?;
            }
            done.map(|_| out)
        }
        Err(e) => Err(e),
    }
}

/// Rows regrouped at a time by `confidence` (about 150 KB of float32 rows of 18).
const GROUP_WINDOW: usize = 2048;

/// Row indices of `window` (relative to `first`) grouped by row length: short rows by exact
/// length, rows longer than 64 together; within a group rows keep their order.
fn rows_by_length<T>(
    rows: &Rows<T>,
    first: usize,
    window: std::ops::Range<usize>,
) -> Vec<Vec<usize>> {
    const EXACT: usize = 64;
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); EXACT + 1];
    for i in window {
        let len = rows.row(first + i).len().min(EXACT + 1);
        groups[len - 1].push(i);
    }
    groups.retain(|g| !g.is_empty());
    groups
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_ragged_rows_and_probabilities_handle_overflowing_spreads() {
        // z = 3 (l - max l) / (max l - min l): [0, -3] for both rows, in every path.
        let want = 1.0 / (1.0 + (-3.0f64).exp());
        let opts = Options {
            scale: Scale::All(3.0),
            mode: Mode::MinMax,
            nan: NanPolicy::Raise,
        };
        let dense = [1.0e308f64, -1.0e308, 2.0, 1.0];
        let rows = Rows::dense(&dense, 2).unwrap();
        let got = confidence(&rows, Target::All(0), opts, false).unwrap();
        assert!(got.iter().all(|&p| (p - want).abs() < 1e-15), "{got:?}");
        let csr = [1.0e308f64, -1.0e308, 5.0, 3.0, 1.0];
        let rows = Rows::csr(&csr, &[0, 2, 3, 5]).unwrap();
        let got = confidence(&rows, Target::All(0), opts, false).unwrap();
        assert!((got[0] - want).abs() < 1e-15 && got[1] == 1.0 && (got[2] - want).abs() < 1e-15);
        let p = probabilities(&rows, opts).unwrap();
        assert!((p[0] - want).abs() < 1e-15 && (p[0] + p[1] - 1.0).abs() < 1e-15);
    }
}
