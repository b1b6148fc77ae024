//! Expectation Propagation (EP) for log P(f) = log ∫ N(z | 0, K) Πᵢ p(yᵢ | zᵢ) dz, with the
//! probit or the step likelihood.
//!
//! Each label gets a Gaussian site t̃ᵢ(z) ∝ exp(−½τ̃ᵢzᵢ² + ν̃ᵢzᵢ); the posterior is
//! q(z) = N(μ, Σ) with Σ = (K⁻¹ + S)⁻¹, S = diag(τ̃), μ = Σν̃. A site update forms the cavity
//! τ₋ = 1/Σᵢᵢ − τ̃ᵢ, ν₋ = μᵢ/Σᵢᵢ − ν̃ᵢ, matches the moments of the tilted distribution
//! ([`Likelihood::tilted_moments`]) and sets τ̃ᵢ += δ(1/σ̂² − 1/Σᵢᵢ), ν̃ᵢ += δ(μ̂/σ̂² − μᵢ/Σᵢᵢ)
//! (δ = [`EpConfig::damping`]; τ̃ᵢ is kept ≥ 2.2e-16, so site precisions stay positive).
//!
//! This is a re-implementation of GPy 1.15's `EP` (see `peers/gp/GPY_EP.md`): same start
//! (sites 0, Σ = K + 10⁻⁷I for the first sweep), same stopping rule (from the second sweep on,
//! mean((τ̃ − τ̃_prev)²) < ε and mean((ν̃ − ν̃_prev)²) < ε, ε = 10⁻⁶), same log Z_EP:
//!
//! log Z_EP = ½(−log|B| + ν̃ᵀΣν̃) + Σᵢ [log Ẑᵢ + ½log(1 + τ̃ᵢ/τ₋ᵢ) − ½ν̃ᵢ²/(τ₋ᵢ + τ̃ᵢ)
//! + ½ν₋ᵢ((τ̃ᵢ/τ₋ᵢ)ν₋ᵢ − 2ν̃ᵢ)/(τ₋ᵢ + τ̃ᵢ)],
//!
//! with B = I + S½KS½, Σ from the final sites, and Ẑ and the cavities of the last sweep
//! (GPy's ±½N·log 2π terms cancel and are left out; log Ẑ is used directly where GPy takes
//! log(exp(log Ẑ)), which differs only where exp underflows, below z ≈ −38).
//!
//! Two schedules:
//! * [`EpSchedule::Parallel`]: all sites from the same posterior, then the posterior is
//!   recomputed. Unlike GPy, which forms all of Σ (a Cholesky, a triangular solve with N
//!   right-hand sides and VᵀV: ⅓N³ + 2N³ flops), this needs only diag(Σ) and μ. With
//!   L = chol(B), M = L⁻¹ and S > 0, K = S^-½(B − I)S^-½ gives S½ΣS½ = I − B⁻¹, so
//!   τ̃ᵢΣᵢᵢ = 1 − (B⁻¹)ᵢᵢ = 1 − ‖Meᵢ‖²: a Cholesky plus the columns of M, by triangular
//!   solves 64 columns at a time (⅔N³ flops in all). The subtraction from 1 is done exactly:
//!   1 − ‖Meᵢ‖² = (Lᵢᵢ² − 1)/Lᵢᵢ² − Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² with
//!   Lᵢᵢ² − 1 = τ̃ᵢKᵢᵢ − Σⱼ₍ⱼ₌₀..ᵢ₎ Lᵢⱼ², every term proportional to τ̃ᵢ, so Σᵢᵢ keeps its
//!   relative precision however small τ̃ᵢ is (`Factor::sigma_diag` states the error bound;
//!   zero sites take GPy's formula). μ takes two triangular solves and no second product
//!   with K (`Factor::mean`). After the last sweep only log|B| and μ are needed: a Cholesky.
//!   With [`EpPrecision::Mixed`] (the default) the early posteriors are f32 factorisations
//!   (twice as fast; μ refined to f64 accuracy), while the next sweep's change is predicted
//!   (from the last two, EP converging about quadratically) to exceed ten times both ε and
//!   an upper estimate of what f32's errors in Σ do to the sites (`f32_risk`). A sweep fed
//!   by f32 whose change lands within that noise of ε is redone from the f64 posterior, so the
//!   stopping decision, and hence the number of sweeps, is GPy's; log Z is always f64. The
//!   early sweeps' errors are damped by the later f64 ones (a 10⁻³ relative error in the
//!   first posterior moves the N = 1500 log Z by 5·10⁻¹²).
//!   With [`EpConfig::par`] of two or more threads the Cholesky factorisations are faer's
//!   parallel ones, the blocks of columns of M are split between the threads in parts of
//!   equal cost (each column's sum is still formed by one thread, in the same order), and the
//!   kernel's own Cholesky check ([`EpConfig::check_psd`]) runs on one thread while the
//!   sweeps start on the other (`parallel_checking_alongside`): the first posterior's
//!   Cholesky then runs on one thread (always the first, so the result does not depend on
//!   timing), diag(Σ)'s parts are tasks any free thread takes, and a check that passes hands
//!   its n × n buffer to the f64 factor. An exactly symmetric row-major kernel is read as its
//!   column-major transpose, without a copy.
//! * [`EpSchedule::Sequential`]: sites in a seeded random order, each followed by the exact
//!   rank-1 update of Σ and μ (GPy's `parallel_updates=False`); the rank-1 updates are
//!   accumulated in blocks of [`SEQ_BLOCK`] and applied as one matrix product. The posterior is
//!   recomputed from the sites after every sweep, as GPy does.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatRef, Par};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::PriorError;
use crate::estimate::{Estimate, Method, check_kernel, cholesky_jitter, with_jitter};
use crate::likelihood::{Likelihood, labels_pm1};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpPrecision {
    /// All in f64: GPy's arithmetic.
    F64,
    /// The posteriors of the early sweeps in f32 (twice as fast), while the next sweep's change
    /// is predicted to exceed both ε and the f32 noise ten times over; the others, every sweep
    /// whose stopping decision f32 could change, and log Z in f64 (module docs). Same sweeps
    /// as [`EpPrecision::F64`]; log Z within 1e-12 nats of it on probit problems and 3e-10 on
    /// step ones in the tests.
    Mixed,
}

/// Settings of [`ep`]. [`EpConfig::default`] is GPy's algorithm (parallel, no damping,
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

/// Site (or cavity) natural parameters: precisions τ and natural means ν.
#[derive(Debug, Clone, PartialEq)]
pub struct Sites {
    /// Precisions.
    pub tau: Vec<f64>,
    /// Natural means (precision × mean).
    pub nu: Vec<f64>,
}

impl Sites {
    /// n sites at zero.
    pub fn zeros(n: usize) -> Self {
        Sites {
            tau: vec![0.0; n],
            nu: vec![0.0; n],
        }
    }
}

