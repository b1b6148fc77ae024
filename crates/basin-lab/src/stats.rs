//! Correlation statistics between a measure and test error: Pearson's r, Spearman's ρ (Pearson
//! on mid-ranks, so ties are handled as SciPy does), Kendall's τ-b (with its tie correction),
//! and percentile bootstrap 95% confidence intervals for each.
//!
//! Each coefficient is `None` when it is undefined: fewer than two pairs, a constant variable
//! or a non-finite value.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Pearson's product-moment correlation of `x` and `y`.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 || !all_finite(x) || !all_finite(y) {
        return None;
    }
    // A constant variable has no correlation; its deviations from the computed mean would be
    // rounding noise, not zero.
    if is_constant(x) || is_constant(y) {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (da, db) = (a - mx, b - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation: Pearson's r of the mid-ranks (tied values share the mean of
/// their ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || !all_finite(x) || !all_finite(y) {
        return None;
    }
    pearson(&mid_ranks(x), &mid_ranks(y))
}

/// Kendall's τ-b: (concordant − discordant) / √((n₀ − n₁)(n₀ − n₂)), where n₀ counts all pairs
/// and n₁, n₂ the pairs tied in x and in y. O(n²), fine for the thousands of runs of an
/// experiment.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let (mut s, mut pairs, mut tied_x, mut tied_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
            pairs += 1;
            tied_x += i64::from(dx == 0.0);
            tied_y += i64::from(dy == 0.0);
            s += (sign(dx) * sign(dy)) as i64;
        }
    }
    let denom = ((pairs - tied_x) as f64 * (pairs - tied_y) as f64).sqrt();
    (denom > 0.0).then(|| (s as f64 / denom).clamp(-1.0, 1.0))
}

fn sign(v: f64) -> i32 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

fn is_constant(v: &[f64]) -> bool {
    v.iter().all(|&a| a == v[0])
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// The 1-based ranks of `v`, ties given the mean of the ranks they span.
pub fn mid_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = mid;
        }
        i = j + 1;
    }
    ranks
}

/// A percentile bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The lower end.
    pub lo: f64,
    /// The upper end.
    pub hi: f64,
}

/// The three coefficients with their bootstrap 95% intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correlations {
    /// Pairs used.
    pub n: usize,
    /// Pearson's r.
    pub pearson: Option<f64>,
    /// Spearman's ρ.
    pub spearman: Option<f64>,
    /// Kendall's τ-b.
    pub kendall: Option<f64>,
    /// Bootstrap 95% intervals, keyed `pearson`, `spearman`, `kendall` (absent where the
    /// coefficient is undefined).
    pub ci95: std::collections::BTreeMap<String, Interval>,
}

/// The three coefficients of `x` against `y` and percentile bootstrap 95% intervals from
/// `resamples` resamples of the pairs (ChaCha8 from `seed`). Resamples where a coefficient is
/// undefined (for example all one value) are skipped for it.
pub fn correlations(x: &[f64], y: &[f64], resamples: usize, seed: u64) -> Correlations {
    type Coef = fn(&[f64], &[f64]) -> Option<f64>;
    let coefs: [(&str, Coef); 3] = [
        ("pearson", pearson),
        ("spearman", spearman),
        ("kendall", kendall_tau_b),
    ];
    let n = x.len().min(y.len());
    let mut boot: Vec<Vec<f64>> = (0..3).map(|_| Vec::with_capacity(resamples)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut bx, mut by) = (vec![0.0; n], vec![0.0; n]);
    for _ in 0..if n >= 2 { resamples } else { 0 } {
        for k in 0..n {
            let i = rng.random_range(0..n);
            (bx[k], by[k]) = (x[i], y[i]);
        }
        for (samples, (_, f)) in boot.iter_mut().zip(&coefs) {
            samples.extend(f(&bx, &by));
        }
    }
    let mut ci95 = std::collections::BTreeMap::new();
    let point: Vec<Option<f64>> = coefs.iter().map(|(_, f)| f(&x[..n], &y[..n])).collect();
    for ((name, _), (samples, p)) in coefs.iter().zip(boot.iter_mut().zip(&point)) {
        if p.is_some() && samples.len() >= 2 {
            samples.sort_by(f64::total_cmp);
            ci95.insert(
                (*name).to_string(),
                Interval {
                    lo: percentile(samples, 0.025),
                    hi: percentile(samples, 0.975),
                },
            );
        }
    }
    Correlations {
        n,
        pearson: point[0],
        spearman: point[1],
        kendall: point[2],
        ci95,
    }
}

/// The `q`-quantile of sorted data, linearly interpolated (NumPy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match sorted.get(i + 1) {
        Some(&next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}
