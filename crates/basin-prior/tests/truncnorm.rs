//! The truncated standard normal against 60-digit mpmath values
//! (`fixtures/truncnorm_reference.py` wrote `fixtures/truncnorm_reference.txt`): log P(a < Z < b)
//! (Botev's lnNpr), the truncated mean and variance, and the normal quantile; and the sampler's
//! moments against those closed forms, in the tails and in the centre, for each of its three
//! methods.

use basin_prior::normal::{cdf, pdf, quantile};
use basin_prior::truncnorm::{log_prob_between, moments, sample};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn num(s: &str) -> f64 {
    match s {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse().expect("number"),
    }
}

/// The fixture's rows of one kind, as numbers.
fn rows(kind: &str) -> Vec<Vec<f64>> {
    include_str!("fixtures/truncnorm_reference.txt")
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(kind)).then(|| it.map(num).collect())
        })
        .collect()
}

/// |got − want| relative to |want|, or absolute below 1e-300 (underflowed references).
fn err(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else if want.abs() < 1e-300 {
        (got - want).abs()
    } else {
        (got - want).abs() / want.abs()
    }
}

#[test]
fn log_prob_between_matches_mpmath() {
    let r = rows("lnnpr");
    assert!(r.len() >= 36);
    for v in r {
        let (a, b, want) = (v[0], v[1], v[2]);
        let got = log_prob_between(a, b);
        // Relative 1e-13, but a narrow interval [a, a + w] far out loses ε·a/w to the
        // subtraction log(1 − exp(·)) (Botev's lnNpr has the same limit).
        let narrow = if a.is_finite() && b.is_finite() {
            f64::EPSILON * a.abs().max(b.abs()) / (b - a)
        } else {
            0.0
        };
        let tol = 1e-13 + 4.0 * narrow;
        assert!(
            err(got, want) < tol || (got - want).abs() < 1e-300,
            "lnNpr({a}, {b}) = {got}, mpmath {want} (rel {:e})",
            err(got, want)
        );
    }
    assert_eq!(log_prob_between(1.0, 1.0), f64::NEG_INFINITY);
    assert_eq!(log_prob_between(2.0, 1.0), f64::NEG_INFINITY);
}

#[test]
fn truncated_moments_match_mpmath() {
    for v in rows("moments") {
        let (a, b, mean, var) = (v[0], v[1], v[2], v[3]);
        let m = moments(a, b);
        let one_sided = a.is_infinite() || b.is_infinite();
        // One-sided: stable at any distance (the continued fraction above 3), 1e-12 relative.
        // Two-sided: intervals narrow against 1/|a| lose relative accuracy in the variance
        // (it tends to width²/12 while the terms it comes from stay ~1/(1 + a²)), by about
        // ε·(1 + max(a², b²))/(var·width).
        let scale = if one_sided {
            0.0
        } else {
            f64::EPSILON * (1.0 + a.abs().max(b.abs()).powi(2)) / (var * (b - a).min(1.0))
        };
        assert!(
            (m.mean - mean).abs() < 1e-12 * mean.abs().max(1e-300) + 1e-15 + 4.0 * scale * var,
            "mean on ({a}, {b}): {} vs {mean}",
            m.mean
        );
        assert!(
            err(m.var, var) < 1e-12 + 16.0 * scale,
            "variance on ({a}, {b}): {} vs {var} (rel {:e})",
            m.var,
            err(m.var, var)
        );
        assert!(err(m.log_z, log_prob_between(a, b)) < 1e-15);
    }
}

#[test]
fn quantile_matches_mpmath_and_inverts_cdf() {
    for v in rows("quantile") {
        let (p, want) = (v[0], v[1]);
        let got = quantile(p);
        assert!(
            (got - want).abs() < 1e-14 * want.abs().max(1.0),
            "Φ⁻¹({p}) = {got}, mpmath {want}"
        );
    }
    assert_eq!(quantile(0.0), f64::NEG_INFINITY);
    assert_eq!(quantile(1.0), f64::INFINITY);
    assert!(quantile(-0.1).is_nan() && quantile(1.5).is_nan() && quantile(f64::NAN).is_nan());
    for i in 0..400 {
        let x = -37.0 + 0.105 * f64::from(i);
        // Φ(x) carries a few ulps of relative error, which Φ⁻¹ turns into ε·Φ(x)/φ(x) in x
        // (large as Φ nears 1).
        let tol = 1e-13 * x.abs().max(1.0) + 8.0 * f64::EPSILON * cdf(x) / pdf(x);
        let back = quantile(cdf(x));
        assert!((back - x).abs() < tol, "Φ⁻¹(Φ({x})) = {back}");
    }
}

