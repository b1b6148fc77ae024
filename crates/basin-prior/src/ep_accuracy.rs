//! EP's error on one function: log Z_EP against the minimax-tilting estimate of the same
//! log P(f) with its standard error ([`ep_vs_tilting`]), or against annealed SMC
//! ([`ep_vs_smc`], the reference where tilting's weights are too heavy-tailed), for the
//! EP-accuracy study.
//!
//! EP has no error bar; tilting is unbiased for P(f) and reports its standard error. EP's bias
//! is log Z_EP − log P̂, with the tilting standard error as its own (EP is deterministic). It
//! is trustworthy only where tilting reports no issue: for the step likelihood on MNIST NNGP
//! kernels the importance weights become heavy-tailed from a few hundred points on, and the
//! comparison says so (`reliable: false`, with tilting's issues) rather than giving a number
//! that looks precise.

use std::time::Instant;

use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::PriorError;
use crate::ep::{EpConfig, ep};
use crate::estimate::{Estimate, Issue, Outcome};
use crate::estimator::Estimator;
use crate::likelihood::Likelihood;
use crate::smc::{SmcConfig, SmcDiagnostics};
use crate::tilting::{TiltingConfig, TiltingDiagnostics};

/// Settings of both estimators.
#[derive(Debug, Clone, Copy, Default)]
pub struct ComparisonConfig {
    /// EP's settings (default: GPy's parallel EP).
    pub ep: EpConfig,
    /// Tilting's settings (default: 10,240 samples, seed 0).
    pub tilting: TiltingConfig,
}

/// EP against a reference estimator with an error bar (tilting or SMC) on one (kernel,
/// labels, likelihood); `D` is the reference's diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpVsReference<D> {
    /// The number of points.
    pub n: usize,
    /// The likelihood compared.
    pub likelihood: Likelihood,
    /// EP's estimate (no standard error).
    pub ep: Estimate,
    /// The reference's estimate, with its standard error.
    pub reference: Estimate,
    /// How the reference got it (tilting: samples, effective sample size, upper bound;
    /// SMC: replicates, levels, sweeps; timings).
    pub diagnostics: D,
    /// EP's error log Z_EP − log P̂ (nats; positive: EP overestimates P(f)).
    pub bias: f64,
    /// The standard error of `bias` (the reference's).
    pub bias_std_err: f64,
    /// bias / bias_std_err.
    pub z: f64,
    /// EP converged and the reference reported no issue.
    pub reliable: bool,
    /// The reference's issues and EP's non-convergence (empty when reliable).
    pub issues: Vec<Issue>,
    /// Seconds for EP.
    pub ep_wall_s: f64,
    /// Seconds for the reference.
    pub reference_wall_s: f64,
}

/// EP against minimax tilting.
pub type EpVsTilting = EpVsReference<TiltingDiagnostics>;

/// EP against annealed SMC.
pub type EpVsSmc = EpVsReference<SmcDiagnostics>;

/// EP and tilting on the same kernel, ±1 or 0/1 labels and likelihood, and EP's error with
/// its standard error.
pub fn ep_vs_tilting(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &ComparisonConfig,
) -> Result<EpVsTilting, PriorError> {
    compare(kernel, labels, likelihood, &cfg.ep, &cfg.tilting)
}

/// EP and annealed SMC on the same kernel, ±1 or 0/1 labels and likelihood, and EP's error
/// with its standard error.
pub fn ep_vs_smc(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    ep_cfg: &EpConfig,
    smc_cfg: &SmcConfig,
) -> Result<EpVsSmc, PriorError> {
    compare(kernel, labels, likelihood, ep_cfg, smc_cfg)
}

/// EP, then the `reference` estimator, each timed.
fn compare<R: Estimator>(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    ep_cfg: &EpConfig,
    reference: &R,
) -> Result<EpVsReference<R::Diagnostics>, PriorError> {
    let t0 = Instant::now();
    let ep_est = ep(kernel, labels, likelihood, ep_cfg, None)?.estimate;
    let ep_wall_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let Outcome {
        estimate,
        diagnostics,
        mut issues,
    } = reference.estimate(kernel, labels, likelihood)?;
    let reference_wall_s = t1.elapsed().as_secs_f64();
    let se = estimate.std_err.unwrap_or(f64::INFINITY);
    if !ep_est.converged {
        issues.push(Issue::EpNotConverged {
            sweeps: ep_est.iterations,
        });
    }
    let bias = ep_est.log_p - estimate.log_p;
    Ok(EpVsReference {
        n: labels.len(),
        likelihood,
        reliable: issues.is_empty(),
        issues,
        bias,
        bias_std_err: se,
        z: bias / se,
        ep: ep_est,
        reference: estimate,
        diagnostics,
        ep_wall_s,
        reference_wall_s,
    })
}
