//! What an EP run returns.

use serde::{Deserialize, Serialize};

use super::site::{Sites, SweepRecord};
use crate::estimate::{Estimate, Method};
use crate::likelihood::Likelihood;

/// What [`super::ep`] returns.
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

/// How EP's sweeps were computed (the parallel schedule's mixed precision; zeros otherwise)
/// and how it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpDiagnostics {
    /// Factorisations done in f32 ([`super::EpPrecision::Mixed`]).
    pub f32_factorisations: usize,
    /// Sweeps fed by f32 marginals that came near the stopping rule and were redone from f64
    /// marginals ([`super::EpPrecision::Mixed`]).
    pub redone_sweeps: usize,
    /// Whether EP stopped at its sites' rounding floor, with log Z settled, rather than by
    /// GPy's rule (`FloorWatch` in the `config` module).
    #[serde(default)]
    pub stopped_at_floor: bool,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
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
