//! The analytic NNGP kernel against closed forms and direct numerical integration, its
//! structure (symmetry, PSD, determinism across thread counts, blocking) and its errors.

use std::f64::consts::PI;

use basin_nn::{Activation, FcnSpec};
use basin_prior::PriorError;
use basin_prior::kernel::{KernelSpec, LayerScale, into_row_major, nngp, nngp_f64};
use faer::{Mat, Side};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `n × d` standard normal-ish points (uniform on [−1, 1)), row-major, from `seed`.
fn points(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn scale(sigma_w: f64, sigma_b: f64) -> LayerScale {
    LayerScale { sigma_w, sigma_b }
}

fn spec(d: usize, activation: Activation, layers: &[(f64, f64)]) -> KernelSpec {
    KernelSpec {
        input_dim: d,
        activation,
        layers: layers.iter().map(|&(w, b)| scale(w, b)).collect(),
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

#[test]
fn depth_zero_is_the_scaled_linear_kernel() {
    let (n, d) = (7, 5);
    let x = points(n, d, 1);
    let k = spec(d, Activation::Relu, &[(1.7, 0.3)])
        .kernel(&x, n)
        .unwrap();
    for i in 0..n {
        for j in 0..n {
            let want = 0.09 + 1.7 * 1.7 * dot(&x[i * d..][..d], &x[j * d..][..d]) / d as f64;
            assert!(rel(k[(i, j)], want) < 1e-14, "({i}, {j})");
        }
    }
}

#[test]
fn linear_activation_composes_affine_maps_with_per_layer_scales() {
    let (n, d) = (6, 4);
    let x = points(n, d, 2);
    let layers = [(1.2, 0.5), (0.8, 0.0), (2.0, 1.5)];
    let k = spec(d, Activation::Linear, &layers).kernel(&x, n).unwrap();
    for i in 0..n {
        for j in 0..n {
            let mut want = dot(&x[i * d..][..d], &x[j * d..][..d]) / d as f64;
            for (w, b) in layers {
                want = b * b + w * w * want;
            }
            assert!(rel(k[(i, j)], want) < 1e-14, "({i}, {j})");
        }
    }
}

#[test]
fn relu_of_identical_orthogonal_and_opposite_points() {
    let d = 4;
    // x0, a copy of it, an orthogonal point and the opposite point.
    let x = [
        1.0, 2.0, 0.0, -1.0, //
        1.0, 2.0, 0.0, -1.0, //
        2.0, -1.0, 3.0, 0.0, //
        -1.0, -2.0, 0.0, 1.0,
    ];
    // One hidden layer, no input bias: K⁰ = σ_w² x·x′/d, so θ is the angle between inputs.
    let (sw, sb) = (1.5f64, 0.7f64);
    let k = spec(d, Activation::Relu, &[(sw, 0.0), (sw, sb)])
        .kernel(&x, 4)
        .unwrap();
    let q = |i: usize| sw * sw * dot(&x[i * d..][..d], &x[i * d..][..d]) / d as f64;
    let (sb2, coef) = (sb * sb, sw * sw / (2.0 * PI));
    // Diagonal: σ_b² + σ_w² q / 2; identical points: the same.
    assert!(rel(k[(0, 0)], sb2 + 0.5 * sw * sw * q(0)) < 1e-15);
    assert!(rel(k[(0, 1)], k[(0, 0)]) < 1e-14);
    // θ = π/2: sin θ + (π − θ) cos θ = 1.
    assert!(rel(k[(0, 2)], sb2 + coef * (q(0) * q(2)).sqrt()) < 1e-14);
    // θ = π: the bracket vanishes.
    assert!(rel(k[(0, 3)], sb2) < 1e-14);
}

/// E[erf(u) erf(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by the trapezoid rule on
/// u = √a z₁, v = (c/√a) z₁ + √(b − c²/a) z₂ over [−9, 9]² (spectrally accurate here).
fn erf_expectation(a: f64, b: f64, c: f64) -> f64 {
    let (h, m) = (0.02, 450i32);
    let (su, r) = (a.sqrt(), c / a.sqrt());
    let s2 = (b - r * r).sqrt();
    let phi = |z: f64| (-0.5 * z * z).exp() / (2.0 * PI).sqrt();
    let mut total = 0.0;
    for i in -m..=m {
        let z1 = f64::from(i) * h;
        let (eu, w1) = (libm::erf(su * z1), phi(z1));
        let mut inner = 0.0;
        for j in -m..=m {
            let z2 = f64::from(j) * h;
            inner += phi(z2) * libm::erf(r * z1 + s2 * z2);
        }
        total += w1 * eu * inner;
    }
    total * h * h
}

#[test]
fn erf_matches_direct_numerical_integration() {
    let d = 3;
    let x = [0.9, -0.4, 1.3, 0.2, 0.8, -0.5];
    let (sw0, sb0, sw1, sb1) = (1.3f64, 0.4f64, 0.9f64, 0.6f64);
    let k = spec(d, Activation::Erf, &[(sw0, sb0), (sw1, sb1)])
        .kernel(&x, 2)
        .unwrap();
    let k0 =
        |i: usize, j: usize| sb0 * sb0 + sw0 * sw0 * dot(&x[i * d..][..d], &x[j * d..][..d]) / 3.0;
    let (a, b, c) = (k0(0, 0), k0(1, 1), k0(0, 1));
    let want_off = sb1 * sb1 + sw1 * sw1 * erf_expectation(a, b, c);
    let want_diag = sb1 * sb1 + sw1 * sw1 * erf_expectation(a, a, a * (1.0 - 1e-12));
    // The quadrature is good to ~1e-12; the closed form to a few ulps.
    assert!(
        rel(k[(0, 1)], want_off) < 1e-10,
        "{} vs {want_off}",
        k[(0, 1)]
    );
    assert!(
        rel(k[(0, 0)], want_diag) < 1e-10,
        "{} vs {want_diag}",
        k[(0, 0)]
    );
}

fn min_max_eigen(k: &Mat<f64>) -> (f64, f64) {
    let ev = k.self_adjoint_eigenvalues(Side::Lower).unwrap();
    (ev[0], ev[ev.len() - 1])
}

#[test]
fn kernels_are_symmetric_and_positive_semi_definite() {
    let (n, d) = (120, 10);
    let x = points(n, d, 3);
    for act in [Activation::Relu, Activation::Erf, Activation::Linear] {
        let k = spec(d, act, &[(1.4, 0.2), (1.1, 0.5), (1.6, 0.0), (1.0, 0.3)])
            .kernel(&x, n)
            .unwrap();
        for i in 0..n {
            for j in 0..i {
                assert_eq!(k[(i, j)].to_bits(), k[(j, i)].to_bits(), "{act} ({i}, {j})");
            }
        }
        // A covariance: no eigenvalue below round-off (1e-12 of the largest).
        let (lo, hi) = min_max_eigen(&k);
        assert!(lo > -1e-12 * hi, "{act}: eigenvalues in [{lo:e}, {hi:e}]");
    }
}

#[test]
fn blocks_and_mirror_agree_with_the_cross_kernel_across_many_blocks() {
    // 700 points: three column blocks, the last one partial.
    let (n, d) = (700, 9);
    let x = points(n, d, 4);
    let s = spec(d, Activation::Relu, &[(1.4, 1.0), (1.4, 1.0), (1.4, 1.0)]);
    let full = s.kernel(&x, n).unwrap();
    let cross = s.cross(&x, n, &x, n).unwrap();
    let mut worst = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            worst = worst.max(rel(full[(i, j)], cross[(i, j)]));
        }
    }
    // Only the Gram sums' order differs (and the diagonal, set from the variance recursion).
    assert!(worst < 1e-13, "{worst:e}");
}

#[test]
fn result_does_not_depend_on_the_number_of_threads() {
    let (n, d) = (600, 12);
    let x = points(n, d, 5);
    let s = spec(d, Activation::Erf, &[(1.2, 0.1), (1.3, 0.4)]);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| s.kernel(&x, n).unwrap())
    };
    let (one, three) = (run(1), run(3));
    assert!(
        (0..n).all(|j| (0..n).all(|i| one[(i, j)].to_bits() == three[(i, j)].to_bits())),
        "1 and 3 threads differ"
    );
}

