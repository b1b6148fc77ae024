//! What an estimator of log P(f) returns: the [`Estimate`], the [`Issue`]s that make it
//! doubtful, and both with the method's own diagnostics as an [`Outcome`]. This module holds
//! result types only; the estimators and the dispatch from a [`Method`] to one of them import
//! it, never the other way round.

use serde::{Deserialize, Serialize, Serializer};

use crate::likelihood::Likelihood;

/// How log P(f) was estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Expectation Propagation with parallel updates (GPy's `EP(parallel_updates=True)`).
    Ep,
    /// Expectation Propagation with sequential rank-1 updates in a seeded random order.
    EpSequential,
    /// The Laplace approximation (probit only).
    Laplace,
    /// An exact value (closed form or quadrature).
    #[value(skip)]
    Exact,
    /// Botev's minimax-tilted importance sampler: an unbiased estimate with a standard error.
    Tilting,
    /// Annealed sequential Monte Carlo over the noise level: an unbiased estimate with a
    /// standard error from independent replicates, for the step likelihood where tilting
    /// fails.
    Smc,
}

impl Method {
    /// The name printed in outputs: `ep`, `ep-sequential`, `laplace`, `exact`, `tilting` or `smc`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ep => "ep",
            Method::EpSequential => "ep-sequential",
            Method::Laplace => "laplace",
            Method::Exact => "exact",
            Method::Tilting => "tilting",
            Method::Smc => "smc",
        }
    }
}

/// An estimate of log P(f) in nats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate of log P(f), natural log.
    #[serde(rename = "log_prior")]
    pub log_p: f64,
    /// Its standard error in nats, for methods that have one (tilting, smc); `None` otherwise.
    pub std_err: Option<f64>,
    /// Whether the method's stopping rule was met and (tilting, smc) no issue was found
    /// (false: the value is the last iterate, or doubtful).
    pub converged: bool,
    /// Iterations used (EP: sweeps over the sites; Laplace: Newton steps; tilting: Newton
    /// steps of the tilting problem; smc: levels of the first replicate).
    pub iterations: usize,
    /// The estimator.
    pub method: Method,
    /// The likelihood the value is for.
    pub likelihood: Likelihood,
    /// Jitter added to the kernel's diagonal because its Cholesky factorisation failed
    /// (0 when none was needed; a `tracing` warning names it otherwise).
    pub jitter: f64,
}

