//! The minimax tilting problem of Botev (2017, §3): with L̂ the GGE-ordered Cholesky factor
//! scaled to a unit diagonal and then stripped of it (strictly lower), bounds l̂, û scaled the
//! same way, and c = L̂x,
//!
//! ψ(x, μ) = Σₖ [log P(l̂ₖ − μₖ − cₖ < Z < ûₖ − μₖ − cₖ) + μₖ²/2 − xₖμₖ],  x_d = μ_d = 0.
//!
//! ψ is convex in μ and concave in x; the tilting parameter μ* is its saddle point, where
//! ∇ψ = 0 in the 2(d − 1) unknowns
//! (x₁..x_{d−1}, μ₁..μ_{d−1}),
//!
//! ∂ψ/∂xⱼ = Σₖ Pₖ L̂ₖⱼ − μⱼ,  ∂ψ/∂μₖ = Pₖ + μₖ − xₖ,
//!
//! with Pₖ the mean of N(0, 1) truncated to (l̂ₖ − μₖ − cₖ, ûₖ − μₖ − cₖ). With vₖ its variance,
//! ∂Pₖ/∂μₖ = vₖ − 1 =: δₖ, so the exact Jacobian is
//!
//! J = [L̂ᵀΔL̂, (ΔL̂ − I)ᵀ; ΔL̂ − I, V],  Δ = diag(δ), V = diag(v) (rows restricted to k < d
//! where μ is involved).
//!
//! Since V is diagonal and positive, μ is eliminated: the Schur complement
//! −S = −L̂ᵀWL̂ − WL̂ − L̂ᵀW + V⁻¹, W = diag(δₖ/vₖ) for k < d and W_d = δ_d, is positive
//! definite (δ ≤ 0, and ΔL̂ − I is lower triangular with −1 on its diagonal, so invertible). One
//! Newton step is then one (d − 1) × (d − 1) Cholesky factorisation of −S after forming
//! −L̂ᵀWL̂ = BᵀB, B = diag(√−W)·L̂, a triangular product: about d³/3 flops in all, a fraction of
//! a second at d = 1500. The step is damped by backtracking on the merit ½‖∇ψ‖², for which the
//! Newton direction is a descent direction (its slope is −‖∇ψ‖²), and J is never singular,
//! so the merit has no stationary point but the solution.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatRef, Par};

use super::cholperm::PermutedCholesky;
use crate::truncnorm::moments;

/// The problem in Botev's scaled form: with X = LZ, Z ~ N(0, I), l < X < u holds exactly when
/// l̂ₖ < Zₖ + (L̂Z)ₖ < ûₖ for every k.
pub(crate) struct Scaled {
    /// The number of variables d.
    pub d: usize,
    /// L/diag(L) row by row, with its unit diagonal removed (strictly lower, column-major).
    pub lh: Mat<f64>,
    /// Lower bounds divided by the diagonal of L.
    pub lo: Vec<f64>,
    /// Upper bounds divided by the diagonal of L.
    pub up: Vec<f64>,
}

impl Scaled {
    /// The scaled form of a permuted factor.
    pub fn new(f: &PermutedCholesky) -> Self {
        let d = f.l.nrows();
        let diag: Vec<f64> = (0..d).map(|i| f.l[(i, i)]).collect();
        Scaled {
            d,
            lh: Mat::from_fn(d, d, |i, j| if j < i { f.l[(i, j)] / diag[i] } else { 0.0 }),
            lo: (0..d).map(|i| f.lower[i] / diag[i]).collect(),
            up: (0..d).map(|i| f.upper[i] / diag[i]).collect(),
        }
    }
}

/// The solution of ∇ψ = 0, or the last iterate with its status.
#[derive(Debug, Clone)]
pub(crate) struct Saddle {
    /// μ* (length d, last entry 0).
    pub mu: Vec<f64>,
    /// ψ(x*, μ*): an upper bound on log P when converged (Botev 2017, Theorem 2).
    pub psi: f64,
    /// ‖∇ψ‖∞ at the returned point.
    pub residual: f64,
    /// Newton steps taken.
    pub iterations: usize,
    /// Whether ‖∇ψ‖∞ ≤ the tolerance.
    pub converged: bool,
}

/// ∇ψ and the truncated moments at one point.
struct Point {
    x: Vec<f64>,
    mu: Vec<f64>,
    var: Vec<f64>,
    /// ∇ψ: ∂/∂x (first d − 1), then ∂/∂μ (next d − 1).
    grad: Vec<f64>,
    psi: f64,
}

impl Point {
    fn merit(&self) -> f64 {
        0.5 * self.grad.iter().map(|g| g * g).sum::<f64>()
    }

