//! log P(f) with an error bar by annealed sequential Monte Carlo over the noise level, for
//! the step likelihood where minimax tilting's weights are too heavy-tailed (N ≳ 300 on MNIST
//! NNGP kernels).
//!
//! The path of targets π_s(z) ∝ N(z; 0, K)·Πᵢ Φ(yᵢzᵢ/s), s from ∞ down to the end, has
//! normalisers Z_s = P(sign(z + s·ε) = y): the probit likelihood on K + s²I. Z_∞ = 2⁻ᴺ
//! exactly and π_∞ = N(0, K); Z_1 is basin's probit P(f) and Z_0 the step one (the path
//! ends at s = 1 for probit, at s = 0 for step). One replicate ([`path`]):
//!
//! 1. P particles from N(0, K) as L·Ξ (L the Cholesky factor, Ξ standard normal), one
//!    triangular matrix product per chunk of particles.
//! 2. The next precision β = 1/s is the one whose incremental weights
//!    wₚ = Πᵢ Φ(β′yᵢzᵢ)/Φ(βyᵢzᵢ) have an effective sample size (Σw)²/Σw² of
//!    [`SmcConfig::ess_fraction`]·P (from the previous step's size, corrected by the
//!    small-step law −ln ESS ∝ (Δ ln β)², usually one or two evaluations; bisection,
//!    geometric in β, when that fails); the end is taken as soon as its weights meet the
//!    target, after the probit checkpoint ([`SmcConfig::probit_checkpoint`]), which is
//!    always visited. At s = 0 the likelihood is the orthant indicator and the increment of
//!    a particle is 1[sign z = y]/Πᵢ Φ(βyᵢzᵢ). log Ẑ += log mean(w).
//! 3. Systematic resampling, then elliptical slice sampling (Murray, Adams & MacKay 2010) at
//!    the new level: on the ellipses of the level's EP approximation G = N(μ, Σ) (probit EP
//!    on β²K, warm-started from the previous level; [`SmcConfig::precondition`]) against the
//!    residual π_β/G, which is separable and so O(N) per proposal (`gauss`); the ellipses'
//!    second points ν ~ N(0, Σ) are drawn for a chunk of particles in one triangular
//!    product. Against the prior alone the moves crawl once the likelihood is sharp. Sweeps
//!    (every particle once) repeat, at least [`SmcConfig::moves`] and at most
//!    [`SmcConfig::max_moves`], until the correlation over particles of their log
//!    likelihoods before and after falls below [`SmcConfig::decorrelation`]: too few sweeps
//!    leave the particles lagging behind the target and bias log Ẑ low in a way the
//!    replicates do not show (all replicates lag alike; seen at N = 300 with 4 fixed sweeps:
//!    −3 nats, with replicates agreeing to 0.02). A slice update that reaches
//!    [`SmcConfig::max_tries`] proposals leaves its particle in place and is counted (a
//!    status issue).
//!
//! [`SmcMover::ExactHmc`] keeps the path, its weights and its schedule but moves in the
//! augmented space: Φ(yᵢzᵢ/s) = P(yᵢ(zᵢ + sεᵢ) > 0), so π_s is the z-marginal of a joint
//! whose u = z + sε is N(0, K + s²I) truncated to the orthant. After resampling, u | z is
//! drawn exactly (independent one-sided truncated normals), u moves by exact HMC for
//! truncated Gaussians (Pakman & Paninski 2014; `hmc`: reflections off the walls, every
//! trajectory accepted, O(N) per bounce), and z | u is drawn exactly (Gaussian, diagonal in
//! K's eigenbasis) — `augmented` has the details, and why the weights stay the z-marginal
//! ones. No EP fits are needed.
//!
//! The two movers have their own schedules ([`SmcConfig::for_mover`]). Slice: ESS ½ per
//! level, about 100 levels at N = 1500 on MNIST NNGP kernels with 30–35 sweeps each, i.e. 5–6
//! minutes per replicate of 128 particles on one core, with a spread of the replicates' log
//! Ẑ_r of 1–2 nats. HMC: ESS 0.97 per level, about 535 levels with one trajectory of π/4
//! each, under 2 minutes per replicate of 128 particles with a spread of about 0.3 nats
//! (README, Benchmarks).
//!
//! On a fixed sequence of levels Ẑ is an unbiased estimate of P(f) for any number of particles
//! and moves. Levels that a replicate chooses from its own weights add a bias that vanishes
//! with P but grows with the number of levels: with HMC's ESS 0.97 per level, 40 seeds on the
//! equicorrelated N = 24 orthant (64 particles × 8, `tests/common`) gave z-scores of mean
//! +1.29 (log Ẑ about 0.08 nats high), and at N = 1500 the replicates sat 0.3–0.6 nats above
//! the ESS-½ runs. So by default for HMC ([`SmcConfig::pilot_schedule`]) a pilot replicate,
//! whose value is not used, chooses the levels and every replicate follows them: the same 40
//! seeds then gave mean +0.10, sd 1.01. The error bar comes from R independent
//! replicates (derived seeds): the estimate is log of the mean of the Ẑ_r, and its standard
//! error the delta method's sd(Ẑ_r)/(√R·mean Ẑ_r). With few replicates that standard error
//! is itself noisy (its relative error is about 1/√(2(R − 1))), and log of the mean is biased
//! low by about s.e.²/2; `tests/smc.rs` checks the calibration of the z-scores empirically.
//! [`SmcConfig::target_std_err`] adds replicates until the standard error is reached or
//! [`SmcConfig::max_replicates`].
//!
//! The path runs on K/s, s the kernel's scale ([`KernelScale`]), with the probit noise 1/s on
//! that scale: the probit path ends at β = √s and the step path's probit checkpoint lies
//! there. Past β = 10⁶ (`path::MAX_BETA`), or after a level at which a tenth of the HMC
//! trajectories reach their bounce cap, the next step goes straight to the next stop (a
//! forced step: still unbiased, an issue when its ESS is below ½). The step likelihood runs on
//! K's correlation matrix when K's diagonal spans more than [`MAX_DIAGONAL_SPREAD`]. At N = 1
//! the value is exact (½).
//!
//! Everything is in log space (log Φ from [`crate::normal::log_cdf`]). A result depends only on
//! the seed: each replicate, level, move and chunk of [`slice::CHUNK`] particles has its own
//! ChaCha8 stream from `derive_seed`, never from the thread count.

