//! The settings of the annealed SMC estimator: [`SmcConfig`] and its mover, [`SmcMover`].

use serde::{Deserialize, Serialize};

/// How the particles move at each level. The default is exact HMC: at N = 1500 on the MNIST
/// NNGP kernel it runs a replicate 2.5–3× faster than the slice moves with the same or a
/// smaller spread, and its probit checkpoint agrees with EP (`BENCHMARKS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SmcMover {
    /// Elliptical slice sampling of z on the ellipses of each level's EP approximation.
    #[serde(alias = "slice")]
    #[value(name = "slice")]
    EllipticalSlice,
    /// Exact HMC of the augmented u = z + sε, a Gaussian truncated to the orthant
    /// (Pakman–Paninski): no rejections however sharp the constraints.
    #[default]
    #[serde(alias = "hmc")]
    #[value(name = "hmc")]
    ExactHmc,
}

impl SmcMover {
    /// The name used on the command line and in reports: `slice` or `hmc`.
    pub fn name(self) -> &'static str {
        match self {
            SmcMover::EllipticalSlice => "slice",
            SmcMover::ExactHmc => "hmc",
        }
    }
}

/// Settings of the SMC estimator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SmcConfig {
    /// Particles per replicate (at least 2).
    pub particles: usize,
    /// The fewest sweeps after each resampling (at least 1): elliptical slice updates, or
    /// HMC trajectories, of every particle.
    pub moves: usize,
    /// The most sweeps at one level.
    pub max_moves: usize,
    /// Sweeps continue (up to `max_moves`) until the correlation over particles of their
    /// mixing statistic before and after is below this: a check that the moves have mixed
    /// (1: no check beyond a statistic that did not move at all).
    pub decorrelation: f64,
    /// The ESS fraction of each step's incremental weights, in (0, 1).
    pub ess_fraction: f64,
    /// Independent replicates (at least [`MIN_REPLICATES`](crate::smc::MIN_REPLICATES)); with a target, the first batch.
    pub replicates: usize,
    /// The most replicates when chasing `target_std_err`.
    pub max_replicates: usize,
    /// If set, add replicates until the standard error (nats) is at most this.
    pub target_std_err: Option<f64>,
    /// The seed (replicate r uses `derive_seed(seed, r)`).
    pub seed: u64,
    /// The most proposals of one slice update (the particle stays when reached).
    pub max_tries: usize,
    /// The most levels of one replicate.
    pub max_temperatures: usize,
    /// On the step likelihood's path, stop at s = 1 too, for the probit value as a
    /// cross-check.
    pub probit_checkpoint: bool,
    /// Slice-sample on the ellipses of the level's EP approximation instead of the prior's
    /// (module docs); without it the moves mix far more slowly.
    pub precondition: bool,
    /// Refit the EP approximation when β has grown by more than this factor since the last
    /// fit (1: at every level).
    pub refit_ratio: f64,
    /// The moves: exact HMC in the augmented space (default) or elliptical slice. Settings
    /// stored before this field existed were slice runs, and read back as such.
    #[serde(default = "legacy_mover")]
    pub mover: SmcMover,
    /// HMC: the most wall bounces of one trajectory (a trajectory that needs more leaves its
    /// particle in place and is counted as a cap hit).
    #[serde(default = "default_max_bounces")]
    pub max_bounces: usize,
    /// HMC: the time T of each trajectory, in (0, π]. Pakman & Paninski's π/2 makes one
    /// trajectory an independent draw along any direction that meets no wall; with the
    /// default schedule's closely spaced levels ([`SmcConfig::for_mover`]) the particles
    /// only need to follow the target, and π/4 per level costs half the bounces (the
    /// kernel's invariance test covers T uniform in [π/4, π/2]).
    #[serde(default = "default_trajectory_time")]
    pub trajectory_time: f64,
    /// Fix the levels before the replicates: a pilot replicate (its own seed, the same
    /// settings) chooses them from its particles' ESS, and every replicate then follows
    /// them, so that each Ẑ_r is exactly unbiased. The pilot's value is not used. Without
    /// it each replicate chooses its own levels from its own weights, which biases log Ẑ
    /// by an amount that grows with the number of levels (module docs).
    #[serde(default)]
    pub pilot_schedule: bool,
}

fn legacy_mover() -> SmcMover {
    SmcMover::EllipticalSlice
}

fn default_max_bounces() -> usize {
    SmcConfig::default().max_bounces
}

/// The trajectory time of settings stored before the field existed (π/2).
fn default_trajectory_time() -> f64 {
    std::f64::consts::FRAC_PI_2
}

impl Default for SmcConfig {
    /// [`SmcConfig::for_mover`] of the default mover, exact HMC.
    fn default() -> Self {
        SmcConfig::for_mover(SmcMover::default())
    }
}

impl SmcConfig {
    /// The settings tuned for `mover`.
    ///
    /// Exact HMC: many closely spaced levels (ESS fraction 0.97 per step) with one short
    /// trajectory (T = π/4) per particle per level and no per-level decorrelation rounds.
    /// For a path of thermodynamic length L, steps of ESS fraction e^(−σ²) take L/σ levels
    /// and add about σ² each to the variance of log Ẑ times P, so the variance falls like σ
    /// for the same number of levels' worth of moves, as long as the particles keep up with
    /// the target, which the probit checkpoint checks. At N = 1500 (the peers' MNIST NNGP
    /// kernel, 128 particles × 8 and the pilot) the replicates' log Ẑ spread 0.30 nats at
    /// 87–106 s each, where ESS ½ with 4 trajectories of π/2 per level spread 1.13 nats at
    /// 112–119 s (`BENCHMARKS.md`).
    ///
    /// Elliptical slice: ESS ½ per step and at least 4 sweeps per level, more until the
    /// particles' log likelihoods decorrelate (each level refits an EP approximation, so few
    /// levels are cheaper).
    pub fn for_mover(mover: SmcMover) -> Self {
        let hmc = SmcConfig {
            particles: 256,
            moves: 1,
            max_moves: 100,
            decorrelation: 1.0,
            ess_fraction: 0.97,
            replicates: 4,
            max_replicates: 64,
            target_std_err: None,
            seed: 0,
            max_tries: 200,
            max_temperatures: 10_000,
            probit_checkpoint: true,
            precondition: true,
            refit_ratio: 1.0,
            mover: SmcMover::ExactHmc,
            max_bounces: 100_000,
            trajectory_time: std::f64::consts::FRAC_PI_4,
            pilot_schedule: true,
        };
        match mover {
            SmcMover::ExactHmc => hmc,
            SmcMover::EllipticalSlice => SmcConfig {
                moves: 4,
                decorrelation: 0.1,
                ess_fraction: 0.5,
                pilot_schedule: false,
                mover,
                ..hmc
            },
        }
    }
}