    fn residual(&self) -> f64 {
        self.grad.iter().fold(0.0, |m, g| m.max(g.abs()))
    }

    fn is_finite(&self) -> bool {
        self.psi.is_finite() && self.grad.iter().all(|g| g.is_finite())
    }
}

/// y = A·x for a d × d column-major A (or Aᵀ·x with `transpose`).
fn matvec(a: MatRef<'_, f64>, x: &[f64], y: &mut [f64], transpose: bool) {
    let n = x.len();
    let xm = MatRef::from_column_major_slice(x, n, 1);
    let ym = faer::MatMut::from_column_major_slice_mut(y, n, 1);
    let a = if transpose { a.transpose() } else { a };
    matmul(ym, Accum::Replace, a, xm, 1.0, Par::Seq);
}

/// ψ, its gradient and the truncated moments at (x, μ).
fn evaluate(p: &Scaled, x: Vec<f64>, mu: Vec<f64>) -> Point {
    let d = p.d;
    let mut c = vec![0.0; d];
    matvec(p.lh.as_ref(), &x, &mut c, false);
    let (mut mean, mut var) = (vec![0.0; d], vec![0.0; d]);
    let mut psi = 0.0;
    for k in 0..d {
        let shift = mu[k] + c[k];
        let m = moments(p.lo[k] - shift, p.up[k] - shift);
        mean[k] = m.mean;
        var[k] = m.var.min(1.0);
        psi += m.log_z + 0.5 * mu[k] * mu[k] - x[k] * mu[k];
    }
    let mut lt_p = vec![0.0; d];
    matvec(p.lh.as_ref(), &mean, &mut lt_p, true);
    let n = d - 1;
    let mut grad = vec![0.0; 2 * n];
    for j in 0..n {
        grad[j] = lt_p[j] - mu[j];
        grad[n + j] = mean[j] + mu[j] - x[j];
    }
    Point {
        x,
        mu,
        var,
        grad,
        psi,
    }
}

/// Buffers of the Newton step, allocated once.
struct Workspace {
    b: Mat<f64>,
    m_full: Mat<f64>,
    m: Mat<f64>,
    mem: MemBuffer,
}

impl Workspace {
    fn new(d: usize) -> Self {
        let n = d - 1;
        Workspace {
            b: Mat::zeros(d, d),
            m_full: Mat::zeros(d, d),
            m: Mat::zeros(n, n),
            mem: MemBuffer::new(cholesky_in_place_scratch::<f64>(
                n,
                Par::Seq,
                Default::default(),
            )),
        }
    }
}

/// Solves ∇ψ = 0 by damped Newton from x = μ = 0 (Botev's start), to ‖∇ψ‖∞ ≤ `tol` in at
/// most `max_iter` steps. Non-convergence (the step limit, a line search that cannot reduce
/// the merit, a Schur complement that will not factor) is reported in the result, never an
/// error: any μ gives an unbiased estimator, only a worse one.
pub(crate) fn solve(p: &Scaled, tol: f64, max_iter: usize) -> Saddle {
    let d = p.d;
    let mut ws = Workspace::new(d);
    let mut cur = evaluate(p, vec![0.0; d], vec![0.0; d]);
    let mut iterations = 0;
    while cur.residual() > tol && iterations < max_iter {
        let Some((dx, dmu)) = newton_direction(p, &cur, &mut ws) else {
            break;
        };
        iterations += 1;
        match line_search(p, &cur, &dx, &dmu) {
            Some(next) => cur = next,
            None => break,
        }
    }
    let residual = cur.residual();
    Saddle {
        psi: cur.psi,
        residual,
        iterations,
        converged: residual <= tol,
        mu: cur.mu,
    }
}

/// Backtracking (halving) from the full Newton step until the merit ½‖∇ψ‖² falls by the
/// Armijo fraction 10⁻⁴ of its predicted decrease; `None` after 60 halvings.
fn line_search(p: &Scaled, cur: &Point, dx: &[f64], dmu: &[f64]) -> Option<Point> {
    let m0 = cur.merit();
    let mut t = 1.0;
    for _ in 0..60 {
        let x: Vec<f64> = cur.x.iter().zip(dx).map(|(a, b)| a + t * b).collect();
        let mu: Vec<f64> = cur.mu.iter().zip(dmu).map(|(a, b)| a + t * b).collect();
        let next = evaluate(p, x, mu);
        if next.is_finite() && next.merit() <= m0 * (1.0 - 2e-4 * t) {
            return Some(next);
        }
        t *= 0.5;
    }
    None
}

