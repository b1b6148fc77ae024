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
