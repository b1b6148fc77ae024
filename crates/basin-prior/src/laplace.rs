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
use crate::estimate::{Estimate, Issue, Method, Outcome, warn_issues};
use crate::estimator::Estimator;
use crate::kernel_check::{check_kernel, checked_kernel};
use crate::likelihood::{Likelihood, labels_pm1};
use crate::normal::{inv_mills, log_cdf};
use crate::scale::KernelScale;

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
/// [`LaplaceConfig`]'s [`Estimator`] impl. It runs on K/s ([`KernelScale`]) with the probit
/// noise v = 1/s, i.e. the likelihood Φ(y·g/√v) of g = z/√s; the Laplace approximation is
/// invariant under this linear change of variables, so the value is that of K with Φ(y·z),
/// computed at unit order whatever the kernel's scale. Returns the estimate and the noise's
/// share of the scaled kernel's largest variance.
fn laplace(
    kernel: MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    cfg: &LaplaceConfig,
) -> Result<(Estimate, f64), PriorError> {
    if likelihood == Likelihood::Step {
        return Err(PriorError::LaplaceStep);
    }
    let y = labels_pm1(labels)?;
    let n = y.len();
    check_kernel(kernel, n)?;
    let scale = KernelScale::of(kernel)?;
    let noise = scale.likelihood(likelihood).noise;
    let scaled = scale.scaled_kernel(kernel);
    let max_diag = (0..n).map(|i| scaled[(i, i)]).fold(0.0f64, f64::max);
    let noise_share = noise / max_diag;
    if n == 1 {
        // P(f) = Φ(0) = ½ exactly, whatever the kernel and the noise.
        let estimate = Estimate {
            log_p: -std::f64::consts::LN_2,
            std_err: None,
            converged: true,
            iterations: 0,
            method: Method::Laplace,
            likelihood,
            jitter: 0.0,
        };
        return Ok((estimate, noise_share));
    }
    let (k, jitter) = checked_kernel(scaled.as_ref(), n, cfg.check_psd)?;
    let lik = Probit::new(noise);
    let mut st = NewtonState {
        f: vec![0.0; n],
        a: vec![0.0; n],
        psi: -(n as f64) * std::f64::consts::LN_2,
    };
    let (mut converged, mut iters) = (false, 0);
    let mut run = || -> Result<f64, PriorError> {
        while iters < cfg.max_iter {
            iters += 1;
            let next = newton_step(&k, &y, &st, lik)?;
            let gain = next.psi - st.psi;
            st = next;
            if gain.abs() < cfg.tol {
                converged = true;
                break;
            }
        }
        let (w, _) = lik.derivatives(&y, &st.f);
        let log_l = half_logdet_b(&k, &w)?;
        let log_lik = lik.log_lik(&y, &st.f);
        let quad: f64 = st.a.iter().zip(&st.f).map(|(a, f)| a * f).sum();
        Ok(-0.5 * quad + log_lik - log_l)
    };
    let log_p = match run() {
        Ok(v) => v,
        // K has a Cholesky factor (checked), so B = I + W½KW½ fails only when W overflows
        // (a probit noise far below the kernel's scale): the value is lost, not the input bad.
        Err(PriorError::NotPsd { .. }) if cfg.check_psd => {
            converged = false;
            f64::NAN
        }
        Err(e) => return Err(e),
    };
    let estimate = Estimate {
        log_p,
        std_err: None,
        converged,
        iterations: iters,
        method: Method::Laplace,
        likelihood,
        jitter: jitter * scale.factor(),
    };
    Ok((estimate, noise_share))
}

/// Below this share of the kernel's largest variance, the probit noise is small enough for
/// the Laplace approximation to fall far below log P(f) ([`Issue::LaplaceNearStep`]). On 12
/// MNIST digits' NNGP kernel (`tests/scale_invariance.rs`) its error was −0.002 nats at a
/// share of 3, −0.01 at 0.3, −0.08 at 0.044, −0.28 at 0.015, −1.1 at 0.003 and −3.4 at
/// 0.0003; it grows with N.
pub const MIN_NOISE_SHARE: f64 = 0.01;

impl Estimator for LaplaceConfig {
    /// The Laplace approximation reports nothing beyond its estimate.
    type Diagnostics = ();

    /// The Laplace approximation with these settings (module docs); Newton's method stopped
    /// at `max_iter` has the issue [`Issue::LaplaceNotConverged`], a probit noise below
    /// [`MIN_NOISE_SHARE`] of the kernel's largest variance [`Issue::LaplaceNearStep`]. At
    /// N = 1 the value is exact (½).
    fn estimate(
        &self,
        kernel: MatRef<'_, f64>,
        labels: &[f64],
        likelihood: Likelihood,
    ) -> Result<Outcome<()>, PriorError> {
        let (mut estimate, noise_share) = laplace(kernel, labels, likelihood, self)?;
        let mut issues = Vec::new();
        if !estimate.converged {
            issues.push(Issue::LaplaceNotConverged {
                steps: estimate.iterations,
            });
        }
        if labels.len() > 1 && noise_share < MIN_NOISE_SHARE {
            issues.push(Issue::LaplaceNearStep { noise_share });
        }
        estimate.converged &= issues.is_empty();
        warn_issues("laplace", &issues);
        Ok(Outcome {
            estimate,
            diagnostics: (),
            issues,
        }
        .checked())
    }
}

/// The probit likelihood Φ(y·f/√v) with noise variance v > 0 (v = 1: Φ(y·f)).
#[derive(Debug, Clone, Copy)]
struct Probit {
    /// v.
    noise: f64,
    /// √v.
    sd: f64,
}

impl Probit {
    fn new(noise: f64) -> Self {
        Probit {
            noise,
            sd: noise.sqrt(),
        }
    }

    /// Σᵢ log Φ(yᵢfᵢ/√v).
    fn log_lik(self, y: &[f64], f: &[f64]) -> f64 {
        y.iter()
            .zip(f)
            .map(|(yi, fi)| log_cdf(yi * fi / self.sd))
            .sum()
    }

    /// W = −∇∇ log Φ(y f/√v) and ∇ log Φ(y f/√v), elementwise: with t = y f/√v and
    /// r = φ(t)/Φ(t), ∇ = y r/√v and W = r(t + r)/v.
    fn derivatives(self, y: &[f64], f: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut w = Vec::with_capacity(y.len());
        let mut g = Vec::with_capacity(y.len());
        for (&yi, &fi) in y.iter().zip(f) {
            let t = yi * fi / self.sd;
            let r = inv_mills(t);
            g.push(yi * r / self.sd);
            w.push(r * (t + r) / self.noise);
        }
        (w, g)
    }
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
fn newton_step(
    k: &Mat<f64>,
    y: &[f64],
    st: &NewtonState,
    lik: Probit,
) -> Result<NewtonState, PriorError> {
    let n = y.len();
    let (w, g) = lik.derivatives(y, &st.f);
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
        let psi = objective(y, &f, &a, lik);
        if psi >= st.psi || step < 1e-6 {
            return Ok(NewtonState { f, a, psi });
        }
        step *= 0.5;
    }
}

/// Ψ = −½aᵀf + Σ log Φ(yᵢfᵢ/√v).
fn objective(y: &[f64], f: &[f64], a: &[f64], lik: Probit) -> f64 {
    let quad: f64 = a.iter().zip(f).map(|(a, f)| a * f).sum();
    -0.5 * quad + lik.log_lik(y, f)
}
