//! The one place where a [`Method`] picks its estimator: [`Estimators`] holds the settings of
//! every estimator and [`Estimators::estimate`] runs the one a method names, returning an
//! [`Outcome`] whose [`Diagnostics`] say which it was.

use faer::{MatRef, Par};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PriorError;
use crate::ep::{EpConfig, EpDiagnostics, EpPrecision, EpSchedule};
use crate::error::require;
use crate::estimate::{Method, Outcome};
use crate::estimator::Estimator;
use crate::laplace::LaplaceConfig;
use crate::likelihood::Likelihood;
use crate::smc::{SmcConfig, SmcDiagnostics, SmcMover};
use crate::tilting::{TiltingConfig, TiltingDiagnostics};

/// The settings of every estimator. [`Estimators::default`] has each one's defaults
/// ([`EpConfig::default`], GPy's, for EP; seed 0 for tilting and SMC).
#[derive(Debug, Clone, Copy, Default)]
pub struct Estimators {
    /// EP's settings; the schedule comes from the method (`ep` or `ep-sequential`).
    pub ep: EpConfig,
    /// The Laplace approximation's settings.
    pub laplace: LaplaceConfig,
    /// Minimax tilting's settings.
    pub tilting: TiltingConfig,
    /// Annealed SMC's settings.
    pub smc: SmcConfig,
}

/// Which estimator ran, with what it reports. It serialises as the method's fields: EP's
/// [`EpDiagnostics`], nothing for Laplace, [`crate::tilting::TiltingSummary`] for tilting and
/// [`crate::smc::SmcSummary`] for SMC.
#[derive(Debug, Clone, PartialEq)]
pub enum Diagnostics {
    /// EP (either schedule).
    Ep(EpDiagnostics),
    /// The Laplace approximation.
    Laplace,
    /// Minimax tilting.
    Tilting(TiltingDiagnostics),
    /// Annealed SMC.
    Smc(Box<SmcDiagnostics>),
}

impl Serialize for Diagnostics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Diagnostics::Ep(d) => d.serialize(s),
            Diagnostics::Laplace => ().serialize(s),
            Diagnostics::Tilting(d) => d.summary().serialize(s),
            Diagnostics::Smc(d) => d.summary().serialize(s),
        }
    }
}

impl Estimators {
    /// log P(f) of ±1 or 0/1 `labels` under N(0, K) with `likelihood`, by the estimator of
    /// `method` with these settings. `Method::Exact` is an error here: exact values exist
    /// only for special kernels ([`crate::equicorr`]). A non-finite log P(f) comes back with
    /// `converged: false` and [`crate::estimate::Issue::NotFinite`] ([`Outcome::checked`]).
    pub fn estimate(
        &self,
        method: Method,
        kernel: MatRef<'_, f64>,
        labels: &[f64],
        likelihood: Likelihood,
    ) -> Result<Outcome<Diagnostics>, PriorError> {
        let (k, y, lik) = (kernel, labels, likelihood);
        Ok(match method {
            Method::Ep => self
                .ep_with(EpSchedule::Parallel)
                .estimate(k, y, lik)?
                .map(Diagnostics::Ep),
            Method::EpSequential => self
                .ep_with(EpSchedule::Sequential)
                .estimate(k, y, lik)?
                .map(Diagnostics::Ep),
            Method::Laplace => self
                .laplace
                .estimate(k, y, lik)?
                .map(|()| Diagnostics::Laplace),
            Method::Tilting => self.tilting.estimate(k, y, lik)?.map(Diagnostics::Tilting),
            Method::Smc => self
                .smc
                .estimate(k, y, lik)?
                .map(|d| Diagnostics::Smc(Box::new(d))),
            Method::Exact => return Err(PriorError::NoExactMethod),
        }
        .checked())
    }

    /// EP's settings with `schedule`.
    fn ep_with(&self, schedule: EpSchedule) -> EpConfig {
        EpConfig {
            schedule,
            ..self.ep
        }
    }
}

