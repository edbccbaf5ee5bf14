//! Per-row kernels. A row l_0..l_n with scale s gives x_i = (l_i - max l) * c with
//! c = s / (max l - min l) (min-max) or c = s (temperature); then
//! p_t = exp(x_t) / sum_i exp(x_i) and log p_t = x_t - ln(sum_i exp(x_i)).
//! Since max x = 0 the sum lies in [1, n]: no overflow, and the log never sees a rounded zero.

use super::float::Float;
use super::Mode;

/// Accumulator lanes: a fixed width keeps the summation order (and so every result bit)
/// independent of the CPU and the thread count, and lets the compiler vectorise.
const LANES: usize = 8;

/// Min, max and whether every value is finite, in one pass. Lane-wise so it vectorises.
#[inline]
pub fn min_max<T: Float>(row: &[T]) -> (T, T, bool) {
    let mut lo = [row[0]; LANES];
    let mut hi = [row[0]; LANES];
    // x - x is 0 for finite x and NaN for NaN/Inf, so a running sum stays 0 iff all are finite.
    let mut probe = [T::ZERO; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for j in 0..LANES {
            let v = chunk[j];
            lo[j] = if v < lo[j] { v } else { lo[j] };
            hi[j] = if v > hi[j] { v } else { hi[j] };
            #[allow(clippy::eq_op)] // v - v is NaN exactly when v is NaN or infinite
            let nan_if_non_finite = v - v;
            probe[j] = probe[j] + nan_if_non_finite;
        }
    }
    let (mut l, mut h, mut finite) = (lo[0], hi[0], true);
    for j in 0..LANES {
        l = if lo[j] < l { lo[j] } else { l };
        h = if hi[j] > h { hi[j] } else { h };
        finite &= probe[j] == T::ZERO;
    }
    for &v in tail {
        l = if v < l { v } else { l };
        h = if v > h { v } else { h };
        finite &= v.is_finite();
    }
    (l, h, finite)
}

/// Position and value of the first non-finite entry.
pub fn first_non_finite<T: Float>(row: &[T]) -> Option<(usize, f64)> {
    row.iter()
        .position(|v| !v.is_finite())
        .map(|i| (i, row[i].to_f64()))
}

/// What a finite row reduces to before exponentiation.
pub enum Affine<T> {
    /// Every x_i = 0 up to the caller: a min-max row with max == min (exactly uniform).
    Uniform,
    /// x_i = (l_i - hi) * c in T: the spread fits T and c is a normal T.
    Fast { hi: T, c: T },
    /// Anything else, in f64, without overflow: rows whose spread overflows T (f64 rows such
    /// as [1e308, -1e308]: both sides are halved first, `h` = 1/2, exactly), or whose
    /// coefficient would be infinite, subnormal or zero in T. With d = l h - hi h:
    /// min-max x = (d / w) s with w = (hi - lo) h, so d / w lies in [-1, 0];
    /// temperature x = (d s) / h.
    Wide {
        hi_h: f64,
        h: f64,
        w: f64,
        s: f64,
        mode: Mode,
    },
}

#[inline]
pub fn affine<T: Float>(lo: T, hi: T, scale: f64, mode: Mode) -> Affine<T> {
    let (lo, hi64) = (lo.to_f64(), hi.to_f64());
    // Exact for f32 rows; may overflow to +inf for f64 rows (never NaN: both are finite).
    let width = hi64 - lo;
    let c = match mode {
        Mode::MinMax if width == 0.0 => return Affine::Uniform,
        Mode::MinMax => scale / width,
        Mode::Temperature => scale,
    };
    if let Some(c) = T::fast_coefficient(width, c) {
        return Affine::Fast { hi, c };
    }
    let h = if width.is_finite() { 1.0 } else { 0.5 };
    Affine::Wide {
        hi_h: hi64 * h,
        h,
        w: hi64 * h - lo * h,
        s: scale,
        mode,
    }
}

