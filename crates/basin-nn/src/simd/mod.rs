//! basin's SIMD kernels and their one run-time dispatch point.
//!
//! [`Isa`] is the CPU's instruction-set support, detected once per process and cached; every
//! crate of the workspace asks it (through [`Isa::detect`] or [`has_avx512`]) before taking an
//! AVX-512 path, and takes the portable path otherwise. [`Kernels`] gives the engine's
//! products their AVX-512 form for `f32` and `f64` (the kernels are in `avx512`, x86-64 only);
//! where it declines, [`crate::gemm`] and [`crate::sparse`] use their portable forms.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod isa;
mod rows;

pub use isa::{Isa, has_avx512};
pub use rows::RowMap;

use std::ops::Range;

use crate::csr::SparseRows;
use crate::real::Real;

/// A real type with AVX-512 forms of the engine's products. Each method runs its kernel and
/// returns true where the CPU has AVX-512, and does nothing and returns false elsewhere (the
/// caller then takes its portable path).
pub trait Kernels: Real {
    /// `C (m × n) (+)= A · Bᵀ`, reading `A`'s rows through its row map (`dims = (m, n, k)`,
    /// `B` stored `n × k`).
    fn nt(
        c: &mut [Self],
        a: (&[Self], RowMap<'_>),
        b: &[Self],
        dims: (usize, usize, usize),
        acc: bool,
    ) -> bool;

    /// `C (m × n) (+)= coef · B`, `coef(r, j) = a[r·strides.0 + j·strides.1]`, reading `B`'s
    /// rows through its row map (`B` stored `k × n`).
    fn rows(
        c: &mut [Self],
        a: &[Self],
        strides: (usize, usize),
        b: (&[Self], RowMap<'_>),
        dims: (usize, usize, usize),
        acc: bool,
    ) -> bool;

    /// `C (+)= X[rows] · wt` for sparse rows and transposed weights of stride `wt.1` (see
    /// [`crate::sparse::times_wt`]).
    fn csr_times(
        c: &mut [Self],
        x: (&SparseRows<Self>, &[usize]),
        wt: (&[Self], usize),
        n: usize,
        acc: bool,
    ) -> bool;

    /// `gt[j] += Σ_r x_rj Δ_r` over consecutive sparse rows (see
    /// [`crate::sparse::delta_t_times`]); `dims = (n, stride)`.
    fn csc_delta_t(
        gt: &mut [Self],
        x: (&SparseRows<Self>, Range<usize>),
        delta: &[Self],
        dims: (usize, usize),
    ) -> bool;
}

/// Runs the AVX-512 kernel `$kernel` on the arguments and returns true where the CPU has
/// AVX-512; returns false, doing nothing, elsewhere.
macro_rules! on_avx512 {
    ($kernel:path, $($arg:expr),*) => {{
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            $kernel($($arg),*);
            return true;
        }
        let _ = ($($arg),*);
        false
    }};
}

macro_rules! impl_kernels {
    ($t:ty, $simd:ident) => {
        impl Kernels for $t {
            #[inline]
            fn nt(
                c: &mut [Self],
                a: (&[Self], RowMap<'_>),
                b: &[Self],
                dims: (usize, usize, usize),
                acc: bool,
            ) -> bool {
                on_avx512!(avx512::$simd::nt, c, a, b, dims, acc)
            }

            #[inline]
            fn rows(
                c: &mut [Self],
                a: &[Self],
                strides: (usize, usize),
                b: (&[Self], RowMap<'_>),
                dims: (usize, usize, usize),
                acc: bool,
            ) -> bool {
                on_avx512!(avx512::$simd::rows, c, a, strides, b, dims, acc)
            }

            #[inline]
            fn csr_times(
                c: &mut [Self],
                x: (&SparseRows<Self>, &[usize]),
                wt: (&[Self], usize),
                n: usize,
                acc: bool,
            ) -> bool {
                on_avx512!(avx512::$simd::csr_times, c, x, wt, n, acc)
            }

            #[inline]
            fn csc_delta_t(
                gt: &mut [Self],
                x: (&SparseRows<Self>, Range<usize>),
                delta: &[Self],
                dims: (usize, usize),
            ) -> bool {
                on_avx512!(avx512::$simd::csc_delta_t, gt, x, delta, dims)
            }
        }
    };
}

impl_kernels!(f32, f32x16);
impl_kernels!(f64, f64x8);
