//! The extreme eigenvalues of the loss Hessian by Lanczos with full reorthogonalisation.
//!
//! Lanczos builds an orthonormal basis `Q_m = [q_0, …, q_{m−1}]` of the Krylov space
//! `span{q_0, H q_0, …, H^{m−1} q_0}` from `m` exact Hessian-vector products, and the
//! tridiagonal `T_m = Q_mᵀ H Q_m`. The eigenvalues of `T_m` (the Ritz values) approximate the
//! eigenvalues of `H` at both ends of the spectrum first. Every new vector is
//! reorthogonalised against the whole basis ("twice is enough": the three-term step, then a
//! full classical Gram–Schmidt pass, and a third pass when the DGKS test asks for it; see
//! `reorthogonalise`), so the Ritz values do not come in spurious copies as in plain Lanczos.
//!
//! For a Ritz pair `(θ_i, Q_m s_i)` the residual norm is `r_i = ‖H Q_m s_i − θ_i Q_m s_i‖ =
//! |β_m · s_{m,i}|`, where `β_m` is the norm of the next (unused) Lanczos vector and `s_{m,i}`
//! the last component of the eigenvector `s_i` of `T_m`. There is an eigenvalue of `H` within
//! `r_i` of `θ_i` (and within `r_i² / gap` once `θ_i` is separated from the rest of the
//! spectrum by `gap`). A Ritz value is flagged converged when `r_i + m·ε·‖T_m‖ ≤ tol · |θ_i|`
//! (the second term bounds the round-off that the computed `r_i` leaves out; the eigensolver
//! may return `r_i = 0` for a value converged far below round-off), so that a converged value
//! is within `tol` *relative* of an eigenvalue of `H`.
//!
//! The start vector is a Gaussian vector from ChaCha8 seeded with [`LanczosConfig::seed`],
//! normalised, so a run is reproducible from its recorded seed.

use std::time::Instant;

use basin_nn::{Objective, all_examples};
use faer::{Mat, Side};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::FlatnessError;

/// The default number of eigenvalues at the top of the spectrum: the paper's k = 50.
pub const DEFAULT_TOP_K: usize = 50;

/// The default number of Lanczos steps (HVPs). Measured on the 784-40-40-1 MNIST nets of the
/// paper (500 training examples, attack sets of 0 and 500): 100 steps leave the 50th Ritz
/// value up to a few per cent off, while at 200 steps every one of the top 50 has a residual
/// bound below 1e-8 relative (see the README, "basin hessian").
pub const DEFAULT_STEPS: usize = 200;

/// The default relative tolerance of the converged flags (see the module docs).
pub const DEFAULT_TOL: f64 = 1e-8;

/// The settings of a Lanczos run.
#[derive(Debug, Clone, PartialEq)]
pub struct LanczosConfig {
    /// The number of Lanczos steps `m` (one HVP each); capped at the number of parameters.
    pub steps: usize,
    /// How many eigenvalues to report at each end of the spectrum.
    pub top_k: usize,
    /// The seed of the start vector.
    pub seed: u64,
    /// The relative residual tolerance of the converged flags.
    pub tol: f64,
}

impl Default for LanczosConfig {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS,
            top_k: DEFAULT_TOP_K,
            seed: 0,
            tol: DEFAULT_TOL,
        }
    }
}

impl LanczosConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), FlatnessError> {
        if self.steps == 0 {
            return Err(FlatnessError::Invalid(
                "Lanczos needs at least 1 step: set the number of steps to 1 or more".into(),
            ));
        }
        if self.top_k == 0 {
            return Err(FlatnessError::Invalid(
                "top-k must be at least 1: ask for 1 or more eigenvalues".into(),
            ));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(FlatnessError::Invalid(format!(
                "the residual tolerance must be > 0, got {}",
                self.tol
            )));
        }
        Ok(())
    }
}

/// Ritz values at one end of the spectrum with their residual bounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RitzEnd {
    /// The Ritz values, outermost first (descending at the top, ascending at the bottom).
    pub eigenvalues: Vec<f64>,
    /// The residual norms `|β_m · s_{m,i}|`, in the same order.
    pub residuals: Vec<f64>,
    /// Whether `residuals[i] + m·ε·‖T_m‖ ≤ tol · |eigenvalues[i]|` (m steps; see the module
    /// docs).
    pub converged: Vec<bool>,
}

