//! [`ep`]: the labels and the kernel checked, then the schedule the settings name, with the
//! kernel's Cholesky check first or, on two or more threads, alongside the parallel schedule.
//! Also EP as an [`Estimator`].

use faer::MatRef;

use super::config::{EpConfig, EpSchedule};
use super::factor::threads;
use super::parallel::{Spare, parallel};
use super::result::{EpDiagnostics, EpResult};
use super::sequential::sequential;
use super::site::Sites;
use crate::PriorError;
use crate::error::require;
use crate::estimate::{Issue, Outcome};
use crate::estimator::Estimator;
use crate::kernel_check::{check_kernel, cholesky_jitter, with_jitter};
use crate::likelihood::{Likelihood, Scaled, labels_pm1};
use crate::scale::KernelScale;

impl Estimator for EpConfig {
    type Diagnostics = EpDiagnostics;

    /// [`ep`] from zero sites; a run that stops at `max_sweeps` has the issue
    /// [`Issue::EpNotConverged`].
    fn estimate(
        &self,
        kernel: MatRef<'_, f64>,
        labels: &[f64],
        likelihood: Likelihood,
    ) -> Result<Outcome<EpDiagnostics>, PriorError> {
        let run = ep(kernel, labels, likelihood, self, None)?;
        let issues = if run.estimate.converged {
            Vec::new()
        } else {
            vec![Issue::EpNotConverged {
                sweeps: run.estimate.iterations,
            }]
        };
        Ok(Outcome {
            estimate: run.estimate,
            diagnostics: run.diagnostics,
            issues,
        }
        .checked())
    }
}

/// Runs EP on kernel K (n × n) and ±1 or 0/1 labels. `warm` starts from given sites (for
/// example those of a nearby function) instead of zero, as GPy does on a rerun.
pub fn ep(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let run = ep_unwarned(kernel, labels, likelihood, cfg, warm)?;
    warn_unconverged(&run);
    Ok(run)
}

/// [`ep`] without the warning when it does not converge.
pub(super) fn ep_unwarned(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let y = labels_pm1(labels)?;
    let n = y.len();
    validate_config(cfg, warm, n)?;
    let exactly_symmetric = check_kernel(kernel, n)?;
    let scale = KernelScale::of(kernel)?;
    if !scale.is_unit() {
        return ep_scaled(kernel, &y, likelihood, cfg, warm, scale);
    }
    let contiguous;
    let k = if kernel.row_stride() == 1 {
        kernel
    } else if exactly_symmetric && kernel.col_stride() == 1 {
        // A symmetric row-major kernel (an .npy file's) is its own column-major transpose.
        kernel.transpose()
    } else {
        contiguous = kernel.to_owned();
        contiguous.as_ref()
    };
    let (mut run, jitter) = checked_run(k, &y, Scaled::unit(likelihood), cfg, warm)?;
    run.estimate.jitter = jitter;
    Ok(run)
}

