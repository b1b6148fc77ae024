//! log P(f) with an error bar: Botev's (2017) minimax-tilted importance sampler for Gaussian
//! probabilities P(l < X < u), X ~ N(0, Σ) ("The normal law under linear restrictions:
//! simulation and estimation via minimax tilting", JRSS B 79(1):125–148; his `TruncatedNormal`
//! package is the reference design).
//!
//! P(f) is an orthant probability: P(sign z = y) for z ~ N(0, K) is P(X > 0) for
//! X ~ N(0, DKD), D = diag(y) (step likelihood), and the probit likelihood Φ(y·z) is the step
//! likelihood on K + I. The estimator, all in log space:
//!
//! 1. `cholperm`: the Cholesky factor of Σ with the variables in Gibson–Glasbey–Elston order
//!    (most constrained first). A factorisation that meets a non-positive pivot is retried
//!    with a jitter of 10⁻¹² … 10⁻⁶ × the mean diagonal on Σ's diagonal, named in a warning
//!    and returned (as [`crate::kernel_check::checked_kernel`] does for EP).
//! 2. `saddle`: the tilting parameter μ* from the saddle point of Botev's convex–concave ψ,
//!    by damped Newton with the exact Jacobian, μ eliminated through a Schur complement (one
//!    d − 1 Cholesky per step). ψ(x*, μ*) is an upper bound on log P.
//! 3. `sampler`: n importance samples from the tilted sequential proposal (truncated normals
//!    by [`crate::truncnorm::sample`]), in seeded blocks.
//! 4. log P̂ = log mean(w) by log-sum-exp, and its standard error in nats by the delta method,
//!    s.e.(log P̂) ≈ s.e.(P̂)/P̂ = sd(w)/(√n · mean(w)) (weights scaled by their maximum).
//!    log P̂ is biased low by about s.e.²/2, negligible at the error bars asked for here.
//!
//! With [`TiltingConfig::target_std_err`] it draws more samples (in further seeded blocks)
//! until the standard error reaches the target or [`TiltingConfig::max_samples`].
//!
//! The status ([`TiltingDiagnostics::issues`]) flags a Newton solve that did not converge, a
//! standard error that did not shrink from the first half of the samples to all of them (the
//! sign of weights too heavy-tailed for the error bar to be trusted), an effective sample size
//! below [`MIN_ESS`], an estimate above the upper bound ψ* by more than 3 standard errors, and a
//! target standard error not reached.

mod cholperm;
mod saddle;
mod sampler;

use std::time::Instant;

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::PriorError;
use crate::error::require;
use crate::estimate::{Estimate, Issue, Method, Outcome, warn_issues};
use crate::estimator::Estimator;
use crate::kernel_check::{JITTERS, check_kernel, checked_kernel, cholesky_jitter};
use crate::likelihood::{Likelihood, labels_pm1};
use crate::scale::KernelScale;
use crate::truncnorm::log_prob_between;

pub use sampler::SAMPLE_BLOCK;

/// A jitter δ whose doubling moves ψ* by more than this share of the standard error is an
/// issue ([`Issue::JitterMovesEstimate`]; [`jitter_shift`]): for a value that varies like
/// √δ, the jitter's own effect is up to 2.4 times that of doubling it.
pub const JITTER_SHIFT_SHARE: f64 = 0.5;

/// Below this effective sample size (Σw)²/Σw² the error bar is flagged as unreliable.
pub const MIN_ESS: f64 = 30.0;

/// Settings of the tilting estimator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TiltingConfig {
    /// Importance samples (rounded up to a multiple of [`SAMPLE_BLOCK`]); with a target, the
    /// first batch.
    pub samples: usize,
    /// If set, keep sampling until the standard error (nats) is at most this.
    pub target_std_err: Option<f64>,
    /// The most samples drawn when chasing `target_std_err`.
    pub max_samples: usize,
    /// Seed of the sampler (ChaCha8 streams derived per block).
    pub seed: u64,
    /// The Newton solve stops when ‖∇ψ‖∞ is at most this.
    pub newton_tol: f64,
    /// The most Newton steps.
    pub max_newton: usize,
}

impl Default for TiltingConfig {
    fn default() -> Self {
        TiltingConfig {
            samples: 10_240,
            target_std_err: None,
            max_samples: 1_048_576,
            seed: 0,
            newton_tol: 1e-8,
            max_newton: 100,
        }
    }
}

