//! Expectation Propagation (EP) for log P(f) = log ∫ N(z | 0, K) Πᵢ p(yᵢ | zᵢ) dz, with the
//! probit or the step likelihood.
//!
//! Each label gets a Gaussian site t̃ᵢ(z) ∝ exp(−½τ̃ᵢzᵢ² + ν̃ᵢzᵢ); the posterior is
//! q(z) = N(μ, Σ) with Σ = (K⁻¹ + S)⁻¹, S = diag(τ̃), μ = Σν̃. A site update forms the cavity
//! τ₋ = 1/Σᵢᵢ − τ̃ᵢ, ν₋ = μᵢ/Σᵢᵢ − ν̃ᵢ, matches the moments of the tilted distribution
//! ([`Likelihood::tilted_moments`]) and sets τ̃ᵢ += δ(1/σ̂² − 1/Σᵢᵢ), ν̃ᵢ += δ(μ̂/σ̂² − μᵢ/Σᵢᵢ)
//! (δ = [`EpConfig::damping`]; τ̃ᵢ is kept ≥ 2.2e-16, so site precisions stay positive).
//!
//! This is a re-implementation of GPy 1.15's `EP` (`GPy.inference.latent_function_inference.
//! expectation_propagation.EP`, whose golden values `tests/fixtures/gp` holds): same start
//! (sites 0, Σ = K + 10⁻⁷I for the first sweep), same stopping rule (from the second sweep on,
//! mean((τ̃ − τ̃_prev)²) < ε and mean((ν̃ − ν̃_prev)²) < ε, ε = 10⁻⁶), same log Z_EP:
//!
//! log Z_EP = ½(−log|B| + ν̃ᵀΣν̃) + Σᵢ [log Ẑᵢ + ½log(1 + τ̃ᵢ/τ₋ᵢ) − ½ν̃ᵢ²/(τ₋ᵢ + τ̃ᵢ)
//! + ½ν₋ᵢ((τ̃ᵢ/τ₋ᵢ)ν₋ᵢ − 2ν̃ᵢ)/(τ₋ᵢ + τ̃ᵢ)],
//!
//! with B = I + S½KS½, Σ from the final sites, and Ẑ and the cavities of the last sweep
//! (GPy's ±½N·log 2π terms cancel and are left out; log Ẑ is used directly where GPy takes
//! log(exp(log Ẑ)), which differs only where exp underflows, below z ≈ −38).
//!
//! Two schedules:
//! * [`EpSchedule::Parallel`]: all sites from the same posterior, then the posterior is
//!   recomputed. Unlike GPy, which forms all of Σ (a Cholesky, a triangular solve with N
//!   right-hand sides and VᵀV: ⅓N³ + 2N³ flops), this needs only diag(Σ) and μ. With
//!   L = chol(B), M = L⁻¹ and S > 0, K = S^-½(B − I)S^-½ gives S½ΣS½ = I − B⁻¹, so
//!   τ̃ᵢΣᵢᵢ = 1 − (B⁻¹)ᵢᵢ = 1 − ‖Meᵢ‖²: a Cholesky plus the columns of M, by triangular
//!   solves 64 columns at a time (⅔N³ flops in all). The subtraction from 1 is done exactly:
//!   1 − ‖Meᵢ‖² = (Lᵢᵢ² − 1)/Lᵢᵢ² − Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² with
//!   Lᵢᵢ² − 1 = τ̃ᵢKᵢᵢ − Σⱼ₍ⱼ₌₀..ᵢ₎ Lᵢⱼ², every term proportional to τ̃ᵢ, so Σᵢᵢ keeps its
//!   relative precision however small τ̃ᵢ is (`Factor::sigma_diag` states the error bound;
//!   zero sites take GPy's formula). μ takes two triangular solves and no second product
//!   with K (`Factor::mean`). After the last sweep only log|B| and μ are needed: a Cholesky.
//!   With [`EpPrecision::Mixed`] (the default) the early posteriors are f32 factorisations
//!   (twice as fast; μ refined to f64 accuracy), while the next sweep's change is predicted
//!   (from the last two, EP converging about quadratically) to exceed ten times both ε and
//!   an upper estimate of what f32's errors in Σ do to the sites (`f32_risk`). A sweep fed
//!   by f32 whose change lands within that noise of ε is redone from the f64 posterior, so the
//!   stopping decision, and hence the number of sweeps, is GPy's; log Z is always f64. The
//!   early sweeps' errors are damped by the later f64 ones (a 10⁻³ relative error in the
//!   first posterior moves the N = 1500 log Z by 5·10⁻¹²).
//!   With [`EpConfig::par`] of two or more threads the Cholesky factorisations are faer's
//!   parallel ones, the blocks of columns of M are split between the threads in parts of
//!   equal cost (each column's sum is still formed by one thread, in the same order), and the
//!   kernel's own Cholesky check ([`EpConfig::check_psd`]) runs on one thread while the
//!   sweeps start on the other (`parallel_checking_alongside`): the first posterior's
//!   Cholesky then runs on one thread (always the first, so the result does not depend on
//!   timing), diag(Σ)'s parts are tasks any free thread takes, and a check that passes hands
//!   its n × n buffer to the f64 factor. An exactly symmetric row-major kernel is read as its
//!   column-major transpose, without a copy.
//! * [`EpSchedule::Sequential`]: sites in a seeded random order, each followed by the exact
//!   rank-1 update of Σ and μ (GPy's `parallel_updates=False`); the rank-1 updates are
//!   accumulated in blocks of [`SEQ_BLOCK`] and applied as one matrix product. The posterior is
//!   recomputed from the sites after every sweep, as GPy does.
//!
//! The code is split by concern: `site` (the sites and one site update), `factor` (the
//! factorisation of B and diag(Σ) from it), `parallel` (the parallel schedule and its mixed
//! precision), `sequential` (the sequential schedule), `log_z` (log Z_EP) and `fixed_point`
//! (damping where undamped EP oscillates).