mod augmented;
mod config;
mod gauss;
mod hmc;
mod path;
mod slice;

use std::time::Instant;

use basin_nn::derive_seed;
use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::PriorError;
use crate::error::require;
use crate::estimate::{Estimate, Issue, Method, Outcome, warn_issues};
use crate::estimator::Estimator;
use crate::kernel_check::{
    check_kernel, cholesky_jitter, correlation, diagonal_spread, with_jitter,
};
use crate::likelihood::{Likelihood, labels_pm1};
use crate::scale::KernelScale;
use crate::tilting::{TiltingConfig, jitter_moves_value, jitter_shift, orthant_covariance};
use path::Stops;

pub use config::{SmcConfig, SmcMover};
pub use path::ReplicateRun;

/// The smallest number of replicates (an error bar needs two).
pub const MIN_REPLICATES: usize = 2;

/// Below this fraction of R, the effective number of replicates (ΣẐ)²/ΣẐ² says one
/// replicate dominates the mean and the delta-method error bar is not trustworthy.
pub const MIN_REPLICATE_ESS_FRACTION: f64 = 0.5;

/// Above this ratio of K's largest to smallest diagonal entry the step likelihood's path runs
/// on K's correlation matrix (the same P(f)). Below it every variance is at least 10⁻⁴ of the
/// largest, far above the round-off of the spectrum (about 10⁻¹⁶·N of the largest) and the
/// jitter ladder (10⁻¹² and up); a wider spread can sink the small variances below both.
pub const MAX_DIAGONAL_SPREAD: f64 = 1e4;