/// What [`ep`] returns.
#[derive(Debug, Clone)]
pub struct EpResult {
    /// log Z_EP in nats, with status.
    pub estimate: Estimate,
    /// The final sites (pass them as a warm start for a nearby function).
    pub sites: Sites,
    /// The cavities of the last sweep (as GPy uses them in log Z_EP).
    pub cavities: Sites,
    /// Factorisations done in f32 ([`EpPrecision::Mixed`]).
    pub f32_factorisations: usize,
    /// Sweeps fed by f32 marginals that came near the stopping rule and were redone from f64
    /// marginals ([`EpPrecision::Mixed`]).
    pub redone_sweeps: usize,
}

/// log Ẑ and the cavities of the latest update of every site.
#[derive(Clone)]
struct SweepRecord {
    log_zhat: Vec<f64>,
    cav: Sites,
}

impl SweepRecord {
    fn zeros(n: usize) -> Self {
        SweepRecord {
            log_zhat: vec![0.0; n],
            cav: Sites::zeros(n),
        }
    }
}

/// Runs EP on kernel K (n × n) and ±1 or 0/1 labels. `warm` starts from given sites (for
/// example those of a nearby function) instead of zero, as GPy does on a rerun.
pub fn ep(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let run = ep_unwarned(kernel, labels, likelihood, cfg, warm)?;
    warn_unconverged(&run);
    Ok(run)
}

/// [`ep`] without the warning when it does not converge.
fn ep_unwarned(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let y = labels_pm1(labels)?;
    let n = y.len();
    validate_config(cfg, warm, n)?;
    let exactly_symmetric = check_kernel(kernel, n)?;
    let contiguous;
    let k = if kernel.row_stride() == 1 {
        kernel
    } else if exactly_symmetric && kernel.col_stride() == 1 {
        // A symmetric row-major kernel (an .npy file's) is its own column-major transpose.
        kernel.transpose()
    } else {
        contiguous = kernel.to_owned();
        contiguous.as_ref()
    };
    let overlap = cfg.check_psd && cfg.schedule == EpSchedule::Parallel && threads(cfg.par) > 1;
    let (mut run, jitter) = if overlap {
        parallel_checking_alongside(k, &y, likelihood, cfg, warm)?
    } else {
        checking_first(k, &y, likelihood, cfg, warm)?
    };
    run.estimate.jitter = jitter;
    Ok(run)
}

/// Warns that `run` did not converge.
fn warn_unconverged(run: &EpResult) {
    if !run.estimate.converged {
        tracing::warn!(
            "EP did not converge in {} sweeps; log Z_EP is the last iterate (EP with damping, \
             for example 0.5, converges where undamped EP oscillates)",
            run.estimate.iterations
        );
    }
}

/// Either schedule after the kernel's Cholesky check (with `cfg.check_psd`), on K + jitter·I
/// when it needs a jitter. Returns the run and the jitter.
fn checking_first(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<(EpResult, f64), PriorError> {
    let (jitter, scratch) = if cfg.check_psd {
        let (jitter, scratch) = cholesky_jitter(k)?;
        (jitter, Some(scratch))
    } else {
        (0.0, None)
    };
    let jittered;
    let k = if jitter > 0.0 {
        jittered = with_jitter(k, jitter);
        jittered.as_ref()
    } else {
        k
    };
    let run = match cfg.schedule {
        EpSchedule::Parallel => parallel(k, &Spare::new(scratch), y, lik, cfg, warm)?,
        EpSchedule::Sequential => sequential(k, y, lik, cfg, warm)?,
    };
    Ok((run, jitter))
}

/// The parallel schedule with the kernel's Cholesky check ([`cholesky_jitter`]) on another
/// thread at the same time. The run on K stands when K needs no jitter (the usual case) and is
/// redone on K + jitter·I otherwise, so the result is the one checking first gives. A check
/// that passes leaves its n × n buffer to the run's f64 factor, which the early (f32) sweeps
/// do not need: one fresh n × n buffer fewer. Returns the run and the jitter.
fn parallel_checking_alongside(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<(EpResult, f64), PriorError> {
    let spare = Spare::alongside();
    let (check, run) = rayon::join(
        || {
            let (jitter, buf) = cholesky_jitter(k)?;
            if jitter == 0.0 {
                spare.put(buf);
                return Ok((jitter, None));
            }
            Ok((jitter, Some(buf)))
        },
        || parallel(k, &spare, y, lik, cfg, warm),
    );
    let (jitter, scratch) = check?;
    if jitter == 0.0 {
        return Ok((run?, 0.0));
    }
    let jittered = with_jitter(k, jitter);
    let spare = Spare::new(scratch);
    Ok((
        parallel(jittered.as_ref(), &spare, y, lik, cfg, warm)?,
        jitter,
    ))
}

/// An n × n f64 buffer one thread may leave for another: the kernel check's, for the f64
/// factor. Taking never waits: a run that needs the buffer before the check has finished
/// allocates its own.
struct Spare {
    slot: std::sync::Mutex<Option<Mat<f64>>>,
    /// Whether the kernel check runs alongside the run.
    alongside: bool,
}

impl Spare {
    /// A spare holding `buf`, with no check running alongside.
    fn new(buf: Option<Mat<f64>>) -> Self {
        Spare {
            slot: std::sync::Mutex::new(buf),
            alongside: false,
        }
    }

    /// An empty spare that the check running alongside will fill.
    fn alongside() -> Self {
        Spare {
            alongside: true,
            ..Spare::new(None)
        }
    }

    /// Leaves `buf` for a later [`Spare::take`].
    fn put(&self, buf: Mat<f64>) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(buf);
        }
    }

    /// The buffer, if one has been left.
    fn take(&self) -> Option<Mat<f64>> {
        self.slot.lock().ok()?.take()
    }
}

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

fn validate_config(cfg: &EpConfig, warm: Option<&Sites>, n: usize) -> Result<(), PriorError> {
    if !(cfg.damping > 0.0 && cfg.damping <= 1.0) {
        return Err(PriorError::InvalidInput(format!(
            "EP damping {} is outside (0, 1]",
            cfg.damping
        )));
    }
    if cfg.epsilon.is_nan() || cfg.epsilon <= 0.0 || cfg.max_sweeps == 0 {
        return Err(PriorError::InvalidInput(
            "EP needs epsilon > 0 and max_sweeps ≥ 1".to_string(),
        ));
    }
    if let Some(w) = warm {
        let ok = w.tau.len() == n && w.nu.len() == n;
        let valid =
            w.tau.iter().all(|t| t.is_finite() && *t >= 0.0) && w.nu.iter().all(|v| v.is_finite());
        if !ok || !valid {
            return Err(PriorError::InvalidInput(format!(
                "warm-start sites must be {n} finite values each, with precisions ≥ 0"
            )));
        }
    }
    Ok(())
}

