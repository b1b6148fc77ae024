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
//!   recomputed. Unlike GPy, which forms all of Σ (a Cholesky plus ≈ 3N³ more flops), this
//!   needs only diag(Σ) and μ: with L = chol(B) and M = L⁻¹, S½ΣS½ = I − B⁻¹, so
//!   Σᵢᵢ = (1 − ‖M eᵢ‖²)/τ̃ᵢ, a Cholesky plus a triangular inverse (⅔N³ flops). Where
//!   1 − ‖M eᵢ‖² is small (tiny τ̃ᵢ, where that quotient would cancel) Σᵢᵢ = Kᵢᵢ − ‖L⁻¹S½Keᵢ‖²
//!   instead, for those columns only. After the last sweep only log|B| and μ are needed: a
//!   Cholesky. With [`EpPrecision::Mixed`], the early factorisations are in f32 (twice as
//!   fast) while the sites still move by much more than ε; the sweep whose change meets the
//!   stopping rule always starts from an f64 posterior, and log Z is always in f64.
//! * [`EpSchedule::Sequential`]: sites in a seeded random order, each followed by the exact
//!   rank-1 update of Σ and μ (GPy's `parallel_updates=False`); the rank-1 updates are
//!   accumulated in blocks of [`SEQ_BLOCK`] and applied as one matrix product. The posterior is
//!   recomputed from the sites after every sweep, as GPy does.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatRef, Par};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::PriorError;
use crate::estimate::{Estimate, Method, checked_kernel};
use crate::likelihood::{Likelihood, labels_pm1};

/// The smallest site precision (GPy: `np.finfo(float).eps`).
pub const MIN_SITE_PRECISION: f64 = f64::EPSILON;
/// The jitter GPy adds to Σ's diagonal before the first sweep.
pub const FIRST_SWEEP_JITTER: f64 = 1e-7;
/// Rank-1 updates accumulated before they are applied to Σ (sequential schedule).
pub const SEQ_BLOCK: usize = 48;
/// Below this value of τ̃ᵢΣᵢᵢ = 1 − (B⁻¹)ᵢᵢ the f64 path computes Σᵢᵢ from K directly.
const FALLBACK_F64: f64 = 1e-3;
/// The same threshold for f32 factorisations.
const FALLBACK_F32: f64 = 3e-2;

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
    /// All in f64.
    F64,
    /// f32 while the sites move by much more than ε; the final sweeps and log Z in f64.
    Mixed,
}

/// Settings of [`ep`]. [`EpConfig::default`] is GPy's: parallel, no damping, ε = 10⁻⁶, no
/// log Z criterion.
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
            precision: EpPrecision::F64,
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
}

/// log Ẑ and the cavities of the latest update of every site.
struct SweepRecord {
    log_zhat: Vec<f64>,
    cav: Sites,
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
    let y = labels_pm1(labels)?;
    let n = y.len();
    validate_config(cfg, warm, n)?;
    let (k, jitter) = checked_kernel(kernel, n, cfg.check_psd)?;
    let mut run = match cfg.schedule {
        EpSchedule::Parallel => parallel(&k, &y, likelihood, cfg, warm)?,
        EpSchedule::Sequential => sequential(&k, &y, likelihood, cfg, warm)?,
    };
    run.estimate.jitter = jitter;
    if !run.estimate.converged {
        tracing::warn!(
            "EP did not converge in {} sweeps; log Z_EP is the last iterate",
            cfg.max_sweeps
        );
    }
    Ok(run)
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

/// The factorisation L = chol(B), B = I + S½KS½, and M = L⁻¹, in f32 or f64, with buffers
/// allocated once.
struct Factor<T: Float> {
    /// K in this precision.
    k: Mat<T>,
    /// B, overwritten by L in its lower triangle.
    l: Mat<T>,
    /// L⁻¹ (lower triangle; the upper stays 0).
    m: Mat<T>,
    /// One column of workspace.
    x: Mat<T>,
    mem: MemBuffer,
    par: Par,
}

impl<T: Float> Factor<T> {
    fn new(k: &Mat<f64>, par: Par) -> Self {
        let n = k.nrows();
        Factor {
            k: Mat::from_fn(n, n, |i, j| T::of(k[(i, j)])),
            l: Mat::zeros(n, n),
            m: Mat::zeros(n, n),
            x: Mat::zeros(n, 1),
            mem: MemBuffer::new(cholesky_in_place_scratch::<T>(n, par, Default::default())),
            par,
        }
    }