/// The schedule with the kernel's Cholesky check: alongside the parallel schedule on two or
/// more threads, first otherwise. Returns the run and the jitter.
fn checked_run(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Scaled,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<(EpResult, f64), PriorError> {
    let overlap = cfg.check_psd && cfg.schedule == EpSchedule::Parallel && threads(cfg.par) > 1;
    if overlap {
        parallel_checking_alongside(k, y, lik, cfg, warm)
    } else {
        checking_first(k, y, lik, cfg, warm)
    }
}

/// EP on K/s with the likelihood of the scaled latent g = z/√s ([`KernelScale`]), for a
/// kernel far from unit scale: the same log Z (a change of variables), with EP's absolute
/// constants (the first sweep's jitter, the smallest site precision, the stopping rule on
/// the sites' changes) acting at unit order. The sites and cavities come back in z's units
/// (τ/s, ν/√s), the jitter in K's; warm sites go in as τ·s, ν·√s.
fn ep_scaled(
    kernel: MatRef<'_, f64>,
    y: &[f64],
    likelihood: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
    scale: KernelScale,
) -> Result<EpResult, PriorError> {
    let (s, root) = (scale.factor(), scale.root());
    let k = scale.scaled_kernel(kernel);
    let warm = warm.map(|w| w.rescaled(s, root));
    let lik = scale.likelihood(likelihood);
    let (mut run, jitter) = checked_run(k.as_ref(), y, lik, cfg, warm.as_ref())?;
    run.estimate.jitter = jitter * s;
    run.sites = run.sites.rescaled(1.0 / s, 1.0 / root);
    run.cavities = run.cavities.rescaled(1.0 / s, 1.0 / root);
    Ok(run)
}

/// Warns that `run` did not converge.
pub(super) fn warn_unconverged(run: &EpResult) {
    if !run.estimate.converged {
        tracing::warn!(
            "EP did not converge in {} sweeps; log Z_EP is the last iterate (EP with damping, \
             for example 0.5, converges where undamped EP oscillates)",
            run.estimate.iterations
        );
    }
}

/// Either schedule after the kernel's Cholesky check (with `cfg.check_psd`), on K + jitter·I
/// when it needs a jitter. Returns the run and the jitter.
fn checking_first(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Scaled,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<(EpResult, f64), PriorError> {
    let (jitter, scratch) = if cfg.check_psd {
        let (jitter, scratch) = cholesky_jitter(k)?;
        (jitter, Some(scratch))
    } else {
        (0.0, None)
    };
    let jittered;
    let k = if jitter > 0.0 {
        jittered = with_jitter(k, jitter);
        jittered.as_ref()
    } else {
        k
    };
    let run = match cfg.schedule {
        EpSchedule::Parallel => parallel(k, &Spare::new(scratch), y, lik, cfg, warm)?,
        EpSchedule::Sequential => sequential(k, y, lik, cfg, warm)?,
    };
    Ok((run, jitter))
}

/// The parallel schedule with the kernel's Cholesky check ([`cholesky_jitter`]) on another
/// thread at the same time. The run on K stands when K needs no jitter (the usual case) and is
/// redone on K + jitter·I otherwise, so the result is the one checking first gives. A check
/// that passes leaves its n × n buffer to the run's f64 factor, which the early (f32) sweeps
/// do not need: one fresh n × n buffer fewer. Returns the run and the jitter.
fn parallel_checking_alongside(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Scaled,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<(EpResult, f64), PriorError> {
    let spare = Spare::alongside();
    let (check, run) = rayon::join(
        || -> Result<_, PriorError> {
            let (jitter, buf) = cholesky_jitter(k)?;
            if jitter == 0.0 {
                spare.put(buf);
                return Ok((jitter, None));
            }
            Ok((jitter, Some(buf)))
        },
        || parallel(k, &spare, y, lik, cfg, warm),
    );
    let (jitter, scratch) = check?;
    if jitter == 0.0 {
        return Ok((run?, 0.0));
    }
    let jittered = with_jitter(k, jitter);
    let spare = Spare::new(scratch);
    Ok((
        parallel(jittered.as_ref(), &spare, y, lik, cfg, warm)?,
        jitter,
    ))
}

fn validate_config(cfg: &EpConfig, warm: Option<&Sites>, n: usize) -> Result<(), PriorError> {
    let damping = cfg.damping;
    require(
        damping > 0.0 && damping <= 1.0,
        "EP",
        "damping",
        "in (0, 1]",
        damping,
    )?;
    require(cfg.epsilon > 0.0, "EP", "epsilon", "> 0", cfg.epsilon)?;
    let sweeps = cfg.max_sweeps as f64;
    require(cfg.max_sweeps >= 1, "EP", "max_sweeps", "≥ 1", sweeps)?;
    if let Some(w) = warm {
        let ok = w.tau.len() == n && w.nu.len() == n;
        let valid =
            w.tau.iter().all(|t| t.is_finite() && *t >= 0.0) && w.nu.iter().all(|v| v.is_finite());
        if !ok || !valid {
            return Err(PriorError::WarmSites { n });
        }
    }
    Ok(())
}