/// Sample mean and variance of n draws on (a, b), all checked to lie inside.
fn draw_moments(a: f64, b: f64, n: usize, seed: u64) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let xs: Vec<f64> = (0..n).map(|_| sample(a, b, &mut rng)).collect();
    assert!(
        xs.iter().all(|&x| x >= a && x <= b),
        "a draw left ({a}, {b})"
    );
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    (mean, var)
}

/// Each method of the sampler (Rayleigh rejection beyond ±0.4, rejection from N(0, 1) on wide
/// central intervals, the inverse transform on narrow central ones), far tails included: the
/// sample mean within 4.5 standard errors of the exact mean, the sample variance within 4.5
/// standard errors of the exact variance (its standard error from the exact fourth central
/// moment bound var²·(κ − 1)/n with κ ≤ 3 for these log-concave laws, so ≤ var·√(2/n)).
#[test]
fn sampler_moments_match_closed_forms_in_the_tails() {
    let n = 200_000;
    let cases = [
        (8.0, f64::INFINITY),
        (30.0, f64::INFINITY),
        (f64::NEG_INFINITY, -12.0),
        (5.0, 5.5),
        (10.0, 10.1),
        (0.41, f64::INFINITY),
        (0.39, f64::INFINITY),
        (f64::NEG_INFINITY, 0.3),
        (-1.0, 2.0),
        (-0.3, 0.5),
        (0.2, 1.5),
        (-2.0, -1.5),
        (-0.001, 0.001),
    ];
    for (i, (a, b)) in cases.into_iter().enumerate() {
        let exact = moments(a, b);
        let (m, v) = draw_moments(a, b, n, 100 + i as u64);
        let se_mean = (exact.var / n as f64).sqrt();
        let se_var = exact.var * (2.0 / n as f64).sqrt();
        eprintln!(
            "({a}, {b}): mean {m} vs {} ({:.1} s.e.), var {v} vs {} ({:.1} s.e.)",
            exact.mean,
            (m - exact.mean) / se_mean,
            exact.var,
            (v - exact.var) / se_var
        );
        assert!((m - exact.mean).abs() < 4.5 * se_mean, "mean on ({a}, {b})");
        assert!(
            (v - exact.var).abs() < 4.5 * se_var,
            "variance on ({a}, {b})"
        );
    }
}

/// The median of the draws: about half fall below the exact median (from the upper-tail
/// quantile), within 4.5 binomial standard errors, at 30 and at −0.2..0.9.
#[test]
fn sampler_median_matches() {
    let n = 100_000;
    for (a, b) in [(30.0, f64::INFINITY), (-0.2, 0.9), (1.0, 1.2)] {
        let med = if a > 0.0 {
            -quantile(0.5 * (cdf(-a) + cdf(-b)))
        } else {
            quantile(0.5 * (cdf(a) + cdf(b)))
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let below = (0..n).filter(|_| sample(a, b, &mut rng) < med).count();
        let z = (below as f64 - 0.5 * n as f64) / (0.5 * (n as f64).sqrt());
        assert!(
            z.abs() < 4.5,
            "({a}, {b}): {below} of {n} below the median {med}"
        );
    }
}

/// The sampler never panics or loops forever: a NaN bound or an empty interval gives NaN
/// (before, a NaN lower bound reached `f64::clamp` with NaN and panicked, and a NaN upper
/// bound above the tail switch looped forever); a = b = ±∞ gives that infinity; a
/// degenerate interval at a finite point gives NaN.
#[test]
fn sampler_never_panics_or_hangs_on_nan_or_empty_intervals() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let inf = f64::INFINITY;
    for (a, b) in [
        (f64::NAN, inf),
        (f64::NAN, 1.0),
        (1.0, f64::NAN),
        (-1.0, f64::NAN),
        (f64::NAN, f64::NAN),
        (2.0, 1.0),
        (1.0, 1.0),
    ] {
        let x = sample(a, b, &mut rng);
        assert!(x.is_nan() || x.is_infinite(), "({a}, {b}): {x}");
    }
    assert!(sample(2.0, 1.0, &mut rng).is_nan());
    assert_eq!(sample(inf, inf, &mut rng), inf);
    assert_eq!(sample(-inf, -inf, &mut rng), -inf);
    // Intervals far in the tails and at the edge of the quantile still land inside.
    for (a, b) in [
        (-40.0, -39.0),
        (39.0, 40.0),
        (-1e-300, 1e-300),
        (0.0, 1e-300),
    ] {
        let x = sample(a, b, &mut rng);
        assert!((a..=b).contains(&x), "({a}, {b}): {x}");
    }
}
