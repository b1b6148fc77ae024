//! The kernel's scale, taken out before an estimator runs: log P(f) under the step likelihood
//! does not depend on it, and under probit it only sets the noise's share
//! ([`crate::likelihood::Scaled`]). Estimators run on K/s with s a power of four near K's
//! largest diagonal entry, so that their absolute constants (EP's first-sweep jitter and
//! smallest site precision, its stopping rule, the jitter ladder, samplers' floors) act at
//! unit order whatever the kernel's scale. A power of four keeps the division exact (as is
//! √s, for natural means) and leaves kernels of unit order (largest diagonal in [0.5, 2))
//! untouched.

use faer::{Mat, MatRef};

use crate::PriorError;
use crate::likelihood::{Likelihood, Scaled};

/// A kernel's scale s = 4ᵏ = 2²ᵏ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelScale {
    /// k, with s = 4ᵏ.
    k: i32,
}

impl KernelScale {
    /// No scaling (s = 1).
    pub const UNIT: KernelScale = KernelScale { k: 0 };

    /// The scale of a kernel whose diagonal is finite and positive (checked before): the power
    /// of four nearest its largest diagonal entry. An error when that entry is below f64's
    /// normal range, where the kernel's entries have lost relative precision.
    pub fn of(kernel: MatRef<'_, f64>) -> Result<Self, PriorError> {
        let max_diag = (0..kernel.nrows())
            .map(|i| kernel[(i, i)])
            .fold(0.0f64, f64::max);
        if max_diag < f64::MIN_POSITIVE {
            return Err(PriorError::KernelScale { max_diag });
        }
        let k = (max_diag.log2() / 2.0).round() as i32;
        Ok(KernelScale {
            k: k.clamp(-511, 511),
        })
    }

    /// s.
    pub fn factor(self) -> f64 {
        pow2(2 * self.k)
    }

    /// √s.
    pub fn root(self) -> f64 {
        pow2(self.k)
    }

    /// Whether s = 1.
    pub fn is_unit(self) -> bool {
        self.k == 0
    }

    /// K/s, exactly (entries that fall below f64's range become 0 or subnormal, far below
    /// the diagonal's precision).
    pub fn scaled_kernel(self, kernel: MatRef<'_, f64>) -> Mat<f64> {
        let inv = pow2(-2 * self.k);
        Mat::from_fn(kernel.nrows(), kernel.ncols(), |i, j| kernel[(i, j)] * inv)
    }

    /// `likelihood` on the scaled latent g = z/√s.
    pub fn likelihood(self, likelihood: Likelihood) -> Scaled {
        Scaled {
            likelihood,
            noise: likelihood.noise_variance() * pow2(-2 * self.k),
        }
    }
}

/// 2ⁿ for |n| ≤ 1022, exactly.
fn pow2(n: i32) -> f64 {
    f64::from_bits(((1023 + i64::from(n)) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two_are_exact() {
        for n in -1022..=1022 {
            assert_eq!(pow2(n), 2f64.powi(n), "2^{n}");
        }
    }

    #[test]
    fn unit_kernels_are_left_alone_and_others_scaled_to_unit_order() {
        let k = |d: f64| Mat::from_fn(2, 2, |i, j| if i == j { d } else { 0.3 * d });
        assert!(KernelScale::of(k(1.0).as_ref()).unwrap().is_unit());
        assert!(KernelScale::of(k(1.9).as_ref()).unwrap().is_unit());
        assert!(KernelScale::of(k(0.51).as_ref()).unwrap().is_unit());
        for d in [1e-300, 1e-20, 7.0, 1e17, 1e300, f64::MAX] {
            let s = KernelScale::of(k(d).as_ref()).unwrap();
            let scaled = s.scaled_kernel(k(d).as_ref());
            // Only f64::MAX, beyond 4⁵¹¹, stays above 2.
            assert!(
                (0.5..=4.0).contains(&scaled[(0, 0)]),
                "{d:e}: {}",
                scaled[(0, 0)]
            );
            assert_eq!(scaled[(0, 0)] * s.factor(), d, "{d:e}: not exact");
            assert_eq!(s.root() * s.root(), s.factor());
        }
        let tiny = KernelScale::of(k(1e-310).as_ref());
        assert!(matches!(tiny, Err(PriorError::KernelScale { .. })));
    }

    #[test]
    fn probit_noise_shrinks_with_the_scale() {
        let s = KernelScale::of(Mat::from_fn(1, 1, |_, _| 16.0).as_ref()).unwrap();
        assert_eq!(s.likelihood(Likelihood::Probit).noise, 1.0 / 16.0);
        assert_eq!(s.likelihood(Likelihood::Step).noise, 0.0);
    }
}