#[test]
fn zero_points_without_bias_give_zeros_not_nan() {
    let d = 3;
    let x = [0.0, 0.0, 0.0, 1.0, -2.0, 0.5];
    for act in [Activation::Relu, Activation::Erf] {
        let k = spec(d, act, &[(1.0, 0.0), (1.0, 0.0)])
            .kernel(&x, 2)
            .unwrap();
        assert_eq!((k[(0, 0)], k[(0, 1)], k[(1, 0)]), (0.0, 0.0, 0.0), "{act}");
        assert!(k[(1, 1)] > 0.0);
    }
    // All-zero inputs with bias: the constant kernel of the biases.
    let k = spec(d, Activation::Relu, &[(1.0, 1.0)])
        .kernel(&[0.0; 6], 2)
        .unwrap();
    assert!((0..2).all(|i| (0..2).all(|j| k[(i, j)] == 1.0)));
}

#[test]
fn fcn_spec_gives_uniform_layers_and_the_f32_entry_widens_exactly() {
    let fcn = FcnSpec {
        input_dim: 3,
        hidden: vec![10, 20, 30],
        activation: Activation::Erf,
        sigma_w: 1.1,
        sigma_b: 0.2,
    };
    let s = KernelSpec::from(&fcn);
    assert_eq!((s.depth(), s.activation), (3, Activation::Erf));
    assert!(s.layers.iter().all(|l| *l == scale(1.1, 0.2)));
    // Inputs exactly representable in f32: both entry points agree bit for bit.
    let x = [0.5f32, -1.25, 2.0, 0.75, 0.0, -3.5];
    let wide: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let (a, b) = (
        nngp(&fcn, &x, 2).unwrap(),
        nngp_f64(&fcn, &wide, 2).unwrap(),
    );
    assert!((0..2).all(|i| (0..2).all(|j| a[(i, j)] == b[(i, j)])));
}