impl RitzEnd {
    /// The number of converged values.
    pub fn n_converged(&self) -> usize {
        self.converged.iter().filter(|&&c| c).count()
    }

    /// Whether every value converged.
    pub fn all_converged(&self) -> bool {
        self.converged.iter().all(|&c| c)
    }
}

/// The result of [`lanczos`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spectrum {
    /// The largest Ritz value: the estimate of λmax.
    pub lambda_max: f64,
    /// The smallest Ritz value: the estimate of λmin.
    pub lambda_min: f64,
    /// max(|λmax|, |λmin|): the spectral norm ‖H‖₂ (the extreme Ritz values converge first).
    pub spectral_norm: f64,
    /// The top-k Ritz values, descending (fewer than k when the run took fewer than k steps).
    pub top: RitzEnd,
    /// The bottom-k Ritz values, ascending.
    pub bottom: RitzEnd,
    /// Σ ln λ_i over the *positive* values among the top k: the paper's log-product. When
    /// fewer than k of the top k are positive the product runs over those only (see
    /// `n_positive_top_k`); 0 when none is positive.
    pub log_product_top_k: f64,
    /// How many of the top-k values are positive.
    pub n_positive_top_k: usize,
    /// Lanczos steps (HVPs) taken.
    pub steps: usize,
    /// True when the run stopped early because the Krylov space became invariant (β ≈ 0):
    /// the Ritz values are then exact eigenvalues of H restricted to that space.
    pub breakdown: bool,
    /// The seed of the start vector.
    pub seed: u64,
    /// The relative residual tolerance of the flags.
    pub tol: f64,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

/// The top and bottom `cfg.top_k` eigenvalues of the Hessian of the mean loss over all the
/// objective's examples at `theta`, by `cfg.steps` steps of Lanczos with full
/// reorthogonalisation from a seeded Gaussian start vector.
///
/// Errors: invalid settings, a θ of the wrong length or with non-finite entries, or a
/// non-finite Hessian-vector product.
pub fn lanczos<O: Objective<f64> + ?Sized>(
    obj: &mut O,
    theta: &[f64],
    cfg: &LanczosConfig,
) -> Result<Spectrum, FlatnessError> {
    cfg.validate()?;
    check_theta(obj, theta)?;
    let start = Instant::now();
    let n = theta.len();
    let batch = all_examples(obj.n_examples());
    let mut krylov = Krylov::new(n, cfg.steps.min(n));
    gaussian_unit(&mut ChaCha8Rng::seed_from_u64(cfg.seed), krylov.start_mut());
    let tri = krylov.run(obj, theta, &batch)?;
    let ritz = tri.eigen()?;
    Ok(spectrum(&tri, &ritz, cfg, start.elapsed().as_secs_f64()))
}

fn spectrum(tri: &Tridiagonal, ritz: &RitzValues, cfg: &LanczosConfig, wall_s: f64) -> Spectrum {
    let m = ritz.values.len();
    let k = cfg.top_k.min(m);
    let norm = ritz.values[0].abs().max(ritz.values[m - 1].abs());
    let roundoff = m as f64 * f64::EPSILON * norm;
    let end = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut eigenvalues, mut residuals, mut converged) = (vec![], vec![], vec![]);
        for i in idx.take(k) {
            let (v, r) = (ritz.values[i], (tri.beta_last * ritz.last[i]).abs());
            eigenvalues.push(v);
            residuals.push(r);
            converged.push(r + roundoff <= cfg.tol * v.abs());
        }
        RitzEnd {
            eigenvalues,
            residuals,
            converged,
        }
    };
    let top = end(&mut (0..m).rev());
    let bottom = end(&mut (0..m));
    let positive: Vec<f64> = top
        .eigenvalues
        .iter()
        .copied()
        .filter(|&v| v > 0.0)
        .collect();
    let (lambda_max, lambda_min) = (ritz.values[m - 1], ritz.values[0]);
    Spectrum {
        lambda_max,
        lambda_min,
        spectral_norm: lambda_max.abs().max(lambda_min.abs()),
        top,
        bottom,
        log_product_top_k: positive.iter().map(|v| v.ln()).sum(),
        n_positive_top_k: positive.len(),
        steps: m,
        breakdown: tri.breakdown,
        seed: cfg.seed,
        tol: cfg.tol,
        wall_s,
    }
}

