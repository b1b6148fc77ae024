//! The EP sites, the record of a sweep, and one site update from a marginal.

use super::config::MIN_SITE_PRECISION;
use crate::likelihood::Scaled;

/// Site (or cavity) natural parameters: precisions τ and natural means ν.
#[derive(Debug, Clone, PartialEq)]
pub struct Sites {
    /// Precisions.
    pub tau: Vec<f64>,
    /// Natural means (precision × mean).
    pub nu: Vec<f64>,
}

impl Sites {
    /// n sites at zero.
    pub fn zeros(n: usize) -> Self {
        Sites {
            tau: vec![0.0; n],
            nu: vec![0.0; n],
        }
    }

    /// The sites with precisions times `tau_factor` and natural means times `nu_factor`: in
    /// the units of a kernel divided by s, τ·s and ν·√s.
    pub fn rescaled(&self, tau_factor: f64, nu_factor: f64) -> Sites {
        Sites {
            tau: self.tau.iter().map(|t| t * tau_factor).collect(),
            nu: self.nu.iter().map(|v| v * nu_factor).collect(),
        }
    }
}

/// log Ẑ and the cavities of the latest update of every site.
#[derive(Clone)]
pub(super) struct SweepRecord {
    /// log Ẑ of each site's latest update.
    pub(super) log_zhat: Vec<f64>,
    /// The cavities of each site's latest update.
    pub(super) cav: Sites,
}

impl SweepRecord {
    pub(super) fn zeros(n: usize) -> Self {
        SweepRecord {
            log_zhat: vec![0.0; n],
            cav: Sites::zeros(n),
        }
    }
}

/// Updates site i from the marginal N(μᵢ, Σᵢᵢ). Returns (Δτ, Δν), or `None` when the cavity
/// is not a proper Gaussian (then the site is left as it is).
#[allow(clippy::too_many_arguments)]
pub(super) fn update_site(
    lik: Scaled,
    y: f64,
    sigma_ii: f64,
    mu_i: f64,
    sites: &mut Sites,
    rec: &mut SweepRecord,
    i: usize,
    damping: f64,
) -> Option<(f64, f64)> {
    let cav_tau = 1.0 / sigma_ii - sites.tau[i];
    let cav_nu = mu_i / sigma_ii - sites.nu[i];
    if !(cav_tau > 0.0 && cav_tau.is_finite() && cav_nu.is_finite()) {
        return None;
    }
    let m = lik.tilted_moments(y, cav_tau, cav_nu);
    if !(m.var > 0.0 && m.mean.is_finite() && m.log_z.is_finite()) {
        return None;
    }
    let mut d_tau = damping * (1.0 / m.var - 1.0 / sigma_ii);
    let d_nu = damping * (m.mean / m.var - mu_i / sigma_ii);
    let old = sites.tau[i];
    sites.tau[i] = (old + d_tau).max(MIN_SITE_PRECISION);
    d_tau = sites.tau[i] - old;
    sites.nu[i] += d_nu;
    rec.log_zhat[i] = m.log_z;
    rec.cav.tau[i] = cav_tau;
    rec.cav.nu[i] = cav_nu;
    Some((d_tau, d_nu))
}

/// Mean squared difference of two vectors.
pub(super) fn mean_sq_change(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64
}
