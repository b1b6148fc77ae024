//! The analytic NNGP kernel against the golden kernels of `fixtures/gp`, written by
//! `bench/peers/gp/golden.py` (numpy, checked against neural_tangents to 2.7e-15): two hidden
//! ReLU layers, σ_w² = 2, σ_b² = 1, on the first 64 and 300 MNIST digits, with X = milli / 1000
//! in f64.

use std::path::PathBuf;

use basin_data::npy::{self, NpyData};
use basin_nn::{Activation, FcnSpec};
use basin_prior::kernel::{KernelSpec, nngp, nngp_f64};
use faer::Mat;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gp")
        .join(name)
}

/// X (n × 784, row-major) = milli / 1000 in f64, as the golden README prescribes.
fn inputs(n: usize) -> Vec<f64> {
    let a = npy::read(&fixture(&format!("X_{n}_milli_u16.npy"))).unwrap();
    assert_eq!(a.shape, [n, 784]);
    let NpyData::U16(milli) = a.data else {
        panic!("X_{n}_milli_u16.npy is not uint16")
    };
    milli.iter().map(|&m| f64::from(m) / 1000.0).collect()
}

fn golden(n: usize) -> Vec<f64> {
    let a = npy::read(&fixture(&format!("K_{n}.npy"))).unwrap();
    assert_eq!(a.shape, [n, n]);
    a.data.to_f64()
}

fn paper_spec() -> FcnSpec {
    FcnSpec::paper(784)
}

/// The largest relative difference `|K − G| / |G|` over all entries (G is row-major).
fn max_rel(k: &Mat<f64>, g: &[f64]) -> f64 {
    let n = k.nrows();
    let mut worst = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            let want = g[i * n + j];
            worst = worst.max((k[(i, j)] - want).abs() / want.abs());
        }
    }
    worst
}

#[test]
fn matches_golden_k64_and_k300_to_1e_12_relative() {
    for n in [64, 300] {
        let k = nngp_f64(&paper_spec(), &inputs(n), n).unwrap();
        assert_eq!((k.nrows(), k.ncols()), (n, n));
        let err = max_rel(&k, &golden(n));
        eprintln!("N = {n}: max relative error {err:e}");
        assert!(err < 1e-12, "N = {n}: max relative error {err:e}");
    }
}

#[test]
fn diagonal_is_exactly_the_recursion_of_the_variance() {
    // K_ii ← 1 + K_ii, twice, from K⁰_ii = 1 + 2|x|²/784: the golden sets it exactly so.
    let x = inputs(64);
    let k = nngp_f64(&paper_spec(), &x, 64).unwrap();
    let g = golden(64);
    for i in 0..64 {
        assert!((k[(i, i)] - g[i * 64 + i]).abs() <= 4.0 * f64::EPSILON * g[i * 64 + i]);
    }
    let spec = KernelSpec::from(&paper_spec());
    let d = spec.diagonal(&x, 64).unwrap();
    assert!((0..64).all(|i| d[i] == k[(i, i)]));
}

#[test]
fn is_exactly_symmetric() {
    let k = nngp_f64(&paper_spec(), &inputs(300), 300).unwrap();
    for i in 0..300 {
        for j in 0..i {
            assert_eq!(k[(i, j)].to_bits(), k[(j, i)].to_bits(), "({i}, {j})");
        }
    }
}

#[test]
fn f32_inputs_agree_to_f32_input_rounding() {
    // The f32 entry point rounds the inputs to f32 (relative 6e-8); the kernel moves by
    // about as much.
    let x = inputs(64);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let k = nngp(&paper_spec(), &x32, 64).unwrap();
    let err = max_rel(&k, &golden(64));
    assert!(err < 1e-6, "{err:e}");
    assert!(err > 0.0, "f32 rounding of milli/1000 should show");
}

#[test]
fn cross_kernel_blocks_match_the_full_kernel() {
    let n = 300;
    let x = inputs(n);
    let spec = KernelSpec::from(&paper_spec());
    let full = spec.kernel(&x, n).unwrap();
    let (a, b) = (100, 200);
    let cross = spec.cross(&x[..a * 784], a, &x[a * 784..], b).unwrap();
    assert_eq!((cross.nrows(), cross.ncols()), (a, b));
    for i in 0..a {
        for j in 0..b {
            let want = full[(i, a + j)];
            // Same arithmetic up to the order of the Gram matrix's sums.
            assert!((cross[(i, j)] - want).abs() <= 1e-13 * want, "({i}, {j})");
        }
    }
    assert_eq!(spec.activation, Activation::Relu);
}

#[test]
fn row_major_entry_point_is_the_same_kernel() {
    let n = 300;
    let x = inputs(n);
    let spec = KernelSpec::from(&paper_spec());
    let (k, flat) = (
        spec.kernel(&x, n).unwrap(),
        spec.kernel_row_major(&x, n).unwrap(),
    );
    assert_eq!(flat.len(), n * n);
    assert!((0..n).all(|i| (0..n).all(|j| flat[i * n + j].to_bits() == k[(i, j)].to_bits())));
}