/// The probit checkpoint is compared with EP only when the probit noise (variance 1) is at
/// least this share of the kernel's largest variance: EP is accurate for probit there (2e-4
/// nats at N ≤ 64 on MNIST NNGP kernels, whose largest variance is about 3), while towards
/// the step likelihood it is biased low (−0.1 nats at N = 64, −0.6 at N = 1500).
pub const CHECKPOINT_MIN_NOISE_SHARE: f64 = 0.01;

/// Slack (nats) added to 3 standard errors when the probit checkpoint is compared with EP
/// (EP's own probit error, ≲ 0.05 nats on the golden kernels up to N = 1500).
pub const CHECKPOINT_SLACK: f64 = 0.05;

/// How the estimate was obtained and how far it can be trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmcDiagnostics {
    /// The settings used.
    pub config: SmcConfig,
    /// Each replicate: log Ẑ_r, its levels, slice statistics, wall time.
    pub replicates: Vec<ReplicateRun>,
    /// log Ẑ_r of each replicate.
    pub log_z_replicates: Vec<f64>,
    /// The sample standard deviation of the log Ẑ_r (nats).
    pub log_z_spread: f64,
    /// (ΣẐ_r)²/ΣẐ_r²: how many replicates effectively make the mean.
    pub replicate_ess: f64,
    /// log P(f) of the probit likelihood from the same paths' s = 1 level, with its standard
    /// error (step likelihood with the checkpoint; the estimate itself for probit).
    pub probit: Option<(f64, f64)>,
    /// EP's probit log P(f) on the same kernel and labels (step likelihood with the
    /// checkpoint, when the probit noise is at least [`CHECKPOINT_MIN_NOISE_SHARE`] of the
    /// kernel's largest variance): EP is accurate for probit there, so a checkpoint more
    /// than 3 standard errors from it says the particles lag behind the path's targets (an
    /// issue).
    pub ep_probit: Option<f64>,
    /// Levels per replicate, averaged.
    pub mean_temperatures: f64,
    /// Slice proposals per update, averaged over replicates.
    pub mean_tries: f64,
    /// Slice updates that hit the proposal cap, or HMC trajectories that hit the bounce cap,
    /// summed over replicates.
    pub cap_hits: u64,
    /// HMC: wall bounces per trajectory, averaged over replicates (0 for slice).
    #[serde(default)]
    pub mean_bounces: f64,
    /// HMC: positions found outside the orthant beyond round-off, summed over replicates.
    #[serde(default)]
    pub violations: u64,
    /// The change of K's diagonal, in K's units (0 if none was needed): the slice mover's
    /// Cholesky jitter, or for HMC the largest round-off negative eigenvalue set to 0.
    pub jitter: f64,
    /// The kernel's scale s ([`KernelScale`]): the path ran on K/s.
    #[serde(default)]
    pub kernel_scale: f64,
    /// Whether the step likelihood's path ran on K's correlation matrix, because K's
    /// diagonal spans more than [`MAX_DIAGONAL_SPREAD`] (the same P(f); there is then no
    /// probit checkpoint, whose noise would not be isotropic on that matrix). A jitter is then
    /// relative to each variance, and `jitter` is that times s.
    #[serde(default)]
    pub on_correlation: bool,
    /// With a jitter: |ψ*(Σ + 2δI) − ψ*(Σ + δI)| ([`crate::tilting`]'s deterministic
    /// estimate of how much a change of the diagonal of that size moves log P(f); NaN when
    /// it could not be computed).
    #[serde(default)]
    pub jitter_shift: Option<f64>,
    /// Whether the requested standard error was reached (`None`: none requested).
    pub target_met: Option<bool>,
    /// Seconds for the Cholesky factorisation (and, for HMC, K's eigendecomposition).
    pub cholesky_s: f64,
    /// Seconds in all.
    pub wall_s: f64,
    /// The pilot replicate that fixed the levels ([`SmcConfig::pilot_schedule`]).
    #[serde(default)]
    pub pilot: Option<ReplicateRun>,
}

