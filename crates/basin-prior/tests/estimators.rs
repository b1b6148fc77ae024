//! Laplace, the dispatcher and bad input: labels, shapes, NaN, asymmetric, non-PSD and
//! singular kernels, non-convergence as a status.

use std::path::PathBuf;

use basin_prior::PriorError;
use basin_prior::ep::{EpConfig, EpPrecision, ep};
use basin_prior::estimate::{Issue, Method};
use basin_prior::estimator::Estimator;
use basin_prior::laplace::LaplaceConfig;
use basin_prior::likelihood::{Likelihood, labels_pm1};
use faer::Mat;

mod common;
use common::log_prior;

fn gp_fixture(name: &str) -> Vec<f64> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gp")
        .join(name);
    basin_data::npy::read(&p).unwrap().data.to_f64()
}

fn k64() -> Mat<f64> {
    let v = gp_fixture("K_64.npy");
    Mat::from_fn(64, 64, |i, j| v[i * 64 + j])
}

#[test]
fn laplace_probit_is_below_ep_and_close_on_mnist_kernel() {
    let (k, y) = (k64(), gp_fixture("y_64.npy"));
    let lap = LaplaceConfig::default()
        .estimate(k.as_ref(), &y, Likelihood::Probit)
        .map(|o| o.estimate)
        .unwrap();
    let ep_v = log_prior(k.as_ref(), &y, Likelihood::Probit, Method::Ep).unwrap();
    eprintln!(
        "Laplace {} EP {} ({} Newton steps)",
        lap.log_p, ep_v.log_p, lap.iterations
    );
    assert!(lap.converged && lap.method == Method::Laplace);
    assert!(lap.log_p < ep_v.log_p && ep_v.log_p - lap.log_p < 5.0);
}

#[test]
fn laplace_is_exact_for_one_point_in_the_gaussian_limit() {
    // N = 1, K = k → 0: P = Φ(0) = ½ and Laplace → ½ too (log 2 error vanishes with k).
    let k = Mat::from_fn(1, 1, |_, _| 1e-8);
    let lap = LaplaceConfig::default()
        .estimate(k.as_ref(), &[1.0], Likelihood::Probit)
        .map(|o| o.estimate)
        .unwrap();
    assert!((lap.log_p - 0.5f64.ln()).abs() < 1e-7, "{}", lap.log_p);
}

#[test]
fn laplace_step_is_unsupported() {
    let k = k64();
    let e = LaplaceConfig::default()
        .estimate(k.as_ref(), &gp_fixture("y_64.npy"), Likelihood::Step)
        .map(|o| o.estimate);
    assert!(matches!(e, Err(PriorError::LaplaceStep)));
}

#[test]
fn labels_accept_pm1_and_01_only() {
    assert_eq!(labels_pm1(&[0.0, 1.0, 1.0]).unwrap(), vec![-1.0, 1.0, 1.0]);
    assert_eq!(labels_pm1(&[-1.0, 1.0]).unwrap(), vec![-1.0, 1.0]);
    assert!(labels_pm1(&[-1.0, 0.0, 1.0]).is_err());
    assert!(labels_pm1(&[0.5]).is_err());
    assert!(labels_pm1(&[f64::NAN]).is_err());
    assert!(labels_pm1(&[]).is_err());
}

#[test]
fn bad_kernels_are_clear_errors() {
    let y = [1.0, -1.0, 1.0];
    let cfg = EpConfig::default();
    let shape = Mat::<f64>::identity(2, 2);
    assert!(matches!(
        ep(shape.as_ref(), &y, Likelihood::Probit, &cfg, None),
        Err(PriorError::KernelShape { .. })
    ));
    let mut nan = Mat::<f64>::identity(3, 3);
    nan[(0, 1)] = f64::NAN;
    nan[(1, 0)] = f64::NAN;
    assert!(matches!(
        ep(nan.as_ref(), &y, Likelihood::Probit, &cfg, None),
        Err(PriorError::KernelNotFinite { .. })
    ));
    let mut asym = Mat::<f64>::identity(3, 3);
    asym[(0, 1)] = 0.5;
    assert!(matches!(
        ep(asym.as_ref(), &y, Likelihood::Probit, &cfg, None),
        Err(PriorError::KernelAsymmetric { .. })
    ));
    // Eigenvalues 1 ± 0.9·√2·… : [[1, .9, .9], [.9, 1, −.9], [.9, −.9, 1]] is indefinite.
    let indef = Mat::from_fn(3, 3, |i, j| match (i, j) {
        _ if i == j => 1.0,
        (1, 2) | (2, 1) => -0.9,
        _ => 0.9,
    });
    let e = ep(indef.as_ref(), &y, Likelihood::Probit, &cfg, None);
    assert!(matches!(e, Err(PriorError::NotPsd { .. })), "{e:?}");
    assert!(
        LaplaceConfig::default()
            .estimate(indef.as_ref(), &y, Likelihood::Probit)
            .map(|o| o.estimate)
            .is_err()
    );
}

