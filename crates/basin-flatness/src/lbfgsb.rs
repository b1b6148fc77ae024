//! L-BFGS-B: limited-memory BFGS for bound-constrained minimisation, and the Keskar sharpness
//! of Keskar et al.'s original code, which maximises the loss over the box with it.
//!
//! The solver follows Byrd, Lu, Nocedal & Zhu (1995), "A limited memory algorithm for bound
//! constrained optimization", SIAM J. Sci. Comput. 16(5):
//! - the compact representation B = θI − W M Wᵀ of the L-BFGS matrix (W = [Y, θS]);
//! - the generalized Cauchy point along the projected steepest-descent path (their
//!   Algorithm CP), visiting the breakpoints in order;
//! - subspace minimisation over the variables free at the Cauchy point by the direct primal
//!   method (their Section 5.1), truncated to stay feasible.
//!
//! One documented difference from the Fortran code (and so from SciPy's
//! `fmin_l_bfgs_b`): the line search is a backtracking search on the Armijo condition with
//! safeguarded quadratic interpolation, not the Moré–Thuente search. Pairs with too little
//! curvature (sᵀy ≤ 2.2e-16·yᵀy) are skipped, as in the Fortran code, so B stays positive
//! definite. Stopping rules are SciPy's: the projected gradient's largest entry at most
//! `pgtol`, or a relative reduction of f at most `factr`·machine-ε, or the iteration and
//! evaluation limits.

use std::time::Instant;

use basin_nn::{Objective, Real, all_examples};
use faer::Mat;
use faer::linalg::solvers::DenseSolveCore;
use serde::Serialize;

use crate::FlatnessError;
use crate::checks::check_theta;
use crate::error::NonFiniteAt;
use crate::keskar::{Sharpness, keskar_box};

/// The settings of [`minimize`]. Defaults are SciPy's, except `max_iter`.
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsbConfig {
    /// The number of correction pairs kept (SciPy's `m`, default 10).
    pub memory: usize,
    /// The maximum number of iterations (default 10, the paper's ResNet code).
    pub max_iter: usize,
    /// The maximum number of function evaluations (SciPy's `maxfun`, default 15,000).
    pub max_evals: usize,
    /// Stop when max |proj(x − g) − x| ≤ pgtol (default 1e-5).
    pub pgtol: f64,
    /// Stop when (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ factr·ε_machine (default 1e7).
    pub factr: f64,
}

impl Default for LbfgsbConfig {
    fn default() -> Self {
        Self {
            memory: 10,
            max_iter: 10,
            max_evals: 15_000,
            pgtol: 1e-5,
            factr: 1e7,
        }
    }
}

/// Why [`minimize`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LbfgsbStatus {
    /// The projected gradient is below `pgtol`: a KKT point.
    ProjectedGradient,
    /// The relative reduction of f fell below `factr`·ε.
    RelativeReduction,
    /// `max_iter` iterations were done.
    MaxIterations,
    /// `max_evals` evaluations were done.
    MaxEvaluations,
    /// The line search found no decrease along a descent direction (f is flat to round-off).
    LineSearch,
}

/// What [`minimize`] returns (the minimiser is left in `x`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LbfgsbReport {
    /// f at the final point.
    pub f: f64,
    /// Completed iterations.
    pub iterations: usize,
    /// Function-and-gradient evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub status: LbfgsbStatus,
}

/// The correction pairs and the small matrices of the compact representation.
struct Memory {
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    theta: f64,
    /// M = [[−D, Lᵀ], [L, θ SᵀS]]⁻¹, 2k × 2k.
    m: Mat<f64>,
}

impl Memory {
    fn new() -> Self {
        Self {
            s: Vec::new(),
            y: Vec::new(),
            theta: 1.0,
            m: Mat::zeros(0, 0),
        }
    }

    fn k(&self) -> usize {
        self.s.len()
    }

    /// Row `i` of W = [Y, θS], written to `w` (length 2k).
    fn w_row(&self, i: usize, w: &mut [f64]) {
        let k = self.k();
        for j in 0..k {
            w[j] = self.y[j][i];
            w[k + j] = self.theta * self.s[j][i];
        }
    }

