//! The floating-point types the engine is generic over: `f32` (training) and `f64` (analysis).

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// Which [`Real`] a computation runs in: `f32` or `f64` (`"f32"`/`"f64"` in specs and on the
/// command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// 32-bit floats (what the paper's TensorFlow code trained in).
    #[default]
    F32,
    /// 64-bit floats.
    F64,
}

/// A real floating-point scalar: `f32` or `f64`.
///
/// It carries what the engine needs: arithmetic, the elementary functions of the activations
/// and the loss, conversions to and from `f64`, and faer's field trait for matrix products.
pub trait Real:
    Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + faer::traits::ComplexField
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// The type's name, `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// eˣ.
    fn exp(self) -> Self;
    /// ln(1 + x), accurate for small x.
    fn ln_1p(self) -> Self;
    /// |x|.
    fn abs(self) -> Self;
    /// √x.
    fn sqrt(self) -> Self;
    /// tanh x.
    fn tanh(self) -> Self;
    /// The error function.
    fn erf(self) -> Self;
    /// The larger of the two (the other if one is NaN).
    fn max(self, other: Self) -> Self;
    /// The smaller of the two (the other if one is NaN).
    fn min(self, other: Self) -> Self;
    /// True unless NaN or infinite.
    fn is_finite(self) -> bool;
}

macro_rules! impl_real {
    ($t:ty, $erf:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = stringify!($t);
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

impl_real!(f32, libm::erff);
impl_real!(f64, libm::erf);

/// Converts a slice elementwise between real types.
pub fn convert<A: Real, B: Real>(xs: &[A]) -> Vec<B> {
    xs.iter().map(|&x| B::from_f64(x.to_f64())).collect()
}

/// 2ⁿ exactly, with n clamped to f64's normal exponents [−1022, 1023]. Multiplying by it is
/// exact wherever the result stays in the normal range: the one way basin rescales a problem
/// to unit order without changing its digits.
pub fn pow2(n: i32) -> f64 {
    let n = n.clamp(-1022, 1023);
    f64::from_bits(((1023 + i64::from(n)) as u64) << 52)
}

/// The exponent of the power of two nearest `x` (to the nearest integer in log₂) for a positive
/// finite `x`, clamped to [−1022, 1023]; 0 for 0, a negative or a non-finite `x`.
pub fn nearest_pow2_exponent(x: f64) -> i32 {
    if !(x.is_finite() && x > 0.0) {
        return 0;
    }
    (x.log2().round() as i32).clamp(-1022, 1023)
}

#[cfg(test)]
mod pow2_tests {
    use super::*;

    #[test]
    fn powers_of_two_are_exact_and_clamped() {
        for n in -1022..=1023 {
            assert_eq!(pow2(n), 2f64.powi(n), "2^{n}");
        }
        assert_eq!(pow2(5000), pow2(1023));
        assert_eq!(nearest_pow2_exponent(3.0), 2);
        assert_eq!(nearest_pow2_exponent(1e-300), -997);
        assert_eq!(nearest_pow2_exponent(f64::MAX), 1023);
        assert_eq!(nearest_pow2_exponent(0.0), 0);
        assert_eq!(nearest_pow2_exponent(f64::NAN), 0);
    }
}
