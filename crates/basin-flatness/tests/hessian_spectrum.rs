//! The Hessian spectrum (Lanczos, dense, Hutchinson, SLQ) against golden values computed with
//! JAX in float64 (`tests/fixtures/golden`, copied into the repo), and against exactly known
//! toy spectra. Tolerances are stated per assertion.

mod common;

use basin_flatness::dense::DEFAULT_MAX_PARAMS;
use basin_flatness::{
    FlatnessError, LanczosConfig, SlqConfig, dense_spectrum, hutchinson, lanczos, spectral_density,
};
use basin_nn::{FcnObjective, FcnSpec};
use common::{Diagonal, golden, golden_to_basin};

/// The golden net `prefix` (`mlp` or `bool`) as an objective and its parameters.
fn golden_net(prefix: &str, input_dim: usize) -> (FcnObjective<f64>, Vec<f64>) {
    let spec = FcnSpec::paper(input_dim);
    let x = golden(&format!("{prefix}_x"));
    let y: Vec<u8> = golden(&format!("{prefix}_y"))
        .iter()
        .map(|&v| v as u8)
        .collect();
    let obj = FcnObjective::<f64>::new(&spec, &x, &y).unwrap();
    let theta = golden_to_basin(&spec, &golden(&format!("{prefix}_params_flat")));
    (obj, theta)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn boolean_net_dense_spectrum_and_lanczos_top10_match_jax() {
    let (mut obj, theta) = golden_net("bool", 7);
    let want = golden("bool_hessian_eigs");
    let dense = dense_spectrum(&mut obj, &theta, DEFAULT_MAX_PARAMS).unwrap();
    // Every eigenvalue within 1e-10 of the spectral norm (same matrix up to round-off).
    let norm = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = dense
        .eigenvalues
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-10 * norm, "dense eigenvalues off by {worst:e}");
    // The trace is the sum of the eigenvalues (1e-10 relative).
    assert!(rel(dense.trace, want.iter().sum()) < 1e-10);

    let cfg = LanczosConfig {
        top_k: 10,
        ..LanczosConfig::default()
    };
    let s = lanczos(&mut obj, &theta, &cfg).unwrap();
    let top = dense.top(10);
    for (i, (got, want)) in s.top.eigenvalues.iter().zip(&top).enumerate() {
        // 1e-8 relative, and the converged flag agrees.
        assert!(rel(*got, *want) < 1e-8, "eigenvalue {i}: {got} vs {want}");
        assert!(s.top.converged[i], "eigenvalue {i} not flagged converged");
    }
    assert_eq!(s.lambda_max, s.top.eigenvalues[0]);
    assert!(rel(s.spectral_norm, norm) < 1e-8);
    let bottom = dense.bottom(3);
    for (got, want) in s.bottom.eigenvalues.iter().zip(&bottom) {
        assert!(rel(*got, *want) < 1e-8, "bottom: {got} vs {want}");
    }
    let logprod: f64 = top.iter().map(|v| v.ln()).sum();
    assert!((s.log_product_top_k - logprod).abs() < 1e-7);
    assert_eq!(s.n_positive_top_k, 10);
}

#[test]
fn mlp_top5_and_bottom5_match_jax() {
    let (mut obj, theta) = golden_net("mlp", 784);
    let cfg = LanczosConfig {
        top_k: 5,
        seed: 3,
        ..LanczosConfig::default()
    };
    let s = lanczos(&mut obj, &theta, &cfg).unwrap();
    // 1e-8 relative at both ends, flagged converged.
    let ends = [
        (&s.top, golden("mlp_top5_eigs")),
        (&s.bottom, golden("mlp_bottom5_eigs")),
    ];
    for (end, want) in ends {
        assert_eq!(end.eigenvalues.len(), 5);
        for (got, want) in end.eigenvalues.iter().zip(&want) {
            assert!(rel(*got, *want) < 1e-8, "{got} vs {want}");
        }
        assert!(end.all_converged(), "{end:?}");
    }
    assert!(rel(s.spectral_norm, 10.21117779) < 1e-8);
}

