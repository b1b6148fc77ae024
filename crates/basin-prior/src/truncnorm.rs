//! The standard normal truncated to an interval [a, b] (a may be −∞, b may be +∞): the log of
//! its mass log P(a < Z < b) ([`log_prob_between`], Botev's `lnNpr`), its mean and variance
//! ([`moments`]), and a sampler ([`sample`]) that stays exact and fast far in the tails.
//!
//! * log P(a < Z < b) never subtracts two probabilities near 1: for a > 0 it is
//!   log Φ(−a) + log(1 − exp(log Φ(−b) − log Φ(−a))), mirrored for b < 0, and
//!   log(1 − Φ(a) − Φ(−b)) when the interval holds 0.
//! * On a one-sided interval [a, ∞) the mean is the inverse Mills ratio λ = φ(a)/Φ(−a) and the
//!   variance 1 − λ(λ − a). Above a = 3 that difference cancels (the variance is ≈ 1/a²), so
//!   it comes from Laplace's continued fraction Φ(−a)/φ(a) = 1/t₁, tₖ = a + k/tₖ₊₁:
//!   λ − a = 1/t₂ and 1 − λ/t₂ = (a + 4/t₃ − 3/t₄)/(t₂²t₃), with no cancellation.
//! * The sampler is Botev's (2017) `trandn`: Marsaglia's (1964) Rayleigh rejection when the
//!   interval lies beyond ±0.4 (acceptance ≥ 0.7 for any a ≥ 0.4, rising to 1 in the tail),
//!   rejection from the untruncated normal when the interval holds the centre and is wider
//!   than 2.05, and the inverse transform Φ⁻¹(Φ(a) + U(Φ(b) − Φ(a))) otherwise (computed
//!   with upper-tail probabilities when a ≥ 0, so nothing rounds to 1).
//!
//! * On a two-sided interval on one side of 0 the moments come from the one-sided ones at both
//!   ends (see `same_side_moments`); on an interval that holds 0, from
//!   1 + (aφ(a) − bφ(b))/Z − mean², which does not cancel there. Intervals much narrower than
//!   1/|a| still lose relative accuracy in the variance (it tends to width²/12 while the terms
//!   stay ~1/a²); it is clamped to stay positive. The orthant probabilities of
//!   [`crate::tilting`] use only one-sided intervals.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1, StandardNormal};

use crate::normal::{cdf, inv_mills, log_cdf, log_pdf, quantile};

/// Above this lower bound the one-sided variance comes from the continued fraction.
const CF_FROM: f64 = 3.0;
/// Intervals beyond ±`TAIL_SWITCH` are sampled by Rayleigh rejection (Botev's `a = 0.4`).
const TAIL_SWITCH: f64 = 0.4;
/// Central intervals wider than this are sampled by rejection from N(0, 1) (Botev's 2.05).
const WIDE: f64 = 2.05;

/// The mass, mean and variance of N(0, 1) truncated to an interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruncMoments {
    /// log P(a < Z < b).
    pub log_z: f64,
    /// E[Z | a < Z < b].
    pub mean: f64,
    /// Var[Z | a < Z < b] (> 0).
    pub var: f64,
}

/// log P(a < Z < b) for Z ~ N(0, 1) (Botev's `lnNpr`), finite for every non-empty interval
/// whose mass is above the smallest double's logarithm; −∞ when a ≥ b, NaN for a NaN bound.
pub fn log_prob_between(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a >= b {
        return f64::NEG_INFINITY;
    }
    if b == f64::INFINITY {
        return log_cdf(-a);
    }
    if a == f64::NEG_INFINITY {
        return log_cdf(b);
    }
    if a > 0.0 {
        let (pa, pb) = (log_cdf(-a), log_cdf(-b));
        pa + (-(pb - pa).exp()).ln_1p()
    } else if b < 0.0 {
        let (pa, pb) = (log_cdf(a), log_cdf(b));
        pb + (-(pa - pb).exp()).ln_1p()
    } else {
        (-cdf(a) - cdf(-b)).ln_1p()
    }
}

/// The mass, mean and variance of N(0, 1) truncated to (a, b), a < b; stable on one-sided
/// intervals at any distance (module docs).
pub fn moments(a: f64, b: f64) -> TruncMoments {
    if b == f64::INFINITY {
        return upper_tail_moments(a);
    }
    if a == f64::NEG_INFINITY {
        let m = upper_tail_moments(-b);
        return TruncMoments { mean: -m.mean, ..m };
    }
    if a > 0.0 {
        return same_side_moments(a, b);
    }
    if b < 0.0 {
        let m = same_side_moments(-b, -a);
        return TruncMoments { mean: -m.mean, ..m };
    }
    let log_z = log_prob_between(a, b);
    let pa = (log_pdf(a) - log_z).exp();
    let pb = (log_pdf(b) - log_z).exp();
    let mean = pa - pb;
    let var = 1.0 + a * pa - b * pb - mean * mean;
    TruncMoments {
        log_z,
        mean,
        var: var.max(f64::MIN_POSITIVE),
    }
}