/// How the estimate was obtained and how far it can be trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TiltingDiagnostics {
    /// Importance samples drawn.
    pub samples: usize,
    /// The seed used.
    pub seed: u64,
    /// Effective sample size (Σw)²/Σw².
    pub ess: f64,
    /// The standard error (nats) from the first half of the samples alone.
    pub std_err_half: f64,
    /// Newton steps of the tilting problem.
    pub newton_iterations: usize,
    /// ‖∇ψ‖∞ at the tilting parameter used.
    pub newton_residual: f64,
    /// Whether the Newton solve met its tolerance.
    pub newton_converged: bool,
    /// ψ(x*, μ*), Botev's upper bound on log P (valid when the Newton solve converged).
    pub log_upper_bound: f64,
    /// The smallest pivot of the reordered Cholesky factor relative to its variance
    /// (near 0: Σ is near singular and the weights may be poor).
    pub min_rel_pivot: f64,
    /// Jitter added to Σ's diagonal (0 if none was needed). Through the [`Estimator`], Σ is
    /// the orthant covariance's correlation matrix, so this is relative to each variance; the
    /// estimate's `jitter` is in the kernel's units.
    pub jitter: f64,
    /// Whether the requested standard error was reached (`None`: none requested).
    pub target_met: Option<bool>,
    /// The requested standard error, if any.
    pub target_std_err: Option<f64>,
    /// Seconds spent on the reordered Cholesky factorisation.
    pub cholesky_s: f64,
    /// Seconds spent on the Newton solve.
    pub newton_s: f64,
    /// Seconds spent sampling.
    pub sampling_s: f64,
}

impl TiltingDiagnostics {
    /// What makes the estimate `log_p` ± `std_err` or its error bar doubtful (empty: none).
    pub fn issues(&self, log_p: f64, std_err: f64) -> Vec<Issue> {
        let mut out = Vec::new();
        if !self.newton_converged {
            out.push(Issue::NewtonNotConverged {
                residual: self.newton_residual,
                steps: self.newton_iterations,
            });
        }
        if self.samples > 0 && std_err > 0.0 && std_err >= self.std_err_half {
            out.push(Issue::StdErrNotShrinking {
                half: self.std_err_half,
                samples: self.samples,
                std_err,
            });
        }
        if self.samples > 0 && self.ess < MIN_ESS {
            out.push(Issue::LowEss {
                ess: self.ess,
                min_ess: MIN_ESS,
            });
        }
        if self.newton_converged && log_p > self.log_upper_bound + 3.0 * std_err + 1e-9 {
            out.push(Issue::AboveUpperBound {
                log_p,
                upper_bound: self.log_upper_bound,
            });
        }
        if self.target_met == Some(false) {
            out.push(Issue::SampleTargetMissed {
                std_err,
                target: self.target_std_err.unwrap_or(f64::NAN),
            });
        }
        out
    }
}

/// The diagnostics a reader checks first: what [`TiltingDiagnostics::summary`] gives and an
/// outcome of tilting serialises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TiltingSummary {
    /// Importance samples drawn.
    pub samples: usize,
    /// The seed used.
    pub seed: u64,
    /// Effective sample size (Σw)²/Σw².
    pub ess: f64,
    /// ψ*, Botev's upper bound on log P.
    pub log_upper_bound: f64,
}

impl TiltingDiagnostics {
    /// The samples, seed, effective sample size and upper bound.
    pub fn summary(&self) -> TiltingSummary {
        TiltingSummary {
            samples: self.samples,
            seed: self.seed,
            ess: self.ess,
            log_upper_bound: self.log_upper_bound,
        }
    }
}

/// An estimate of log P(l < X < u) with its standard error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogProbability {
    /// log P̂, natural log.
    pub log_p: f64,
    /// Its standard error in nats (delta method).
    pub std_err: f64,
    /// What makes it doubtful ([`TiltingDiagnostics::issues`]; empty: nothing).
    pub issues: Vec<Issue>,
    /// How it was obtained.
    pub diagnostics: TiltingDiagnostics,
}

impl Estimator for TiltingConfig {
    type Diagnostics = TiltingDiagnostics;