/// Updates site i from the marginal N(μᵢ, Σᵢᵢ). Returns (Δτ, Δν), or `None` when the cavity
/// is not a proper Gaussian (then the site is left as it is).
#[allow(clippy::too_many_arguments)]
fn update_site(
    lik: Likelihood,
    y: f64,
    sigma_ii: f64,
    mu_i: f64,
    sites: &mut Sites,
    rec: &mut SweepRecord,
    i: usize,
    damping: f64,
) -> Option<(f64, f64)> {
    let cav_tau = 1.0 / sigma_ii - sites.tau[i];
    let cav_nu = mu_i / sigma_ii - sites.nu[i];
    if !(cav_tau > 0.0 && cav_tau.is_finite() && cav_nu.is_finite()) {
        return None;
    }
    let m = lik.tilted_moments(y, cav_tau, cav_nu);
    if !(m.var > 0.0 && m.mean.is_finite() && m.log_z.is_finite()) {
        return None;
    }
    let mut d_tau = damping * (1.0 / m.var - 1.0 / sigma_ii);
    let d_nu = damping * (m.mean / m.var - mu_i / sigma_ii);
    let old = sites.tau[i];
    sites.tau[i] = (old + d_tau).max(MIN_SITE_PRECISION);
    d_tau = sites.tau[i] - old;
    sites.nu[i] += d_nu;
    rec.log_zhat[i] = m.log_z;
    rec.cav.tau[i] = cav_tau;
    rec.cav.nu[i] = cav_nu;
    Some((d_tau, d_nu))
}

/// Mean squared difference of two vectors.
fn mean_sq_change(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64
}

/// log Z_EP from log|B|, ν̃ᵀΣν̃ and the last sweep's record (module docs).
fn log_z_ep(logdet_b: f64, nu_sigma_nu: f64, sites: &Sites, rec: &SweepRecord) -> f64 {
    let mut total = 0.5 * (nu_sigma_nu - logdet_b);
    for i in 0..sites.tau.len() {
        let (tt, nt) = (sites.tau[i], sites.nu[i]);
        let (tc, nc) = (rec.cav.tau[i], rec.cav.nu[i]);
        let s = tc + tt;
        total += rec.log_zhat[i] + 0.5 * (tt / tc).ln_1p() - 0.5 * nt * nt / s
            + 0.5 * nc * ((tt / tc) * nc - 2.0 * nt) / s;
    }
    total
}

/// A real type faer factorises in: f32 or f64.
trait Float: faer::traits::RealField + Copy {
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
}

impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
}

impl Float for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        f64::from(self)
    }
}

/// The factorisation L = chol(B), B = I + S½KS½, in f32 or f64, with buffers allocated
/// once. K itself (f64) is passed in.
struct Factor<T: Float> {
    /// B, overwritten by L in its lower triangle.
    l: Mat<T>,
    /// [`DIAG_BLOCK`] columns of M = L⁻¹ at a time.
    /// One n × [`DIAG_BLOCK`] workspace per thread for the columns of L⁻¹.
    blocks: Vec<Mat<T>>,
    /// Block-aligned column ranges of diag(Σ), one per thread, of about equal cost.
    parts: Vec<(usize, usize)>,
    /// Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² per column i of M = L⁻¹.
    tails: Vec<f64>,
    /// One column of workspace.
    x: Mat<T>,
    /// Per site: Lᵢᵢ² − 1 while diag(Σ) is formed, then the conditioning factor κᵢ of Σᵢᵢ.
    work: Vec<f64>,
    /// Sites whose Σᵢᵢ comes from K directly.
    direct: Vec<usize>,
    /// Vectors of workspace for the mean.
    vecs: [Vec<f64>; 5],
    mem: MemBuffer,
    par: Par,
}

impl<T: Float> Factor<T> {
    /// Buffers for n sites; `l`, when given, is an n × n buffer to reuse for B and L.
    fn new(n: usize, l: Option<Mat<T>>, par: Par) -> Self {
        let l = l
            .filter(|l| l.nrows() == n && l.ncols() == n)
            .unwrap_or_else(|| Mat::zeros(n, n));
        Factor {
            l,
            blocks: (0..tail_parts(par))
                .map(|_| Mat::zeros(n, DIAG_BLOCK.min(n)))
                .collect(),
            parts: balanced_parts(n, tail_parts(par)),
            tails: vec![0.0; n],
            x: Mat::zeros(n, 1),
            work: vec![0.0; n],
            direct: Vec::with_capacity(n),
            vecs: std::array::from_fn(|_| vec![0.0; n]),
            mem: MemBuffer::new(
                cholesky_in_place_scratch::<T>(n, par, Default::default()).or(
                    cholesky_in_place_scratch::<T>(n, Par::Seq, Default::default()),
                ),
            ),
            par,
        }
    }

    /// Runs the Cholesky factorisation (and the direct solves) on one thread (`alone`) or
    /// with the run's parallelism. faer's parallel factorisation synchronises its threads, so
    /// it would wait for a thread that is busy elsewhere; diag(Σ)'s parts stay tasks that any
    /// free thread takes.
    fn set_alone(&mut self, alone: bool, par: Par) {
        self.par = if alone { Par::Seq } else { par };
    }

    /// Forms B (rounded to T) from K and the site precisions' square roots `r` and
    /// factorises it; `false` when the Cholesky fails.
    fn factor(&mut self, k: MatRef<'_, f64>, r: &[f64]) -> bool {
        let n = r.len();
        for j in 0..n {
            let rj = r[j];
            let kc = column(k, j);
            let bc = self.l.col_as_slice_mut(j);
            for i in j..n {
                bc[i] = T::of(r[i] * rj * kc[i]);
            }
            bc[j] += T::of(1.0);
        }
        cholesky_in_place(
            self.l.as_mut(),
            LltRegularization::default(),
            self.par,
            MemStack::new(&mut self.mem),
            Default::default(),
        )
        .is_ok()
    }

    /// log|B| = 2 Σ log Lᵢᵢ.
    fn logdet(&self) -> f64 {
        (0..self.l.nrows())
            .map(|i| 2.0 * self.l[(i, i)].f64().ln())
            .sum()
    }

    /// μ = Σν̃ = Kν̃ − KS½x with x = B⁻¹S½Kν̃, given `kv` = Kν̃ and the site precisions τ̃.
    /// As KS½ = S^-½(B − I) and Bx = S½Kν̃, (KS½x)ᵢ = ((S½Kν̃)ᵢ − xᵢ)/√τ̃ᵢ, with no second
    /// product with K; both terms are proportional to √τ̃ᵢ (module docs), so the quotient
    /// keeps its precision, and a site with τ̃ᵢ below [`MIN_SITE_PRECISION`] takes row i of K
    /// instead. The solve is followed by `refine` steps of iterative refinement (residual
    /// S½Kν̃ − Bx in f64, with Bx = x + S½K(S½x)), which make an f32 factor's μ as accurate as
    /// an f64 one's.
    fn mean(
        &mut self,
        k: MatRef<'_, f64>,
        kv: &[f64],
        r: &[f64],
        tau: &[f64],
        refine: usize,
        mu: &mut [f64],
    ) {
        let n = r.len();
        let [b, x, resid, rx, krx] = &mut self.vecs;
        for i in 0..n {
            b[i] = r[i] * kv[i];
        }
        x.fill(0.0);
        resid.copy_from_slice(b);
        for step in 0..=refine {
            for (i, v) in resid.iter().enumerate() {
                self.x[(i, 0)] = T::of(*v);
            }
            Self::solve_column(&self.l, &mut self.x, Par::Seq);
            for (i, xi) in x.iter_mut().enumerate() {
                *xi += self.x[(i, 0)].f64();
            }
            if step == refine {
                break;
            }
            for i in 0..n {
                rx[i] = r[i] * x[i];
            }
            matvec(k, rx, krx, Par::Seq);
            for i in 0..n {
                resid[i] = b[i] - x[i] - r[i] * krx[i];
            }
        }
        for i in 0..n {
            mu[i] = if tau[i] >= MIN_SITE_PRECISION {
                kv[i] - (b[i] - x[i]) / r[i]
            } else {
                kv[i] - (0..n).map(|j| k[(i, j)] * r[j] * x[j]).sum::<f64>()
            };
        }
    }