    /// Forms B from the site precisions' square roots `r` and factorises it.
    fn factor(&mut self, r: &[f64]) -> Result<(), PriorError> {
        let n = r.len();
        for j in 0..n {
            let rj = r[j];
            let kc = self.k.col_as_slice(j);
            let bc = self.l.col_as_slice_mut(j);
            for i in j..n {
                bc[i] = T::of(r[i] * rj) * kc[i];
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
        .map(|_| ())
        .map_err(|_| PriorError::NotPsd { jitter: 0.0 })
    }

    /// log|B| = 2 Σ log Lᵢᵢ.
    fn logdet(&self) -> f64 {
        (0..self.l.nrows())
            .map(|i| 2.0 * self.l[(i, i)].f64().ln())
            .sum()
    }

    /// x ← B⁻¹x for the workspace column.
    fn solve_x(&mut self) {
        let l = self.l.as_ref();
        solve_lower_triangular_in_place(l, self.x.as_mut(), self.par);
        solve_upper_triangular_in_place(l.transpose(), self.x.as_mut(), self.par);
    }

    /// α = ν̃ − S½B⁻¹S½Kν̃ given `kv` = Kν̃; then μ = Kα (f64) into `mu`.
    fn mean(&mut self, k: &Mat<f64>, kv: &[f64], r: &[f64], nu: &[f64], mu: &mut [f64]) {
        let n = r.len();
        for i in 0..n {
            self.x[(i, 0)] = T::of(r[i] * kv[i]);
        }
        self.solve_x();
        let alpha = Mat::<f64>::from_fn(n, 1, |i, _| nu[i] - r[i] * self.x[(i, 0)].f64());
        let mut out = Mat::<f64>::zeros(n, 1);
        matmul(
            out.as_mut(),
            Accum::Replace,
            k,
            alpha.as_ref(),
            1.0,
            self.par,
        );
        for (i, m) in mu.iter_mut().enumerate() {
            *m = out[(i, 0)];
        }
    }

    /// diag(Σ) into `sigma` (module docs), given K's diagonal and the sites.
    fn sigma_diag(&mut self, kdiag: &[f64], r: &[f64], tau: &[f64], sigma: &mut [f64]) {
        let n = r.len();
        invert_lower_triangular(self.m.as_mut(), self.l.as_ref(), self.par);
        let threshold = if std::mem::size_of::<T>() == 4 {
            FALLBACK_F32
        } else {
            FALLBACK_F64
        };
        let mut fallback = Vec::new();
        for i in 0..n {
            let col = &self.m.col_as_slice(i)[i..];
            let d: f64 = col.iter().map(|v| v.f64() * v.f64()).sum();
            let q = 1.0 - d;
            if q >= threshold {
                sigma[i] = q / tau[i];
            } else {
                fallback.push(i);
            }
        }
        self.sigma_direct(&fallback, kdiag, r, sigma);
    }

    /// Σᵢᵢ = Kᵢᵢ − ‖L⁻¹S½Keᵢ‖² for the sites in `idx`.
    fn sigma_direct(&self, idx: &[usize], kdiag: &[f64], r: &[f64], sigma: &mut [f64]) {
        if idx.is_empty() {
            return;
        }
        let n = r.len();
        let mut y = Mat::<T>::from_fn(n, idx.len(), |i, c| T::of(r[i]) * self.k[(i, idx[c])]);
        solve_lower_triangular_in_place(self.l.as_ref(), y.as_mut(), self.par);
        for (c, &i) in idx.iter().enumerate() {
            let q: f64 = y.col_as_slice(c).iter().map(|v| v.f64() * v.f64()).sum();
            sigma[i] = kdiag[i] - q;
        }
    }
}

/// K·v into `out` (f64).
fn matvec(k: &Mat<f64>, v: &[f64], out: &mut [f64], par: Par) {
    let n = v.len();
    let vm = MatRef::from_column_major_slice(v, n, 1);
    let om = faer::MatMut::from_column_major_slice_mut(out, n, 1);
    matmul(om, Accum::Replace, k.as_ref(), vm, 1.0, par);
}

/// The f64 and (for mixed precision) f32 factorisations of one run.
struct Posterior {
    f64: Factor<f64>,
    f32: Option<Factor<f32>>,
    kdiag: Vec<f64>,
    r: Vec<f64>,
    kv: Vec<f64>,
    mu: Vec<f64>,
    sigma: Vec<f64>,
}

impl Posterior {
    fn new(k: &Mat<f64>, precision: EpPrecision, par: Par) -> Self {
        let n = k.nrows();
        Posterior {
            f64: Factor::new(k, par),
            f32: (precision == EpPrecision::Mixed).then(|| Factor::new(k, par)),
            kdiag: (0..n).map(|i| k[(i, i)]).collect(),
            r: vec![0.0; n],
            kv: vec![0.0; n],
            mu: vec![0.0; n],
            sigma: vec![0.0; n],
        }
    }

    /// Factorises B in f64 and sets μ; returns (log|B|, ν̃ᵀΣν̃ = ν̃ᵀμ).
    fn factor_f64(&mut self, k: &Mat<f64>, sites: &Sites) -> Result<(f64, f64), PriorError> {
        for (r, t) in self.r.iter_mut().zip(&sites.tau) {
            *r = t.sqrt();
        }
        matvec(k, &sites.nu, &mut self.kv, self.f64.par);
        self.f64.factor(&self.r)?;
        self.f64.mean(k, &self.kv, &self.r, &sites.nu, &mut self.mu);
        let nsn = sites.nu.iter().zip(&self.mu).map(|(a, b)| a * b).sum();
        Ok((self.f64.logdet(), nsn))
    }

    /// diag(Σ) from the f64 factor of the latest [`Posterior::factor_f64`].
    fn diag_f64(&mut self, sites: &Sites) {
        self.f64
            .sigma_diag(&self.kdiag, &self.r, &sites.tau, &mut self.sigma);
    }

    /// μ and diag(Σ) from an f32 factorisation.
    fn full_f32(&mut self, k: &Mat<f64>, sites: &Sites) -> Result<(), PriorError> {
        let f = self
            .f32
            .as_mut()
            .expect("mixed precision allocates the f32 factor");
        for (r, t) in self.r.iter_mut().zip(&sites.tau) {
            *r = t.sqrt();
        }
        matvec(k, &sites.nu, &mut self.kv, f.par);
        f.factor(&self.r)?;
        f.mean(k, &self.kv, &self.r, &sites.nu, &mut self.mu);
        f.sigma_diag(&self.kdiag, &self.r, &sites.tau, &mut self.sigma);
        Ok(())
    }
}

/// The starting marginals: K + 10⁻⁷I and μ = 0 for zero sites, else the posterior of the
/// warm-start sites with the same jitter on Σ's diagonal (GPy's rerun).
fn start(post: &mut Posterior, k: &Mat<f64>, warm: Option<&Sites>) -> Result<Sites, PriorError> {
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
            post.diag_f64(w);
            for s in &mut post.sigma {
                *s += FIRST_SWEEP_JITTER;
            }
            Ok(w.clone())
        }
    }
}

/// The parallel schedule (module docs).
fn parallel(
    k: &Mat<f64>,
    y: &[f64],
    lik: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let n = y.len();
    let mut post = Posterior::new(k, cfg.precision, cfg.par);
    let mut sites = start(&mut post, k, warm)?;
    let mut prev = sites.clone();
    let mut rec = SweepRecord {
        log_zhat: vec![0.0; n],
        cav: Sites::zeros(n),
    };
    let mut log_z = f64::NAN;
    let (mut prev_change, mut fed_by_f64) = (f64::INFINITY, true);
    let (mut converged, mut sweeps, mut n_f32) = (false, 0, 0);
    while sweeps < cfg.max_sweeps {
        sweeps += 1;
        prev.tau.copy_from_slice(&sites.tau);
        prev.nu.copy_from_slice(&sites.nu);
        for (i, &yi) in y.iter().enumerate() {
            let (s, m) = (post.sigma[i], post.mu[i]);
            update_site(lik, yi, s, m, &mut sites, &mut rec, i, cfg.damping);
        }
        let change = mean_sq_change(&sites.tau, &prev.tau).max(mean_sq_change(&sites.nu, &prev.nu));
        let sites_done = sweeps > 1 && change < cfg.epsilon && fed_by_f64;
        let last = sweeps == cfg.max_sweeps;
        let need_log_z = sites_done || last || cfg.log_z_tol.is_some();
        let predicted = change * (change / prev_change).min(1.0);
        let use_f32 = post.f32.is_some() && predicted > 10.0 * cfg.epsilon && !need_log_z;
        prev_change = change;
        if use_f32 {
            post.full_f32(k, &sites)?;
            n_f32 += 1;
            fed_by_f64 = false;
            continue;
        }
        let (logdet, nsn) = post.factor_f64(k, &sites)?;
        let prev_log_z = log_z;
        log_z = log_z_ep(logdet, nsn, &sites, &rec);
        let z_done = cfg
            .log_z_tol
            .is_none_or(|tol| (log_z - prev_log_z).abs() < tol);
        if sites_done && z_done {
            converged = true;
            break;
        }
        if !last {
            post.diag_f64(&sites);
            fed_by_f64 = true;
        }
    }
    Ok(finish(
        log_z,
        converged,
        sweeps,
        Method::Ep,
        lik,
        sites,
        rec,
        n_f32,
    ))
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
    }
}

/// The full posterior of the sites: Σ = K − VᵀV with V = L⁻¹S½K, μ = Σν̃; returns
/// (log|B|, ν̃ᵀμ).
fn full_posterior(
    k: &Mat<f64>,
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
    matvec(sigma, &sites.nu, mu, par);
    let logdet = (0..n).map(|i| 2.0 * b[(i, i)].ln()).sum();
    let nsn = sites.nu.iter().zip(mu.iter()).map(|(a, b)| a * b).sum();
    Ok((logdet, nsn))
}

/// The sequential schedule (module docs).
fn sequential(
    k: &Mat<f64>,
    y: &[f64],
    lik: Likelihood,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let n = y.len();
    let mut sigma = k.clone();
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
    let mut rec = SweepRecord {
        log_zhat: vec![0.0; n],
        cav: Sites::zeros(n),
    };
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