mod factor;
mod fixed_point;
mod log_z;
mod parallel;
mod sequential;
mod site;

use faer::{MatRef, Par};
use serde::{Deserialize, Serialize};

use crate::PriorError;
use crate::error::require;
use crate::estimate::{Estimate, Issue, Method, Outcome};
use crate::estimator::Estimator;
use crate::kernel_check::{check_kernel, cholesky_jitter, with_jitter};
use crate::likelihood::{Likelihood, labels_pm1};

pub use fixed_point::{FALLBACK_DAMPINGS, UNDAMPED_SWEEPS, ep_to_fixed_point};
pub use site::Sites;

use factor::threads;
use parallel::{Spare, parallel};
use sequential::sequential;
use site::SweepRecord;

/// The smallest site precision (GPy: `np.finfo(float).eps`).
pub const MIN_SITE_PRECISION: f64 = f64::EPSILON;

/// The jitter GPy adds to Σ's diagonal before the first sweep.
pub const FIRST_SWEEP_JITTER: f64 = 1e-7;

/// Rank-1 updates accumulated before they are applied to Σ (sequential schedule).
pub const SEQ_BLOCK: usize = 48;

/// The order of site updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpSchedule {
    /// All sites from one posterior, then a recomputation (GPy `parallel_updates=True`).
    Parallel,
    /// Sites one at a time in a seeded random order, each with a rank-1 posterior update.
    Sequential,
}

/// The arithmetic of the parallel schedule's factorisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EpPrecision {
    /// All in f64: GPy's arithmetic.
    F64,
    /// The posteriors of the early sweeps in f32 (twice as fast), while the next sweep's change
    /// is predicted to exceed both ε and the f32 noise ten times over; the others, every sweep
    /// whose stopping decision f32 could change, and log Z in f64 (module docs). Same sweeps
    /// as [`EpPrecision::F64`]; log Z within 1e-12 nats of it on probit problems and 3e-10 on
    /// step ones in the tests.
    Mixed,
}