    /// x ← B⁻¹x with B = LLᵀ.
    fn solve_column(l: &Mat<T>, x: &mut Mat<T>, par: Par) {
        solve_lower_triangular_in_place(l.as_ref(), x.as_mut(), par);
        solve_upper_triangular_in_place(l.as_ref().transpose(), x.as_mut(), par);
    }

    /// diag(Σ) into `sigma` (module docs), given K, its diagonal and the sites; leaves each
    /// site's conditioning factor κᵢ = max(Kᵢᵢ/Σᵢᵢ, dᵢ/(Lᵢᵢ²τ̃ᵢΣᵢᵢ)) in `work`.
    ///
    /// With dᵢ = Lᵢᵢ² − 1 = τ̃ᵢKᵢᵢ − Σⱼ₍ⱼ₌₀..ᵢ₎ Lᵢⱼ² and sᵢ = Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ²,
    /// τ̃ᵢΣᵢᵢ = 1 − (B⁻¹)ᵢᵢ = 1 − 1/Lᵢᵢ² − sᵢ = dᵢ/Lᵢᵢ² − sᵢ. Row i of L and column i of M
    /// below the diagonal are proportional to √τ̃ᵢ, so dᵢ, sᵢ and their difference keep their
    /// relative precision however small τ̃ᵢ is: 1 is never added to or subtracted from them.
    /// Both terms are nonnegative, and the difference loses a factor dᵢ/(Lᵢᵢ²τ̃ᵢΣᵢᵢ) ≤ Kᵢᵢ/Σᵢᵢ
    /// in relative precision, the conditioning of Σᵢᵢ itself (GPy's Kᵢᵢ − ‖L⁻¹S½Keᵢ‖² loses
    /// Kᵢᵢ/Σᵢᵢ). Sites with τ̃ᵢ below [`MIN_SITE_PRECISION`] (a warm start's zeros) have no
    /// quotient and take the direct formula, one triangular solve each.
    fn sigma_diag(
        &mut self,
        k: MatRef<'_, f64>,
        kdiag: &[f64],
        r: &[f64],
        tau: &[f64],
        sigma: &mut [f64],
    ) {
        let n = r.len();
        for (w, (t, kd)) in self.work.iter_mut().zip(tau.iter().zip(kdiag)) {
            *w = t * kd;
        }
        for j in 0..n {
            let below = &self.l.col_as_slice(j)[j + 1..];
            for (w, v) in self.work[j + 1..].iter_mut().zip(below) {
                *w -= v.f64() * v.f64();
            }
        }
        self.column_tails();
        self.direct.clear();
        for i in 0..n {
            let lii = self.l[(i, i)].f64();
            let lead = self.work[i] / (lii * lii);
            let q = lead - self.tails[i];
            if tau[i] >= MIN_SITE_PRECISION && q > 0.0 && q.is_finite() {
                sigma[i] = q / tau[i];
                self.work[i] = (lead / q).max(kdiag[i] / sigma[i]);
            } else {
                self.direct.push(i);
            }
        }
        let direct = std::mem::take(&mut self.direct);
        self.sigma_direct(k, &direct, kdiag, r, sigma);
        for &i in &direct {
            self.work[i] = kdiag[i] / sigma[i];
        }
        self.direct = direct;
    }

    /// `tails` ← Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² for every column i of M = L⁻¹, each thread taking one of
    /// `parts` (the blocks of columns are independent).
    fn column_tails(&mut self) {
        let l = self.l.as_ref();
        if self.blocks.len() == 1 {
            tails_of_columns(l, &mut self.blocks[0], 0, &mut self.tails);
            return;
        }
        rayon::scope(|s| {
            let mut rest = self.tails.as_mut_slice();
            for (buf, &(start, end)) in self.blocks.iter_mut().zip(&self.parts) {
                let (mine, tail) = rest.split_at_mut(end - start);
                rest = tail;
                s.spawn(move |_| tails_of_columns(l, buf, start, mine));
            }
        });
    }

    /// Σᵢᵢ = Kᵢᵢ − ‖L⁻¹S½Keᵢ‖² for the sites in `idx` (GPy's formula, one column each).
    fn sigma_direct(
        &self,
        k: MatRef<'_, f64>,
        idx: &[usize],
        kdiag: &[f64],
        r: &[f64],
        sigma: &mut [f64],
    ) {
        if idx.is_empty() {
            return;
        }
        let n = r.len();
        let mut y = Mat::<T>::from_fn(n, idx.len(), |i, c| T::of(r[i] * k[(i, idx[c])]));
        solve_lower_triangular_in_place(self.l.as_ref(), y.as_mut(), self.par);
        for (c, &i) in idx.iter().enumerate() {
            let q: f64 = y.col_as_slice(c).iter().map(|v| v.f64() * v.f64()).sum();
            sigma[i] = kdiag[i] - q;
        }
    }
}

/// Threads of `par` (1 for [`Par::Seq`]).
fn threads(par: Par) -> usize {
    par.degree().max(1)
}

/// Parts the columns of M = L⁻¹ are split into for diag(Σ): [`TAIL_PARTS_PER_THREAD`] per
/// thread, so that a thread that is busy elsewhere (the kernel check) leaves the others to
/// take more parts; 1 on one thread.
fn tail_parts(par: Par) -> usize {
    match threads(par) {
        1 => 1,
        t => t * TAIL_PARTS_PER_THREAD,
    }
}

/// `parts` block-aligned ranges of the n columns of M = L⁻¹ whose triangular solves cost
/// about the same (a block starting at column j costs about (n − j)² per column).
fn balanced_parts(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let starts: Vec<usize> = (0..n).step_by(DIAG_BLOCK).collect();
    let cost = |j: usize| {
        let m = (n - j) as f64;
        m * m * DIAG_BLOCK.min(n - j) as f64
    };
    let total: f64 = starts.iter().map(|&j| cost(j)).sum();
    let mut out = Vec::with_capacity(parts);
    let (mut begin, mut acc) = (0, 0.0);
    for &j in &starts {
        if out.len() + 1 < parts && acc >= total * (out.len() + 1) as f64 / parts as f64 {
            out.push((begin, j));
            begin = j;
        }
        acc += cost(j);
    }
    out.push((begin, n));
    out
}