#[test]
fn residual_flags_are_honest_on_a_short_run() {
    let (mut obj, theta) = golden_net("bool", 7);
    let exact = dense_spectrum(&mut obj, &theta, DEFAULT_MAX_PARAMS)
        .unwrap()
        .eigenvalues;
    let cfg = LanczosConfig {
        steps: 12,
        top_k: 10,
        tol: 1e-6,
        ..LanczosConfig::default()
    };
    let s = lanczos(&mut obj, &theta, &cfg).unwrap();
    assert_eq!(s.steps, 12);
    assert!(
        !s.top.all_converged(),
        "12 steps cannot converge the top 10"
    );
    for i in 0..10 {
        let (v, r) = (s.top.eigenvalues[i], s.top.residuals[i]);
        let nearest = exact
            .iter()
            .map(|e| (e - v).abs())
            .fold(f64::INFINITY, f64::min);
        // The residual bound holds (with 1e-12 slack for the round-off of the dense solve),
        // so a converged flag is within tol relative of a true eigenvalue.
        assert!(
            nearest <= r + 1e-12,
            "value {i}: {nearest:e} > residual {r:e}"
        );
        let roundoff = 12.0 * f64::EPSILON * s.spectral_norm;
        assert_eq!(s.top.converged[i], r + roundoff <= 1e-6 * v.abs());
    }
    assert!(s.top.converged[0], "λmax converges in 12 steps");
}

