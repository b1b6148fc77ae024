//! The likelihoods of a binary function given a Gaussian latent vector, and their EP moments.
//!
//! * [`Likelihood::Step`]: P(y | z) = 1[sign z = y], noise-free. With z ~ N(0, K) the marginal
//!   likelihood is the orthant probability P(sign z = y), the prior probability of the function
//!   as the paper's text defines it.
//! * [`Likelihood::Probit`]: P(y | z) = Φ(y·z). Since Φ(y·z) = P(sign(z + ε) = y) with
//!   ε ~ N(0, 1), this is the step likelihood on K + I; it is what the paper's code computed
//!   through GPy's `Bernoulli()` likelihood.
//!
//! Labels are ±1; [`labels_pm1`] accepts ±1 or 0/1 and converts.

use serde::{Deserialize, Serialize};

use crate::PriorError;
use crate::normal::{inv_mills, log_cdf};

/// Which likelihood links the latent Gaussian vector to the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Likelihood {
    /// Noise-free step (Heaviside) likelihood: P(sign z = y), z ~ N(0, K). GPy's Bernoulli
    /// likelihood with the Heaviside link.
    Step,
    /// Probit likelihood Φ(y·z) = the step likelihood on K + I. GPy's default Bernoulli.
    Probit,
}

/// The moments of a tilted distribution Z⁻¹·t(z)·N(z | m, v), where N(m, v) is a cavity
/// and t the likelihood of one label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TiltedMoments {
    /// log Ẑ = log ∫ t(z) N(z | m, v) dz.
    pub log_z: f64,
    /// The mean of the tilted distribution.
    pub mean: f64,
    /// The variance of the tilted distribution.
    pub var: f64,
}

impl Likelihood {
    /// The name printed in outputs: `step` or `probit`.
    pub fn name(self) -> &'static str {
        match self {
            Likelihood::Step => "step",
            Likelihood::Probit => "probit",
        }
    }

    /// The moments of the tilted distribution for label `y` (±1) and the cavity with natural
    /// parameters τ₋ = 1/v (`tau`, > 0) and ν₋ = m/v (`nu`), exactly as GPy's
    /// `Bernoulli.moments_match_ep` computes them (probit and Heaviside links): those of
    /// [`Scaled::tilted_moments`] with noise variance 1 (probit) or 0 (step).
    pub fn tilted_moments(self, y: f64, tau: f64, nu: f64) -> TiltedMoments {
        Scaled::unit(self).tilted_moments(y, tau, nu)
    }

    /// The variance of the Gaussian noise ε in P(y | z) = P(sign(z + ε) = y): 1 (probit) or
    /// 0 (step).
    pub fn noise_variance(self) -> f64 {
        match self {
            Likelihood::Probit => 1.0,
            Likelihood::Step => 0.0,
        }
    }

    /// log p(y | f) for one latent value: log Φ(y·f) (probit); 0 or −∞ (step).
    pub fn log_lik(self, y: f64, f: f64) -> f64 {
        match self {
            Likelihood::Probit => log_cdf(y * f),
            Likelihood::Step if y * f > 0.0 => 0.0,
            Likelihood::Step => f64::NEG_INFINITY,
        }
    }
}

/// A likelihood on a kernel divided by a scale s: with z = √s·g, P(sign(z + ε) = y) =
/// P(sign(g + ε/√s) = y), the step likelihood on g with Gaussian noise of variance
/// `noise` = v/s, where v is the likelihood's own [`Likelihood::noise_variance`]. The
/// estimators run on K/s ([`crate::scale::KernelScale`]) with this, so that their arithmetic
/// is of unit order whatever the kernel's scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaled {
    /// The likelihood the user asked for (reported in the estimate).
    pub likelihood: Likelihood,
    /// The noise variance on the scaled latent g: 0 for the step likelihood, 1/s for probit.
    pub noise: f64,
}

impl Scaled {
    /// `likelihood` on an unscaled kernel (s = 1).
    pub fn unit(likelihood: Likelihood) -> Self {
        Scaled {
            likelihood,
            noise: likelihood.noise_variance(),
        }
    }

    /// The moments of the tilted distribution for label `y` (±1) and the cavity with natural
    /// parameters τ₋ = 1/v (`tau`, > 0) and ν₋ = m/v (`nu`). With noise variance w (> 0):
    /// c² = wτ₋² + τ₋, z = y·ν₋/c, r = φ(z)/Φ(z), log Ẑ = log Φ(z), mean = ν₋/τ₋ + y·r/c,
    /// var = 1/τ₋ − r(z + r)/c² (GPy's probit formulas at w = 1); with w = 0 (step):
    /// c = √τ₋ and var = (1 − z·r − r²)/τ₋.
    pub fn tilted_moments(self, y: f64, tau: f64, nu: f64) -> TiltedMoments {
        let noisy = self.noise > 0.0;
        let c2 = if noisy {
            tau * tau * self.noise + tau
        } else {
            tau
        };
        let c = c2.sqrt();
        let z = y * nu / c;
        let r = inv_mills(z);
        let mean = nu / tau + y * r / c;
        let var = if noisy {
            1.0 / tau - r * (z + r) / c2
        } else {
            (1.0 - z * r - r * r) / tau
        };
        TiltedMoments {
            log_z: log_cdf(z),
            mean,
            var,
        }
    }
}

/// Labels as ±1: accepts a vector of ±1 values or of 0/1 values (0 → −1). Anything else
/// (NaN, 0.5, a mix of −1, 0 and 1, an empty vector) is an error that names the first bad
/// entry.
pub fn labels_pm1(labels: &[f64]) -> Result<Vec<f64>, PriorError> {
    if labels.is_empty() {
        return Err(PriorError::NoLabels);
    }
    let has_neg = labels.contains(&-1.0);
    let has_zero = labels.contains(&0.0);
    if has_neg && has_zero {
        return Err(PriorError::MixedLabels);
    }
    labels
        .iter()
        .enumerate()
        .map(|(i, &v)| match v {
            1.0 => Ok(1.0),
            -1.0 | 0.0 => Ok(-1.0),
            _ => Err(PriorError::BadLabel { index: i, value: v }),
        })
        .collect()
}