/// `tails[c]` ← Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² for the columns i = start + c of M = L⁻¹, [`DIAG_BLOCK`] at
/// a time: each block by one triangular solve with the trailing block of L (M is zero above
/// its diagonal), in the workspace `buf`.
fn tails_of_columns<T: Float>(l: MatRef<'_, T>, buf: &mut Mat<T>, start: usize, tails: &mut [f64]) {
    let n = l.nrows();
    for (b, out) in tails.chunks_mut(DIAG_BLOCK).enumerate() {
        let j0 = start + b * DIAG_BLOCK;
        let (m, width) = (n - j0, out.len());
        let mut x = buf.as_mut().submatrix_mut(0, 0, m, width);
        x.fill(T::of(0.0));
        for c in 0..width {
            x[(c, c)] = T::of(1.0);
        }
        let trailing = l.submatrix(j0, j0, m, m);
        solve_lower_triangular_in_place(trailing, x.as_mut(), Par::Seq);
        for (c, sum) in out.iter_mut().enumerate() {
            *sum = column(x.as_ref(), c)[c + 1..]
                .iter()
                .map(|v| v.f64() * v.f64())
                .sum();
        }
    }
}

/// Column j of a column-major matrix as a slice.
fn column<T>(k: MatRef<'_, T>, j: usize) -> &[T] {
    k.col(j)
        .try_as_col_major()
        .expect("the columns of a faer Mat are contiguous")
        .as_slice()
}

/// K·v into `out` (f64).
fn matvec(k: MatRef<'_, f64>, v: &[f64], out: &mut [f64], par: Par) {
    let n = v.len();
    let vm = MatRef::from_column_major_slice(v, n, 1);
    let om = faer::MatMut::from_column_major_slice_mut(out, n, 1);
    matmul(om, Accum::Replace, k.as_ref(), vm, 1.0, par);
}

/// Columns of L⁻¹ formed at a time for diag(Σ).
const DIAG_BLOCK: usize = 64;
/// Parts of diag(Σ)'s columns per thread ([`tail_parts`]).
const TAIL_PARTS_PER_THREAD: usize = 3;
/// An upper estimate of the relative error of an f32 Σᵢᵢ per unit of its conditioning factor
/// κᵢ: 32 f32 unit round-offs ([`f32_risk`]).
const F32_SIGMA_ERROR: f64 = 32.0 * (f32::EPSILON as f64 / 2.0);
/// Iterative-refinement steps that make an f32 factor's μ as accurate as an f64 one's (one
/// step leaves 3·10⁻¹² relative on a kernel of condition number 3·10¹⁴; without it, the
/// step likelihood's N = 1500 run took two sweeps more than in f64).
const F32_MEAN_REFINEMENT: usize = 1;
/// An f32 posterior is used only while the next sweep's change is predicted to be this many
/// times larger than both ε and the f32 noise.
const F32_MARGIN: f64 = 10.0;

/// Where the marginals the next sweep reads come from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Feed {
    /// An f64 factorisation (or the prior): GPy's marginals, to round-off.
    F64,
    /// An f32 factorisation whose errors move the next sweep's sites by a mean squared amount
    /// of at most about `noise`.
    F32 { noise: f64 },
}

/// The f64 and (for mixed precision) f32 factorisations of one run.
struct Posterior<'s> {
    /// Made at the first f64 factorisation, in the spare buffer if there is one by then.
    f64: Option<Factor<f64>>,
    spare: &'s Spare,
    par: Par,
    f32: Option<Factor<f32>>,
    kdiag: Vec<f64>,
    r: Vec<f64>,
    kv: Vec<f64>,
    mu: Vec<f64>,
    sigma: Vec<f64>,
    /// The f32 noise the latest marginals would have had ([`f32_risk`]).
    noise: f64,
    /// Whether a factorisation has been made.
    factored: bool,
}

impl<'s> Posterior<'s> {
    /// Buffers for the kernel `k`; the buffer `spare` holds when the f64 factor is first
    /// needed, if n × n, becomes that factor's.
    fn new(k: MatRef<'_, f64>, spare: &'s Spare, precision: EpPrecision, par: Par) -> Self {
        let n = k.nrows();
        Posterior {
            f64: None,
            spare,
            par,
            f32: (precision == EpPrecision::Mixed).then(|| Factor::new(n, None, par)),
            kdiag: (0..n).map(|i| k[(i, i)]).collect(),
            r: vec![0.0; n],
            kv: vec![0.0; n],
            mu: vec![0.0; n],
            sigma: vec![0.0; n],
            noise: 0.0,
            factored: false,
        }
    }

    /// Whether the next factorisation should run on one thread: the first does while the
    /// kernel check runs alongside on the other (faer's parallel factorisations would wait
    /// for it). Decided by position, not by timing, so the result never depends on which
    /// finishes first.
    fn next_alone(&mut self) -> bool {
        let alone = !self.factored && self.spare.alongside;
        self.factored = true;
        alone
    }

    /// √τ̃ into `r` and Kν̃ into `kv`.
    fn prepare(&mut self, k: MatRef<'_, f64>, sites: &Sites) {
        for (r, t) in self.r.iter_mut().zip(&sites.tau) {
            *r = t.sqrt();
        }
        matvec(k, &sites.nu, &mut self.kv, Par::Seq);
    }

    /// Factorises B in f64 and sets μ; returns (log|B|, ν̃ᵀΣν̃ = ν̃ᵀμ).
    fn factor_f64(&mut self, k: MatRef<'_, f64>, sites: &Sites) -> Result<(f64, f64), PriorError> {
        self.prepare(k, sites);
        let alone = self.next_alone();
        let (n, spare, par) = (k.nrows(), self.spare, self.par);
        let f = self
            .f64
            .get_or_insert_with(|| Factor::new(n, spare.take(), par));
        f.set_alone(alone, par);
        if !f.factor(k, &self.r) {
            return Err(PriorError::NotPsd { jitter: 0.0 });
        }
        f.mean(k, &self.kv, &self.r, &sites.tau, 0, &mut self.mu);
        let nsn = sites.nu.iter().zip(&self.mu).map(|(a, b)| a * b).sum();
        Ok((f.logdet(), nsn))
    }

    /// diag(Σ) from the f64 factor of the latest [`Posterior::factor_f64`] (nothing before
    /// the first).
    fn diag_f64(&mut self, k: MatRef<'_, f64>, sites: &Sites) {
        let Some(f) = self.f64.as_mut() else {
            return;
        };
        f.sigma_diag(k, &self.kdiag, &self.r, &sites.tau, &mut self.sigma);
        self.noise = f32_risk(&f.work, &self.sigma, &self.mu);
    }

    /// μ (refined to f64 accuracy) and diag(Σ) from an f32 factorisation; `None` when there
    /// is none or its Cholesky fails (then the caller uses f64).
    fn feed_f32(&mut self, k: MatRef<'_, f64>, sites: &Sites) -> Option<Feed> {
        self.prepare(k, sites);
        let alone = self.next_alone();
        let f = self.f32.as_mut()?;
        f.set_alone(alone, self.par);
        if !f.factor(k, &self.r) {
            return None;
        }
        f.mean(
            k,
            &self.kv,
            &self.r,
            &sites.tau,
            F32_MEAN_REFINEMENT,
            &mut self.mu,
        );
        f.sigma_diag(k, &self.kdiag, &self.r, &sites.tau, &mut self.sigma);
        self.noise = f32_risk(&f.work, &self.sigma, &self.mu);
        Some(Feed::F32 { noise: self.noise })
    }
}