    /// Adds the pair (s, y) if its curvature is positive enough; returns whether it did.
    fn push(&mut self, s: Vec<f64>, y: Vec<f64>, capacity: usize) -> bool {
        let sy = dot(&s, &y);
        let yy = dot(&y, &y);
        if sy <= f64::EPSILON * yy || sy <= 0.0 {
            return false;
        }
        if self.k() == capacity {
            self.s.remove(0);
            self.y.remove(0);
        }
        self.theta = yy / sy;
        self.s.push(s);
        self.y.push(y);
        self.rebuild_m()
    }

    /// Recomputes M from the pairs; drops the memory if the middle matrix is singular.
    fn rebuild_m(&mut self) -> bool {
        let k = self.k();
        let mut a = Mat::<f64>::zeros(2 * k, 2 * k);
        for i in 0..k {
            for j in 0..k {
                let sy = dot(&self.s[i], &self.y[j]);
                if i == j {
                    a[(i, i)] = -sy;
                } else if i > j {
                    a[(k + i, j)] = sy;
                    a[(j, k + i)] = sy;
                }
                a[(k + i, k + j)] = self.theta * dot(&self.s[i], &self.s[j]);
            }
        }
        let m = a.partial_piv_lu().inverse();
        if (0..2 * k).all(|i| (0..2 * k).all(|j| m[(i, j)].is_finite())) {
            self.m = m;
            true
        } else {
            *self = Self::new();
            false
        }
    }

