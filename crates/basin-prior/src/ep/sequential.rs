//! The sequential schedule: sites one at a time in a seeded random order, each followed by
//! the exact rank-1 update of the posterior, accumulated in blocks (module docs of [`super`]).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{Accum, Mat, MatRef, Par};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::config::{EpConfig, FIRST_SWEEP_JITTER, FloorWatch, SEQ_BLOCK};
use super::factor::matvec;
use super::log_z::log_z_ep;
use super::result::{EpDiagnostics, EpResult, finish};
use super::site::{Sites, SweepRecord, mean_sq_change, update_site};
use crate::PriorError;
use crate::estimate::Method;
use crate::likelihood::Scaled;

/// The full posterior of the sites: Σ = K − VᵀV with V = L⁻¹S½K, μ = Σν̃; returns
/// (log|B|, ν̃ᵀμ).
pub(super) fn full_posterior(
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
pub(super) fn sequential(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Scaled,
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
    let (mut floor, mut at_floor) = (FloorWatch::default(), false);
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
        if floor.wants(change) && floor.at_floor(log_z) && z_done {
            (converged, at_floor) = (true, true);
            break;
        }
    }
    Ok(finish(
        log_z,
        converged,
        sweeps,
        Method::EpSequential,
        lik.likelihood,
        sites,
        rec,
        EpDiagnostics {
            stopped_at_floor: at_floor,
            ..EpDiagnostics::default()
        },
    ))
}

/// Rank-1 updates Σ ← Σ − cᵢ sᵢsᵢᵀ (sᵢ = Σ's column i before the update) accumulated as
/// Σ = Σ₀ − U diag(c) Uᵀ and applied to Σ₀ every `cap` updates.
pub(super) struct RankOneBlock {
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
        lik: Scaled,
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