/// An upper estimate of the mean squared change that f32 errors in Σ make in the next sweep's
/// sites, from the conditioning factors κᵢ ([`Factor::sigma_diag`]), Σ's diagonal and μ.
///
/// An f32 factorisation computes Σᵢᵢ to a relative error eᵢ of about u₃₂κᵢ times a factor
/// measured at 2–3 (probit, the N = 1500 NNGP kernel) and up to 25 (step likelihood, whose
/// large site precisions make B ill-conditioned); [`F32_SIGMA_ERROR`] takes 32. μ is refined
/// to f64 accuracy. An error eᵢ moves the cavity precision by eᵢ/Σᵢᵢ and the cavity natural
/// mean by eᵢ|μᵢ|/Σᵢᵢ, and the moment-matched site by about as much again (the √Σᵢᵢ term and
/// the factor 4 on the squares).
fn f32_risk(kappa: &[f64], sigma: &[f64], mu: &[f64]) -> f64 {
    let (mut tau, mut nu) = (0.0, 0.0);
    for ((k, s), m) in kappa.iter().zip(sigma).zip(mu) {
        let e = F32_SIGMA_ERROR * k / s;
        tau += e * e;
        let en = e * (m.abs() + s.sqrt());
        nu += en * en;
    }
    4.0 * tau.max(nu) / sigma.len() as f64
}

/// The starting marginals: K + 10⁻⁷I and μ = 0 for zero sites, else the posterior of the
/// warm-start sites with the same jitter on Σ's diagonal (GPy's rerun).
fn start(
    post: &mut Posterior,
    k: MatRef<'_, f64>,
    warm: Option<&Sites>,
) -> Result<Sites, PriorError> {
    let n = k.nrows();
    match warm {
        None => {
            for i in 0..n {
                post.sigma[i] = post.kdiag[i] + FIRST_SWEEP_JITTER;
                post.mu[i] = 0.0;
            }
            Ok(Sites::zeros(n))
        }
        Some(w) => {
            post.factor_f64(k, w)?;
            post.diag_f64(k, w);
            for s in &mut post.sigma {
                *s += FIRST_SWEEP_JITTER;
            }
            Ok(w.clone())
        }
    }
}

/// The sites, the record of the latest sweep, and both as they were before it (kept so that
/// a sweep fed by f32 marginals can be redone from f64 ones).
struct SweepState {
    sites: Sites,
    rec: SweepRecord,
    before: (Sites, SweepRecord),
}

impl SweepState {
    fn new(sites: Sites) -> Self {
        let n = sites.tau.len();
        SweepState {
            before: (sites.clone(), SweepRecord::zeros(n)),
            sites,
            rec: SweepRecord::zeros(n),
        }
    }

    /// One parallel sweep: every site from the current marginals. Returns the change (the
    /// larger of the mean squared changes of τ̃ and ν̃).
    fn sweep(&mut self, post: &Posterior, y: &[f64], lik: Likelihood, damping: f64) -> f64 {
        self.before.0.clone_from(&self.sites);
        self.before.1.clone_from(&self.rec);
        for (i, &yi) in y.iter().enumerate() {
            let (s, m) = (post.sigma[i], post.mu[i]);
            update_site(lik, yi, s, m, &mut self.sites, &mut self.rec, i, damping);
        }
        let prev = &self.before.0;
        mean_sq_change(&self.sites.tau, &prev.tau).max(mean_sq_change(&self.sites.nu, &prev.nu))
    }

    /// Back to the state before the latest sweep.
    fn undo(&mut self) {
        self.sites.clone_from(&self.before.0);
        self.rec.clone_from(&self.before.1);
    }
}

/// Whether an f32-fed sweep's change could be on the other side of ε from GPy's: the f32
/// errors move the root mean square site change by at most √noise, so the stopping decision
/// can differ only when |√change − √ε| ≤ √noise.
fn decision_uncertain(change: f64, epsilon: f64, noise: f64) -> bool {
    (change.sqrt() - epsilon.sqrt()).abs() <= noise.sqrt()
}

/// The next sweep's change predicted from the last two (EP converges about quadratically near
/// its fixed point).
fn predicted_change(change: f64, prev_change: f64) -> f64 {
    if prev_change.is_finite() {
        change * (change / prev_change).min(1.0)
    } else {
        change
    }
}

/// The parallel schedule (module docs).
fn parallel(
    k: MatRef<'_, f64>,
    spare: &Spare,
    y: &[f64],
    lik: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let mut post = Posterior::new(k, spare, cfg.precision, cfg.par);
    let mut st = SweepState::new(start(&mut post, k, warm)?);
    let mut feed = Feed::F64;
    let (mut log_z, mut prev_change) = (f64::NAN, f64::INFINITY);
    let (mut converged, mut sweeps, mut n_f32, mut redone) = (false, 0, 0, 0);
    while sweeps < cfg.max_sweeps {
        sweeps += 1;
        let mut change = st.sweep(&post, y, lik, cfg.damping);
        if let Feed::F32 { noise } = feed
            && decision_uncertain(change, cfg.epsilon, noise)
        {
            st.undo();
            post.factor_f64(k, &st.sites)?;
            post.diag_f64(k, &st.sites);
            change = st.sweep(&post, y, lik, cfg.damping);
            redone += 1;
        }
        let sites_done = sweeps > 1 && change < cfg.epsilon;
        let last = sweeps == cfg.max_sweeps;
        let need_log_z = sites_done || last || cfg.log_z_tol.is_some();
        let predicted = predicted_change(change, prev_change);
        prev_change = change;
        if !need_log_z
            && predicted > F32_MARGIN * cfg.epsilon.max(post.noise)
            && let Some(f) = post.feed_f32(k, &st.sites)
        {
            feed = f;
            n_f32 += 1;
            continue;
        }
        let (logdet, nsn) = post.factor_f64(k, &st.sites)?;
        let prev_log_z = log_z;
        log_z = log_z_ep(logdet, nsn, &st.sites, &st.rec);
        let z_done = cfg
            .log_z_tol
            .is_none_or(|tol| (log_z - prev_log_z).abs() < tol);
        if sites_done && z_done {
            converged = true;
            break;
        }
        if !last {
            post.diag_f64(k, &st.sites);
            feed = Feed::F64;
        }
    }
    let mut out = finish(
        log_z,
        converged,
        sweeps,
        Method::Ep,
        lik,
        st.sites,
        st.rec,
        n_f32,
    );
    out.redone_sweeps = redone;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    log_z: f64,
    converged: bool,
    sweeps: usize,
    method: Method,
    lik: Likelihood,
    sites: Sites,
    rec: SweepRecord,
    n_f32: usize,
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
        f32_factorisations: n_f32,
        redone_sweeps: 0,
    }
}