/// [`moments`] on (a, b) with 0 < a < b < ∞, from the one-sided moments at a and at b:
/// with r = Φ(−b)/Φ(−a) and q = 1 − r,
/// mean = (λₐ − rλ_b)/q and var = (vₐ − rv_b)/q − r(λ_b − λₐ)²/q², which does not cancel
/// the way 1 + (aφ(a) − bφ(b))/Z − mean² does far out.
fn same_side_moments(a: f64, b: f64) -> TruncMoments {
    let (ta, tb) = (upper_tail_moments(a), upper_tail_moments(b));
    let log_r = tb.log_z - ta.log_z;
    let r = log_r.exp();
    let q = -log_r.exp_m1();
    let mean = (ta.mean - r * tb.mean) / q;
    let gap = tb.mean - ta.mean;
    let var = (ta.var - r * tb.var) / q - r * gap * gap / (q * q);
    TruncMoments {
        log_z: ta.log_z + (-r).ln_1p(),
        mean,
        var: var.max(f64::MIN_POSITIVE),
    }
}

/// [`moments`] on [a, ∞).
fn upper_tail_moments(a: f64) -> TruncMoments {
    if a == f64::NEG_INFINITY {
        return TruncMoments {
            log_z: 0.0,
            mean: 0.0,
            var: 1.0,
        };
    }
    let log_z = log_cdf(-a);
    if a <= CF_FROM {
        let lam = inv_mills(-a);
        return TruncMoments {
            log_z,
            mean: lam,
            var: (1.0 - lam * (lam - a)).max(f64::MIN_POSITIVE),
        };
    }
    let [t1, t2, t3, t4] = mills_fraction(a);
    TruncMoments {
        log_z,
        mean: t1,
        var: (a + 4.0 / t3 - 3.0 / t4) / (t2 * t2 * t3),
    }
}

/// The first four convergents' tails t₁ … t₄ of Laplace's continued fraction
/// Φ(−a)/φ(a) = 1/t₁, tₖ = a + k/tₖ₊₁, for a > 3, with as many terms as `normal.rs` uses for
/// full double precision.
fn mills_fraction(a: f64) -> [f64; 4] {
    let terms: u32 = if a >= 6.0 {
        20
    } else if a >= 4.0 {
        40
    } else {
        60
    };
    let mut t = a;
    let mut out = [0.0; 4];
    for k in (1..=terms).rev() {
        t = a + f64::from(k) / t;
        if k <= 4 {
            out[k as usize - 1] = t;
        }
    }
    out
}

/// One draw of Z ~ N(0, 1) conditioned on a < Z < b (module docs for the method). An empty
/// interval (a ≥ b) or a NaN bound gives NaN, which the caller's log weights carry to its
/// result, rather than a panic or an endless rejection loop; a = b = ±∞ gives that infinity.
pub fn sample<R: Rng + ?Sized>(a: f64, b: f64, rng: &mut R) -> f64 {
    if a.is_nan() || b.is_nan() || a > b {
        return f64::NAN;
    }
    if a == b {
        return if a.is_infinite() { a } else { f64::NAN };
    }
    if a > TAIL_SWITCH {
        rayleigh_tail(a, b, rng)
    } else if b < -TAIL_SWITCH {
        -rayleigh_tail(-b, -a, rng)
    } else if b - a > WIDE {
        loop {
            let z: f64 = StandardNormal.sample(rng);
            if z > a && z < b {
                return z;
            }
        }
    } else {
        inverse_transform(a, b, rng)
    }
}

/// Marsaglia's rejection from the Rayleigh tail for 0 < a < b ≤ ∞: propose X with density
/// ∝ x·exp(−x²/2) on [a, b] (X²/2 − a²/2 is a truncated Exp(1), drawn by inversion) and accept
/// with probability a/X, i.e. when V²·X²/2 ≤ a²/2 (`x` below is X²/2).
fn rayleigh_tail<R: Rng + ?Sized>(a: f64, b: f64, rng: &mut R) -> f64 {
    let c = 0.5 * a * a;
    if b == f64::INFINITY {
        // Untruncated: X²/2 − a²/2 ~ Exp(1), by the ziggurat.
        loop {
            let e: f64 = Exp1.sample(rng);
            let x = c + e;
            let v: f64 = rng.random();
            if v * v * x <= c {
                return (2.0 * x).sqrt();
            }
        }
    }
    let f = (c - 0.5 * b * b).exp_m1();
    loop {
        let u: f64 = rng.random();
        let x = c - (u * f).ln_1p();
        let v: f64 = rng.random();
        if v * v * x <= c {
            return (2.0 * x).sqrt();
        }
    }
}

/// Φ⁻¹(Φ(a) + U(Φ(b) − Φ(a))), through upper-tail probabilities when a ≥ 0, kept in [a, b]
/// (a < b, neither NaN: checked by [`sample`]).
fn inverse_transform<R: Rng + ?Sized>(a: f64, b: f64, rng: &mut R) -> f64 {
    let u: f64 = rng.random();
    let x = if a >= 0.0 {
        let (qa, qb) = (cdf(-a), cdf(-b));
        -quantile(qa - u * (qa - qb))
    } else {
        let (pa, pb) = (cdf(a), cdf(b));
        quantile(pa + u * (pb - pa))
    };
    // max/min, not clamp: they never panic (a NaN x, from a quantile at the edge, becomes a).
    x.max(a).min(b)
}
