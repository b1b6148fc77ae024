//! EP's settings and constants.

use faer::Par;

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
    /// The posteriors of the early sweeps in f32 (twice as fast) while the next sweep's change
    /// is predicted to exceed ε and the f32 noise tenfold; the sweeps whose stopping decision
    /// f32 could change, and log Z, in f64: the same sweeps as f64, and log Z within 1e-12
    /// nats of it on probit problems and 3e-10 on step ones in the tests.
    Mixed,
}

/// Settings of [`super::ep`]. [`EpConfig::default`] is GPy's algorithm (parallel, no damping,
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

/// A sweep whose change is below this, after one that also was, is checked for the rounding
/// floor ([`FloorWatch`]).
pub const FLOOR_CHANGE: f64 = 1e-3;

/// The consecutive sweeps, each with change below [`FLOOR_CHANGE`], whose log Z must agree
/// for a stop at the rounding floor.
pub const FLOOR_SWEEPS: usize = 5;

/// The agreement those sweeps' log Z need: max(this, [`FLOOR_LOG_Z_REL`] · |log Z|) nats.
pub const FLOOR_LOG_Z_ABS: f64 = 1e-6;

/// The relative part of the agreement ([`FLOOR_LOG_Z_ABS`]).
pub const FLOOR_LOG_Z_REL: f64 = 1e-9;

/// The second stopping rule: EP has reached the rounding floor of its sites. Where a kernel
/// is nearly singular, some site precisions grow to 10⁶ and more, and their f64 round-off
/// keeps GPy's mean squared change at 10⁻⁵…10⁻⁶ for ever while log Z has stopped moving (on
/// a ResNet's empirical kernel, N = 1500: the change sat at 5·10⁻⁶ for 1,000 sweeps while
/// log Z stayed within 3·10⁻⁷ nats). The rule stops when [`FLOOR_SWEEPS`] consecutive sweeps,
/// each with change below [`FLOOR_CHANGE`], have log Z within [`FLOOR_LOG_Z_ABS`] nats (or
/// [`FLOOR_LOG_Z_REL`] relative) of each other. An oscillating or drifting run moves log Z
/// by more than that and is not stopped by it.
#[derive(Debug, Clone, Default)]
pub(super) struct FloorWatch {
    /// The log Z of the latest sweeps below [`FLOOR_CHANGE`], oldest first: `len` of them.
    recent: [f64; FLOOR_SWEEPS],
    len: usize,
    /// The change of the previous sweep.
    prev_change: Option<f64>,
}

impl FloorWatch {
    /// Whether the sweep with this change should have its log Z recorded: it and the one
    /// before are below [`FLOOR_CHANGE`]. A sweep at or above it clears the record.
    pub(super) fn wants(&mut self, change: f64) -> bool {
        let both = change < FLOOR_CHANGE && self.prev_change.is_some_and(|c| c < FLOOR_CHANGE);
        self.prev_change = Some(change);
        if !both {
            self.len = 0;
        }
        both
    }

    /// Records a wanted sweep's log Z; true when the last [`FLOOR_SWEEPS`] agree.
    pub(super) fn at_floor(&mut self, log_z: f64) -> bool {
        if self.len == FLOOR_SWEEPS {
            self.recent.copy_within(1.., 0);
            self.len -= 1;
        }
        self.recent[self.len] = log_z;
        self.len += 1;
        let window = &self.recent[..self.len];
        let (lo, hi) = window
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let tol = FLOOR_LOG_Z_ABS.max(FLOOR_LOG_Z_REL * log_z.abs());
        self.len == FLOOR_SWEEPS && window.iter().all(|v| v.is_finite()) && hi - lo < tol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds (change, log Z) pairs; the sweep (1-based) at which the floor rule stops.
    fn stop_at(sweeps: impl Iterator<Item = (f64, f64)>) -> Option<usize> {
        let mut w = FloorWatch::default();
        sweeps
            .enumerate()
            .find(|&(_, (change, log_z))| w.wants(change) && w.at_floor(log_z))
            .map(|(i, _)| i + 1)
    }

    #[test]
    fn a_settled_log_z_stops_after_the_window() {
        let settled = (0..20).map(|i| (5e-6, -978.25 + 1e-7 * (i % 3) as f64));
        // Sweep 1 has no predecessor below FLOOR_CHANGE, so sweeps 2..=6 fill the window.
        assert_eq!(stop_at(settled), Some(FLOOR_SWEEPS + 1));
    }

    #[test]
    fn a_drifting_or_oscillating_log_z_does_not_stop() {
        assert_eq!(
            stop_at((0..50).map(|i| (5e-6, -978.0 + 1e-6 * i as f64))),
            None
        );
        let oscillating = (0..50).map(|i| (5e-6, -978.0 + 1e-5 * (i % 2) as f64));
        assert_eq!(stop_at(oscillating), None);
    }

    #[test]
    fn a_large_change_clears_the_window() {
        let mut sweeps: Vec<(f64, f64)> = (0..4).map(|_| (5e-6, -10.0)).collect();
        sweeps.push((2e-3, -10.0));
        sweeps.extend((0..5).map(|_| (5e-6, -10.0)));
        // After the large change at sweep 5, sweeps 6 (first below) to 11 are needed.
        sweeps.extend((0..2).map(|_| (5e-6, -10.0)));
        assert_eq!(stop_at(sweeps.into_iter()), Some(11));
    }

    #[test]
    fn a_non_finite_log_z_never_stops() {
        assert_eq!(stop_at((0..20).map(|_| (5e-6, f64::NAN))), None);
        let one_nan = (0..20).map(|i| (5e-6, if i % 4 == 0 { f64::NAN } else { -3.0 }));
        assert_eq!(stop_at(one_nan), None);
        assert_eq!(stop_at((0..20).map(|_| (5e-6, f64::NEG_INFINITY))), None);
    }
}
