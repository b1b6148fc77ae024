//! The exact orthant probability of an equicorrelated Gaussian, a reference for EP at any N.
//!
//! For Σ = (1 − ρ)I + ρ11ᵀ (0 ≤ ρ < 1), z = √ρ·t + √(1−ρ)·ε with t, εᵢ ~ N(0, 1), so, given
//! t, the signs are independent and
//!
//! P(sign z = y) = ∫ φ(t) Φ(a t)^{n₊} Φ(−a t)^{n₋} dt,  a = √(ρ/(1 − ρ)),
//!
//! with n₊ labels +1 and n₋ labels −1. The log integrand g(t) is concave (a sum of concave
//! terms), so [`log_orthant_equicorr`] finds its mode t* by safeguarded Newton, the points
//! where g = g(t*) − 60 by bisection, and integrates exp(g − g(t*)) between them with the
//! trapezoid rule (exponentially accurate for such smooth, fast-decaying integrands), summing
//! in log space. P(sign z = y) does not change when z is scaled, so the same value is the
//! probit likelihood's on any kernel K with K + I = Σ/s, and the step likelihood's on Σ.

use crate::PriorError;
use crate::normal::{inv_mills, log_cdf, log_pdf};

/// Trapezoid nodes of [`log_orthant_equicorr`].
pub const NODES: usize = 8001;
/// How far below its maximum the log integrand is cut off (nats).
const CUTOFF: f64 = 60.0;

/// The log integrand g(t) and its first two derivatives.
struct Integrand {
    a: f64,
    n_pos: f64,
    n_neg: f64,
}

impl Integrand {
    fn g(&self, t: f64) -> f64 {
        log_pdf(t) + self.n_pos * log_cdf(self.a * t) + self.n_neg * log_cdf(-self.a * t)
    }

    /// (g′, g″).
    fn derivs(&self, t: f64) -> (f64, f64) {
        let (u, v) = (self.a * t, -self.a * t);
        let (ru, rv) = (inv_mills(u), inv_mills(v));
        let d1 = -t + self.a * (self.n_pos * ru - self.n_neg * rv);
        let d2 = -1.0 - self.a * self.a * (self.n_pos * ru * (u + ru) + self.n_neg * rv * (v + rv));
        (d1, d2)
    }

    /// The mode: g′ is decreasing, so bracket its root and refine by Newton inside the bracket.
    fn mode(&self) -> f64 {
        let (mut lo, mut hi) = (-1.0, 1.0);
        while self.derivs(lo).0 < 0.0 {
            lo *= 2.0;
        }
        while self.derivs(hi).0 > 0.0 {
            hi *= 2.0;
        }
        let mut t = 0.5 * (lo + hi);
        for _ in 0..200 {
            let (d1, d2) = self.derivs(t);
            if d1 == 0.0 {
                break;
            }
            if d1 > 0.0 {
                lo = t;
            } else {
                hi = t;
            }
            let newton = t - d1 / d2;
            t = if newton > lo && newton < hi {
                newton
            } else {
                0.5 * (lo + hi)
            };
            if hi - lo < 1e-15 * (1.0 + t.abs()) {
                break;
            }
        }
        t
    }

    /// The point on the side `dir` (±1) of `t0` where g = `level` (g is monotone there; since
    /// g″ ≤ −1, it is within √(2·CUTOFF)+1 of t0).
    fn crossing(&self, t0: f64, dir: f64, level: f64) -> f64 {
        let (mut near, mut far) = (t0, t0 + dir * ((2.0 * CUTOFF).sqrt() + 1.0));
        for _ in 0..200 {
            let mid = 0.5 * (near + far);
            if self.g(mid) > level {
                near = mid;
            } else {
                far = mid;
            }
        }
        far
    }
}

/// log P(sign z = y) for z ~ N(0, (1 − ρ)I + ρ11ᵀ) with `n_pos` labels +1 and `n_neg` labels −1
/// (module docs). ρ must be in [0, 1).
pub fn log_orthant_equicorr(rho: f64, n_pos: usize, n_neg: usize) -> Result<f64, PriorError> {
    if !(0.0..1.0).contains(&rho) {
        return Err(PriorError::Setting {
            owner: "the equicorrelated reference",
            setting: "ρ",
            need: "in [0, 1)",
            value: rho,
        });
    }
    let n = (n_pos + n_neg) as f64;
    if rho == 0.0 {
        return Ok(-n * std::f64::consts::LN_2);
    }
    let ig = Integrand {
        a: (rho / (1.0 - rho)).sqrt(),
        n_pos: n_pos as f64,
        n_neg: n_neg as f64,
    };
    let t_star = ig.mode();
    let g_star = ig.g(t_star);
    let lo = ig.crossing(t_star, -1.0, g_star - CUTOFF);
    let hi = ig.crossing(t_star, 1.0, g_star - CUTOFF);
    let h = (hi - lo) / (NODES - 1) as f64;
    let mut sum = 0.0;
    for k in 0..NODES {
        let w = if k == 0 || k == NODES - 1 { 0.5 } else { 1.0 };
        sum += w * (ig.g(lo + h * k as f64) - g_star).exp();
    }
    Ok(g_star + (h * sum).ln())
}

/// The kernel (1 − ρ)I + ρ11ᵀ scaled by `scale`, plus `add_diag` on the diagonal: with
/// scale = 1/s and add_diag = −1, the probit likelihood on it gives the orthant probability
/// of (1 − ρ)I + ρ11ᵀ (needs s ≤ 1 − ρ for it to be PSD).
pub fn equicorr_kernel(n: usize, rho: f64, scale: f64, add_diag: f64) -> faer::Mat<f64> {
    faer::Mat::from_fn(n, n, |i, j| {
        if i == j {
            scale + add_diag
        } else {
            scale * rho
        }
    })
}
