//! The parallel schedule: every site from one posterior, then the posterior recomputed, in
//! mixed or f64 precision (module docs of [`super`]).

use faer::{Mat, MatRef, Par};

use super::config::{EpConfig, EpPrecision, FIRST_SWEEP_JITTER, FloorWatch};
use super::factor::{Factor, matvec};
use super::log_z::log_z_ep;
use super::result::{EpDiagnostics, EpResult, finish};
use super::site::{Sites, SweepRecord, mean_sq_change, update_site};
use crate::PriorError;
use crate::estimate::Method;
use crate::likelihood::Scaled;

/// An n × n f64 buffer one thread may leave for another: the kernel check's, for the f64
/// factor. Taking never waits: a run that needs the buffer before the check has finished
/// allocates its own.
pub(super) struct Spare {
    slot: std::sync::Mutex<Option<Mat<f64>>>,
    /// Whether the kernel check runs alongside the run.
    alongside: bool,
}

impl Spare {
    /// A spare holding `buf`, with no check running alongside.
    pub(super) fn new(buf: Option<Mat<f64>>) -> Self {
        Spare {
            slot: std::sync::Mutex::new(buf),
            alongside: false,
        }
    }

    /// An empty spare that the check running alongside will fill.
    pub(super) fn alongside() -> Self {
        Spare {
            alongside: true,
            ..Spare::new(None)
        }
    }

    /// Leaves `buf` for a later [`Spare::take`].
    pub(super) fn put(&self, buf: Mat<f64>) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(buf);
        }
    }

    /// The buffer, if one has been left.
    pub(super) fn take(&self) -> Option<Mat<f64>> {
        self.slot.lock().ok()?.take()
    }
}

/// An upper estimate of the relative error of an f32 Σᵢᵢ per unit of its conditioning factor
/// κᵢ: 32 f32 unit round-offs ([`f32_risk`]).
pub(super) const F32_SIGMA_ERROR: f64 = 32.0 * (f32::EPSILON as f64 / 2.0);

/// Iterative-refinement steps that make an f32 factor's μ as accurate as an f64 one's (one
/// step leaves 3·10⁻¹² relative on a kernel of condition number 3·10¹⁴; without it, the
/// step likelihood's N = 1500 run took two sweeps more than in f64).
pub(super) const F32_MEAN_REFINEMENT: usize = 1;

/// An f32 posterior is used only while the next sweep's change is predicted to be this many
/// times larger than both ε and the f32 noise.
pub(super) const F32_MARGIN: f64 = 10.0;

/// Where the marginals the next sweep reads come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Feed {
    /// An f64 factorisation (or the prior): GPy's marginals, to round-off.
    F64,
    /// An f32 factorisation whose errors move the next sweep's sites by a mean squared amount
    /// of at most about `noise`.
    F32 { noise: f64 },
}

/// The f64 and (for mixed precision) f32 factorisations of one run.
pub(super) struct Posterior<'s> {
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
pub(super) fn f32_risk(kappa: &[f64], sigma: &[f64], mu: &[f64]) -> f64 {
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
pub(super) fn start(
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
pub(super) struct SweepState {
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
    fn sweep(&mut self, post: &Posterior, y: &[f64], lik: Scaled, damping: f64) -> f64 {
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
pub(super) fn decision_uncertain(change: f64, epsilon: f64, noise: f64) -> bool {
    (change.sqrt() - epsilon.sqrt()).abs() <= noise.sqrt()
}

/// The next sweep's change predicted from the last two (EP converges about quadratically near
/// its fixed point).
pub(super) fn predicted_change(change: f64, prev_change: f64) -> f64 {
    if prev_change.is_finite() {
        change * (change / prev_change).min(1.0)
    } else {
        change
    }
}

/// The parallel schedule (module docs).
pub(super) fn parallel(
    k: MatRef<'_, f64>,
    spare: &Spare,
    y: &[f64],
    lik: Scaled,
    cfg: &EpConfig,
    warm: Option<&Sites>,
) -> Result<EpResult, PriorError> {
    let mut post = Posterior::new(k, spare, cfg.precision, cfg.par);
    let mut st = SweepState::new(start(&mut post, k, warm)?);
    let mut feed = Feed::F64;
    let (mut log_z, mut prev_change) = (f64::NAN, f64::INFINITY);
    let (mut converged, mut sweeps, mut n_f32, mut redone) = (false, 0, 0, 0);
    let (mut floor, mut at_floor) = (FloorWatch::default(), false);
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
        let watched = floor.wants(change);
        let need_log_z = sites_done || last || watched || cfg.log_z_tol.is_some();
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
        if watched && floor.at_floor(log_z) && z_done {
            (converged, at_floor) = (true, true);
            break;
        }
        if !last {
            post.diag_f64(k, &st.sites);
            feed = Feed::F64;
        }
    }
    let diagnostics = EpDiagnostics {
        f32_factorisations: n_f32,
        redone_sweeps: redone,
        stopped_at_floor: at_floor,
    };
    Ok(finish(
        log_z,
        converged,
        sweeps,
        Method::Ep,
        lik.likelihood,
        st.sites,
        st.rec,
        diagnostics,
    ))
}