fn err_of(r: Result<Mat<f64>, PriorError>) -> PriorError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn bad_inputs_are_errors_that_say_what_to_fix() {
    let relu = spec(2, Activation::Relu, &[(1.4, 1.0), (1.4, 1.0)]);
    let cases: Vec<(PriorError, &str)> = vec![
        (err_of(relu.kernel(&[1.0, f64::NAN], 1)), "finite"),
        (
            err_of(relu.kernel(&[1.0, f64::INFINITY], 1)),
            "feature 1 of point 0",
        ),
        (err_of(relu.kernel(&[1.0, 2.0, 3.0], 2)), "row-major"),
        (err_of(relu.kernel(&[], 0)), "at least one row"),
        (err_of(relu.kernel(&[1e300, 1e300], 1)), "rescale"),
        (err_of(relu.cross(&[1.0, 2.0], 1, &[1.0], 1)), "x2"),
        (
            err_of(spec(2, Activation::Relu, &[(0.0, 1.0)]).kernel(&[1.0, 2.0], 1)),
            "sigma_w of layer 0",
        ),
        (
            err_of(spec(2, Activation::Relu, &[(1.0, 1.0), (1.0, -1.0)]).kernel(&[1.0, 2.0], 1)),
            "sigma_b of layer 1",
        ),
        (
            err_of(spec(2, Activation::Relu, &[(f64::NAN, 1.0)]).kernel(&[1.0, 2.0], 1)),
            "finite",
        ),
        (
            err_of(spec(2, Activation::Tanh, &[(1.0, 1.0), (1.0, 1.0)]).kernel(&[1.0, 2.0], 1)),
            "Monte Carlo",
        ),
        (
            err_of(spec(0, Activation::Relu, &[(1.0, 1.0)]).kernel(&[], 1)),
            "input dimension",
        ),
        (
            err_of(spec(2, Activation::Relu, &[]).kernel(&[1.0, 2.0], 1)),
            "at least one layer",
        ),
    ];
    for (err, needle) in cases {
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
    }
    let bad_fcn = FcnSpec {
        hidden: vec![40, 0],
        ..FcnSpec::paper(2)
    };
    let e = err_of(nngp(&bad_fcn, &[1.0, 2.0], 1));
    assert!(e.to_string().contains("widths must be positive"), "{e}");
    assert!(matches!(
        err_of(relu.kernel(&[1.0, 2.0, 3.0], 2)),
        PriorError::InputShape { .. }
    ));
    // tanh without hidden layers never reaches a tanh: the linear kernel of the inputs.
    let k = spec(2, Activation::Tanh, &[(1.0, 0.0)])
        .kernel(&[1.0, 2.0], 1)
        .unwrap();
    assert!(rel(k[(0, 0)], 2.5) < 1e-15);
}