impl<T: Float> Affine<T> {
    #[inline(always)]
    pub fn x(&self, l: T) -> T {
        match *self {
            Affine::Uniform => T::ZERO,
            Affine::Fast { hi, c } => (l - hi) * c,
            Affine::Wide {
                hi_h,
                h,
                w,
                s,
                mode,
            } => {
                let d = l.to_f64() * h - hi_h;
                T::from_f64(match mode {
                    Mode::MinMax => (d / w) * s,
                    Mode::Temperature => (d * s) / h,
                })
            }
        }
    }
}

/// sum_i exp(x_i) over the row, in f64.
#[inline]
pub fn exp_sum<T: Float>(row: &[T], a: &Affine<T>) -> f64 {
    match *a {
        Affine::Uniform => row.len() as f64,
        Affine::Fast { hi, c } => {
            let mut lanes = [T::ZERO; LANES];
            let chunks = row.chunks_exact(LANES);
            let tail = chunks.remainder();
            for chunk in chunks {
                for j in 0..LANES {
                    lanes[j] = lanes[j] + T::exp_nonpos((chunk[j] - hi) * c);
                }
            }
            let mut sum: f64 = lanes.iter().map(|v| v.to_f64()).sum();
            for &l in tail {
                sum += T::exp_nonpos((l - hi) * c).to_f64();
            }
            sum
        }
        Affine::Wide { .. } => row.iter().map(|&l| T::exp_nonpos(a.x(l)).to_f64()).sum(),
    }
}

/// Confidence (or log-confidence) of position t in a finite row with extremes lo, hi.
#[inline]
pub fn row_confidence<T: Float>(
    row: &[T],
    (lo, hi): (T, T),
    t: usize,
    scale: f64,
    mode: Mode,
    log: bool,
) -> T {
    let a = affine(lo, hi, scale, mode);
    let sum = exp_sum(row, &a);
    let x_t = a.x(row[t]);
    if log {
        T::from_f64(x_t.to_f64() - sum.ln())
    } else {
        T::from_f64(T::exp_nonpos(x_t).to_f64() / sum)
    }
}