impl SmcDiagnostics {
    /// What makes the estimate or its error bar `std_err` doubtful (empty: none).
    pub fn issues(&self, std_err: f64) -> Vec<Issue> {
        let mut out = Vec::new();
        out.extend(self.cap_issue());
        if self.violations > 0 {
            out.push(Issue::OrthantViolations {
                count: self.violations,
            });
        }
        let max_levels = self.config.max_temperatures;
        if let Some(pilot) = self.pilot.as_ref().filter(|p| !p.reached_end) {
            out.push(Issue::PilotIncomplete {
                max_levels,
                seed: pilot.seed,
            });
        }
        if let Some(run) = self.replicates.iter().find(|run| !run.reached_end) {
            out.push(Issue::ReplicateIncomplete {
                seed: run.seed,
                max_levels,
            });
        }
        let r = self.replicates.len();
        if self.replicate_ess < MIN_REPLICATE_ESS_FRACTION * r as f64 {
            out.push(Issue::ReplicatesDisagree {
                spread: self.log_z_spread,
                ess: self.replicate_ess,
                replicates: r,
            });
        }
        if let (Some((probit, se)), Some(ep)) = (self.probit, self.ep_probit)
            && (probit - ep).abs() > 3.0 * se + CHECKPOINT_SLACK
        {
            out.push(Issue::CheckpointDisagrees {
                probit,
                std_err: se,
                ep,
            });
        }
        if let Some(shift) = self.jitter_shift
            && jitter_moves_value(shift, std_err)
        {
            out.push(Issue::JitterMovesEstimate {
                jitter: self.jitter,
                relative: self.jitter / self.kernel_scale,
                shift,
                std_err,
            });
        }
        let forced = self
            .pilot
            .iter()
            .chain(&self.replicates)
            .filter_map(|r| r.forced_step)
            .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1)));
        if let Some((noise, ess_fraction)) = forced {
            out.push(Issue::ForcedFinalStep {
                noise,
                ess_fraction,
            });
        }
        if !std_err.is_finite() {
            out.push(Issue::StdErrNotFinite);
        }
        if self.target_met == Some(false) {
            out.push(Issue::ReplicateTargetMissed {
                std_err,
                target: self.config.target_std_err.unwrap_or(f64::NAN),
                max_replicates: self.config.max_replicates,
            });
        }
        out
    }

    /// The moves that hit their cap, if any: slice updates at `max_tries` proposals or HMC
    /// trajectories at `max_bounces` bounces.
    fn cap_issue(&self) -> Option<Issue> {
        let hits = self.cap_hits;
        (hits > 0).then_some(match self.config.mover {
            SmcMover::EllipticalSlice => Issue::SliceCapHits {
                hits,
                max_tries: self.config.max_tries,
            },
            SmcMover::ExactHmc => Issue::BounceCapHits {
                hits,
                max_bounces: self.config.max_bounces,
            },
        })
    }
}

/// The diagnostics a reader checks first: what [`SmcDiagnostics::summary`] gives and an
/// outcome of SMC serialises.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmcSummary {
    /// The mover's name ([`SmcMover::name`]).
    pub mover: &'static str,
    /// Particles per replicate.
    pub particles: usize,
    /// Replicates run.
    pub replicates: usize,
    /// The seed.
    pub seed: u64,
    /// log Ẑ_r of each replicate.
    pub log_z_replicates: Vec<f64>,
    /// The sample standard deviation of the log Ẑ_r (nats).
    pub log_z_spread: f64,
    /// Levels per replicate, averaged.
    pub temperatures: f64,
    /// The noise levels s of the first replicate (ending at 0 for the step likelihood).
    pub noise_levels: Vec<f64>,
    /// Whether a pilot replicate fixed the levels.
    pub pilot_schedule: bool,
    /// Sweeps per level over all replicates.
    pub sweeps_per_level: f64,
    /// Slice proposals per update, averaged over replicates.
    pub mean_slice_tries: f64,
    /// HMC wall bounces per trajectory, averaged over replicates.
    pub mean_bounces: f64,
    /// Moves that hit their cap, summed over replicates.
    pub cap_hits: u64,
    /// HMC positions put back in the orthant, summed over replicates.
    pub violations: u64,
    /// The probit checkpoint's log P(f), if any.
    pub log_prior_probit: Option<f64>,
    /// Its standard error.
    pub std_err_probit: Option<f64>,
}