/// The error names the offending entry, whether the kernel is column-major or row-major (a
/// transposed view, as an .npy file gives), with the bad entry below or above the diagonal.
#[test]
fn bad_entries_of_large_kernels_are_named() {
    let n = 100;
    let y: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let cfg = EpConfig::default();
    for (i, j) in [(70, 3), (3, 70)] {
        let mut nan = Mat::<f64>::identity(n, n);
        nan[(i, j)] = f64::NAN;
        let mut asym = Mat::<f64>::identity(n, n);
        asym[(i, j)] = 0.5;
        for (k, want) in [(&nan, "entry (70, 3) is not finite"), (&asym, "(70, 3) = ")] {
            for view in [k.as_ref(), k.transpose()] {
                match ep(view, &y, Likelihood::Probit, &cfg, None) {
                    Err(
                        e @ (PriorError::KernelNotFinite { .. }
                        | PriorError::KernelAsymmetric { .. }),
                    ) => assert!(e.to_string().contains(want), "{e}"),
                    other => panic!("({i}, {j}): {other:?}"),
                }
            }
        }
    }
}

#[test]
fn singular_kernel_gets_a_recorded_jitter_and_matches_its_rank_one_value() {
    // K = 11ᵀ (rank 1): probit P(sign(t + εᵢ) = yᵢ) for a shared t — finite, with jitter recorded.
    let n = 5;
    let k = Mat::from_fn(n, n, |_, _| 1.0);
    let y = [1.0, 1.0, -1.0, 1.0, -1.0];
    let r = ep(
        k.as_ref(),
        &y,
        Likelihood::Probit,
        &EpConfig::default(),
        None,
    )
    .unwrap();
    assert!(r.estimate.log_p.is_finite() && r.estimate.jitter > 0.0 && r.estimate.jitter < 1e-5);
    // Equicorrelated with ρ = ½ on K + I, exactly: compare (EP error is small at N = 5).
    let exact = basin_prior::equicorr::log_orthant_equicorr(0.5, 3, 2).unwrap();
    assert!(
        (r.estimate.log_p - exact).abs() < 0.02,
        "{} vs {exact}",
        r.estimate.log_p
    );
}

#[test]
fn non_convergence_is_a_status() {
    let (k, y) = (k64(), gp_fixture("yflip_64.npy"));
    let cfg = EpConfig {
        max_sweeps: 2,
        epsilon: 1e-14,
        ..EpConfig::default()
    };
    let r = ep(k.as_ref(), &y, Likelihood::Probit, &cfg, None).unwrap();
    assert!(!r.estimate.converged && r.estimate.iterations == 2 && r.estimate.log_p.is_finite());
}

#[test]
fn warm_start_from_a_nearby_function_reaches_the_same_value_in_fewer_sweeps() {
    let k = k64();
    let (y, yf) = (gp_fixture("y_64.npy"), gp_fixture("yflip_64.npy"));
    let cfg = EpConfig {
        epsilon: 1e-10,
        precision: EpPrecision::Mixed,
        ..EpConfig::default()
    };
    let near = ep(k.as_ref(), &y, Likelihood::Probit, &cfg, None).unwrap();
    let cold = ep(k.as_ref(), &yf, Likelihood::Probit, &cfg, None).unwrap();
    let warm = ep(k.as_ref(), &yf, Likelihood::Probit, &cfg, Some(&cold.sites)).unwrap();
    assert!((warm.estimate.log_p - cold.estimate.log_p).abs() < 1e-8);
    assert!(warm.estimate.iterations < cold.estimate.iterations);
    let from_near = ep(k.as_ref(), &yf, Likelihood::Probit, &cfg, Some(&near.sites)).unwrap();
    assert!((from_near.estimate.log_p - cold.estimate.log_p).abs() < 1e-8);
}