/// What makes an estimate or its error bar doubtful. Its `Display` is one sentence that says
/// what was seen and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Issue {
    /// EP stopped at its sweep limit before its stopping rule was met.
    #[error("EP did not converge in {sweeps} sweeps")]
    EpNotConverged {
        /// The sweeps run.
        sweeps: usize,
    },
    /// Newton's method of the Laplace approximation stopped at its step limit.
    #[error("the Laplace approximation did not converge in {steps} Newton steps")]
    LaplaceNotConverged {
        /// The Newton steps run.
        steps: usize,
    },
    /// Tilting: the Newton solve of the tilting problem stopped short of its tolerance.
    #[error(
        "the tilting problem's Newton solve stopped at ‖∇ψ‖∞ = {residual:e} after {steps} steps: \
         the estimate is still unbiased but its variance may be large"
    )]
    NewtonNotConverged {
        /// ‖∇ψ‖∞ where it stopped.
        residual: f64,
        /// The Newton steps run.
        steps: usize,
    },
    /// Tilting: the standard error did not shrink from half the samples to all of them.
    #[error(
        "the standard error did not shrink from the first half of the samples ({half:.3e}) to \
         all {samples} ({std_err:.3e}): the weights are heavy-tailed and the error bar is not \
         trustworthy; draw more samples"
    )]
    StdErrNotShrinking {
        /// The standard error from the first half of the samples.
        half: f64,
        /// The samples drawn.
        samples: usize,
        /// The standard error from all of them.
        std_err: f64,
    },
    /// Tilting: a few importance weights dominate.
    #[error(
        "the effective sample size is {ess:.1} (< {min_ess}): a few weights dominate and the \
         error bar is not trustworthy"
    )]
    LowEss {
        /// The effective sample size (Σw)²/Σw².
        ess: f64,
        /// The smallest one trusted.
        min_ess: f64,
    },
    /// Tilting: the estimate lies above Botev's upper bound ψ* by more than 3 standard errors.
    #[error(
        "the estimate {log_p} exceeds the upper bound ψ* = {upper_bound} by more than 3 \
         standard errors"
    )]
    AboveUpperBound {
        /// The estimate (nats).
        log_p: f64,
        /// ψ* (nats).
        upper_bound: f64,
    },
    /// Tilting: the target standard error was not reached within the sample limit.
    #[error(
        "the standard error {std_err:.3e} did not reach the target {target:.3e} within the \
         sample limit"
    )]
    SampleTargetMissed {
        /// The standard error reached (nats).
        std_err: f64,
        /// The target (nats).
        target: f64,
    },
    /// SMC: elliptical slice updates hit their proposal cap.
    #[error(
        "{hits} elliptical slice updates reached the cap of {max_tries} proposals and left their \
         particle in place: the moves mix poorly; raise max_tries or the particles"
    )]
    SliceCapHits {
        /// Updates that hit the cap, summed over replicates.
        hits: u64,
        /// The cap.
        max_tries: usize,
    },
    /// SMC: HMC trajectories hit their bounce cap.
    #[error(
        "{hits} HMC trajectories reached the cap of {max_bounces} wall bounces and left their \
         particle in place: raise max_bounces"
    )]
    BounceCapHits {
        /// Trajectories that hit the cap, summed over replicates.
        hits: u64,
        /// The cap.
        max_bounces: usize,
    },
    /// SMC: HMC positions left the orthant beyond round-off.
    #[error(
        "{count} HMC positions left the orthant by more than round-off and were put back on \
         the wall: the kernel's columns or eigenvectors are inaccurate; add jitter"
    )]
    OrthantViolations {
        /// Positions put back, summed over replicates.
        count: u64,
    },
    /// SMC: the pilot replicate did not reach the final level, so the levels are not fixed.
    #[error(
        "the pilot replicate did not reach the final level in {max_levels} levels, so the \
         replicates chose their own levels, which biases log Ẑ (pilot seed {seed})"
    )]
    PilotIncomplete {
        /// The level limit.
        max_levels: usize,
        /// The pilot's seed.
        seed: u64,
    },
    /// SMC: a replicate did not reach the final level.
    #[error(
        "replicate {seed} did not reach the final level in {max_levels} levels: its value is \
         not an estimate of P(f)"
    )]
    ReplicateIncomplete {
        /// The replicate's seed.
        seed: u64,
        /// The level limit.
        max_levels: usize,
    },
    /// SMC: one replicate dominates the mean.
    #[error(
        "the replicates disagree beyond their error bar (log Ẑ_r spread {spread:.3} nats, \
         effective replicates {ess:.1} of {replicates}): one replicate dominates the mean and \
         the standard error is not trustworthy; use more particles or replicates"
    )]
    ReplicatesDisagree {
        /// The sample standard deviation of the replicates' log Ẑ_r (nats).
        spread: f64,
        /// The effective number of replicates.
        ess: f64,
        /// The replicates run.
        replicates: usize,
    },
    /// SMC: the path's probit checkpoint disagrees with EP's probit value.
    #[error(
        "the path's probit checkpoint {probit:.3} ± {std_err:.3} disagrees with EP's probit \
         value {ep:.3}, which is accurate for probit: the particles lag behind the targets and \
         the estimate is likely biased low beyond its error bar; use more particles or sweeps"
    )]
    CheckpointDisagrees {
        /// The checkpoint's log P(f) (nats).
        probit: f64,
        /// Its standard error (nats).
        std_err: f64,
        /// EP's probit log P(f) (nats).
        ep: f64,
    },
    /// The standard error is NaN or infinite.
    #[error("the standard error is not finite")]
    StdErrNotFinite,
    /// The estimate of log P(f) is NaN or infinite (−∞: P(f) underflowed or is 0 for the
    /// kernel as given).
    #[error(
        "the estimate of log P(f) is {log_p}, not a finite number: the kernel or the function \
         is outside what the method can resolve; check the kernel's scale and rank"
    )]
    NotFinite {
        /// The value returned.
        log_p: f64,
    },
    /// A jitter (or the clamping of round-off negative eigenvalues) changed the kernel by
    /// enough to move the estimate by more than its error bar.
    #[error(
        "the kernel needed a change of {jitter:e} on its diagonal (relative to its scale: \
         {relative:e}), and doubling that change moves log P(f) by {shift:.3} nats, more than the \
         error bar {std_err:.3}: the kernel's small eigenvalues decide the value; give a kernel \
         computed in higher precision, or one that is positive definite"
    )]
    JitterMovesEstimate {
        /// The change of the kernel's diagonal, in the kernel's units.
        jitter: f64,
        /// The same relative to the kernel's scale s (a power of four near its largest
        /// diagonal entry).
        relative: f64,
        /// |log P(K + 2δI) − log P(K + δI)| by Botev's deterministic bound ψ* (nats; NaN when
        /// it could not be computed).
        shift: f64,
        /// The estimate's standard error (nats).
        std_err: f64,
    },
    /// SMC: the path stopped choosing its levels (at its smallest noise level, or where the
    /// HMC trajectories reached their bounce cap) and stepped straight to its next stop with
    /// a low effective sample size.
    #[error(
        "the path stopped choosing levels at the noise level s = {noise:e} (relative to the \
         kernel's scale: its smallest, or where HMC trajectories hit their bounce cap) and \
         stepped straight on with an effective sample size of {ess_fraction:.3} of the \
         particles: the function's orthant is (nearly) empty in the kernel's range, so P(f) \
         is decided by the kernel's round-off and the error bar is not trustworthy"
    )]
    ForcedFinalStep {
        /// The noise level the step left from, relative to the square root of the kernel's
        /// scale.
        noise: f64,
        /// The effective sample size fraction of the final step.
        ess_fraction: f64,
    },
    /// Laplace: the probit noise is small against the kernel, where the Laplace approximation
    /// degrades without bound towards the step likelihood.
    #[error(
        "the probit noise variance is {noise_share:e} of the kernel's largest variance: the \
         Laplace approximation falls without bound as that share shrinks (the step likelihood \
         has none), so this value is far below log P(f); use EP or tilting"
    )]
    LaplaceNearStep {
        /// The noise variance over the kernel's largest diagonal entry.
        noise_share: f64,
    },
    /// SMC: the target standard error was not reached within the replicate limit.
    #[error(
        "the standard error {std_err:.3e} did not reach the target {target:.3e} within \
         {max_replicates} replicates"
    )]
    ReplicateTargetMissed {
        /// The standard error reached (nats).
        std_err: f64,
        /// The target (nats).
        target: f64,
        /// The replicate limit.
        max_replicates: usize,
    },
}

