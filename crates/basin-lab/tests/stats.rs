//! The correlation statistics against SciPy 1.17.1 (`scipy.stats.pearsonr`, `spearmanr`,
//! `kendalltau` (τ-b) and `numpy.percentile`), computed on the same data with:
//!
//! ```python
//! import numpy as np, scipy.stats as st
//! st.pearsonr(x, y)[0], st.spearmanr(x, y)[0], st.kendalltau(x, y)[0]
//! np.percentile([1, 2, 4, 8, 16], [2.5, 97.5])
//! ```
//!
//! Tolerance: 1e-14 absolute (the coefficients are sums of a few dozen terms).

use basin_lab::stats::{correlations, kendall_tau_b, mid_ranks, pearson, percentile, spearman};

const TOL: f64 = 1e-14;

/// Test errors against log P(f)-like values, with ties in both.
const X: [f64; 12] = [
    0.12, 0.35, 0.35, 0.8, 0.41, 0.9, 0.05, 0.62, 0.62, 0.62, 0.33, 0.71,
];
const Y: [f64; 12] = [
    -310.5, -402.0, -398.25, -640.0, -455.5, -700.125, -290.0, -512.0, -530.5, -512.0, -380.0,
    -650.0,
];

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("defined");
    assert!((a - b).abs() < TOL, "{a} vs {b}");
}

#[test]
fn coefficients_match_scipy_with_ties() {
    close(pearson(&X, &Y), -0.9789049064885563);
    close(spearman(&X, &Y), -0.9858903445580492);
    close(kendall_tau_b(&X, &Y), -0.9451456227158638);
    let (x2, y2) = (
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 8.0],
    );
    close(pearson(&x2, &y2), 0.9254843048684035);
    close(spearman(&x2, &y2), 0.9221722216732094);
    close(kendall_tau_b(&x2, &y2), 0.7637626158259733);
}

#[test]
fn mid_ranks_and_percentiles() {
    assert_eq!(mid_ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    let v = [1.0, 2.0, 4.0, 8.0, 16.0];
    assert!((percentile(&v, 0.025) - 1.1).abs() < TOL);
    assert!((percentile(&v, 0.975) - 15.2).abs() < 1e-13);
}

#[test]
fn undefined_coefficients_are_none() {
    assert_eq!(pearson(&[1.0], &[2.0]), None);
    assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    // A constant whose computed mean is off by rounding (0.1 × 3 / 3 ≠ 0.1) is still constant.
    assert_eq!(pearson(&[0.1, 0.1, 0.1], &[1.0, 2.0, 4.0]), None);
    assert_eq!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]), None);
    assert_eq!(kendall_tau_b(&[1.0, 2.0], &[5.0, 5.0]), None);
    assert_eq!(pearson(&[1.0, 2.0], &[1.0]), None);
    let c = correlations(&[1.0, 1.0], &[1.0, 2.0], 100, 1);
    assert!(c.pearson.is_none() && c.ci95.is_empty());
}

/// The bootstrap intervals contain the point estimates, are reproducible per seed, and narrow
/// as the sample grows.
#[test]
fn bootstrap_intervals() {
    let c = correlations(&X, &Y, 2000, 7);
    assert_eq!(c.n, 12);
    for (name, point) in [
        ("pearson", c.pearson),
        ("spearman", c.spearman),
        ("kendall", c.kendall),
    ] {
        let ci = c.ci95[name];
        let p = point.unwrap();
        assert!(
            ci.lo <= p && p <= ci.hi && ci.hi <= 1.0 && ci.lo >= -1.0,
            "{name} {ci:?}"
        );
    }
    assert_eq!(c, correlations(&X, &Y, 2000, 7));
    assert_ne!(c.ci95, correlations(&X, &Y, 2000, 8).ci95);
    // y = x + noise: the interval for 400 pairs is narrower than for 20.
    let xs: Vec<f64> = (0..400).map(|i| (i as f64 * 0.37).sin()).collect();
    let ys: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| x + 0.5 * (i as f64 * 1.91).cos())
        .collect();
    let width = |n: usize| {
        let ci = correlations(&xs[..n], &ys[..n], 500, 3).ci95["pearson"];
        ci.hi - ci.lo
    };
    assert!(width(400) < 0.5 * width(20), "{} {}", width(400), width(20));
}