/// Checks that θ has the objective's length and only finite values.
pub(crate) fn check_theta<O: Objective<f64> + ?Sized>(
    obj: &O,
    theta: &[f64],
) -> Result<(), FlatnessError> {
    if theta.len() != obj.n_params() {
        return Err(FlatnessError::Invalid(format!(
            "{} parameters given for a network with {}",
            theta.len(),
            obj.n_params()
        )));
    }
    if obj.n_examples() == 0 {
        return Err(FlatnessError::Invalid("the measured set is empty".into()));
    }
    if let Some(i) = theta.iter().position(|t| !t.is_finite()) {
        return Err(FlatnessError::NonFinite(format!("parameter {i} of θ")));
    }
    Ok(())
}

/// Fills `v` with a standard Gaussian vector (Box–Muller on ChaCha8 uniforms), normalised to
/// unit length.
pub(crate) fn gaussian_unit(rng: &mut ChaCha8Rng, v: &mut [f64]) {
    for pair in v.chunks_mut(2) {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let phi = std::f64::consts::TAU * u2;
        pair[0] = r * phi.cos();
        if let Some(x) = pair.get_mut(1) {
            *x = r * phi.sin();
        }
    }
    let norm = dot(v, v).sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

/// `Σ a_i b_i` with eight independent accumulators (so that it vectorises).
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The Lanczos tridiagonal `T_m`: its diagonal `alpha` (length m), off-diagonal `beta`
/// (length m − 1) and the norm `beta_last` of the residual vector after step m.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tridiagonal {
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
    pub beta_last: f64,
    pub breakdown: bool,
}

/// The eigenvalues of `T_m` ascending, with the first and last components of their unit
/// eigenvectors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RitzValues {
    pub values: Vec<f64>,
    pub first: Vec<f64>,
    pub last: Vec<f64>,
}

impl Tridiagonal {
    /// The eigendecomposition of `T_m` (faer's self-adjoint eigensolver).
    pub fn eigen(&self) -> Result<RitzValues, FlatnessError> {
        let m = self.alpha.len();
        let t = Mat::<f64>::from_fn(m, m, |i, j| match i.abs_diff(j) {
            0 => self.alpha[i],
            1 => self.beta[i.min(j)],
            _ => 0.0,
        });
        let evd = t.self_adjoint_eigen(Side::Lower).map_err(|e| {
            FlatnessError::NonFinite(format!(
                "the eigensolver of the {m}×{m} Lanczos tridiagonal failed ({e:?})"
            ))
        })?;
        let (s, u) = (evd.S(), evd.U());
        Ok(RitzValues {
            values: (0..m).map(|i| s[i]).collect(),
            first: (0..m).map(|i| u[(0, i)]).collect(),
            last: (0..m).map(|i| u[(m - 1, i)]).collect(),
        })
    }
}

/// β below this times the largest ‖H q_j‖ seen counts as a breakdown.
const BREAKDOWN: f64 = 1e3 * f64::EPSILON;

/// The preallocated workspace of a Lanczos run: the basis (`steps + 1` rows of length `n`,
/// row-major), the HVP output and the Gram–Schmidt coefficients.
pub(crate) struct Krylov {
    n: usize,
    steps: usize,
    basis: Vec<f64>,
    w: Vec<f64>,
    h: Vec<f64>,
}

impl Krylov {
    /// A workspace for up to `steps` steps on vectors of length `n`.
    pub fn new(n: usize, steps: usize) -> Self {
        Self {
            n,
            steps,
            basis: vec![0.0; (steps + 1) * n],
            w: vec![0.0; n],
            h: vec![0.0; steps + 1],
        }
    }

    /// The start vector q_0, to be filled with a unit vector before [`Krylov::run`].
    pub fn start_mut(&mut self) -> &mut [f64] {
        &mut self.basis[..self.n]
    }