#[test]
fn hutchinson_and_slq_agree_with_the_dense_trace() {
    let (mut obj, theta) = golden_net("bool", 7);
    let trace = golden("bool_hessian_eigs").iter().sum::<f64>();
    let n = theta.len() as f64;
    let t = hutchinson(&mut obj, &theta, 200, 11).unwrap();
    // Within 3 standard errors.
    assert!(
        (t.trace - trace).abs() < 3.0 * t.std_err,
        "{} ± {} vs {trace}",
        t.trace,
        t.std_err
    );
    assert!(t.std_err > 0.0 && t.std_err < 0.2 * trace.abs());
    // The same seed gives the same estimate.
    let again = hutchinson(&mut obj, &theta, 200, 11).unwrap();
    assert_eq!((again.trace, again.std_err), (t.trace, t.std_err));

    let cfg = SlqConfig {
        probes: 40,
        steps: 40,
        seed: 5,
        ..SlqConfig::default()
    };
    let d = spectral_density(&mut obj, &theta, &cfg).unwrap();
    let dx = d.grid[1] - d.grid[0];
    let mass: f64 = d.density.iter().sum::<f64>() * dx;
    let first: f64 = d
        .grid
        .iter()
        .zip(&d.density)
        .map(|(t, p)| t * p)
        .sum::<f64>()
        * dx;
    // The grid integrates the Gaussians to 1e-6 (σ spans 20 grid steps, ±5σ margins).
    assert!((mass - 1.0).abs() < 1e-6, "mass {mass}");
    assert!((d.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(
        (first - d.mean).abs() < 1e-6 * d.mean.abs().max(1e-3),
        "{first} vs {}",
        d.mean
    );
    // The density's mean estimates tr H / n: within 3 standard errors of a 40-probe estimate.
    let se40 = t.std_err * (200.0f64 / 40.0).sqrt() / n;
    assert!(
        (d.mean - trace / n).abs() < 3.0 * se40,
        "{} vs {}",
        d.mean,
        trace / n
    );
    assert_eq!(d.grid.len(), d.density.len());
    assert!(d.density.iter().all(|p| *p >= 0.0));
}

#[test]
fn breakdown_gives_exact_eigenvalues_and_fewer_than_k() {
    // Three distinct eigenvalues: the Krylov space is invariant after 3 steps.
    let d: Vec<f64> = (0..300).map(|i| [5.0, -2.0, 0.5][i % 3]).collect();
    let mut obj = Diagonal {
        d,
        c: 1.0,
        nan: false,
    };
    let theta = vec![0.0; 300];
    let s = lanczos(&mut obj, &theta, &LanczosConfig::default()).unwrap();
    assert!(s.breakdown);
    assert_eq!(s.steps, 3);
    assert_eq!(s.top.eigenvalues.len(), 3);
    for (got, want) in s.top.eigenvalues.iter().zip([5.0, 0.5, -2.0]) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    assert!(s.top.all_converged());
    assert_eq!(s.spectral_norm, s.lambda_max);
    assert_eq!(s.n_positive_top_k, 2);
    assert!((s.log_product_top_k - (5.0f64 * 0.5).ln()).abs() < 1e-12);
    // A negative end larger in magnitude sets the spectral norm.
    let mut neg = Diagonal {
        d: (0..50).map(|i| -(i as f64) - 1.0).collect(),
        c: 1.0,
        nan: false,
    };
    let s = lanczos(&mut neg, &vec![0.0; 50], &LanczosConfig::default()).unwrap();
    assert!((s.spectral_norm - 50.0).abs() < 1e-10 && (s.lambda_min + 50.0).abs() < 1e-10);
    assert_eq!((s.n_positive_top_k, s.log_product_top_k), (0, 0.0));
    assert_eq!(s.steps, 50, "steps are capped at the parameter count");
}

#[test]
fn bad_input_is_an_error() {
    let mut obj = Diagonal {
        d: vec![1.0, 2.0, 3.0],
        c: 1.0,
        nan: false,
    };
    let theta = [0.0; 3];
    let bad = |cfg: LanczosConfig| {
        lanczos(
            &mut Diagonal {
                d: vec![1.0; 3],
                c: 1.0,
                nan: false,
            },
            &theta,
            &cfg,
        )
    };
    for cfg in [
        LanczosConfig {
            steps: 0,
            ..LanczosConfig::default()
        },
        LanczosConfig {
            top_k: 0,
            ..LanczosConfig::default()
        },
        LanczosConfig {
            tol: -1.0,
            ..LanczosConfig::default()
        },
    ] {
        assert!(matches!(bad(cfg), Err(FlatnessError::Setting { .. })));
    }
    let cfg = LanczosConfig::default();
    assert!(matches!(
        lanczos(&mut obj, &[0.0; 2], &cfg),
        Err(FlatnessError::ParamCount { .. })
    ));
    assert!(matches!(
        lanczos(&mut obj, &[0.0, f64::NAN, 0.0], &cfg),
        Err(FlatnessError::NonFinite { .. })
    ));
    assert!(matches!(
        hutchinson(&mut obj, &theta, 1, 0),
        Err(FlatnessError::Setting { .. })
    ));
    let slq = SlqConfig {
        grid_points: 1,
        ..SlqConfig::default()
    };
    assert!(matches!(
        spectral_density(&mut obj, &theta, &slq),
        Err(FlatnessError::Setting { .. })
    ));
    assert!(matches!(
        dense_spectrum(&mut obj, &theta, 2),
        Err(FlatnessError::TooLarge { .. })
    ));

    let mut nan = Diagonal {
        d: vec![1.0; 3],
        c: 1.0,
        nan: true,
    };
    let err = lanczos(&mut nan, &theta, &cfg).unwrap_err();
    assert!(matches!(err, FlatnessError::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("step 1"), "{err}");
    assert!(matches!(
        hutchinson(&mut nan, &theta, 4, 0),
        Err(FlatnessError::NonFinite { .. })
    ));
    assert!(matches!(
        spectral_density(&mut nan, &theta, &SlqConfig::default()),
        Err(FlatnessError::NonFinite { .. })
    ));
    assert!(matches!(
        dense_spectrum(&mut nan, &theta, 10),
        Err(FlatnessError::NonFinite { .. })
    ));
}
