//! EP that reaches its fixed point where undamped EP oscillates: undamped first, then damped
//! runs from the same start.

use faer::MatRef;

use super::config::EpConfig;
use super::result::EpResult;
use super::run::{ep_unwarned, warn_unconverged};
use super::site::Sites;
use crate::PriorError;
use crate::likelihood::Likelihood;

/// The dampings [`ep_to_fixed_point`] tries in turn after an undamped run that did not
/// converge.
pub const FALLBACK_DAMPINGS: [f64; 3] = [0.5, 0.25, 0.1];

/// The sweeps after which [`ep_to_fixed_point`] takes an undamped run that has not converged
/// to be oscillating, and damps it.
pub const UNDAMPED_SWEEPS: usize = 100;

/// EP that reaches its fixed point where undamped EP oscillates (as it does for the step
/// likelihood on the Boolean cube's kernel): `cfg` first, with at most [`UNDAMPED_SWEEPS`]
/// sweeps when it is undamped; then, while unconverged, each of [`FALLBACK_DAMPINGS`] from
/// the same start with `cfg.max_sweeps`. Damping changes the path, not the fixed points, so a
/// converged value is the value of every damping that converges. Returns the last run (its
/// `converged` says whether any converged) and the damping it used.
pub fn ep_to_fixed_point(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<(EpResult, f64), PriorError> {
    let first = EpConfig {
        max_sweeps: if cfg.damping == 1.0 {
            cfg.max_sweeps.min(UNDAMPED_SWEEPS)
        } else {
            cfg.max_sweeps
        },
        ..*cfg
    };
    let mut run = ep_unwarned(kernel, labels, likelihood, &first, warm)?;
    let mut damping = cfg.damping;
    for &d in FALLBACK_DAMPINGS.iter().filter(|&&d| d < cfg.damping) {
        if run.estimate.converged {
            break;
        }
        let damped = EpConfig { damping: d, ..*cfg };
        run = ep_unwarned(kernel, labels, likelihood, &damped, warm)?;
        damping = d;
    }
    warn_unconverged(&run);
    Ok((run, damping))
}