#[test]
fn activation_names_round_trip() {
    for a in [
        Activation::Linear,
        Activation::Relu,
        Activation::Erf,
        Activation::Tanh,
    ] {
        assert_eq!(a.to_string().parse::<Activation>().unwrap(), a);
    }
    assert!(
        "sigmoid"
            .parse::<Activation>()
            .unwrap_err()
            .to_string()
            .contains("expected")
    );
}

#[test]
fn row_major_copy_transposes_rectangular_matrices() {
    for (rows, cols) in [(130, 70), (1, 200), (200, 1), (64, 64), (0, 3), (3, 0)] {
        let m = Mat::from_fn(rows, cols, |i, j| (i * 1000 + j) as f64);
        let v = into_row_major(m);
        let want: Vec<f64> = (0..rows)
            .flat_map(|i| (0..cols).map(move |j| (i * 1000 + j) as f64))
            .collect();
        assert_eq!(v, want, "{rows} × {cols}");
    }
}

#[test]
fn variances_outside_f64s_range_are_refused_naming_the_sigmas() {
    let (n, d) = (6, 4);
    let x = points(n, d, 3);
    let layers = |s: f64| [(s, s), (s, s), (s, s)];
    let err = spec(d, Activation::Relu, &layers(1e-200))
        .kernel(&x, n)
        .unwrap_err();
    assert!(
        matches!(err, basin_prior::PriorError::VarianceRange { ref at, .. } if at == "after layer 1"),
        "{err}"
    );
    assert!(err.to_string().contains("--sigma-w"), "{err}");
    // Each layer multiplies the variance by about σ_w²/2: 1e60 overflows in a deeper layer.
    let err = spec(d, Activation::Relu, &layers(1e60))
        .kernel(&x, n)
        .unwrap_err();
    assert!(
        matches!(err, basin_prior::PriorError::VarianceRange { ref at, .. } if at == "after layer 3"),
        "{err}"
    );
    let err = spec(d, Activation::Relu, &layers(1e200))
        .kernel(&x, n)
        .unwrap_err();
    assert!(err.to_string().contains("--sigma-w"), "{err}");
    // A zero input with no biases has variance 0 in every layer: in range.
    let mut x0 = x.clone();
    x0[..d].fill(0.0);
    let k = spec(d, Activation::Relu, &[(1.4, 0.0), (1.4, 0.0)])
        .kernel(&x0, n)
        .unwrap();
    assert_eq!(k[(0, 0)], 0.0);
    // Large but representable scales are fine.
    assert!(
        spec(d, Activation::Relu, &layers(1e3))
            .kernel(&x, n)
            .is_ok()
    );
}
