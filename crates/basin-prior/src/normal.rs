//! The standard normal distribution, stable far into the tails: the density φ, the CDF Φ,
//! log Φ (`log_ndtr`), the inverse Mills ratio φ/Φ and the scaled complementary error
//! function erfcx(x) = exp(x²)·erfc(x).
//!
//! For z ≥ −3 these go through `libm::erfc`, which is accurate to about one ulp (log Φ down to
//! z = −36, where erfc keeps its relative accuracy and is 20× cheaper than the continued
//! fraction). Below that they use the Mills ratio R(x) = Φ(−x)/φ(x) from Laplace's continued
//! fraction R(x) = 1/(x + 1/(x + 2/(x + 3/(x + …)))), evaluated backwards with enough terms for full
//! double precision (60 terms at x = 3, checked against 50-digit mpmath values in
//! `tests/normal.rs`), so log Φ(z) = log φ(z) + log R(−z) never underflows.
//!
//! The quantile Φ⁻¹ ([`quantile`]) solves log Φ(x) = log p by Newton's method, which converges
//! monotonically because log Φ is increasing and concave.

use std::f64::consts::{FRAC_1_SQRT_2, PI, SQRT_2};

/// ½·ln(2π).
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Below this z, Φ and the inverse Mills ratio come from the continued fraction.
const TAIL: f64 = -3.0;
/// Below this z, log Φ comes from the continued fraction; above it from `erfc`, whose
/// relative accuracy holds until its value nears the smallest normal double (Φ(−36) ≈ 1e-284).
const LOG_TAIL: f64 = -36.0;

/// The Mills ratio R(x) = Φ(−x)/φ(x) for x ≥ 3, by Laplace's continued fraction.
fn mills_tail(x: f64) -> f64 {
    let terms = if x >= 6.0 {
        20
    } else if x >= 4.0 {
        40
    } else {
        60
    };
    let mut t = x;
    for k in (1..=terms).rev() {
        t = x + f64::from(k) / t;
    }
    1.0 / t
}

/// The standard normal density φ(z) = exp(−z²/2)/√(2π).
pub fn pdf(z: f64) -> f64 {
    log_pdf(z).exp()
}

/// log φ(z) = −z²/2 − ½·ln(2π).
pub fn log_pdf(z: f64) -> f64 {
    -0.5 * z * z - HALF_LN_2PI
}

/// The standard normal CDF Φ(z), accurate to a few ulps in relative terms for every z
/// (it underflows to 0 only below z ≈ −38.5).
pub fn cdf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z < TAIL {
        pdf(z) * mills_tail(-z)
    } else {
        0.5 * libm::erfc(-z * FRAC_1_SQRT_2)
    }
}

/// log Φ(z) (scipy's `log_ndtr`), finite and accurate for every finite z: −z²/2-sized for
/// very negative z, about −φ(z) for large positive z.
pub fn log_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z < LOG_TAIL {
        log_pdf(z) + mills_tail(-z).ln()
    } else if z > 0.0 {
        let q = 0.5 * libm::erfc(z * FRAC_1_SQRT_2);
        // log(1 − q) = −q − q²/2 − …: −q is exact to rounding below 1e-16.
        if q < 1e-16 { -q } else { (-q).ln_1p() }
    } else {
        (0.5 * libm::erfc(-z * FRAC_1_SQRT_2)).ln()
    }
}

/// The inverse Mills ratio φ(z)/Φ(z) = d log Φ(z)/dz, stable for every z (≈ −z for very
/// negative z, → 0 for large positive z).
pub fn inv_mills(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z < TAIL {
        1.0 / mills_tail(-z)
    } else {
        pdf(z) / cdf(z)
    }
}

/// The scaled complementary error function erfcx(x) = exp(x²)·erfc(x): finite and accurate
/// for all x ≥ 0 (≈ 1/(x√π) for large x); for negative x it grows like 2·exp(x²) and
/// overflows to +∞ below x ≈ −26.6.
pub fn erfcx(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 * exp_square(x) - erfcx(-x);
    }
    let t = SQRT_2 * x;
    if t >= -TAIL {
        // erfc(x) = 2Φ(−√2x) = 2φ(√2x)R(√2x) and exp(x²)·2φ(√2x) = √(2/π).
        (2.0 / PI).sqrt() * mills_tail(t)
    } else {
        exp_square(x) * libm::erfc(x)
    }
}

/// exp(x²) with x² split exactly into a rounded part and its error (one fused multiply-add),
/// so the result carries no extra error from rounding x².
fn exp_square(x: f64) -> f64 {
    let hi = x * x;
    let lo = x.mul_add(x, -hi);
    hi.exp() * (1.0 + lo)
}

/// The standard normal quantile Φ⁻¹(p) for p in [0, 1] (−∞ at 0, +∞ at 1, NaN outside),
/// accurate to a few ulps: for p ≤ ½ it solves log Φ(x) = log p by Newton's method from
/// x₀ = −√(−2 log p), which lies left of the root (Φ(x) ≤ exp(−x²/2) for x ≤ 0); on a
/// concave increasing function the iterates then rise monotonically to it. For p > ½,
/// Φ⁻¹(p) = −Φ⁻¹(1 − p), and 1 − p is exact there.
pub fn quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p > 0.5 {
        return -lower_quantile(1.0 - p);
    }
    lower_quantile(p)
}

/// Φ⁻¹(p) for 0 ≤ p ≤ ½ ([`quantile`]).
fn lower_quantile(p: f64) -> f64 {
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    let target = p.ln();
    let mut x = -(-2.0 * target).sqrt();
    for _ in 0..200 {
        let step = (target - log_cdf(x)) / inv_mills(x);
        // Monotone from the left: a step that is not forward is rounding noise at the root.
        if step.is_nan() || step <= 0.0 {
            break;
        }
        x += step;
        if step <= 4.0 * f64::EPSILON * x.abs().max(1e-300) {
            break;
        }
    }
    x
}