/// The full posterior of the sites: Σ = K − VᵀV with V = L⁻¹S½K, μ = Σν̃; returns
/// (log|B|, ν̃ᵀμ).
fn full_posterior(
    k: MatRef<'_, f64>,
    sites: &Sites,
    sigma: &mut Mat<f64>,
    mu: &mut [f64],
    par: Par,
) -> Result<(f64, f64), PriorError> {
    let n = k.nrows();
    let r: Vec<f64> = sites.tau.iter().map(|t| t.sqrt()).collect();
    let mut b = Mat::<f64>::from_fn(n, n, |i, j| {
        r[i] * r[j] * k[(i, j)] + if i == j { 1.0 } else { 0.0 }
    });
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
    cholesky_in_place(
        b.as_mut(),
        LltRegularization::default(),
        par,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|_| PriorError::NotPsd { jitter: 0.0 })?;
    let mut v = Mat::<f64>::from_fn(n, n, |i, j| r[i] * k[(i, j)]);
    solve_lower_triangular_in_place(b.as_ref(), v.as_mut(), par);
    sigma.copy_from(k);
    matmul(
        sigma.as_mut(),
        Accum::Add,
        v.transpose(),
        v.as_ref(),
        -1.0,
        par,
    );
    matvec(sigma.as_ref(), &sites.nu, mu, par);
    let logdet = (0..n).map(|i| 2.0 * b[(i, i)].ln()).sum();
    let nsn = sites.nu.iter().zip(mu.iter()).map(|(a, b)| a * b).sum();
    Ok((logdet, nsn))
}

/// The sequential schedule (module docs).
fn sequential(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let n = y.len();
    let mut sigma = k.to_owned();
    let mut mu = vec![0.0; n];
    let mut sites = match warm {
        Some(w) => {
            full_posterior(k, w, &mut sigma, &mut mu, cfg.par)?;
            w.clone()
        }
        None => Sites::zeros(n),
    };
    for i in 0..n {
        sigma[(i, i)] += FIRST_SWEEP_JITTER;
    }
    let mut prev = sites.clone();
    let mut rec = SweepRecord::zeros(n);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut block = RankOneBlock::new(n, SEQ_BLOCK);
    let (mut log_z, mut converged, mut sweeps) = (f64::NAN, false, 0);
    while sweeps < cfg.max_sweeps {
        sweeps += 1;
        prev.tau.copy_from_slice(&sites.tau);
        prev.nu.copy_from_slice(&sites.nu);
        order.shuffle(&mut rng);
        for &i in &order {
            block.visit(i, lik, y[i], &mut sigma, &mut mu, &mut sites, &mut rec, cfg);
        }
        block.flush(&mut sigma, cfg.par);
        let change = mean_sq_change(&sites.tau, &prev.tau).max(mean_sq_change(&sites.nu, &prev.nu));
        let (logdet, nsn) = full_posterior(k, &sites, &mut sigma, &mut mu, cfg.par)?;
        let prev_log_z = log_z;
        log_z = log_z_ep(logdet, nsn, &sites, &rec);
        let z_done = cfg
            .log_z_tol
            .is_none_or(|tol| (log_z - prev_log_z).abs() < tol);
        if sweeps > 1 && change < cfg.epsilon && z_done {
            converged = true;
            break;
        }
    }
    Ok(finish(
        log_z,
        converged,
        sweeps,
        Method::EpSequential,
        lik,
        sites,
        rec,
        0,
    ))
}

/// Rank-1 updates Σ ← Σ − cᵢ sᵢsᵢᵀ (sᵢ = Σ's column i before the update) accumulated as
/// Σ = Σ₀ − U diag(c) Uᵀ and applied to Σ₀ every `cap` updates.
struct RankOneBlock {
    u: Mat<f64>,
    c: Vec<f64>,
    col: Vec<f64>,
    cap: usize,
}

impl RankOneBlock {
    fn new(n: usize, cap: usize) -> Self {
        RankOneBlock {
            u: Mat::zeros(n, cap),
            c: Vec::with_capacity(cap),
            col: vec![0.0; n],
            cap,
        }
    }

