//! The Monte Carlo empirical kernel: convergence to the analytic kernel like 1/√M,
//! reproducibility, and its generic feature-extractor interface.

use basin_nn::{Activation, FcnSpec};
use basin_prior::PriorError;
use basin_prior::kernel::{KernelSpec, LayerScale, nngp_f64};
use basin_prior::mc_kernel::{
    FcnFeatures, FeatureExtractor, McConfig, mc_kernel, mc_kernel_with_progress, sample_seed,
};
use faer::{Mat, MatMut};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn points(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn fcn(d: usize, hidden: Vec<usize>, activation: Activation) -> FcnSpec {
    FcnSpec {
        input_dim: d,
        hidden,
        activation,
        sigma_w: std::f64::consts::SQRT_2,
        sigma_b: 0.5,
    }
}

/// ‖A − B‖_F / ‖B‖_F.
fn rel_frobenius(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    (a - b).norm_l2() / b.norm_l2()
}

fn config(samples: usize, seed: u64) -> McConfig {
    McConfig {
        samples,
        seed,
        ..McConfig::default()
    }
}

fn mc(spec: &FcnSpec, x: &[f64], n: usize, samples: usize, seed: u64) -> Mat<f64> {
    let mut f = FcnFeatures::new(spec, x, n).unwrap();
    mc_kernel(&mut f, &config(samples, seed)).unwrap()
}

/// Least-squares slope of log y against log x.
fn log_log_slope(x: &[f64], y: &[f64]) -> f64 {
    let (lx, ly): (Vec<f64>, Vec<f64>) = x.iter().zip(y).map(|(a, b)| (a.ln(), b.ln())).unzip();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

#[test]
fn converges_to_the_analytic_kernel_like_one_over_sqrt_m() {
    // One hidden ReLU layer of width 2000: the estimate is unbiased, so its error is pure
    // Monte Carlo noise. 16 replicate seeds per M smooth the error curve.
    let (n, d) = (10, 6);
    let x = points(n, d, 11);
    let spec = fcn(d, vec![2000], Activation::Relu);
    let exact = nngp_f64(&spec, &x, n).unwrap();
    let ms = [4usize, 16, 64, 256];
    let errs: Vec<f64> = ms
        .iter()
        .map(|&m| {
            let reps = 16u64;
            (0..reps)
                .map(|r| rel_frobenius(&mc(&spec, &x, n, m, 1000 + r), &exact))
                .sum::<f64>()
                / reps as f64
        })
        .collect();
    let mf: Vec<f64> = ms.iter().map(|&m| m as f64).collect();
    let slope = log_log_slope(&mf, &errs);
    eprintln!("mean relative errors {errs:?}, slope {slope:.3}");
    // 1/√M has slope −1/2; 16 replicates keep the fitted slope within ±0.12 of it.
    assert!((slope + 0.5).abs() < 0.12, "slope {slope} ({errs:?})");
    // Width 2000, M = 256: the noise is about 1/√(2000·256) ≈ 0.14% per entry.
    assert!(errs[3] < 0.005, "{errs:?}");
}

#[test]
fn deep_nets_converge_up_to_the_finite_width_bias() {
    let (n, d) = (8, 5);
    let x = points(n, d, 12);
    for act in [Activation::Relu, Activation::Erf, Activation::Linear] {
        let spec = fcn(d, vec![500, 500], act);
        let exact = nngp_f64(&spec, &x, n).unwrap();
        let err = rel_frobenius(&mc(&spec, &x, n, 128, 7), &exact);
        eprintln!("{act}: relative error {err:e}");
        // Two hidden layers of 500, M = 128: Monte Carlo noise of about 1% (measured 0.2–1.1%
        // over seeds at width 1000) plus an O(1/width) bias of a few tenths of a percent.
        assert!(err < 0.04, "{act}: {err}");
    }
}

#[test]
fn tanh_diagonal_matches_quadrature() {
    // One hidden tanh layer: K_ii = σ_b² + σ_w² E[tanh(u)²], u ~ N(0, q_i).
    let (n, d) = (4, 3);
    let x = points(n, d, 13);
    let spec = fcn(d, vec![2000], Activation::Tanh);
    let k = mc(&spec, &x, n, 64, 3);
    for i in 0..n {
        let row = &x[i * d..][..d];
        let q = 0.25 + 2.0 * row.iter().map(|v| v * v).sum::<f64>() / d as f64;
        let h = 1e-3;
        let e: f64 = (-8000..=8000)
            .map(|t| {
                let z = f64::from(t) * h;
                (-0.5 * z * z).exp() * (q.sqrt() * z).tanh().powi(2)
            })
            .sum::<f64>()
            * h
            / (2.0 * std::f64::consts::PI).sqrt();
        let want = 0.25 + 2.0 * e;
        // Noise ≈ 1/√(64·2000) ≈ 0.3% of E; 2% is over 6 standard errors.
        assert!(
            (k[(i, i)] - want).abs() < 0.02 * want,
            "{i}: {} vs {want}",
            k[(i, i)]
        );
    }
}

#[test]
fn depth_zero_is_exact_and_the_result_is_symmetric() {
    let (n, d) = (9, 4);
    let x = points(n, d, 14);
    let spec = fcn(d, vec![], Activation::Relu);
    let k = mc(&spec, &x, n, 3, 0);
    let exact = KernelSpec::from(&spec).kernel(&x, n).unwrap();
    assert!(rel_frobenius(&k, &exact) < 1e-14);
    let deep = mc(&fcn(d, vec![50, 30], Activation::Erf), &x, n, 5, 1);
    for i in 0..n {
        for j in 0..i {
            assert_eq!(deep[(i, j)].to_bits(), deep[(j, i)].to_bits());
        }
    }
}

#[test]
fn reproducible_per_seed_and_independent_of_thread_count() {
    let (n, d) = (30, 5);
    let x = points(n, d, 15);
    let spec = fcn(d, vec![300, 200], Activation::Relu);
    let run = |threads: usize, seed: u64| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| mc(&spec, &x, n, 6, seed))
    };
    let (a, b, c) = (run(1, 42), run(3, 42), run(1, 43));
    let bits = |m: &Mat<f64>| -> Vec<u64> {
        (0..n)
            .flat_map(|j| (0..n).map(move |i| (i, j)))
            .map(|(i, j)| m[(i, j)].to_bits())
            .collect()
    };
    assert_eq!(bits(&a), bits(&b), "1 and 3 threads differ");
    assert_ne!(bits(&a), bits(&c), "seeds 42 and 43 gave the same kernel");
    let seeds: Vec<u64> = (0..1000).map(|m| sample_seed(42, m)).collect();
    let mut unique = seeds.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seeds.len());
    assert_ne!(sample_seed(1, 0), sample_seed(0, 1));
}

