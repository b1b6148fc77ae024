//! [`Isa`]: the CPU's SIMD support, detected once per process: the one place the workspace asks.

use std::sync::OnceLock;

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