/// Probabilities of every position of a finite row with extremes lo, hi, written to `out`.
#[inline]
pub fn row_probabilities<T: Float>(
    row: &[T],
    (lo, hi): (T, T),
    scale: f64,
    mode: Mode,
    out: &mut [T],
) {
    let a = affine(lo, hi, scale, mode);
    let mut sum = 0.0f64;
    for (o, &l) in out.iter_mut().zip(row) {
        let e = T::exp_nonpos(a.x(l));
        sum += e.to_f64();
        *o = e;
    }
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o = T::from_f64(o.to_f64() * inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext<T: Float>(row: &[T]) -> (T, T) {
        let (lo, hi, _) = min_max(row);
        (lo, hi)
    }

    fn reference(row: &[f64], t: usize, s: f64, mode: Mode) -> f64 {
        let lo = row.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: Vec<f64> = match mode {
            Mode::MinMax if hi == lo => vec![0.0; row.len()],
            Mode::MinMax => row.iter().map(|l| s * (l - lo) / (hi - lo)).collect(),
            Mode::Temperature => row.iter().map(|l| s * l).collect(),
        };
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = z.iter().map(|v| (v - m).exp()).sum();
        (z[t] - m).exp() / sum
    }

    #[test]
    fn matches_reference_f32_and_f64() {
        let rows: [&[f64]; 4] = [
            &[0.3, 0.1, 0.7, -0.2],
            &[
                25.1, 24.9, 25.0, 26.3, 22.0, 25.05, 24.0, 23.3, 25.5, 26.0, 21.0,
            ],
            &[1.0],
            &[-3.0, 5.0],
        ];
        for row in rows {
            let r32: Vec<f32> = row.iter().map(|&v| v as f32).collect();
            let r32_as64: Vec<f64> = r32.iter().map(|&v| v as f64).collect();
            for mode in [Mode::MinMax, Mode::Temperature] {
                for s in [0.1, 1.0, 3.0, 10.0] {
                    for t in 0..row.len() {
                        let want = reference(row, t, s, mode);
                        let got = row_confidence(row, ext(row), t, s, mode, false);
                        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
                        let want32 = reference(&r32_as64, t, s, mode);
                        let got32 = row_confidence(&r32, ext(&r32), t, s, mode, false) as f64;
                        assert!((got32 - want32).abs() < 1e-6, "{got32} vs {want32}");
                        let lg = row_confidence(&r32, ext(&r32), t, s, mode, true) as f64;
                        assert!((lg - want32.ln()).abs() < 2e-6);
                    }
                }
            }
        }
    }

    #[test]
    fn constant_row_is_exactly_uniform() {
        let row = [2.5f32; 5];
        assert_eq!(
            row_confidence(&row, ext(&row), 0, 10.0, Mode::MinMax, false),
            0.2
        );
        let mut out = [0.0f32; 5];
        row_probabilities(&row, ext(&row), 3.0, Mode::MinMax, &mut out);
        assert!(out.iter().all(|&p| p == 0.2));
    }

    #[test]
    fn tiny_width_does_not_overflow() {
        let row = [0.0f32, f32::from_bits(1)];
        let p = row_confidence(&row, ext(&row), 1, 5.0, Mode::MinMax, false) as f64;
        let want = 1.0 / (1.0 + (-5.0f64).exp());
        assert!((p - want).abs() < 1e-6, "{p}");
    }

    /// softmax(z)_t of a row given as exact offsets z_i - max z (float64 reference).
    fn softmax_at(z: &[f64], t: usize) -> f64 {
        z[t].exp() / z.iter().map(|v| v.exp()).sum::<f64>()
    }

    #[test]
    fn spread_that_overflows_the_float_type_is_exact() {
        // f64: 1e308 - (-1e308) overflows; z = 3 (l - lo) / (hi - lo) = [3, 0].
        let row = [1.0e308f64, -1.0e308];
        let want = softmax_at(&[0.0, -3.0], 0);
        for log in [false, true] {
            let got = row_confidence(&row, ext(&row), 0, 3.0, Mode::MinMax, log);
            let want = if log { want.ln() } else { want };
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        let mut p = [0.0f64; 2];
        row_probabilities(&row, ext(&row), 3.0, Mode::MinMax, &mut p);
        assert!((p[0] - want).abs() < 1e-15 && (p[0] + p[1] - 1.0).abs() < 1e-15);
        // Temperature: z = s l = [1, -1] although l - max l overflows.
        let got = row_confidence(&row, ext(&row), 0, 1.0e-308, Mode::Temperature, false);
        assert!((got - softmax_at(&[0.0, -2.0], 0)).abs() < 1e-12, "{got}");
        // f32: 3e38 - (-3e38) overflows f32, and 3 / 6e38 is subnormal in f32.
        let row = [3.0e38f32, -3.0e38, 0.0];
        let (hi, lo) = (3.0e38f32 as f64, -3.0e38f32 as f64);
        let z: Vec<f64> = row
            .iter()
            .map(|&l| 3.0 * (l as f64 - hi) / (hi - lo))
            .collect();
        let got = row_confidence(&row, ext(&row), 0, 3.0, Mode::MinMax, false) as f64;
        assert!((got - softmax_at(&z, 0)).abs() < 1e-6, "{got}");
    }

    #[test]
    fn subnormal_width_f64_is_not_nan() {
        // 10 / 5e-324 overflows: the coefficient must not be used as is.
        let row = [0.0f64, 5.0e-324];
        let p = row_confidence(&row, ext(&row), 1, 10.0, Mode::MinMax, false);
        assert!((p - softmax_at(&[-10.0, 0.0], 1)).abs() < 1e-15, "{p}");
        // A coefficient that underflows to 0 in f64: the row is uniform up to ~1e-308.
        let row = [1.0e300f64, -1.0e300];
        let p = row_confidence(&row, ext(&row), 0, 5.0e-324, Mode::MinMax, false);
        assert_eq!(p, 0.5);
    }

    #[test]
    fn log_confidence_of_a_hopeless_target_is_finite() {
        let row = [-1.0e4f64, 0.0, 1.0];
        let lg = row_confidence(&row, ext(&row), 0, 1.0, Mode::Temperature, true);
        assert!((lg - (-1.0e4 - 1.0 - (1.0f64 + (-1.0f64).exp()).ln())).abs() < 1e-9);
    }
}
