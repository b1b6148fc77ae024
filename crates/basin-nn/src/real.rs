//! The floating-point types the engine is generic over: `f32` (training) and `f64` (analysis).

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

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
    /// `C (m × n) (+)= A · Bᵀ` by the AVX-512 kernel, reading `A`'s rows through its row map;
    /// false (nothing done) where the CPU lacks AVX-512.
    fn simd_nt(
        c: &mut [Self],
        a: (&[Self], crate::simd::RowMap<'_>),
        b: &[Self],
        dims: (usize, usize, usize),
        acc: bool,
    ) -> bool;
    /// `C (m × n) (+)= coef · B` by the AVX-512 kernel, reading `B`'s rows through its row map;
    /// false (nothing done) where unavailable.
    fn simd_rows(
        c: &mut [Self],
        a: &[Self],
        strides: (usize, usize),
        b: (&[Self], crate::simd::RowMap<'_>),
        dims: (usize, usize, usize),
        acc: bool,
    ) -> bool;
    /// `C (+)= X[rows] · wt` for sparse rows by the AVX-512 kernel (see
    /// [`crate::sparse::times_wt`]); false (nothing done) where unavailable.
    fn simd_csr_times(
        c: &mut [Self],
        x: (&crate::sparse::SparseRows<Self>, &[usize]),
        wt: (&[Self], usize),
        n: usize,
        acc: bool,
    ) -> bool;
    /// `gt[j] += Σ_r x_rj Δ_r` over consecutive sparse rows by the AVX-512 kernel (see
    /// [`crate::sparse::delta_t_times`]); false (nothing done) where unavailable.
    fn simd_csc_delta_t(
        gt: &mut [Self],
        x: (&crate::sparse::SparseRows<Self>, std::ops::Range<usize>),
        delta: &[Self],
        dims: (usize, usize),
    ) -> bool;
}

macro_rules! impl_real {
    ($t:ty, $erf:path, $simd:ident) => {
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
            #[inline]
            fn simd_nt(
                c: &mut [Self],
                a: (&[Self], crate::simd::RowMap<'_>),
                b: &[Self],
                dims: (usize, usize, usize),
                acc: bool,
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                if crate::simd::available() {
                    crate::simd::$simd::nt(c, a, b, dims, acc);
                    return true;
                }
                let _ = (c, a, b, dims, acc);
                false
            }
            #[inline]
            fn simd_rows(
                c: &mut [Self],
                a: &[Self],
                strides: (usize, usize),
                b: (&[Self], crate::simd::RowMap<'_>),
                dims: (usize, usize, usize),
                acc: bool,
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                if crate::simd::available() {
                    crate::simd::$simd::rows(c, a, strides, b, dims, acc);
                    return true;
                }
                let _ = (c, a, strides, b, dims, acc);
                false
            }
            #[inline]
            fn simd_csr_times(
                c: &mut [Self],
                x: (&crate::sparse::SparseRows<Self>, &[usize]),
                wt: (&[Self], usize),
                n: usize,
                acc: bool,
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                if crate::simd::available() {
                    crate::simd::$simd::csr_times(c, x, wt, n, acc);
                    return true;
                }
                let _ = (c, x, wt, n, acc);
                false
            }
            #[inline]
            fn simd_csc_delta_t(
                gt: &mut [Self],
                x: (&crate::sparse::SparseRows<Self>, std::ops::Range<usize>),
                delta: &[Self],
                dims: (usize, usize),
            ) -> bool {
                #[cfg(target_arch = "x86_64")]
                if crate::simd::available() {
                    crate::simd::$simd::csc_delta_t(gt, x, delta, dims);
                    return true;
                }
                let _ = (gt, x, delta, dims);
                false
            }
        }
    };
}

impl_real!(f32, libm::erff, f32x16);
impl_real!(f64, libm::erf, f64x8);

/// Converts a slice elementwise between real types.
pub fn convert<A: Real, B: Real>(xs: &[A]) -> Vec<B> {
    xs.iter().map(|&x| B::from_f64(x.to_f64())).collect()
}