impl SmcDiagnostics {
    /// The mover, replicates, levels, move statistics and the probit checkpoint.
    pub fn summary(&self) -> SmcSummary {
        let levels: usize = self.replicates.iter().map(|r| r.sweeps.len()).sum();
        let sweeps: usize = self
            .replicates
            .iter()
            .map(|r| r.sweeps.iter().sum::<usize>())
            .sum();
        SmcSummary {
            mover: self.config.mover.name(),
            particles: self.config.particles,
            replicates: self.replicates.len(),
            seed: self.config.seed,
            log_z_replicates: self.log_z_replicates.clone(),
            log_z_spread: self.log_z_spread,
            temperatures: self.mean_temperatures,
            noise_levels: self
                .replicates
                .first()
                .map_or_else(Vec::new, |r| r.noise_levels.clone()),
            pilot_schedule: self.pilot.as_ref().is_some_and(|p| p.reached_end),
            sweeps_per_level: sweeps as f64 / levels.max(1) as f64,
            mean_slice_tries: self.mean_tries,
            mean_bounces: self.mean_bounces,
            cap_hits: self.cap_hits,
            violations: self.violations,
            log_prior_probit: self.probit.map(|p| p.0),
            std_err_probit: self.probit.map(|p| p.1),
        }
    }
}

/// The seed stream of the pilot replicate (replicate r uses stream r).
const PILOT_STREAM: u64 = u64::MAX;

/// The levels (β = 1/s) a pilot visited after β = 0, for the replicates to follow; none when
/// it did not reach the end (the replicates then choose their own).
fn pilot_levels(pilot: &ReplicateRun) -> Vec<f64> {
    if !pilot.reached_end {
        return Vec::new();
    }
    pilot.noise_levels.iter().map(|&s| 1.0 / s).collect()
}

/// How the particles move, with what each mover needs of the scaled kernel.
enum Moves {
    /// Exact HMC: K's spectrum (round-off negative eigenvalues set to 0).
    Hmc(augmented::Spectrum),
    /// Elliptical slice: the kernel with its jitter, and its Cholesky factor.
    Slice { k: Mat<f64>, l: Mat<f64> },
}

