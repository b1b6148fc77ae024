//! The one place where a [`Method`] picks its estimator: [`Estimators`] holds the settings of
//! every estimator and [`Estimators::estimate`] runs the one a method names, returning an
//! [`Outcome`] whose [`Diagnostics`] say which it was.

use faer::MatRef;
use serde::{Serialize, Serializer};

use crate::PriorError;
use crate::ep::{EpConfig, EpDiagnostics, EpSchedule};
use crate::estimate::{Method, Outcome};
use crate::estimator::Estimator;
use crate::laplace::LaplaceConfig;
use crate::likelihood::Likelihood;
use crate::smc::{SmcConfig, SmcDiagnostics};
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