/// The Newton direction (Δx, Δμ) (length d each, last entries 0) through the Schur complement
/// in x (module docs); `None` if −S does not factor even with a small diagonal shift.
fn newton_direction(p: &Scaled, cur: &Point, ws: &mut Workspace) -> Option<(Vec<f64>, Vec<f64>)> {
    let d = p.d;
    let n = d - 1;
    let delta: Vec<f64> = cur.var.iter().map(|v| v - 1.0).collect();
    let w: Vec<f64> = (0..d)
        .map(|k| {
            if k < n {
                delta[k] / cur.var[k]
            } else {
                delta[k]
            }
        })
        .collect();
    schur(p, &w, &cur.var, ws)?;
    // r = ∂ψ/∂x − L̂ᵀ(W∘∂ψ/∂μ) + (∂ψ/∂μ)/v (first d − 1 rows of L̂ only).
    let (gx, gmu) = cur.grad.split_at(n);
    let mut wg = vec![0.0; d];
    for k in 0..n {
        wg[k] = w[k] * gmu[k];
    }
    let mut lt_wg = vec![0.0; d];
    matvec(p.lh.as_ref(), &wg, &mut lt_wg, true);
    let mut dx = vec![0.0; d];
    for j in 0..n {
        dx[j] = gx[j] - lt_wg[j] + gmu[j] / cur.var[j];
    }
    {
        let rhs = faer::MatMut::from_column_major_slice_mut(&mut dx[..n], n, 1);
        let l = ws.m.as_ref();
        let mut rhs = rhs;
        solve_lower_triangular_in_place(l, rhs.as_mut(), Par::Seq);
        solve_upper_triangular_in_place(l.transpose(), rhs.as_mut(), Par::Seq);
    }
    let mut l_dx = vec![0.0; d];
    matvec(p.lh.as_ref(), &dx, &mut l_dx, false);
    let mut dmu = vec![0.0; d];
    for k in 0..n {
        dmu[k] = -(gmu[k] + delta[k] * l_dx[k] - dx[k]) / cur.var[k];
    }
    let ok = dx.iter().chain(&dmu).all(|v| v.is_finite());
    ok.then_some((dx, dmu))
}

/// Forms −S in `ws.m` (lower triangle) and factors it in place; shifts the diagonal by
/// 10⁻¹² (then ×100 up to 10⁻⁴) of its largest entry if it will not factor.
fn schur(p: &Scaled, w: &[f64], var: &[f64], ws: &mut Workspace) -> Option<()> {
    let d = p.d;
    for j in 0..d {
        let src = p.lh.col_as_slice(j);
        let dst = ws.b.col_as_slice_mut(j);
        for i in 0..d {
            dst[i] = (-w[i]).max(0.0).sqrt() * src[i];
        }
    }
    triangular::matmul(
        ws.m_full.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        ws.b.as_ref().transpose(),
        BlockStructure::StrictTriangularUpper,
        ws.b.as_ref(),
        BlockStructure::StrictTriangularLower,
        1.0,
        Par::Seq,
    );
    let max_diag = fill_schur(p, w, var, 0.0, ws);
    if factor_in_place(ws) {
        return Some(());
    }
    let mut shift = 1e-12 * max_diag;
    while shift <= 1e-4 * max_diag {
        fill_schur(p, w, var, shift, ws);
        if factor_in_place(ws) {
            tracing::debug!("tilting Newton: −S factored after a diagonal shift of {shift:e}");
            return Some(());
        }
        shift *= 100.0;
    }
    None
}

/// −S = BᵀB − WL̂ + V⁻¹ + shift·I into the lower triangle of `ws.m`, from BᵀB in `ws.m_full`;
/// returns its largest diagonal entry.
fn fill_schur(p: &Scaled, w: &[f64], var: &[f64], shift: f64, ws: &mut Workspace) -> f64 {
    let n = p.d - 1;
    let mut max_diag = 0.0f64;
    for j in 0..n {
        let btb = ws.m_full.col_as_slice(j);
        let lh = p.lh.col_as_slice(j);
        let m = ws.m.col_as_slice_mut(j);
        m[j] = btb[j] + 1.0 / var[j] + shift;
        max_diag = max_diag.max(m[j]);
        for i in j + 1..n {
            m[i] = btb[i] - w[i] * lh[i];
        }
    }
    max_diag
}

/// Cholesky of `ws.m` in place (lower); false if it is not numerically positive definite.
fn factor_in_place(ws: &mut Workspace) -> bool {
    cholesky_in_place(
        ws.m.as_mut(),
        LltRegularization::default(),
        Par::Seq,
        MemStack::new(&mut ws.mem),
        Default::default(),
    )
    .is_ok()
}
