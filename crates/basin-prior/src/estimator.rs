//! The interface every estimator of log P(f) has: given a kernel K, labels and a likelihood,
//! return an [`Outcome`]. Each estimator's settings implement it ([`crate::ep::EpConfig`],
//! [`crate::laplace::LaplaceConfig`], [`crate::tilting::TiltingConfig`],
//! [`crate::smc::SmcConfig`]); [`crate::dispatch`] picks one by [`crate::estimate::Method`].

use faer::MatRef;

use crate::PriorError;
use crate::estimate::Outcome;
use crate::likelihood::Likelihood;

/// An estimator of log P(f) = log ∫ N(z | 0, K) Πᵢ p(yᵢ | zᵢ) dz.
pub trait Estimator {
    /// What the method reports about how it got its estimate.
    type Diagnostics;

    /// log P(f) of ±1 or 0/1 `labels` under the Gaussian prior N(0, K) with `likelihood`.
    /// Non-convergence and doubtful error bars are issues of the outcome, not errors.
    fn estimate(
        &self,
        kernel: MatRef<'_, f64>,
        labels: &[f64],
        likelihood: Likelihood,
    ) -> Result<Outcome<Self::Diagnostics>, PriorError>;
}
