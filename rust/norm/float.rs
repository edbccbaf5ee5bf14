//! The element types the kernels run on, and their exponentials.
//!
//! f32 uses a branch-free exponential that the compiler vectorises; f64 uses `f64::exp`.
//! Kernels only ever exponentiate `x = (l - max l) * c <= 0`, so each term lies in (0, 1]
//! and the row maximum contributes exactly 1: the error bounds below are absolute.

use std::fmt::Debug;
use std::ops::{Add, Mul, Sub};

/// A float type the kernels accept.
pub trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + Default
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + 'static
{
    const ZERO: Self;
    const NAN: Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn is_finite(self) -> bool;
    /// `c` as Self when `(l - max l) * c` can be computed in Self with two roundings: `width`
    /// (max l - min l, exact in f64 for f32 rows, possibly infinite for f64 rows) fits Self,
    /// so `l - max l` cannot overflow, and `c` rounds to a normal Self (not 0, subnormal or
    /// infinite), so it keeps full precision. None sends the row to the wide path.
    fn fast_coefficient(width: f64, c: f64) -> Option<Self>;
    /// exp(x) for x <= 0. f32: relative error below 2e-7 for x >= -87, and below 1e-37
    /// absolute for smaller x (clamped). f64: `f64::exp`.
    fn exp_nonpos(x: Self) -> Self;
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const NAN: Self = f64::NAN;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn fast_coefficient(width: f64, c: f64) -> Option<Self> {
        (width <= f64::MAX && c.is_normal()).then_some(c)
    }
    #[inline(always)]
    fn exp_nonpos(x: Self) -> Self {
        x.exp()
    }
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const NAN: Self = f32::NAN;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn fast_coefficient(width: f64, c: f64) -> Option<Self> {
        let c32 = c as f32;
        (width <= f32::MAX as f64 && c32.is_normal()).then_some(c32)
    }
    #[inline(always)]
    fn exp_nonpos(x: Self) -> Self {
        exp_f32(x)
    }
}

/// 1/k! for k = 0..=7: the Taylor series of e^r.
const EXP_TAYLOR: [f32; 8] = [
    1.0,
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
];
/// ln 2 split so that n * LN2_HI is exact for |n| < 2^15 (Cody-Waite reduction).
const LN2_HI: f32 = f32::from_bits(0x3f31_8000); // 0.693359375 = 355/512, exact
const LN2_LO: f32 = -2.121_944_4e-4;

/// e^x as 2^n * e^r with n = round(x log2 e) and r = x - n ln 2, |r| <= ln(2)/2 + tiny;
/// the degree-7 Taylor polynomial of e^r has truncation error below 6e-9 there.
/// Branch-free so loops over it vectorise.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Below -87.3 e^x is subnormal in f32; clamping keeps 2^n a normal number. (A compare,
    // not f32::max, whose NaN rules cost extra instructions; callers never pass NaN.)
    let x = if x < -87.0 { -87.0 } else { x };
    // Round to nearest with the 1.5 * 2^23 trick (exact for |t| < 2^22); the integer n then
    // sits in the low mantissa bits of `shifted`, so no float-to-int conversion is needed.
    let shifted = x * std::f32::consts::LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let c = &EXP_TAYLOR;
    let p = c[0]
        + r * (c[1] + r * (c[2] + r * (c[3] + r * (c[4] + r * (c[5] + r * (c[6] + r * c[7]))))));
    let n_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * scale
}

/// 1.5 * 2^23: adding it rounds any |t| < 2^22 to an integer held in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_relative_error_is_small() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_37;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
    }

    #[test]
    fn exp_f32_limits() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) < 1e-37);
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37);
    }
}