/// A feature map that ignores its seed: the kernel is exactly σ_w²/w φφᵀ + σ_b².
struct Fixed(Mat<f64>);

impl FeatureExtractor for Fixed {
    fn n_points(&self) -> usize {
        self.0.nrows()
    }
    fn width(&self) -> usize {
        self.0.ncols()
    }
    fn readout(&self) -> LayerScale {
        LayerScale {
            sigma_w: 2.0,
            sigma_b: 0.5,
        }
    }
    fn features(&mut self, _seed: u64, mut out: MatMut<'_, f64>) -> Result<(), PriorError> {
        out.copy_from(&self.0);
        Ok(())
    }
}

#[test]
fn any_feature_extractor_plugs_in() {
    let phi = Mat::from_fn(5, 3, |i, j| (i as f64 - 2.0) * 0.3 + j as f64);
    let mut calls = Vec::new();
    let k =
        mc_kernel_with_progress(&mut Fixed(phi.clone()), &config(4, 9), |m| calls.push(m)).unwrap();
    assert_eq!(calls, [1, 2, 3, 4]);
    for i in 0..5 {
        for j in 0..5 {
            let dot: f64 = (0..3).map(|c| phi[(i, c)] * phi[(j, c)]).sum();
            let want = 0.25 + 4.0 / 3.0 * dot;
            assert!((k[(i, j)] - want).abs() < 1e-13 * want.abs().max(1.0));
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let spec = fcn(2, vec![10], Activation::Relu);
    let mut f = FcnFeatures::new(&spec, &[1.0, 2.0], 1).unwrap();
    let e = mc_kernel(&mut f, &config(0, 0)).unwrap_err();
    assert!(e.to_string().contains("--samples"), "{e}");
    let e = FcnFeatures::new(&spec, &[1.0, f64::NAN], 1).unwrap_err();
    assert!(e.to_string().contains("finite"), "{e}");
    let e = FcnFeatures::new(&spec, &[1.0, 2.0, 3.0], 1).unwrap_err();
    assert!(matches!(e, PriorError::InputShape { .. }), "{e}");
    let bad = FcnSpec {
        sigma_b: -1.0,
        ..spec.clone()
    };
    assert!(FcnFeatures::new(&bad, &[1.0, 2.0], 1).is_err());
    let mut wrong = Mat::<f64>::zeros(1, 3);
    assert!(matches!(
        f.features(0, wrong.as_mut()).unwrap_err(),
        PriorError::FeatureBuffer { .. }
    ));
}

#[test]
fn a_kernel_outside_f64s_range_is_refused_not_written_as_zeros_or_infinities() {
    let (n, d) = (5, 3);
    let x: Vec<f64> = (0..n * d).map(|i| (i as f64 * 0.37).sin()).collect();
    let cfg = config(2, 1);
    for s in [1e-200, 1e100] {
        let spec = FcnSpec {
            input_dim: d,
            hidden: vec![8, 8],
            activation: Activation::Relu,
            sigma_w: s,
            sigma_b: s,
        };
        let mut features = FcnFeatures::new(&spec, &x, n).unwrap();
        let err = mc_kernel(&mut features, &cfg).unwrap_err();
        assert!(err.to_string().contains("--sigma-w"), "σ = {s:e}: {err}");
    }
}

#[test]
fn kernels_too_large_for_memory_are_errors_not_aborts() {
    // A matrix whose size overflows is refused by the check or by the fallible allocation.
    let e = basin_prior::kernel::try_zeros(usize::MAX / 4, 4, || "a matrix".into(), "ask less")
        .unwrap_err();
    assert!(matches!(e, PriorError::Memory(_)), "{e}");
    assert!(e.to_string().contains("ask less"), "{e}");
    if basin_data::memory::available_bytes().is_none() {
        return;
    }
    // Networks 10^8 wide on 784 inputs: 628 GB of weights per network.
    let wide = fcn(784, vec![100_000_000], Activation::Relu);
    let e = FcnFeatures::new(&wide, &points(2, 784, 1), 2).unwrap_err();
    assert!(matches!(e, PriorError::Memory(_)), "{e}");
    assert!(e.to_string().contains("--hidden"), "{e}");
    // The analytic kernel of 2^20 points: 8.8 TB.
    let n = 1 << 20;
    let e = KernelSpec::from(&fcn(1, vec![40], Activation::Relu))
        .kernel(&vec![0.5; n], n)
        .unwrap_err();
    assert!(matches!(e, PriorError::Memory(_)), "{e}");
}

#[test]
fn a_conv_engines_fcn_features_give_the_fcn_kernel() {
    // Graph::fcn lays out and draws θ as FcnSpec::init does, so the conv engine's penultimate
    // features of the same net are the FCN's last hidden layer.
    let (n, d) = (12, 7);
    let x = points(n, d, 21);
    let spec = fcn(d, vec![30, 20], Activation::Tanh);
    let data = basin_data::Dataset::new("x", d, x.iter().map(|&v| v as f32).collect(), None, None)
        .unwrap();
    let wide: Vec<f64> = data.features().iter().map(|&v| f64::from(v)).collect();
    let cfg = config(5, 2);
    let by_fcn = mc(&spec, &wide, n, 5, 2);
    let graph = basin_conv::Graph::fcn(&spec);
    let mut conv =
        basin_prior::mc_kernel::ConvFeatures::<f64>::new(graph, &data, 5, faer::Par::Seq).unwrap();
    let by_conv = mc_kernel(&mut conv, &cfg).unwrap();
    let err = rel_frobenius(&by_conv, &by_fcn);
    assert!(err < 1e-13, "relative difference {err:e}");
}