    /// Runs up to `steps` Lanczos steps from the unit vector in [`Krylov::start_mut`].
    pub fn run<O: Objective<f64> + ?Sized>(
        &mut self,
        obj: &mut O,
        theta: &[f64],
        batch: &[usize],
    ) -> Result<Tridiagonal, FlatnessError> {
        let n = self.n;
        let mut alpha = Vec::with_capacity(self.steps);
        let mut beta = Vec::with_capacity(self.steps);
        let mut scale = 0.0f64;
        for j in 0..self.steps {
            let (done, next) = self.basis.split_at_mut((j + 1) * n);
            obj.hvp(theta, batch, &done[j * n..], &mut self.w);
            let hq_norm = dot(&self.w, &self.w).sqrt();
            if !hq_norm.is_finite() {
                return Err(FlatnessError::NonFinite(format!(
                    "the Hessian-vector product of Lanczos step {} has non-finite entries",
                    j + 1
                )));
            }
            scale = scale.max(hq_norm);
            let beta_prev = beta.last().copied().unwrap_or(0.0);
            let a = reorthogonalise(done, &mut self.w, &mut self.h[..=j], beta_prev);
            alpha.push(a);
            let b = dot(&self.w, &self.w).sqrt();
            // An invariant subspace: nothing new beyond the round-off of the HVPs.
            let invariant = b <= BREAKDOWN * scale;
            if invariant || j + 1 == n {
                return Ok(Tridiagonal {
                    alpha,
                    beta,
                    beta_last: 0.0,
                    breakdown: invariant && j + 1 < self.steps,
                });
            }
            beta.push(b);
            for (q, &x) in next[..n].iter_mut().zip(&self.w) {
                *q = x / b;
            }
        }
        let beta_last = beta.pop().unwrap_or(0.0);
        Ok(Tridiagonal {
            alpha,
            beta,
            beta_last,
            breakdown: false,
        })
    }
}

/// Makes `w = H q_j` orthogonal to the rows of `basis` (the last row is q_j, the one before
/// q_{j−1}) and returns α_j = q_jᵀ H q_j. `h` has one entry per basis row.
///
/// Two passes of Gram–Schmidt, "twice is enough" (Kahan–Parlett; Giraud et al. 2005):
/// 1. the three-term step `w ← w − α_j q_j − β_{j−1} q_{j−1}`, which in exact arithmetic is
///    the whole classical Gram–Schmidt pass (`H q_j ⟂ q_i` for i < j − 1), and costs two rows;
/// 2. a full classical Gram–Schmidt pass against every row (one sweep of dot products, one
///    of updates), which removes the O(ε‖H‖) components that round-off left along old rows.
///
/// If pass 2 shrinks ‖w‖ by more than 1/√2 (the DGKS test: heavy cancellation, so pass 1 was
/// not accurate enough), a third, full pass follows. The basis then stays orthonormal to
/// working precision, as with two full passes, at half their memory traffic.
fn reorthogonalise(basis: &[f64], w: &mut [f64], h: &mut [f64], beta_prev: f64) -> f64 {
    let (rows, n) = (h.len(), w.len());
    let qj = &basis[(rows - 1) * n..rows * n];
    let mut alpha = dot(qj, w);
    axpy(-alpha, qj, w);
    if rows >= 2 {
        axpy(-beta_prev, &basis[(rows - 2) * n..(rows - 1) * n], w);
    }
    let mut before = dot(w, w);
    for _ in 0..2 {
        h.fill(0.0);
        dot_rows(basis, n, 0..n, w, h);
        sub_rows(basis, n, 0..n, h, w);
        alpha += h[rows - 1];
        let after = dot(w, w);
        if after > 0.5 * before {
            break;
        }
        before = after;
    }
    alpha
}

