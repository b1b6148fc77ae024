//! basin's SIMD kernels and their one run-time dispatch point.
//!
//! [`Isa`] is the CPU's instruction-set support, detected once per process and cached; every
//! crate of the workspace asks it (through [`Isa::detect`] or [`has_avx512`]) before taking an
//! AVX-512 path, and takes the portable path otherwise. [`Kernels`] gives the engine's
//! products their AVX-512 form for `f32` and `f64` (the kernels are in `avx512`, x86-64 only);
//! where it declines, [`crate::gemm`] and [`crate::sparse`] use their portable forms.

#[cfg(target_arch = "x86_64")]
mod avx512;

use std::ops::Range;
use std::sync::OnceLock;

use crate::csr::SparseRows;
use crate::real::Real;

/// The SIMD instruction sets of this CPU that basin's kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Isa {
    /// AVX-512 Foundation: every AVX-512 kernel needs it.
    pub avx512f: bool,
    /// AVX-512 VBMI (byte permutes): the Boolean prior's vectorised ziggurat sampler.
    pub avx512vbmi: bool,
    /// Fused multiply-add: the portable Boolean forward pass compiled for it.
    pub fma: bool,
}

impl Isa {
    /// The CPU's support, detected on the first call and cached for the process.
    #[inline]
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(Isa::probe)
    }

    /// Asks the CPU (x86-64), or reports nothing (other architectures).
    fn probe() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            Isa {
                avx512f: std::arch::is_x86_feature_detected!("avx512f"),
                avx512vbmi: std::arch::is_x86_feature_detected!("avx512vbmi"),
                fma: std::arch::is_x86_feature_detected!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Isa::default()
        }
    }
}

/// True when the AVX-512 (Foundation) kernels can run on this CPU: [`Isa::detect`]`().avx512f`.
#[inline]
pub fn has_avx512() -> bool {
    Isa::detect().avx512f
}

/// Which rows of a row-major operand a product reads: all in order, or those at the given
/// indices (so a minibatch is read in place instead of being gathered first).
#[derive(Debug, Clone, Copy, Default)]
pub struct RowMap<'a>(pub Option<&'a [usize]>);

impl RowMap<'_> {
    /// The stored row of logical row `i`.
    #[inline(always)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn get(self, i: usize) -> usize {
        match self.0 {
            None => i,
            Some(ix) => ix[i],
        }
    }

    /// Checks that logical rows `0..rows` map into a matrix of `stored` rows.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn check(self, rows: usize, stored: usize) -> bool {
        match self.0 {
            None => rows <= stored,
            Some(ix) => ix.len() >= rows && ix[..rows].iter().all(|&i| i < stored),
        }
    }
}

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