/// log P(f) of ±1 or 0/1 `labels` under N(0, K) with the step or probit likelihood, by
/// annealed SMC over the noise level (module docs): [`SmcConfig`]'s [`Estimator`] impl. The
/// path runs on K/s ([`KernelScale`]) with the likelihood's noise v on that scale (0 for
/// step, 1/s for probit, whose path ends at β = 1/√v), so that its constants act at unit
/// order whatever the kernel's scale; the probit checkpoint on the step likelihood's path is
/// the probit likelihood of K itself, at β = √s.
fn smc(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &SmcConfig,
) -> Result<Outcome<SmcDiagnostics>, PriorError> {
    validate(cfg)?;
    let y = labels_pm1(labels)?;
    let n = y.len();
    let start = Instant::now();
    check_kernel(kernel, n)?;
    let scale = KernelScale::of(kernel)?;
    let scaled = scale.scaled_kernel(kernel);
    let noise = scale.likelihood(likelihood).noise;
    if n == 1 {
        return Ok(single_point(likelihood, cfg, scale, start));
    }
    // A diagonal spread so wide that its small variances could sink below the round-off of
    // the largest: the step likelihood runs on the correlation matrix (the same P(f)).
    let on_correlation = noise == 0.0 && diagonal_spread(scaled.as_ref()) > MAX_DIAGONAL_SPREAD;
    let base = if on_correlation {
        correlation(scaled.as_ref())
    } else {
        scaled
    };
    // The slice mover needs a Cholesky factor (with the jitter ladder, relative to the scaled
    // kernel); HMC needs only the spectrum, with round-off negative eigenvalues set to 0.
    let (moves, jitter) = match cfg.mover {
        SmcMover::ExactHmc => {
            let spec = augmented::Spectrum::new(base.as_ref(), &y)?;
            let clamped = spec.clamped;
            (Moves::Hmc(spec), clamped)
        }
        SmcMover::EllipticalSlice => {
            let (jitter, l) = cholesky_jitter(base.as_ref())?;
            let k = with_jitter(base.as_ref(), jitter);
            (Moves::Slice { k, l }, jitter)
        }
    };
    let cholesky_s = start.elapsed().as_secs_f64();
    let stops = Stops {
        checkpoint: (likelihood == Likelihood::Step && cfg.probit_checkpoint && !on_correlation)
            .then(|| scale.root()),
        end: if noise > 0.0 {
            1.0 / noise.sqrt()
        } else {
            f64::INFINITY
        },
    };
    let replicate = |stream: u64, schedule: &[f64]| {
        let seed = derive_seed(cfg.seed, stream);
        match &moves {
            Moves::Hmc(spec) => augmented::run_replicate(spec, &y, cfg, stops, seed, schedule),
            Moves::Slice { k, l } => {
                path::run_replicate(k.as_ref(), l.as_ref(), &y, cfg, stops, seed, schedule)
            }
        }
    };
    let mut pilot = cfg.pilot_schedule.then(|| replicate(PILOT_STREAM, &[]));
    let schedule = pilot.as_ref().map_or_else(Vec::new, pilot_levels);
    let run = |r: usize| replicate(r as u64, &schedule);
    let mut runs: Vec<ReplicateRun> = (0..cfg.replicates).map(run).collect();
    let mut combined = combine(runs.iter().map(|r| r.log_z));
    if let Some(target) = cfg.target_std_err {
        while combined.std_err > target && runs.len() < cfg.max_replicates {
            // s.e. ∝ 1/√R: aim 20% past the predicted need, at least one more.
            let need = (runs.len() as f64 * (combined.std_err / target).powi(2) * 1.2).ceil();
            let want = if need.is_finite() {
                (need as usize).clamp(runs.len() + 1, cfg.max_replicates)
            } else {
                cfg.max_replicates
            };
            runs.extend((runs.len()..want).map(run));
            combined = combine(runs.iter().map(|r| r.log_z));
        }
    }
    // The levels in K's units (the path ran on K/s: its noise levels are relative to √s;
    // on the correlation matrix they stay relative to each standard deviation).
    let unit = if on_correlation { 1.0 } else { scale.root() };
    for run in runs.iter_mut().chain(pilot.iter_mut()) {
        for level in run.noise_levels.iter_mut() {
            *level *= unit;
        }
    }
    let probit = if likelihood == Likelihood::Probit {
        Some((combined.log_mean, combined.std_err))
    } else {
        runs.iter()
            .map(|r| r.log_z_probit)
            .collect::<Option<Vec<f64>>>()
            .map(|v| {
                let c = combine(v.into_iter());
                (c.log_mean, c.std_err)
            })
    };
    // EP is accurate for probit where the noise is not small against the kernel; nearer the
    // step likelihood it is biased low, so the check is made only there.
    let max_diag = (0..n).map(|i| kernel[(i, i)]).fold(0.0f64, f64::max);
    let ep_probit = (likelihood == Likelihood::Step
        && probit.is_some()
        && max_diag * CHECKPOINT_MIN_NOISE_SHARE <= 1.0)
        .then(|| ep_probit_value(kernel, &y))
        .flatten();
    let jitter_shift = (jitter > 0.0).then(|| {
        let (sigma, c) = orthant_covariance(base.as_ref(), &y, noise);
        // At least a few ulps of the unit diagonal, so that Σ + δI factors.
        let delta = (2.0 * jitter / c).max(4.0 * n as f64 * f64::EPSILON);
        jitter_shift(sigma.as_ref(), delta, &TiltingConfig::default())
    });
    let r = runs.len() as f64;
    let mut diagnostics = SmcDiagnostics {
        ep_probit,
        config: *cfg,
        log_z_replicates: runs.iter().map(|r| r.log_z).collect(),
        log_z_spread: combined.log_spread,
        replicate_ess: combined.ess,
        probit,
        mean_temperatures: runs
            .iter()
            .map(|r| r.noise_levels.len() as f64)
            .sum::<f64>()
            / r,
        mean_tries: runs.iter().map(|r| r.mean_tries).sum::<f64>() / r,
        cap_hits: runs.iter().map(|r| r.cap_hits).sum(),
        mean_bounces: runs.iter().map(|r| r.mean_bounces).sum::<f64>() / r,
        violations: runs.iter().map(|r| r.violations).sum(),
        jitter: jitter * scale.factor(),
        kernel_scale: scale.factor(),
        on_correlation,
        jitter_shift,
        target_met: cfg.target_std_err.map(|t| combined.std_err <= t),
        cholesky_s,
        wall_s: 0.0,
        replicates: runs,
        pilot,
    };
    diagnostics.wall_s = start.elapsed().as_secs_f64();
    let issues = diagnostics.issues(combined.std_err);
    warn_issues("smc", &issues);
    Ok(Outcome {
        estimate: Estimate {
            log_p: combined.log_mean,
            std_err: Some(combined.std_err),
            converged: issues.is_empty(),
            iterations: diagnostics
                .replicates
                .first()
                .map_or(0, |r| r.noise_levels.len()),
            method: Method::Smc,
            likelihood,
            jitter: diagnostics.jitter,
        },
        diagnostics,
        issues,
    }
    .checked())
}

