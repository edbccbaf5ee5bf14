//! Confidence of up to `W` rows at once, vectorised across rows.
//!
//! Reward rows are short (K+1 is typically 3..33), so a per-row loop spends most of its time on
//! per-row overhead and horizontal reductions. Here a block of rows is transposed into
//! column-major scratch (`vals[j][lane]`) and every step runs lane-wise: min/max, the affine map,
//! the exponential and the sum. Each lane does exactly the arithmetic of every other lane, so a
//! row's result does not depend on its block, its lane, the layout or the thread count.

use super::float::Float;
use super::kernel::{affine, row_confidence, Affine};
use super::Mode;

/// Rows per block.
pub const W: usize = 8;

/// Per-chunk scratch, reused across blocks.
pub struct Scratch<T> {
    vals: Vec<[T; W]>,
    mask: Vec<[T; W]>,
}

impl<T: Float> Scratch<T> {
    pub fn new() -> Self {
        Scratch {
            vals: Vec::new(),
            mask: Vec::new(),
        }
    }
}

/// What became of each lane.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lane {
    Done,
    /// The row holds NaN or +-Inf; its output is untouched.
    NonFinite,
}

/// Confidences of `rows` (1..=W non-empty rows) with targets `t` and scales `s`, into `out`.
///
/// On x86_64 CPUs with AVX2 the same code is compiled a second time for AVX2 and picked at run
/// time. No FMA is enabled and Rust never contracts a*b+c, so both builds round identically.
pub fn block_confidence<T: Float>(
    rows: &[&[T]],
    t: &[usize],
    s: &[f64],
    mode: Mode,
    log: bool,
    scratch: &mut Scratch<T>,
    out: &mut [T],
) -> [Lane; W] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { block_avx2(rows, t, s, mode, log, scratch, out) };
    }
    block(rows, t, s, mode, log, scratch, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_avx2<T: Float>(
    rows: &[&[T]],
    t: &[usize],
    s: &[f64],
    mode: Mode,
    log: bool,
    scratch: &mut Scratch<T>,
    out: &mut [T],
) -> [Lane; W] {
    block(rows, t, s, mode, log, scratch, out)
}

#[inline(always)]
fn block<T: Float>(
    rows: &[&[T]],
    t: &[usize],
    s: &[f64],
    mode: Mode,
    log: bool,
    scratch: &mut Scratch<T>,
    out: &mut [T],
) -> [Lane; W] {
    let n = rows.len();
    let width = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let ragged = rows.iter().any(|r| r.len() != width);
    let one = T::from_f64(1.0);
    scratch.vals.resize(width, [T::ZERO; W]);
    scratch.mask.resize(width, [T::ZERO; W]);
    let (vals, mask) = (&mut scratch.vals[..width], &mut scratch.mask[..width]);
    // Transpose. Missing lanes hold zeros (a constant row, computed and ignored); in ragged
    // blocks padding repeats the row's first value (neutral for min/max) with mask 0.
    if ragged || n < W {
        for l in 0..W {
            let row: &[T] = if l < n { rows[l] } else { &[] };
            let pad = row.first().copied().unwrap_or(T::ZERO);
            for j in 0..width {
                let inside = j < row.len();
                vals[j][l] = if inside { row[j] } else { pad };
                mask[j][l] = if inside { one } else { T::ZERO };
            }
        }
    } else {
        for (l, row) in rows.iter().enumerate() {
            for (col, &v) in vals.iter_mut().zip(row.iter()) {
                col[l] = v;
            }
        }
    }
    let ragged = ragged || n < W;
    // Extremes and a finiteness probe (x - x is NaN exactly for NaN/Inf x).
    let (mut lo, mut hi, mut probe) = (vals[0], vals[0], [T::ZERO; W]);
    for col in vals.iter() {
        for l in 0..W {
            let v = col[l];
            lo[l] = if v < lo[l] { v } else { lo[l] };
            hi[l] = if v > hi[l] { v } else { hi[l] };
            #[allow(clippy::eq_op)] // v - v is NaN exactly when v is NaN or infinite
            let nan_if_non_finite = v - v;
            probe[l] = probe[l] + nan_if_non_finite;
        }
    }
    let mut lanes = [Lane::Done; W];
    let mut c = [T::ZERO; W];
    let mut wide = [false; W];
    for l in 0..n {
        if probe[l] != T::ZERO {
            lanes[l] = Lane::NonFinite;
            continue;
        }
        match affine(lo[l], hi[l], s[l], mode) {
            Affine::Uniform => {}
            Affine::Fast { c: cl, .. } => c[l] = cl,
            Affine::Wide { .. } => wide[l] = true,
        }
    }
    // Sum of exp((v - hi) c) per lane, accumulated in f64.
    let mut sum = [0.0f64; W];
    for (col, m) in vals.iter().zip(mask.iter()) {
        let mut e = [T::ZERO; W];
        for l in 0..W {
            e[l] = T::exp_nonpos((col[l] - hi[l]) * c[l]);
        }
        if ragged {
            for l in 0..W {
                e[l] = e[l] * m[l];
            }
        }
        for l in 0..W {
            sum[l] += e[l].to_f64();
        }
    }
    let mut x_t = [T::ZERO; W];
    for l in 0..n {
        x_t[l] = (rows[l][t[l]] - hi[l]) * c[l];
    }
    let mut e_t = [T::ZERO; W];
    for l in 0..W {
        e_t[l] = T::exp_nonpos(x_t[l]);
    }
    for l in 0..n {
        if lanes[l] != Lane::Done {
            continue;
        }
        out[l] = if wide[l] {
            row_confidence(rows[l], (lo[l], hi[l]), t[l], s[l], mode, log)
        } else if log {
            T::from_f64(x_t[l].to_f64() - sum[l].ln())
        } else {
            T::from_f64(e_t[l].to_f64() / sum[l])
        };
    }
    lanes
}