/// Issues as one note: their messages joined by `; `.
pub fn issues_note(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Logs each issue as a `tracing` warning, prefixed with the estimator's name.
pub(crate) fn warn_issues(estimator: &str, issues: &[Issue]) {
    for issue in issues {
        tracing::warn!("{estimator}: {issue}");
    }
}

/// What an estimator returns: the estimate, the method's diagnostics `D` and the issues found
/// (empty when the estimate can be trusted). It serialises as one flat object: the estimate's
/// fields, the diagnostics' fields and `issues`, each issue as its message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome<D> {
    /// log P(f), with its standard error and status.
    #[serde(flatten)]
    pub estimate: Estimate,
    /// How the method got it (per method: sweeps, samples, replicates, timings).
    #[serde(flatten)]
    pub diagnostics: D,
    /// What makes the estimate doubtful (empty: nothing).
    #[serde(serialize_with = "messages")]
    pub issues: Vec<Issue>,
}

impl<D> Outcome<D> {
    /// The same outcome, flagged when its log P(f) is not finite: then `converged` is false
    /// and the issue [`Issue::NotFinite`] is added. Every estimator's outcome passes through
    /// it ([`crate::dispatch`]), so that no non-finite value is reported as converged.
    pub fn checked(mut self) -> Self {
        let log_p = self.estimate.log_p;
        if !log_p.is_finite() {
            self.estimate.converged = false;
            if !self
                .issues
                .iter()
                .any(|i| matches!(i, Issue::NotFinite { .. }))
            {
                self.issues.push(Issue::NotFinite { log_p });
            }
        }
        self
    }

    /// The same outcome with its diagnostics mapped by `f`.
    pub fn map<E>(self, f: impl FnOnce(D) -> E) -> Outcome<E> {
        Outcome {
            estimate: self.estimate,
            diagnostics: f(self.diagnostics),
            issues: self.issues,
        }
    }
}

/// Serialises issues as their messages.
fn messages<S: Serializer>(issues: &[Issue], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(issues.iter().map(ToString::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(log_p: f64) -> Outcome<()> {
        Outcome {
            estimate: Estimate {
                log_p,
                std_err: None,
                converged: true,
                iterations: 1,
                method: Method::Laplace,
                likelihood: Likelihood::Probit,
                jitter: 0.0,
            },
            diagnostics: (),
            issues: Vec::new(),
        }
    }

    /// A NaN or infinite log P(f) is never converged and carries one `NotFinite` issue; a
    /// finite one is left alone.
    #[test]
    fn checked_flags_non_finite_values_once() {
        for v in [f64::NAN, f64::NEG_INFINITY, f64::INFINITY] {
            let o = outcome(v).checked().checked();
            assert!(!o.estimate.converged);
            assert_eq!(o.issues.len(), 1);
            assert!(matches!(o.issues[0], Issue::NotFinite { .. }));
        }
        let o = outcome(-3.0).checked();
        assert!(o.estimate.converged && o.issues.is_empty());
    }
}