    /// Updates site i and the posterior (GPy's `_update_rank1`).
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        i: usize,
        lik: Likelihood,
        y: f64,
        sigma: &mut Mat<f64>,
        mu: &mut [f64],
        sites: &mut Sites,
        rec: &mut SweepRecord,
        cfg: &EpConfig,
    ) {
        self.current_column(i, sigma);
        let s_ii = self.col[i];
        let Some((d_tau, d_nu)) = update_site(lik, y, s_ii, mu[i], sites, rec, i, cfg.damping)
        else {
            return;
        };
        let ci = d_tau / (1.0 + d_tau * s_ii);
        let a = ci * (mu[i] + s_ii * d_nu) - d_nu;
        for (m, s) in mu.iter_mut().zip(&self.col) {
            *m -= a * s;
        }
        let kcol = self.c.len();
        self.u.col_as_slice_mut(kcol).copy_from_slice(&self.col);
        self.c.push(ci);
        if self.c.len() == self.cap {
            self.flush(sigma, cfg.par);
        }
    }

    /// Σ's current column i into `col`.
    fn current_column(&mut self, i: usize, sigma: &Mat<f64>) {
        self.col.copy_from_slice(sigma.col_as_slice(i));
        for (k, &ck) in self.c.iter().enumerate() {
            let uk = self.u.col_as_slice(k);
            let w = ck * uk[i];
            for (c, u) in self.col.iter_mut().zip(uk) {
                *c -= w * u;
            }
        }
    }

    /// Σ₀ ← Σ₀ − U diag(c) Uᵀ; empties the block.
    fn flush(&mut self, sigma: &mut Mat<f64>, par: Par) {
        let m = self.c.len();
        if m == 0 {
            return;
        }
        let n = self.u.nrows();
        let scaled = Mat::<f64>::from_fn(n, m, |i, k| self.u[(i, k)] * self.c[k]);
        let u = self.u.as_ref().subcols(0, m);
        matmul(
            sigma.as_mut(),
            Accum::Add,
            scaled.as_ref(),
            u.transpose(),
            -1.0,
            par,
        );
        self.c.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::linalg::solvers::Solve;
    use rand::RngExt;

    /// The NNGP kernel of the paper's FCN (two ReLU layers, σ_w² = 2, σ_b² = 1) on 240 seeded
    /// inputs in 8 dimensions, every sixth a copy of the one before moved by 10⁻⁵: eigenvalues
    /// from 2·10⁻¹² to 8·10², condition number 3·10¹⁴.
    fn ill_conditioned_kernel() -> Mat<f64> {
        let (n, d) = (240, 8);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut x = vec![0.0f64; n * d];
        for i in 0..n {
            for c in 0..d {
                x[i * d + c] = if i % 6 == 5 {
                    x[(i - 1) * d + c] + 1e-5 * rng.random_range(-1.0..1.0)
                } else {
                    rng.random_range(-1.0..1.0)
                };
            }
        }
        let spec = basin_nn::FcnSpec::paper(d);
        crate::kernel::nngp_f64(&spec, &x, n).expect("NNGP kernel")
    }

    /// Site precisions from 0 and 2.2e-16 up to 10⁶, cycled over the sites.
    fn mixed_precisions(n: usize) -> Vec<f64> {
        let levels = [
            0.0,
            MIN_SITE_PRECISION,
            1e-12,
            1e-8,
            1e-4,
            0.03,
            1.0,
            30.0,
            1e3,
            1e6,
        ];
        (0..n).map(|i| levels[(i * 7) % levels.len()]).collect()
    }

    /// diag(Σ) by the quotient ([`Factor::sigma_diag`]) and by GPy's formula
    /// Kᵢᵢ − ‖L⁻¹S½Keᵢ‖² for every site, and the conditioning factors.
    fn both_formulas(k: MatRef<'_, f64>, tau: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = k.nrows();
        let r: Vec<f64> = tau.iter().map(|t| t.sqrt()).collect();
        let kdiag: Vec<f64> = (0..n).map(|i| k[(i, i)]).collect();
        let mut f = Factor::<f64>::new(n, None, Par::Seq);
        assert!(f.factor(k, &r));
        let mut fast = vec![0.0; n];
        f.sigma_diag(k, &kdiag, &r, tau, &mut fast);
        let all: Vec<usize> = (0..n).collect();
        let mut direct = vec![0.0; n];
        f.sigma_direct(k, &all, &kdiag, &r, &mut direct);
        (fast, direct, f.work.clone())
    }

    /// The quotient and GPy's formula carry the same kind of error, about u·Kᵢᵢ per site
    /// (each loses Kᵢᵢ/Σᵢᵢ of relative precision to cancellation): they must agree to
    /// 10⁻¹³·Kᵢᵢ (measured 2·10⁻¹⁵), and to 10⁻¹⁰ relative where Kᵢᵢ/Σᵢᵢ < 10³ (measured
    /// 3·10⁻¹³), on a kernel of condition number 3·10¹⁴ with site precisions from 0 (GPy's
    /// formula is then used as it is) and 2.2·10⁻¹⁶ to 10⁶.
    #[test]
    fn sigma_diag_matches_the_direct_formula_on_an_ill_conditioned_kernel() {
        let k = ill_conditioned_kernel();
        let n = k.nrows();
        let tau = mixed_precisions(n);
        let (fast, direct, kappa) = both_formulas(k.as_ref(), &tau);
        let (mut worst_abs, mut worst_rel) = (0.0f64, 0.0f64);
        for i in 0..n {
            let (kii, d) = (k[(i, i)], (fast[i] - direct[i]).abs());
            assert!(
                fast[i] > 0.0 && fast[i] <= kii,
                "site {i}: Σᵢᵢ = {}",
                fast[i]
            );
            worst_abs = worst_abs.max(d / kii);
            if kii / direct[i] < 1e3 {
                worst_rel = worst_rel.max(d / direct[i]);
            }
            assert!(kappa[i] >= kii / fast[i] && kappa[i].is_finite());
            if tau[i] == 0.0 {
                assert_eq!(fast[i], direct[i], "a zero site takes the direct formula");
            }
        }
        eprintln!("max |Δ|/Kᵢᵢ = {worst_abs:e}, max relative |Δ| where K/Σ < 1e3: {worst_rel:e}");
        assert!(worst_abs < 1e-13, "max |Δ|/Kᵢᵢ = {worst_abs:e}");
        assert!(worst_rel < 1e-10, "max relative |Δ| = {worst_rel:e}");
    }

    /// With tiny site precisions 1 − (B⁻¹)ᵢᵢ ≈ τ̃ᵢKᵢᵢ: formed naively, 1 − ‖Meᵢ‖² would keep
    /// about four digits at τ̃ = 10⁻¹² (‖Meᵢ‖² ≈ 1 − 3·10⁻¹² carries an error ≥ 10⁻¹⁶); the
    /// exact subtraction keeps Σᵢᵢ to 10⁻¹⁰ of GPy's formula.
    #[test]
    fn sigma_diag_keeps_its_precision_at_tiny_site_precisions() {
        let k = ill_conditioned_kernel();
        let n = k.nrows();
        let tau: Vec<f64> = (0..n).map(|i| 1e-12 * (1.0 + (i % 5) as f64)).collect();
        let (fast, direct, _) = both_formulas(k.as_ref(), &tau);
        for i in 0..n {
            let rel = (fast[i] - direct[i]).abs() / direct[i];
            assert!(rel < 1e-10, "site {i}: relative |Δ| = {rel:e}");
        }
    }

    /// μ without a second product with K (`Factor::mean`) against GPy's K(ν̃ − S½B⁻¹S½Kν̃),
    /// with an independent solve: to 10⁻¹³ of Σⱼ|Kᵢⱼν̃ⱼ| (measured 10⁻¹⁶) on the
    /// ill-conditioned kernel with site precisions from 0 to 10⁶; and from an f32 factor with
    /// one refinement step, to 10⁻¹⁰ of it (measured 3·10⁻¹²).
    #[test]
    fn mean_matches_gpys_formula() {
        let k = ill_conditioned_kernel();
        let n = k.nrows();
        let tau = mixed_precisions(n);
        let r: Vec<f64> = tau.iter().map(|t| t.sqrt()).collect();
        let nu: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 / 5.0 - 1.0).collect();
        let mut kv = vec![0.0; n];
        matvec(k.as_ref(), &nu, &mut kv, Par::Seq);
        let b = Mat::<f64>::from_fn(n, n, |i, j| {
            r[i] * r[j] * k[(i, j)] + if i == j { 1.0 } else { 0.0 }
        });
        let rhs = Mat::<f64>::from_fn(n, 1, |i, _| r[i] * kv[i]);
        let x = b
            .llt(faer::Side::Lower)
            .expect("B is positive definite")
            .solve(&rhs);
        let alpha: Vec<f64> = (0..n).map(|i| nu[i] - r[i] * x[(i, 0)]).collect();
        let mut want = vec![0.0; n];
        matvec(k.as_ref(), &alpha, &mut want, Par::Seq);
        let scale: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| (k[(i, j)] * nu[j]).abs()).sum())
            .collect();
        let mut f = Factor::<f64>::new(n, None, Par::Seq);
        assert!(f.factor(k.as_ref(), &r));
        let mut mu = vec![0.0; n];
        f.mean(k.as_ref(), &kv, &r, &tau, 0, &mut mu);
        let mut g = Factor::<f32>::new(n, None, Par::Seq);
        assert!(g.factor(k.as_ref(), &r));
        let mut mu32 = vec![0.0; n];
        g.mean(k.as_ref(), &kv, &r, &tau, 1, &mut mu32);
        let worst = |m: &[f64]| {
            (0..n)
                .map(|i| (m[i] - want[i]).abs() / scale[i])
                .fold(0.0f64, f64::max)
        };
        let (e64, e32) = (worst(&mu), worst(&mu32));
        eprintln!("max |Δμᵢ|/Σⱼ|Kᵢⱼν̃ⱼ|: f64 {e64:e}, f32 refined {e32:e}");
        assert!(e64 < 1e-13, "f64: {e64:e}");
        assert!(e32 < 1e-10, "f32: {e32:e}");
    }
}
