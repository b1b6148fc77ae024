//! The Laplace approximation of log P(f) for the probit likelihood (Rasmussen & Williams 2006,
//! Algorithms 3.1–3.2): Newton's method finds the mode f̂ of log p(y | f) − ½fᵀK⁻¹f, and
//!
//! log q(y) = −½ aᵀf̂ + Σᵢ log Φ(yᵢf̂ᵢ) − Σᵢ log Lᵢᵢ,
//!
//! with f̂ = Ka, W = −∇∇ log p(y | f̂) (diagonal), B = I + W½KW½ = LLᵀ. It is here for
//! comparison with EP: for the probit likelihood it underestimates log P(f) (it ignores the
//! skew of the posterior).
//!
//! **The step likelihood has no Laplace approximation**: its log-likelihood is 0 or −∞, with
//! no finite mode and no curvature, so the estimator returns [`PriorError::LaplaceStep`] for
//! it (the step probability is the limit of the probit one on K/s² as s → 0, where Laplace
//! degrades without bound). Use EP for the step likelihood.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

use crate::PriorError;
use crate::estimate::{Estimate, Issue, Method, Outcome};
use crate::estimator::Estimator;
use crate::kernel_check::checked_kernel;
use crate::likelihood::{Likelihood, labels_pm1};
use crate::normal::{inv_mills, log_cdf};

/// Settings of the Laplace approximation.
#[derive(Debug, Clone, Copy)]
pub struct LaplaceConfig {
    /// Stop when the objective Ψ(f) = log p(y | f) − ½fᵀK⁻¹f rises by less than this.
    pub tol: f64,
    /// The most Newton steps; reaching it gives `converged: false`.
    pub max_iter: usize,
    /// Check that K has a Cholesky factor first (and add a named jitter if it has none).
    pub check_psd: bool,
}

impl Default for LaplaceConfig {
    fn default() -> Self {
        LaplaceConfig {
            tol: 1e-10,
            max_iter: 100,
            check_psd: true,
        }
    }
}

/// One Newton step's quantities at the current a (f = Ka).
struct NewtonState {
    f: Vec<f64>,
    a: Vec<f64>,
    psi: f64,
}

/// The Laplace approximation of log P(f) for ±1 or 0/1 labels (probit likelihood only):
/// [`LaplaceConfig`]'s [`Estimator`] impl.
fn laplace(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &LaplaceConfig,
) -> Result<Estimate, PriorError> {
    if likelihood == Likelihood::Step {
        return Err(PriorError::LaplaceStep);
    }
    let y = labels_pm1(labels)?;
    let n = y.len();
    let (k, jitter) = checked_kernel(kernel, n, cfg.check_psd)?;
    let mut st = NewtonState {
        f: vec![0.0; n],
        a: vec![0.0; n],
        psi: -(n as f64) * std::f64::consts::LN_2,
    };
    let (mut converged, mut iters) = (false, 0);
    while iters < cfg.max_iter {
        iters += 1;
        let next = newton_step(&k, &y, &st)?;
        let gain = next.psi - st.psi;
        st = next;
        if gain.abs() < cfg.tol {
            converged = true;
            break;
        }
    }
    let (w, _) = derivatives(&y, &st.f);
    let log_l = half_logdet_b(&k, &w)?;
    let log_lik: f64 = y.iter().zip(&st.f).map(|(yi, fi)| log_cdf(yi * fi)).sum();
    let quad: f64 = st.a.iter().zip(&st.f).map(|(a, f)| a * f).sum();
    Ok(Estimate {
        log_p: -0.5 * quad + log_lik - log_l,
        std_err: None,
        converged,
        iterations: iters,
        method: Method::Laplace,
        likelihood,
        jitter,
    })
}

impl Estimator for LaplaceConfig {
    /// The Laplace approximation reports nothing beyond its estimate.
    type Diagnostics = ();