    /// log P(f) of ±1 or 0/1 `labels` under N(0, K) with the step or probit likelihood, by
    /// minimax tilting with these settings (module docs). K itself must be positive
    /// semi-definite (up to the jitter ladder) for either likelihood. The orthant's covariance
    /// is the correlation matrix of D(K/s + vI)D, with s the kernel's scale ([`KernelScale`])
    /// and v the likelihood's noise on K/s, so that the value depends neither on the
    /// kernel's scale (beyond the probit noise's share) nor on the spread of its diagonal. At
    /// N = 1 the value is exact: P(f) = ½. The estimate's `jitter` is the jitter on that
    /// correlation matrix times c·s, with c the largest diagonal entry of K/s + vI (a bound
    /// on the jitter in K's units).
    fn estimate(
        &self,
        kernel: MatRef<'_, f64>,
        labels: &[f64],
        likelihood: Likelihood,
    ) -> Result<Outcome<TiltingDiagnostics>, PriorError> {
        let y = labels_pm1(labels)?;
        let n = y.len();
        check_kernel(kernel, n)?;
        let scale = KernelScale::of(kernel)?;
        let k = scale.scaled_kernel(kernel);
        let noise = scale.likelihood(likelihood).noise;
        if noise > 0.0 {
            // The noise would hide an indefinite K: check K itself.
            cholesky_jitter(k.as_ref()).map_err(|e| match e {
                PriorError::NotPsd { jitter } => PriorError::NotPsd {
                    jitter: jitter * scale.factor(),
                },
                e => e,
            })?;
        }
        let (sigma, c) = orthant_covariance(k.as_ref(), &y, noise);
        let r = log_orthant(sigma.as_ref(), self)?;
        let mut issues = r.issues;
        let jitter = r.diagnostics.jitter;
        if jitter > 0.0 {
            let shift = jitter_shift(sigma.as_ref(), jitter, self);
            if jitter_moves_value(shift, r.std_err) {
                issues.push(Issue::JitterMovesEstimate {
                    jitter: jitter * c * scale.factor(),
                    relative: jitter * c,
                    shift,
                    std_err: r.std_err,
                });
                warn_issues("tilting", &issues[issues.len() - 1..]);
            }
        }
        Ok(Outcome {
            estimate: Estimate {
                log_p: r.log_p,
                std_err: Some(r.std_err),
                converged: issues.is_empty(),
                iterations: r.diagnostics.newton_iterations,
                method: Method::Tilting,
                likelihood,
                jitter: jitter * c * scale.factor(),
            },
            diagnostics: r.diagnostics,
            issues,
        }
        .checked())
    }
}

/// The covariance of the orthant problem, D(K + vI)D (D = diag y), as its correlation
/// matrix, and c, the largest diagonal entry of K + vI. The orthant probability does not
/// change under a positive diagonal scaling of the variables, and the normalisation keeps
/// every variable at unit order: a huge noise (a tiny kernel's probit) and a diagonal that
/// spans many orders of magnitude alike, so that a jitter relative to the diagonal is small
/// for every variable.
pub(crate) fn orthant_covariance(k: MatRef<'_, f64>, y: &[f64], noise: f64) -> (Mat<f64>, f64) {
    let n = y.len();
    let root: Vec<f64> = (0..n).map(|i| (k[(i, i)] + noise).sqrt()).collect();
    let c = root.iter().fold(0.0f64, |m, r| m.max(r * r));
    let sigma = Mat::from_fn(n, n, |i, j| {
        if i == j {
            1.0
        } else {
            y[i] * y[j] * (k[(i, j)] / root[i] / root[j])
        }
    });
    (sigma, c)
}

/// Whether a jitter whose doubling moves ψ* by `shift` ([`jitter_shift`]; NaN: unknown)
/// moves an estimate with standard error `std_err`: an unknown shift does.
pub(crate) fn jitter_moves_value(shift: f64, std_err: f64) -> bool {
    shift.is_nan() || shift > JITTER_SHIFT_SHARE * std_err
}

/// How much a jitter δ on the diagonal of an orthant covariance Σ (unit-order diagonal)
/// moves log P(X > 0), estimated deterministically: |ψ*(Σ + 2δI) − ψ*(Σ + δI)|, with ψ*
/// Botev's upper bound (a smooth function of Σ close to log P). Doubling the jitter moves
/// the value by about as much as the jitter itself does (for a value that varies like √δ,
/// the jitter's own effect is up to 2.4 times that of doubling it, hence
/// [`JITTER_SHIFT_SHARE`]). NaN when either Newton solve fails.
pub(crate) fn jitter_shift(sigma: MatRef<'_, f64>, jitter: f64, cfg: &TiltingConfig) -> f64 {
    let d = sigma.nrows();
    let bound = |j: f64| {
        let mut s = sigma.to_owned();
        for i in 0..d {
            s[(i, i)] += j;
        }
        let f = cholperm::cholperm(&s, &vec![0.0; d], &vec![f64::INFINITY; d]).ok()?;
        let sad = saddle::solve(&saddle::Scaled::new(&f), cfg.newton_tol, cfg.max_newton);
        sad.converged.then_some(sad.psi)
    };
    match (bound(jitter), bound(2.0 * jitter)) {
        (Some(a), Some(b)) => (b - a).abs(),
        _ => f64::NAN,
    }
}