/// `y += a · x`.
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `acc[i] += Σ_{c ∈ cols} Q[i, c] · w[c]` for every row i of the row-major `Q` (row length
/// `n`, `acc.len()` rows), four rows at a time.
fn dot_rows(q: &[f64], n: usize, cols: std::ops::Range<usize>, w: &[f64], acc: &mut [f64]) {
    let w = &w[cols.clone()];
    let row = |i: usize| &q[i * n + cols.start..i * n + cols.end];
    let mut groups = acc.chunks_exact_mut(4);
    let mut i = 0;
    for a in &mut groups {
        let d = dot4([row(i), row(i + 1), row(i + 2), row(i + 3)], w);
        a.iter_mut().zip(d).for_each(|(a, d)| *a += d);
        i += 4;
    }
    for a in groups.into_remainder() {
        *a += dot(row(i), w);
        i += 1;
    }
}

/// Four dot products against the same `w`, reading `w` once.
#[inline]
fn dot4(r: [&[f64]; 4], w: &[f64]) -> [f64; 4] {
    let mut acc = [[0.0f64; 4]; 4];
    let len = w.len() / 4 * 4;
    for c in (0..len).step_by(4) {
        let x = &w[c..c + 4];
        for (k, rk) in r.iter().enumerate() {
            let y = &rk[c..c + 4];
            for l in 0..4 {
                acc[k][l] += y[l] * x[l];
            }
        }
    }
    let mut out = [0.0; 4];
    for (k, rk) in r.iter().enumerate() {
        let tail: f64 = (len..w.len()).map(|c| rk[c] * w[c]).sum();
        out[k] = acc[k].iter().sum::<f64>() + tail;
    }
    out
}

/// `w[c] −= Σ_i h[i] · Q[i, c]` for c in `cols`, four rows at a time.
fn sub_rows(q: &[f64], n: usize, cols: std::ops::Range<usize>, h: &[f64], w: &mut [f64]) {
    let w = &mut w[cols.clone()];
    let row = |i: usize| &q[i * n + cols.start..i * n + cols.end];
    let mut i = 0;
    while i + 4 <= h.len() {
        let (r0, r1, r2, r3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
        let (a, b, c, d) = (h[i], h[i + 1], h[i + 2], h[i + 3]);
        for (k, x) in w.iter_mut().enumerate() {
            *x -= a * r0[k] + b * r1[k] + c * r2[k] + d * r3[k];
        }
        i += 4;
    }
    for (k, &hk) in h.iter().enumerate().skip(i) {
        for (x, y) in w.iter_mut().zip(row(k)) {
            *x -= hk * y;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ½ θᵀ D θ: H = D.
    struct Diag(Vec<f64>);

    impl Objective<f64> for Diag {
        fn n_params(&self) -> usize {
            self.0.len()
        }
        fn n_examples(&self) -> usize {
            1
        }
        fn loss(&mut self, _: &[f64], _: &[usize]) -> f64 {
            0.0
        }
        fn loss_grad(&mut self, _: &[f64], _: &[usize], _: &mut [f64]) -> f64 {
            0.0
        }
        fn hvp(&mut self, _: &[f64], _: &[usize], v: &[f64], out: &mut [f64]) {
            for ((o, x), d) in out.iter_mut().zip(v).zip(&self.0) {
                *o = d * x;
            }
        }
        fn count_errors(&mut self, _: &[f64], _: &[usize]) -> usize {
            0
        }
    }

    #[test]
    fn the_basis_stays_orthonormal() {
        // A spectrum like a trained net's: a few large outliers, a bulk near 0 with both signs.
        let n = 3000;
        let d: Vec<f64> = (0..n)
            .map(|i| match i {
                0..5 => 100.0 / (i + 1) as f64,
                _ => 1e-3 * ((i * 7919) % 2000) as f64 - 0.5,
            })
            .collect();
        let steps = 250;
        let mut k = Krylov::new(n, steps);
        gaussian_unit(&mut ChaCha8Rng::seed_from_u64(1), k.start_mut());
        let tri = k.run(&mut Diag(d), &vec![0.0; n], &[0]).unwrap();
        assert_eq!(tri.alpha.len(), steps);
        let mut worst = 0.0f64;
        for i in 0..=steps {
            for j in 0..=i {
                let qi = &k.basis[i * n..(i + 1) * n];
                let qj = &k.basis[j * n..(j + 1) * n];
                let target = if i == j { 1.0 } else { 0.0 };
                worst = worst.max((dot(qi, qj) - target).abs());
            }
        }
        // Orthonormal to working precision: |QᵀQ − I| ≤ 1e-13 (ε·√n·small factor).
        assert!(worst < 1e-13, "loss of orthogonality {worst:e}");
    }
}