    /// The Laplace approximation with these settings (module docs); Newton's method stopped
    /// at `max_iter` has the issue [`Issue::LaplaceNotConverged`].
    fn estimate(
        &self,
        kernel: MatRef<'_, f64>,
        labels: &[f64],
        likelihood: Likelihood,
    ) -> Result<Outcome<()>, PriorError> {
        let estimate = laplace(kernel, labels, likelihood, self)?;
        let issues = if estimate.converged {
            Vec::new()
        } else {
            vec![Issue::LaplaceNotConverged {
                steps: estimate.iterations,
            }]
        };
        Ok(Outcome {
            estimate,
            diagnostics: (),
            issues,
        })
    }
}

/// W = −∇∇ log Φ(y f) and ∇ log Φ(y f), elementwise.
fn derivatives(y: &[f64], f: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut w = Vec::with_capacity(y.len());
    let mut g = Vec::with_capacity(y.len());
    for (&yi, &fi) in y.iter().zip(f) {
        let z = yi * fi;
        let r = inv_mills(z);
        g.push(yi * r);
        w.push(r * (z + r));
    }
    (w, g)
}

/// ½ log|B| = Σ log Lᵢᵢ for B = I + W½KW½.
fn half_logdet_b(k: &Mat<f64>, w: &[f64]) -> Result<f64, PriorError> {
    let l = chol_b(k, w)?;
    Ok((0..w.len()).map(|i| l.L()[(i, i)].ln()).sum())
}

fn chol_b(k: &Mat<f64>, w: &[f64]) -> Result<faer::linalg::solvers::Llt<f64>, PriorError> {
    let n = w.len();
    let s: Vec<f64> = w.iter().map(|v| v.max(0.0).sqrt()).collect();
    let b = Mat::<f64>::from_fn(n, n, |i, j| {
        s[i] * s[j] * k[(i, j)] + if i == j { 1.0 } else { 0.0 }
    });
    b.llt(Side::Lower)
        .map_err(|_| PriorError::NotPsd { jitter: 0.0 })
}

/// One Newton step (R&W Algorithm 3.1, lines 4–9), halving the step while Ψ falls.
fn newton_step(k: &Mat<f64>, y: &[f64], st: &NewtonState) -> Result<NewtonState, PriorError> {
    let n = y.len();
    let (w, g) = derivatives(y, &st.f);
    let s: Vec<f64> = w.iter().map(|v| v.max(0.0).sqrt()).collect();
    let b_vec: Vec<f64> = (0..n).map(|i| w[i] * st.f[i] + g[i]).collect();
    let kb = k * Mat::<f64>::from_fn(n, 1, |i, _| b_vec[i]);
    let llt = chol_b(k, &w)?;
    let rhs = Mat::<f64>::from_fn(n, 1, |i, _| s[i] * kb[(i, 0)]);
    let sol = llt.solve(&rhs);
    let a_full: Vec<f64> = (0..n).map(|i| b_vec[i] - s[i] * sol[(i, 0)]).collect();
    let mut step = 1.0;
    loop {
        let a: Vec<f64> = (0..n)
            .map(|i| st.a[i] + step * (a_full[i] - st.a[i]))
            .collect();
        let f = k * Mat::<f64>::from_fn(n, 1, |i, _| a[i]);
        let f: Vec<f64> = (0..n).map(|i| f[(i, 0)]).collect();
        let psi = objective(y, &f, &a);
        if psi >= st.psi || step < 1e-6 {
            return Ok(NewtonState { f, a, psi });
        }
        step *= 0.5;
    }
}

/// Ψ = −½aᵀf + Σ log Φ(yᵢfᵢ).
fn objective(y: &[f64], f: &[f64], a: &[f64]) -> f64 {
    let quad: f64 = a.iter().zip(f).map(|(a, f)| a * f).sum();
    let ll: f64 = y.iter().zip(f).map(|(yi, fi)| log_cdf(yi * fi)).sum();
    -0.5 * quad + ll
}
