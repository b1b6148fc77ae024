//! Helpers shared by the estimator tests: the golden GP fixtures (`fixtures/gp`, copied from
//! `shared/golden/gp`: NNGP kernels of MNIST digits and their labels) and label patterns.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use faer::Mat;

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
