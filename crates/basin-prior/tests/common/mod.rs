//! Helpers shared by the estimator tests: the golden GP fixtures (`fixtures/gp`, written by
//! `bench/peers/gp/golden.py`: NNGP kernels of MNIST digits and their labels) and label
//! patterns.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use basin_prior::PriorError;
use basin_prior::dispatch::Estimators;
use basin_prior::estimate::{Estimate, Method};
use basin_prior::estimator::Estimator;
use basin_prior::likelihood::Likelihood;
use faer::{Mat, MatRef};

/// The two-sided 99% quantile of Student's t with 7 degrees of freedom. An error bar from 8
/// replicates is itself uncertain, so an estimate's z-score against it has t₇ tails: checks
/// against exact values use this instead of 3 (with 4 replicates and 3, about one seed in ten
/// failed a two-check test by chance: t₃ tails).
#[allow(dead_code)]
pub const T99_7: f64 = 3.4995;

/// The values of `tests/fixtures/gp/<name>` as f64.
pub fn fixture(name: &str) -> Vec<f64> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gp")
        .join(name);
    basin_data::npy::read(&p).expect("fixture").data.to_f64()
}

/// The golden n × n kernel `K_<n>.npy`.
pub fn golden_kernel(n: usize) -> Mat<f64> {
    let v = fixture(&format!("K_{n}.npy"));
    Mat::from_fn(n, n, |i, j| v[i * n + j])
}

/// The golden labels of n points: the true ones, or with `flip` the flipped set.
pub fn golden_labels(n: usize, flip: bool) -> Vec<f64> {
    fixture(&format!("{}_{n}.npy", if flip { "yflip" } else { "y" }))
}

/// `n_pos` labels +1 followed by `n_neg` labels −1 (for the equicorrelated closed form).
pub fn pm_labels(n_pos: usize, n_neg: usize) -> Vec<f64> {
    (0..n_pos + n_neg)
        .map(|i| if i < n_pos { 1.0 } else { -1.0 })
        .collect()
}

/// Calibration of SMC's standard error over seeds 100..140 on the equicorrelated N = 24
/// orthant (ρ = 0.5, 14 positive and 10 negative labels, step), each run with `cfg(seed)`:
/// the z-scores (estimate − exact)/s.e., how many lie within 2, their mean and sd.
pub fn smc_calibration(
    cfg: impl Fn(u64) -> basin_prior::smc::SmcConfig,
) -> (Vec<f64>, usize, f64, f64) {
    use basin_prior::equicorr::{equicorr_kernel, log_orthant_equicorr};
    let truth = log_orthant_equicorr(0.5, 14, 10).unwrap();
    let k = equicorr_kernel(24, 0.5, 1.0, 0.0);
    let y = pm_labels(14, 10);
    let z: Vec<f64> = (100..140)
        .map(|seed| {
            let r = cfg(seed)
                .estimate(k.as_ref(), &y, Likelihood::Step)
                .unwrap();
            (r.estimate.log_p - truth) / r.estimate.std_err.unwrap()
        })
        .collect();
    let within = z.iter().filter(|v| v.abs() < 2.0).count();
    let mean = z.iter().sum::<f64>() / z.len() as f64;
    let sd = (z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (z.len() - 1) as f64).sqrt();
    eprintln!("calibration: {within}/40 within 2 s.e., mean z {mean:+.3}, sd z {sd:.3}");
    (z, within, mean, sd)
}

/// SMC with `cfg(seed)` on the golden N = 64 kernel: the same seed gives the same bits on 1
/// and 2 threads, another seed another value.
pub fn assert_smc_deterministic_across_threads(
    cfg: impl Fn(u64) -> basin_prior::smc::SmcConfig + Sync,
) {
    let k = golden_kernel(64);
    let y = golden_labels(64, false);
    let run = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                cfg(seed)
                    .estimate(k.as_ref(), &y, Likelihood::Step)
                    .unwrap()
            })
    };
    let (a, b) = (run(1, 9), run(2, 9));
    assert_eq!(a.estimate.log_p.to_bits(), b.estimate.log_p.to_bits());
    assert_eq!(
        a.diagnostics.log_z_replicates,
        b.diagnostics.log_z_replicates
    );
    assert_ne!(run(2, 10).estimate.log_p, a.estimate.log_p);
}

/// log P(f) by `method` with every estimator's default settings (the dispatch).
pub fn log_prior(
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Likelihood,
    method: Method,
) -> Result<Estimate, PriorError> {
    Estimators::default()
        .estimate(method, k, y, lik)
        .map(|o| o.estimate)
}

/// The 8 × 8 correlation matrix of the first 8 golden MNIST points (NNGP correlations about
/// 0.96) with its variables scaled by 10^(lo … hi), evenly in the exponent: a kernel whose
/// diagonal spans 2·(hi − lo) orders of magnitude and whose step P(f) is that of the
/// correlation matrix. Returns the kernel, the correlation matrix and the 8 golden labels.
pub fn spread_kernel(lo: f64, hi: f64) -> (Mat<f64>, Mat<f64>, Vec<f64>) {
    let n = 8;
    let k = golden_kernel(64);
    let r = Mat::from_fn(n, n, |i, j| k[(i, j)] / (k[(i, i)] * k[(j, j)]).sqrt());
    let d: Vec<f64> = (0..n)
        .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (n - 1) as f64))
        .collect();
    let spread = Mat::from_fn(n, n, |i, j| d[i] * r[(i, j)] * d[j]);
    (spread, r, golden_labels(64, false)[..n].to_vec())
}

/// A rank-deficient 8 × 8 kernel in which points 0 and 7 are the same input (rows and
/// columns equal: the golden kernel's first 7 points, the first repeated), with labels that
/// differ on them: z₀ = z₇ always, so P(f) = 0 under the step likelihood.
pub fn duplicate_point_kernel() -> (Mat<f64>, Vec<f64>) {
    let k = golden_kernel(64);
    let idx = [0, 1, 2, 3, 4, 5, 6, 0];
    let kd = Mat::from_fn(8, 8, |i, j| k[(idx[i], idx[j])]);
    let mut y: Vec<f64> = idx.iter().map(|&i| golden_labels(64, false)[i]).collect();
    y[7] = -y[0];
    (kd, y)
}