/// N = 1: P(f) = ½ exactly for either likelihood and any kernel (z, and z + ε, are
/// symmetric about 0), so every replicate's value is log ½ with no levels and no moves, and
/// the standard error is 0.
fn single_point(
    likelihood: Likelihood,
    cfg: &SmcConfig,
    scale: KernelScale,
    start: Instant,
) -> Outcome<SmcDiagnostics> {
    let log_half = -std::f64::consts::LN_2;
    let runs: Vec<ReplicateRun> = (0..cfg.replicates)
        .map(|r| ReplicateRun {
            seed: derive_seed(cfg.seed, r as u64),
            log_z: log_half,
            log_z_probit: Some(log_half),
            reached_end: true,
            ..ReplicateRun::default()
        })
        .collect();
    let diagnostics = SmcDiagnostics {
        config: *cfg,
        log_z_replicates: vec![log_half; runs.len()],
        log_z_spread: 0.0,
        replicate_ess: runs.len() as f64,
        probit: Some((log_half, 0.0)),
        ep_probit: None,
        mean_temperatures: 0.0,
        mean_tries: 0.0,
        cap_hits: 0,
        mean_bounces: 0.0,
        violations: 0,
        jitter: 0.0,
        kernel_scale: scale.factor(),
        on_correlation: false,
        jitter_shift: None,
        target_met: cfg.target_std_err.map(|_| true),
        cholesky_s: 0.0,
        wall_s: start.elapsed().as_secs_f64(),
        replicates: runs,
        pilot: None,
    };
    Outcome {
        estimate: Estimate {
            log_p: log_half,
            std_err: Some(0.0),
            converged: true,
            iterations: 0,
            method: Method::Smc,
            likelihood,
            jitter: 0.0,
        },
        diagnostics,
        issues: Vec::new(),
    }
}

impl Estimator for SmcConfig {
    type Diagnostics = SmcDiagnostics;

    /// log P(f) of ±1 or 0/1 `labels` under N(0, K) with the step or probit likelihood, by
    /// annealed SMC over the noise level with these settings (module docs). At N = 1 the
    /// value is exact (½).
    fn estimate(
        &self,
        kernel: MatRef<'_, f64>,
        labels: &[f64],
        likelihood: Likelihood,
    ) -> Result<Outcome<SmcDiagnostics>, PriorError> {
        smc(kernel, labels, likelihood, self)
    }
}

