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
use crate::estimate::Estimate;
use crate::likelihood::Likelihood;
use crate::smc::{SmcConfig, SmcDiagnostics, smc};
use crate::tilting::{TiltingConfig, TiltingDiagnostics, tilting};

/// Settings of both estimators.
#[derive(Debug, Clone, Copy, Default)]
pub struct ComparisonConfig {
    /// EP's settings (default: GPy's parallel EP).
    pub ep: EpConfig,
    /// Tilting's settings (default: 10,240 samples, seed 0).
    pub tilting: TiltingConfig,
}

/// EP against tilting on one (kernel, labels, likelihood).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpVsTilting {
    /// The number of points.
    pub n: usize,
    /// The likelihood compared.
    pub likelihood: Likelihood,
    /// EP's estimate (no standard error).
    pub ep: Estimate,
    /// Tilting's estimate, with its standard error.
    pub tilting: Estimate,
    /// How tilting got it (samples, effective sample size, upper bound, timings).
    pub tilting_diagnostics: TiltingDiagnostics,
    /// EP's error log Z_EP − log P̂ (nats; positive: EP overestimates P(f)).
    pub bias: f64,
    /// The standard error of `bias` (tilting's).
    pub bias_std_err: f64,
    /// bias / bias_std_err.
    pub z: f64,
    /// Both estimators converged and tilting reported no issue.
    pub reliable: bool,
    /// Tilting's issues (empty when reliable, apart from EP's convergence).
    pub issues: Vec<String>,
    /// Seconds for EP.
    pub ep_wall_s: f64,
    /// Seconds for tilting.
    pub tilting_wall_s: f64,
}

/// EP and tilting on the same kernel, ±1 or 0/1 labels and likelihood, and EP's error with
/// its standard error.
pub fn ep_vs_tilting(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &ComparisonConfig,
) -> Result<EpVsTilting, PriorError> {
    let t0 = Instant::now();
    let ep_est = ep(kernel, labels, likelihood, &cfg.ep, None)?.estimate;
    let ep_wall_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let tr = tilting(kernel, labels, likelihood, &cfg.tilting)?;
    let tilting_wall_s = t1.elapsed().as_secs_f64();
    let se = tr.estimate.std_err.unwrap_or(f64::INFINITY);
    let mut issues = tr.diagnostics.issues(tr.estimate.log_p, se);
    if !ep_est.converged {
        issues.push(format!(
            "EP did not converge in {} sweeps",
            ep_est.iterations
        ));
    }
    let bias = ep_est.log_p - tr.estimate.log_p;
    Ok(EpVsTilting {
        n: labels.len(),
        likelihood,
        reliable: issues.is_empty(),
        issues,
        bias,
        bias_std_err: se,
        z: bias / se,
        ep: ep_est,
        tilting: tr.estimate,
        tilting_diagnostics: tr.diagnostics,
        ep_wall_s,
        tilting_wall_s,
    })
}

/// EP against annealed SMC on one (kernel, labels, likelihood).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpVsSmc {
    /// The number of points.
    pub n: usize,
    /// The likelihood compared.
    pub likelihood: Likelihood,
    /// EP's estimate (no standard error).
    pub ep: Estimate,
    /// SMC's estimate, with its standard error.
    pub smc: Estimate,
    /// How SMC got it (replicates, levels, sweeps, timings).
    pub smc_diagnostics: SmcDiagnostics,
    /// EP's error log Z_EP − log Ẑ_SMC (nats; positive: EP overestimates P(f)).
    pub bias: f64,
    /// The standard error of `bias` (SMC's).
    pub bias_std_err: f64,
    /// bias / bias_std_err.
    pub z: f64,
    /// EP converged and SMC reported no issue.
    pub reliable: bool,
    /// SMC's issues and EP's non-convergence.
    pub issues: Vec<String>,
    /// Seconds for EP.
    pub ep_wall_s: f64,
    /// Seconds for SMC.
    pub smc_wall_s: f64,
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
    let t0 = Instant::now();
    let ep_est = ep(kernel, labels, likelihood, ep_cfg, None)?.estimate;
    let ep_wall_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let r = smc(kernel, labels, likelihood, smc_cfg)?;
    let smc_wall_s = t1.elapsed().as_secs_f64();
    let se = r.estimate.std_err.unwrap_or(f64::INFINITY);
    let mut issues = r.issues;
    if !ep_est.converged {
        issues.push(format!(
            "EP did not converge in {} sweeps",
            ep_est.iterations
        ));
    }
    let bias = ep_est.log_p - r.estimate.log_p;
    Ok(EpVsSmc {
        n: labels.len(),
        likelihood,
        reliable: issues.is_empty(),
        issues,
        bias,
        bias_std_err: se,
        z: bias / se,
        ep: ep_est,
        smc: r.estimate,
        smc_diagnostics: r.diagnostics,
        ep_wall_s,
        smc_wall_s,
    })
}
