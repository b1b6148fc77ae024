//! Keskar sharpness by SGD ascent against the golden JAX run (`mlp_sharp_*`, 12 steps on 100
//! MNIST examples with stored permutations), and its invariants.

mod common;

use basin_flatness::keskar::{AscentOrder, KeskarConfig, keskar_box, sharpness_sgd};
use basin_nn::{FcnObjective, FcnSpec};
use common::{basin_to_golden, golden, golden_to_basin, max_rel_err};

fn golden_objective() -> (FcnObjective<f64>, Vec<f64>, FcnSpec) {
    let spec = FcnSpec::paper(784);
    let x = golden("mlp_x");
    let y: Vec<u8> = golden("mlp_y").iter().map(|&v| v as u8).collect();
    let obj = FcnObjective::<f64>::new(&spec, &x, &y).unwrap();
    let theta = golden_to_basin(&spec, &golden("mlp_params_flat"));
    (obj, theta, spec)
}

fn golden_config() -> KeskarConfig {
    let perms = golden("mlp_sharp_perms");
    let n = 100;
    KeskarConfig {
        epochs: 3,
        order: AscentOrder::Given(
            perms
                .chunks(n)
                .map(|p| p.iter().map(|&i| i as usize).collect())
                .collect(),
        ),
        ..KeskarConfig::paper()
    }
}

/// Tolerance: 1e-9 relative on the loss trace and the final parameters (the issue's), f64.
#[test]
fn sgd_ascent_matches_the_golden_jax_run() {
    let (mut obj, theta, spec) = golden_objective();
    let run = sharpness_sgd(&mut obj, &theta, &golden_config()).unwrap();
    let trace = golden("mlp_sharp_loss_trace");
    assert_eq!(run.loss_trace.len(), 12);
    let err = max_rel_err(&run.loss_trace, &trace);
    assert!(err < 1e-9, "loss trace off by {err:e}");
    let fin = basin_to_golden(&spec, &run.final_theta);
    let err = max_rel_err(&fin, &golden("mlp_sharp_final_params_flat"));
    assert!(err < 1e-9, "final parameters off by {err:e}");
    // values.json: L0, maxL and the sharpness.
    let s = &run.sharpness;
    assert!(
        (s.loss - 0.8057434563163764).abs() < 1e-12 * 0.81,
        "{}",
        s.loss
    );
    assert!((s.max_loss - 0.8121949256476496).abs() < 1e-9 * 0.81);
    assert!((s.sharpness - 0.35727496664636005).abs() < 1e-7 * 0.36);
    assert!((s.log10_sharpness.unwrap() - s.sharpness.log10()).abs() < 1e-15);
}

#[test]
fn the_ascent_never_leaves_the_box() {
    let (mut obj, theta, _) = golden_objective();
    let cfg = KeskarConfig {
        epochs: 2,
        lr: 10.0,
        order: AscentOrder::Shuffled { seed: 7 },
        ..KeskarConfig::paper()
    };
    let run = sharpness_sgd(&mut obj, &theta, &cfg).unwrap();
    let (lo, hi) = keskar_box(&theta, cfg.epsilon);
    let inside = run
        .final_theta
        .iter()
        .zip(lo.iter().zip(&hi))
        .all(|(w, (l, h))| l <= w && w <= h);
    assert!(inside);
    // A huge learning rate drives the parameters with a gradient onto the box's faces (many
    // first-layer weights see only zero pixels and never move).
    let on_face = run
        .final_theta
        .iter()
        .zip(lo.iter().zip(&hi))
        .filter(|(w, (l, h))| w == l || w == h)
        .count();
    assert!(on_face > theta.len() / 3, "{on_face}");
    assert!(run.sharpness.max_loss >= run.sharpness.loss);
}

#[test]
fn the_same_seed_gives_the_same_numbers_and_orders_differ() {
    let (mut obj, theta, _) = golden_objective();
    let cfg = |order| KeskarConfig {
        epochs: 2,
        order,
        ..KeskarConfig::paper()
    };
    let a = sharpness_sgd(&mut obj, &theta, &cfg(AscentOrder::Shuffled { seed: 3 })).unwrap();
    let b = sharpness_sgd(&mut obj, &theta, &cfg(AscentOrder::Shuffled { seed: 3 })).unwrap();
    let c = sharpness_sgd(&mut obj, &theta, &cfg(AscentOrder::Fixed)).unwrap();
    assert_eq!(a.loss_trace, b.loss_trace);
    assert_ne!(a.loss_trace, c.loss_trace);
}

#[test]
fn bad_settings_are_errors() {
    let (mut obj, theta, _) = golden_objective();
    for cfg in [
        KeskarConfig {
            epsilon: 0.0,
            ..KeskarConfig::paper()
        },
        KeskarConfig {
            lr: f64::NAN,
            ..KeskarConfig::paper()
        },
        KeskarConfig {
            batch_size: 0,
            ..KeskarConfig::paper()
        },
        KeskarConfig {
            epochs: 2,
            order: AscentOrder::Given(vec![(0..100).collect(), vec![0; 100]]),
            ..KeskarConfig::paper()
        },
    ] {
        assert!(sharpness_sgd(&mut obj, &theta, &cfg).is_err(), "{cfg:?}");
    }
    let mut bad = theta.clone();
    bad[5] = f64::NAN;
    let err = sharpness_sgd(&mut obj, &bad, &KeskarConfig::paper()).unwrap_err();
    assert!(err.to_string().contains("parameter 5"), "{err}");
    assert!(sharpness_sgd(&mut obj, &theta[1..], &KeskarConfig::paper()).is_err());
}