/// EP's probit log P(f) of K itself (the default EP's [`Estimator`]; `None` if it fails,
/// does not converge or is not finite).
fn ep_probit_value(kernel: MatRef<'_, f64>, y: &[f64]) -> Option<f64> {
    crate::ep::EpConfig::default()
        .estimate(kernel, y, Likelihood::Probit)
        .ok()
        .filter(|r| r.estimate.converged && r.estimate.log_p.is_finite())
        .map(|r| r.estimate.log_p)
}

fn validate(cfg: &SmcConfig) -> Result<(), PriorError> {
    let s = "smc";
    let count = |v: usize| v as f64;
    require(
        cfg.particles >= 2,
        s,
        "particles",
        "≥ 2",
        count(cfg.particles),
    )?;
    require(cfg.moves >= 1, s, "moves", "≥ 1", count(cfg.moves))?;
    require(
        cfg.max_moves >= cfg.moves,
        s,
        "max_moves",
        "≥ moves",
        count(cfg.max_moves),
    )?;
    let replicates = count(cfg.replicates);
    require(
        cfg.replicates >= MIN_REPLICATES,
        s,
        "replicates",
        "≥ 2",
        replicates,
    )?;
    let max = count(cfg.max_replicates);
    require(
        cfg.max_replicates >= cfg.replicates,
        s,
        "max_replicates",
        "≥ replicates",
        max,
    )?;
    require(
        cfg.max_tries >= 1,
        s,
        "max_tries",
        "≥ 1",
        count(cfg.max_tries),
    )?;
    let levels = count(cfg.max_temperatures);
    require(
        cfg.max_temperatures >= 1,
        s,
        "max_temperatures",
        "≥ 1",
        levels,
    )?;
    let ess = cfg.ess_fraction;
    require(ess > 0.0 && ess < 1.0, s, "ess_fraction", "in (0, 1)", ess)?;
    require(
        cfg.refit_ratio >= 1.0,
        s,
        "refit_ratio",
        "≥ 1",
        cfg.refit_ratio,
    )?;
    require(
        cfg.max_bounces >= 1,
        s,
        "max_bounces",
        "≥ 1",
        count(cfg.max_bounces),
    )?;
    let time = cfg.trajectory_time;
    let in_range = time > 0.0 && time <= std::f64::consts::PI;
    require(in_range, s, "trajectory_time", "in (0, π]", time)?;
    let target = cfg.target_std_err.unwrap_or(1.0);
    require(target > 0.0, s, "the target standard error", "> 0", target)
}

/// The replicates combined: log mean Ẑ, its delta-method standard error, the spread of the
/// log Ẑ_r and the effective number of replicates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combined {
    /// log of the mean of the Ẑ_r.
    pub log_mean: f64,
    /// sd(Ẑ_r)/(√R·mean Ẑ_r), nats.
    pub std_err: f64,
    /// The sample standard deviation of the log Ẑ_r.
    pub log_spread: f64,
    /// (ΣẐ_r)²/ΣẐ_r².
    pub ess: f64,
}

/// Combines replicate values log Ẑ_r (in log space, scaled by the largest).
pub fn combine(log_z: impl Iterator<Item = f64>) -> Combined {
    let v: Vec<f64> = log_z.collect();
    let r = v.len() as f64;
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() || v.len() < 2 {
        return Combined {
            log_mean: m,
            std_err: f64::INFINITY,
            log_spread: f64::NAN,
            ess: 0.0,
        };
    }
    let w: Vec<f64> = v.iter().map(|&l| (l - m).exp()).collect();
    let mean = w.iter().sum::<f64>() / r;
    let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (r - 1.0);
    let mean_log = v.iter().sum::<f64>() / r;
    let var_log = v.iter().map(|x| (x - mean_log).powi(2)).sum::<f64>() / (r - 1.0);
    let s2: f64 = w.iter().map(|x| x * x).sum();
    Combined {
        log_mean: m + mean.ln(),
        std_err: (var / r).sqrt() / mean,
        log_spread: var_log.sqrt(),
        ess: (mean * r).powi(2) / s2,
    }
}