/// Settings of [`ep`]. [`EpConfig::default`] is GPy's algorithm (parallel, no damping,
/// ε = 10⁻⁶, no log Z criterion) in [`EpPrecision::Mixed`] arithmetic.
#[derive(Debug, Clone, Copy)]
pub struct EpConfig {
    /// Parallel or sequential updates.
    pub schedule: EpSchedule,
    /// Damping δ ∈ (0, 1]: a site moves δ of the way to its moment-matched value (1 = none).
    pub damping: f64,
    /// Stop when the mean squared changes of τ̃ and of ν̃ in a sweep are both below this.
    pub epsilon: f64,
    /// If set, also require |Δ log Z_EP| between sweeps below this (nats).
    pub log_z_tol: Option<f64>,
    /// The most sweeps; reaching it gives `converged: false`.
    pub max_sweeps: usize,
    /// Seed of the site order (sequential schedule).
    pub seed: u64,
    /// Arithmetic of the parallel schedule.
    pub precision: EpPrecision,
    /// Check that K has a Cholesky factor first (and add a named jitter if it has none).
    /// Costs one extra f64 Cholesky; GPy does not check.
    pub check_psd: bool,
    /// faer's parallelism for the dense algebra.
    pub par: Par,
}

impl Default for EpConfig {
    fn default() -> Self {
        EpConfig {
            schedule: EpSchedule::Parallel,
            damping: 1.0,
            epsilon: 1e-6,
            log_z_tol: None,
            max_sweeps: 1000,
            seed: 0,
            precision: EpPrecision::Mixed,
            check_psd: true,
            par: Par::Seq,
        }
    }
}

/// What [`ep`] returns.
#[derive(Debug, Clone)]
pub struct EpResult {
    /// log Z_EP in nats, with status.
    pub estimate: Estimate,
    /// The final sites (pass them as a warm start for a nearby function).
    pub sites: Sites,
    /// The cavities of the last sweep (as GPy uses them in log Z_EP).
    pub cavities: Sites,
    /// How the sweeps were computed.
    pub diagnostics: EpDiagnostics,
}

/// How EP's sweeps were computed (the parallel schedule's mixed precision; zeros otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpDiagnostics {
    /// Factorisations done in f32 ([`EpPrecision::Mixed`]).
    pub f32_factorisations: usize,
    /// Sweeps fed by f32 marginals that came near the stopping rule and were redone from f64
    /// marginals ([`EpPrecision::Mixed`]).
    pub redone_sweeps: usize,
}

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
        })
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
fn ep_unwarned(
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
    let overlap = cfg.check_psd && cfg.schedule == EpSchedule::Parallel && threads(cfg.par) > 1;
    let (mut run, jitter) = if overlap {
        parallel_checking_alongside(k, &y, likelihood, cfg, warm)?
    } else {
        checking_first(k, &y, likelihood, cfg, warm)?
    };
    run.estimate.jitter = jitter;
    Ok(run)
}

/// Warns that `run` did not converge.
fn warn_unconverged(run: &EpResult) {
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
    lik: Likelihood,
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
    lik: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<(EpResult, f64), PriorError> {
    let spare = Spare::alongside();
    let (check, run) = rayon::join(
        || {
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

#[allow(clippy::too_many_arguments)]
fn finish(
    log_z: f64,
    converged: bool,
    sweeps: usize,
    method: Method,
    lik: Likelihood,
    sites: Sites,
    rec: SweepRecord,
    diagnostics: EpDiagnostics,
) -> EpResult {
    EpResult {
        estimate: Estimate {
            log_p: log_z,
            std_err: None,
            converged,
            iterations: sweeps,
            method,
            likelihood: lik,
            jitter: 0.0,
        },
        sites,
        cavities: rec.cav,
        diagnostics,
    }
}