/// log P(X > 0) for X ~ N(0, Σ).
pub fn log_orthant(
    sigma: MatRef<'_, f64>,
    cfg: &TiltingConfig,
) -> Result<LogProbability, PriorError> {
    let d = sigma.nrows();
    log_probability(sigma, &vec![0.0; d], &vec![f64::INFINITY; d], cfg)
}

/// log P(lower < X < upper) for X ~ N(0, Σ) (bounds may be ±∞; lowerᵢ < upperᵢ).
pub fn log_probability(
    sigma: MatRef<'_, f64>,
    lower: &[f64],
    upper: &[f64],
    cfg: &TiltingConfig,
) -> Result<LogProbability, PriorError> {
    let d = lower.len();
    validate(d, upper, lower, cfg)?;
    let (sigma, _) = checked_kernel(sigma, d, false)?;
    if d == 1 {
        return Ok(univariate(&sigma, lower[0], upper[0], cfg));
    }
    let t0 = Instant::now();
    let (factor, jitter) = factor_with_jitter(&sigma, lower, upper)?;
    let cholesky_s = t0.elapsed().as_secs_f64();
    if factor.min_rel_pivot < 1e-10 {
        tracing::warn!(
            "tilting: Σ is near singular (smallest relative pivot {:e}); the weights may be poor",
            factor.min_rel_pivot
        );
    }
    let problem = saddle::Scaled::new(&factor);
    let t1 = Instant::now();
    let sad = saddle::solve(&problem, cfg.newton_tol, cfg.max_newton);
    let newton_s = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let lw = sample_until_target(&problem, &sad.mu, cfg);
    let sampling_s = t2.elapsed().as_secs_f64();
    let all = summarize(&lw);
    let half = summarize(&lw[..lw.len() / 2]);
    let diagnostics = TiltingDiagnostics {
        samples: lw.len(),
        seed: cfg.seed,
        ess: all.ess,
        std_err_half: half.std_err,
        newton_iterations: sad.iterations,
        newton_residual: sad.residual,
        newton_converged: sad.converged,
        log_upper_bound: sad.psi,
        min_rel_pivot: factor.min_rel_pivot,
        jitter,
        target_met: cfg.target_std_err.map(|t| all.std_err <= t),
        target_std_err: cfg.target_std_err,
        cholesky_s,
        newton_s,
        sampling_s,
    };
    Ok(finish(all.log_mean, all.std_err, diagnostics))
}

/// The result with its status; each issue is logged as a warning.
fn finish(log_p: f64, std_err: f64, diagnostics: TiltingDiagnostics) -> LogProbability {
    let issues = diagnostics.issues(log_p, std_err);
    warn_issues("tilting", &issues);
    LogProbability {
        log_p,
        std_err,
        issues,
        diagnostics,
    }
}

/// d = 1: the exact value, no sampling. The tilted proposal is then exact, so every one of
/// the requested samples (rounded up to a block) would have the same weight: the
/// diagnostics report those samples with an effective sample size of all of them, a
/// standard error of 0 and ψ* equal to the value.
fn univariate(sigma: &Mat<f64>, lower: f64, upper: f64, cfg: &TiltingConfig) -> LogProbability {
    let s = sigma[(0, 0)].sqrt();
    let log_p = log_prob_between(lower / s, upper / s);
    let samples = cfg.samples.div_ceil(SAMPLE_BLOCK) * SAMPLE_BLOCK;
    let diagnostics = TiltingDiagnostics {
        samples,
        seed: cfg.seed,
        ess: samples as f64,
        std_err_half: 0.0,
        newton_iterations: 0,
        newton_residual: 0.0,
        newton_converged: true,
        log_upper_bound: log_p,
        min_rel_pivot: 1.0,
        jitter: 0.0,
        target_met: cfg.target_std_err.map(|_| true),
        target_std_err: cfg.target_std_err,
        cholesky_s: 0.0,
        newton_s: 0.0,
        sampling_s: 0.0,
    };
    finish(log_p, 0.0, diagnostics)
}