    /// M·v for a vector of length 2k.
    fn m_times(&self, v: &[f64], out: &mut [f64]) {
        let n = v.len();
        for (i, o) in out.iter_mut().enumerate().take(n) {
            *o = (0..n).map(|j| self.m[(i, j)] * v[j]).sum();
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// max_i |proj(x − g)_i − x_i|: zero exactly at a KKT point.
fn projected_gradient_norm(x: &[f64], g: &[f64], lo: &[f64], hi: &[f64]) -> f64 {
    let mut m = 0.0f64;
    for i in 0..x.len() {
        let p = (x[i] - g[i]).max(lo[i]).min(hi[i]);
        m = m.max((p - x[i]).abs());
    }
    m
}

/// The generalized Cauchy point `xcp` and the vector c = Wᵀ(xcp − x) (Algorithm CP).
fn cauchy_point(
    x: &[f64],
    g: &[f64],
    lo: &[f64],
    hi: &[f64],
    mem: &Memory,
    xcp: &mut [f64],
) -> Vec<f64> {
    let n = x.len();
    let k2 = 2 * mem.k();
    let mut d = vec![0.0; n];
    let mut breaks: Vec<(f64, usize)> = Vec::new();
    for i in 0..n {
        let t = if g[i] < 0.0 {
            (x[i] - hi[i]) / g[i]
        } else if g[i] > 0.0 {
            (x[i] - lo[i]) / g[i]
        } else {
            f64::INFINITY
        };
        if t > 0.0 {
            d[i] = -g[i];
            if t.is_finite() {
                breaks.push((t, i));
            }
        }
    }
    breaks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut w = vec![0.0; k2];
    let mut p = vec![0.0; k2];
    for i in (0..n).filter(|&i| d[i] != 0.0) {
        mem.w_row(i, &mut w);
        for (pj, wj) in p.iter_mut().zip(&w) {
            *pj += wj * d[i];
        }
    }
    let mut c = vec![0.0; k2];
    let mut mp = vec![0.0; k2];
    let mut mc = vec![0.0; k2];
    let mut mw = vec![0.0; k2];
    mem.m_times(&p, &mut mp);
    let mut f1 = -dot(&d, &d);
    let mut f2 = -mem.theta * f1 - dot(&p, &mp);
    let mut dt_min = min_along(f1, f2);
    let mut t_old = 0.0;
    xcp.copy_from_slice(x);
    for &(t, b) in &breaks {
        let dt = t - t_old;
        if dt_min < dt {
            break;
        }
        let gb = g[b];
        let z = if d[b] > 0.0 { hi[b] } else { lo[b] } - x[b];
        xcp[b] = x[b] + z;
        mem.w_row(b, &mut w);
        for (cj, pj) in c.iter_mut().zip(&p) {
            *cj += dt * pj;
        }
        mem.m_times(&c, &mut mc);
        mem.m_times(&p, &mut mp);
        mem.m_times(&w, &mut mw);
        f1 += dt * f2 + gb * gb + mem.theta * gb * z - gb * dot(&w, &mc);
        f2 += -mem.theta * gb * gb - 2.0 * gb * dot(&w, &mp) - gb * gb * dot(&w, &mw);
        for (pj, wj) in p.iter_mut().zip(&w) {
            *pj += gb * wj;
        }
        d[b] = 0.0;
        dt_min = min_along(f1, f2);
        t_old = t;
    }
    let dt_min = dt_min.max(0.0);
    let t_final = t_old + dt_min;
    for i in 0..n {
        if d[i] != 0.0 {
            xcp[i] = (x[i] + t_final * d[i]).max(lo[i]).min(hi[i]);
        }
    }
    for (cj, pj) in c.iter_mut().zip(&p) {
        *cj += dt_min * pj;
    }
    c
}

/// The step to the minimum of the 1-D quadratic with slope `f1` and curvature `f2`; infinite
/// when the quadratic does not curve upwards.
fn min_along(f1: f64, f2: f64) -> f64 {
    if f2 > 0.0 { -f1 / f2 } else { f64::INFINITY }
}

/// Minimises the model over the variables free at the Cauchy point (direct primal method),
/// truncated to the box; returns the point x̄.
fn subspace_minimum(
    x: &[f64],
    g: &[f64],
    lo: &[f64],
    hi: &[f64],
    mem: &Memory,
    xcp: &[f64],
    c: &[f64],
) -> Vec<f64> {
    let n = x.len();
    let k2 = 2 * mem.k();
    let theta = mem.theta;
    let free: Vec<usize> = (0..n)
        .filter(|&i| lo[i] < xcp[i] && xcp[i] < hi[i])
        .collect();
    let mut xbar = xcp.to_vec();
    if free.is_empty() {
        return xbar;
    }
    let mut mc = vec![0.0; k2];
    mem.m_times(c, &mut mc);
    let mut w = vec![0.0; k2];
    let mut r = Vec::with_capacity(free.len());
    let mut wr = vec![0.0; k2];
    let mut wzzw = Mat::<f64>::zeros(k2, k2);
    for &i in &free {
        mem.w_row(i, &mut w);
        let ri = g[i] + theta * (xcp[i] - x[i]) - dot(&w, &mc);
        r.push(ri);
        for a in 0..k2 {
            wr[a] += w[a] * ri;
            for b in 0..k2 {
                wzzw[(a, b)] += w[a] * w[b];
            }
        }
    }
    let mut v = vec![0.0; k2];
    if k2 > 0 {
        mem.m_times(&wr, &mut v);
        let nmat = Mat::<f64>::from_fn(k2, k2, |a, b| {
            let mw: f64 = (0..k2).map(|j| mem.m[(a, j)] * wzzw[(j, b)]).sum();
            f64::from(u8::from(a == b)) - mw / theta
        });
        let rhs = Mat::<f64>::from_fn(k2, 1, |a, _| v[a]);
        let sol = nmat.partial_piv_lu().inverse() * &rhs;
        for (a, va) in v.iter_mut().enumerate() {
            *va = sol[(a, 0)];
        }
    }
    let mut alpha = 1.0f64;
    let mut dhat = Vec::with_capacity(free.len());
    for (&i, &ri) in free.iter().zip(&r) {
        mem.w_row(i, &mut w);
        let di = -ri / theta - dot(&w, &v) / (theta * theta);
        if di > 0.0 {
            alpha = alpha.min((hi[i] - xcp[i]) / di);
        } else if di < 0.0 {
            alpha = alpha.min((lo[i] - xcp[i]) / di);
        }
        dhat.push(di);
    }
    if !alpha.is_finite() {
        return xbar;
    }
    for (&i, &di) in free.iter().zip(&dhat) {
        xbar[i] = (xcp[i] + alpha * di).max(lo[i]).min(hi[i]);
    }
    xbar
}

/// Minimises `f` over the box `lo ≤ x ≤ hi` from the start `x` (projected into the box first),
/// leaving the best point in `x`. `f(x, g)` returns f(x) and writes ∇f(x) to `g`. Bounds may
/// be infinite.
///
/// Errors: mismatched lengths, `lo > hi`, or a non-finite f or gradient at an evaluated point.
pub fn minimize(
    f: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
    x: &mut [f64],
    lo: &[f64],
    hi: &[f64],
    cfg: &LbfgsbConfig,
) -> Result<LbfgsbReport, FlatnessError> {
    check_problem(x, lo, hi, cfg)?;
    let n = x.len();
    for i in 0..n {
        x[i] = x[i].max(lo[i]).min(hi[i]);
    }
    let mut g = vec![0.0; n];
    let mut fx = evaluate(f, x, &mut g, 0)?;
    let mut evals = 1;
    let mut mem = Memory::new();
    let mut xcp = vec![0.0; n];
    let mut iter = 0;
    if projected_gradient_norm(x, &g, lo, hi) <= cfg.pgtol {
        return Ok(LbfgsbReport {
            f: fx,
            iterations: 0,
            evaluations: 1,
            status: LbfgsbStatus::ProjectedGradient,
        });
    }
    let status = loop {
        if iter >= cfg.max_iter {
            break LbfgsbStatus::MaxIterations;
        }
        let mut dir = search_direction(x, &g, lo, hi, &mut mem, &mut xcp);
        if dot(&g, &dir) >= 0.0 && mem.k() > 0 {
            mem = Memory::new();
            dir = search_direction(x, &g, lo, hi, &mut mem, &mut xcp);
        }
        let first = iter == 0 && mem.k() == 0;
        let step = line_search(f, x, fx, &g, &dir, first, cfg.max_evals - evals)?;
        evals += step.evaluations;
        let Some((x_new, f_new, g_new)) = step.point else {
            break if evals >= cfg.max_evals {
                LbfgsbStatus::MaxEvaluations
            } else {
                LbfgsbStatus::LineSearch
            };
        };
        iter += 1;
        let s: Vec<f64> = x_new.iter().zip(x.iter()).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        mem.push(s, y, cfg.memory);
        let reduction = (fx - f_new) / fx.abs().max(f_new.abs()).max(1.0);
        x.copy_from_slice(&x_new);
        g = g_new;
        fx = f_new;
        if projected_gradient_norm(x, &g, lo, hi) <= cfg.pgtol {
            break LbfgsbStatus::ProjectedGradient;
        }
        if reduction <= cfg.factr * f64::EPSILON {
            break LbfgsbStatus::RelativeReduction;
        }
        if evals >= cfg.max_evals {
            break LbfgsbStatus::MaxEvaluations;
        }
    };
    Ok(LbfgsbReport {
        f: fx,
        iterations: iter,
        evaluations: evals,
        status,
    })
}

fn check_problem(
    x: &[f64],
    lo: &[f64],
    hi: &[f64],
    cfg: &LbfgsbConfig,
) -> Result<(), FlatnessError> {
    if lo.len() != x.len() || hi.len() != x.len() {
        return Err(FlatnessError::BoundCount {
            n: x.len(),
            lo: lo.len(),
            hi: hi.len(),
        });
    }
    if let Some(i) = (0..x.len())
        .find(|&i| lo[i].partial_cmp(&hi[i]).is_none_or(|o| o.is_gt()) || !x[i].is_finite())
    {
        return Err(FlatnessError::BadVariable {
            index: i,
            start: x[i],
            lo: lo[i],
            hi: hi[i],
        });
    }
    let fix = "L-BFGS-B needs memory ≥ 1 and max_evals ≥ 1";
    if cfg.memory == 0 {
        return Err(FlatnessError::setting("memory", cfg.memory, fix));
    }
    if cfg.max_evals == 0 {
        return Err(FlatnessError::setting("max_evals", cfg.max_evals, fix));
    }
    Ok(())
}

fn evaluate(
    f: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
    x: &[f64],
    g: &mut [f64],
    eval: usize,
) -> Result<f64, FlatnessError> {
    let fx = f(x, g);
    if fx.is_finite() && g.iter().all(|v| v.is_finite()) {
        Ok(fx)
    } else {
        Err(FlatnessError::non_finite(NonFiniteAt::Evaluation {
            eval,
            f: fx,
        }))
    }
}

/// d = x̄ − x from the Cauchy point and the subspace minimisation.
fn search_direction(
    x: &[f64],
    g: &[f64],
    lo: &[f64],
    hi: &[f64],
    mem: &mut Memory,
    xcp: &mut [f64],
) -> Vec<f64> {
    let c = cauchy_point(x, g, lo, hi, mem, xcp);
    let xbar = subspace_minimum(x, g, lo, hi, mem, xcp, &c);
    xbar.iter().zip(x).map(|(a, b)| a - b).collect()
}

/// The outcome of a line search: the accepted point (x, f, g), if any, and its cost.
struct Step {
    point: Option<(Vec<f64>, f64, Vec<f64>)>,
    evaluations: usize,
}

/// Backtracking on the Armijo condition f(x + λd) ≤ f(x) + 1e-4·λ·gᵀd, from λ = 1 (or
/// min(1, 1/‖d‖) on the first iteration, as the Fortran code does), shrinking λ by safeguarded
/// quadratic interpolation into [0.1λ, 0.5λ]. x + λd stays in the box for every λ ≤ 1.
fn line_search(
    f: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
    x: &[f64],
    fx: f64,
    g: &[f64],
    dir: &[f64],
    first: bool,
    evals_left: usize,
) -> Result<Step, FlatnessError> {
    let slope = dot(g, dir);
    let mut step = Step {
        point: None,
        evaluations: 0,
    };
    if slope >= 0.0 {
        return Ok(step);
    }
    let norm = dot(dir, dir).sqrt();
    let mut lambda = if first { (1.0 / norm).min(1.0) } else { 1.0 };
    let mut xt = vec![0.0; x.len()];
    let mut gt = vec![0.0; x.len()];
    for _ in 0..40.min(evals_left) {
        for ((t, a), d) in xt.iter_mut().zip(x).zip(dir) {
            *t = a + lambda * d;
        }
        let ft = evaluate(f, &xt, &mut gt, step.evaluations + 1)?;
        step.evaluations += 1;
        if ft <= fx + 1e-4 * lambda * slope {
            step.point = Some((xt, ft, gt));
            return Ok(step);
        }
        let quad = -slope * lambda * lambda / (2.0 * (ft - fx - slope * lambda));
        lambda = quad.clamp(0.1 * lambda, 0.5 * lambda);
    }
    Ok(step)
}

/// Keskar sharpness by L-BFGS-B, as in Keskar et al.'s original code: maximise the full-set
/// loss over the box C_ε around θ (minimise −L), from θ, with `cfg.max_iter` iterations (10 in
/// the paper's ResNet code). The largest loss evaluated is `max_loss`. The loss and gradient are
/// computed in `T`; the optimiser works in f64.
pub fn sharpness_lbfgsb<T: Real>(
    obj: &mut dyn Objective<T>,
    theta: &[T],
    epsilon: f64,
    cfg: &LbfgsbConfig,
) -> Result<(Sharpness, LbfgsbReport), FlatnessError> {
    check_theta(obj, theta)?;
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(FlatnessError::setting(
            "epsilon",
            epsilon,
            "epsilon must be > 0 (the paper uses 1e-4)",
        ));
    }
    let start = Instant::now();
    let all = all_examples(obj.n_examples());
    let theta64: Vec<f64> = theta.iter().map(|t| t.to_f64()).collect();
    let (lo, hi) = keskar_box(&theta64, epsilon);
    let mut wt = theta.to_vec();
    let mut gt = vec![T::ZERO; theta.len()];
    let mut max_loss = f64::NEG_INFINITY;
    let mut neg_loss = |x: &[f64], g: &mut [f64]| {
        for (w, &v) in wt.iter_mut().zip(x) {
            *w = T::from_f64(v);
        }
        let loss = obj.loss_grad(&wt, &all, &mut gt).to_f64();
        for (gi, &v) in g.iter_mut().zip(&gt) {
            *gi = -v.to_f64();
        }
        max_loss = max_loss.max(loss);
        -loss
    };
    let mut x = theta64.clone();
    let report = minimize(&mut neg_loss, &mut x, &lo, &hi, cfg)?;
    let loss0 = obj.loss(theta, &all).to_f64();
    let sharp = Sharpness::new(
        loss0,
        max_loss,
        report.iterations,
        report.evaluations,
        start.elapsed().as_secs_f64(),
    );
    Ok((sharp, report))
}