/// The settings of every estimator as a user gives them: `basin prior`'s flags, and
/// `basin.log_prior`'s keyword options in Python (by these names, unknown ones refused).
/// [`EstimatorOptions::default`] has the flags' defaults; [`EstimatorOptions::estimators`]
/// turns them into [`Estimators`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EstimatorOptions {
    /// EP's stopping threshold on the mean squared site changes (GPy's epsilon).
    pub epsilon: f64,
    /// EP's damping in (0, 1] (1 = none).
    pub damping: f64,
    /// The most EP sweeps, or Laplace Newton steps.
    pub max_sweeps: usize,
    /// The seed of ep-sequential's site order and of tilting's and smc's samplers.
    pub seed: u64,
    /// Tilting's importance samples (with `target_std_err`, the first batch).
    pub samples: usize,
    /// Tilting and smc draw until the standard error (nats) is at most this.
    pub target_std_err: Option<f64>,
    /// The most samples tilting draws when chasing `target_std_err`.
    pub max_samples: usize,
    /// Particles of each smc replicate.
    pub particles: usize,
    /// Independent smc replicates (with `target_std_err`, the first batch).
    pub replicates: usize,
    /// The most smc replicates when chasing `target_std_err`.
    pub max_replicates: usize,
    /// The fewest sweeps per smc level (default: the mover's).
    pub moves: Option<usize>,
    /// How smc moves its particles: `hmc` or `slice`.
    #[serde(deserialize_with = "value_enum")]
    pub mover: SmcMover,
    /// EP's arithmetic: `mixed` or `f64`.
    #[serde(deserialize_with = "value_enum")]
    pub precision: EpPrecision,
    /// Threads for EP's dense algebra (default: every CPU; the value is the same for every
    /// count up to round-off).
    pub threads: Option<usize>,
}

impl Default for EstimatorOptions {
    fn default() -> Self {
        let smc = SmcConfig::default();
        Self {
            epsilon: 1e-6,
            damping: 1.0,
            max_sweeps: 1000,
            seed: 0,
            samples: 10_240,
            target_std_err: None,
            max_samples: 1_048_576,
            particles: smc.particles,
            replicates: smc.replicates,
            max_replicates: smc.max_replicates,
            moves: None,
            mover: smc.mover,
            precision: EpPrecision::Mixed,
            threads: None,
        }
    }
}

/// An enum by the name its command-line flag takes (`hmc`, `slice`, `mixed`, `f64`, …).
fn value_enum<'de, D: Deserializer<'de>, T: clap::ValueEnum>(d: D) -> Result<T, D::Error> {
    let name = String::deserialize(d)?;
    T::from_str(&name, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        serde::de::Error::custom(format!(
            "unknown value {name:?}; expected one of {}",
            names.join(", ")
        ))
    })
}

impl EstimatorOptions {
    /// Every estimator's settings from these options. Errors: zero threads.
    pub fn estimators(&self) -> Result<Estimators, PriorError> {
        let every_cpu = || std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = self.threads.unwrap_or_else(every_cpu);
        require(threads >= 1, "EP", "threads", "≥ 1", threads as f64)?;
        let tuned = SmcConfig::for_mover(self.mover);
        let moves = self.moves.unwrap_or(tuned.moves);
        Ok(Estimators {
            ep: EpConfig {
                epsilon: self.epsilon,
                damping: self.damping,
                max_sweeps: self.max_sweeps,
                seed: self.seed,
                precision: self.precision,
                par: if threads == 1 {
                    Par::Seq
                } else {
                    Par::rayon(threads)
                },
                ..EpConfig::default()
            },
            laplace: LaplaceConfig {
                max_iter: self.max_sweeps,
                ..LaplaceConfig::default()
            },
            tilting: TiltingConfig {
                samples: self.samples,
                target_std_err: self.target_std_err,
                max_samples: self.max_samples.max(self.samples),
                seed: self.seed,
                ..TiltingConfig::default()
            },
            smc: SmcConfig {
                particles: self.particles,
                replicates: self.replicates,
                max_replicates: self.max_replicates.max(self.replicates),
                moves,
                max_moves: tuned.max_moves.max(moves),
                target_std_err: self.target_std_err,
                seed: self.seed,
                ..tuned
            },
        })
    }
}