fn validate(d: usize, upper: &[f64], lower: &[f64], cfg: &TiltingConfig) -> Result<(), PriorError> {
    if d == 0 || upper.len() != d {
        return Err(PriorError::BoundCount {
            lower: d,
            upper: upper.len(),
        });
    }
    if let Some(i) =
        (0..d).find(|&i| lower[i].is_nan() || upper[i].is_nan() || lower[i] >= upper[i])
    {
        return Err(PriorError::BoundOrder {
            index: i,
            lower: lower[i],
            upper: upper[i],
        });
    }
    let t = "tilting";
    require(cfg.samples >= 2, t, "samples", "≥ 2", cfg.samples as f64)?;
    let max = cfg.max_samples as f64;
    require(
        cfg.max_samples >= cfg.samples,
        t,
        "max_samples",
        "≥ samples",
        max,
    )?;
    require(
        cfg.max_newton >= 1,
        t,
        "max_newton",
        "≥ 1",
        cfg.max_newton as f64,
    )?;
    require(cfg.newton_tol > 0.0, t, "newton_tol", "> 0", cfg.newton_tol)?;
    let target = cfg.target_std_err.unwrap_or(1.0);
    require(target > 0.0, t, "the target standard error", "> 0", target)
}

/// The GGE-ordered factor of Σ, with the first jitter of [`JITTERS`] that lets it through.
fn factor_with_jitter(
    sigma: &Mat<f64>,
    lower: &[f64],
    upper: &[f64],
) -> Result<(cholperm::PermutedCholesky, f64), PriorError> {
    let d = sigma.nrows();
    let mean_diag = (0..d).map(|i| sigma[(i, i)]).sum::<f64>() / d as f64;
    for rel in JITTERS {
        let jitter = rel * mean_diag;
        let trial;
        let s = if jitter > 0.0 {
            let mut t = sigma.clone();
            for i in 0..d {
                t[(i, i)] += jitter;
            }
            trial = t;
            &trial
        } else {
            sigma
        };
        match cholperm::cholperm(s, lower, upper) {
            Ok(f) => {
                if jitter > 0.0 {
                    tracing::warn!(
                        "tilting: Σ has no Cholesky factor; added jitter {jitter:e} \
                         ({rel:e} × mean diagonal) to its diagonal"
                    );
                }
                return Ok((f, jitter));
            }
            Err(fail) => tracing::debug!(
                "tilting: reordered Cholesky met variance {:e} at step {} with jitter {jitter:e}",
                fail.value,
                fail.step
            ),
        }
    }
    Err(PriorError::NotPsd {
        jitter: JITTERS[JITTERS.len() - 1] * mean_diag,
    })
}

/// Log weights of `cfg.samples` samples, then of further blocks until the target standard
/// error is met or `cfg.max_samples` is reached.
fn sample_until_target(p: &saddle::Scaled, mu: &[f64], cfg: &TiltingConfig) -> Vec<f64> {
    let blocks_for = |n: usize| n.div_ceil(SAMPLE_BLOCK);
    let max_blocks = blocks_for(cfg.max_samples);
    let mut done = 0;
    let mut want = blocks_for(cfg.samples);
    let mut lw = Vec::with_capacity(want * SAMPLE_BLOCK);
    loop {
        lw.extend(sampler::log_weights(p, mu, cfg.seed, done, want));
        done = want;
        let Some(target) = cfg.target_std_err else {
            return lw;
        };
        let se = summarize(&lw).std_err;
        if se <= target || done >= max_blocks {
            return lw;
        }
        // s.e. ∝ 1/√n: aim 20% past the predicted need, at least one more block.
        let need = (lw.len() as f64 * (se / target).powi(2) * 1.2).ceil() as usize;
        want = blocks_for(need).clamp(done + 1, max_blocks);
    }
}

/// log mean(w), its standard error in nats and the effective sample size.
struct Summary {
    log_mean: f64,
    std_err: f64,
    ess: f64,
}

/// Summary of log weights, in log space: w scaled by its maximum, two-pass variance.
fn summarize(lw: &[f64]) -> Summary {
    let n = lw.len() as f64;
    let m = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() || lw.len() < 2 {
        return Summary {
            log_mean: m,
            std_err: f64::INFINITY,
            ess: 0.0,
        };
    }
    let (s1, s2) = lw.iter().fold((0.0, 0.0), |(a, b), &l| {
        let w = (l - m).exp();
        (a + w, b + w * w)
    });
    let mean = s1 / n;
    let ss: f64 = lw.iter().map(|&l| ((l - m).exp() - mean).powi(2)).sum();
    let var = ss / (n - 1.0);
    Summary {
        log_mean: m + mean.ln(),
        std_err: (var / n).sqrt() / mean,
        ess: s1 * s1 / s2,
    }
}