#[test]
fn estimate_serializes_with_named_method_and_likelihood() {
    let k = k64();
    let e = log_prior(
        k.as_ref(),
        &gp_fixture("y_64.npy"),
        Likelihood::Step,
        Method::EpSequential,
    )
    .unwrap();
    let j = serde_json::to_value(&e).unwrap();
    assert_eq!(j["method"], "ep-sequential");
    assert_eq!(j["likelihood"], "step");
    assert!(j["std_err"].is_null());
}

/// Undamped EP oscillates for the step likelihood on the Boolean cube's NNGP kernel (the
/// function 0xff…feff, one zero at input 8); `ep_to_fixed_point` damps it and converges, to
/// the value other dampings converge to (damping moves the path, not the fixed point): within
/// 1e-4 nats of damping 0.25 (measured 3.8e-5: the stopping rule's resolution), while the oscillating
/// undamped iterate is 0.86 nats away.
#[test]
fn oscillating_ep_is_damped_to_its_fixed_point() {
    use basin_prior::ep::ep_to_fixed_point;
    let spec = basin_nn::FcnSpec::paper(7);
    let x = basin_data::boolean::cube_inputs(7).unwrap();
    let k = basin_prior::kernel::nngp(&spec, &x, 128).unwrap();
    let f = !(1u128 << 8);
    let y: Vec<f64> = (0..128).map(|i| f64::from((f >> i) as u8 & 1)).collect();
    let undamped = ep(k.as_ref(), &y, Likelihood::Step, &EpConfig::default(), None).unwrap();
    assert!(!undamped.estimate.converged, "undamped EP oscillates here");
    let (r, damping) =
        ep_to_fixed_point(k.as_ref(), &y, Likelihood::Step, &EpConfig::default(), None).unwrap();
    assert!(r.estimate.converged);
    assert_eq!(damping, 0.5);
    let quarter = EpConfig {
        damping: 0.25,
        ..EpConfig::default()
    };
    let other = ep(k.as_ref(), &y, Likelihood::Step, &quarter, None).unwrap();
    assert!(other.estimate.converged);
    let d = (r.estimate.log_p - other.estimate.log_p).abs();
    assert!(d < 1e-4, "fixed points differ by {d:e}");
    assert!((undamped.estimate.log_p - r.estimate.log_p).abs() > 0.1);
}

/// N = 1: the Laplace approximation returns P(f) = ½ exactly at any scale (before, its value
/// was the Laplace approximation of ∫Φ(z)N(z; 0, k)dz, off by up to log 2 as k grows).
#[test]
fn laplace_one_point_is_exact() {
    for c in [1e-300, 1e-8, 1.0, 1e8, 1e300] {
        let k = Mat::from_fn(1, 1, |_, _| c);
        let o = LaplaceConfig::default()
            .estimate(k.as_ref(), &[1.0], Likelihood::Probit)
            .unwrap();
        assert_eq!(o.estimate.log_p, 0.5f64.ln(), "{c:e}");
        assert!(o.estimate.converged && o.issues.is_empty());
    }
}

/// No estimator reports a non-finite log P(f) as converged: through the dispatch, SMC on a
/// kernel where the function has P(f) = 0 (two identical inputs with different labels)
/// returns −∞ with `converged: false` and the issue `NotFinite`; Laplace on a kernel of scale
/// 1e300 (before: `log_prior: null`, converged) is flagged.
#[test]
fn non_finite_values_are_never_converged() {
    let (k, y) = common::duplicate_point_kernel();
    let mut est = basin_prior::dispatch::Estimators::default();
    est.smc.particles = 32;
    est.smc.replicates = 2;
    let o = est
        .estimate(Method::Smc, k.as_ref(), &y, Likelihood::Step)
        .unwrap();
    assert_eq!(o.estimate.log_p, f64::NEG_INFINITY);
    assert!(!o.estimate.converged);
    assert!(
        o.issues
            .iter()
            .any(|i| matches!(i, Issue::NotFinite { .. }))
    );
    let big = Mat::from_fn(8, 8, |i, j| {
        1e300 * k[(i, j)] + if i == j { 1e299 } else { 0.0 }
    });
    let o = est
        .estimate(Method::Laplace, big.as_ref(), &y, Likelihood::Probit)
        .unwrap();
    assert!(
        o.estimate.log_p.is_finite() || !o.estimate.converged,
        "{o:?}"
    );
    assert!(!o.estimate.converged, "{o:?}");
}
