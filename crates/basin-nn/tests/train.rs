//! The training loop and α-scaling: one SGD epoch against the golden JAX epoch, training on
//! the embedded MNIST to zero error, statuses, determinism, overtraining and the hook, and
//! α-scaling's invariance of the function.

mod common;

use basin_data::{ClassMap, embedded};
use basin_nn::optim::{OptimizerConfig, Sgd, SgdConfig};
use basin_nn::train::run_epoch;
use basin_nn::{
    BatchOrder, FcnObjective, FcnSpec, HookAction, Objective, ScaleError, TrainConfig, TrainStatus,
    all_examples, alpha_scale, alpha_scaled_as, train,
};
use common::{golden, golden_to_basin, max_rel_err, rel_err};

#[test]
fn one_sgd_epoch_matches_jax() {
    let spec = FcnSpec::paper(784);
    let x = golden("mlp_x");
    let y: Vec<u8> = golden("mlp_y").iter().map(|&v| v as u8).collect();
    let mut obj = FcnObjective::<f64>::new(&spec, &x, &y).unwrap();
    let mut theta = golden_to_basin(&spec, &golden("mlp_params_flat"));
    let perm: Vec<usize> = golden("mlp_sgd_perm").iter().map(|&v| v as usize).collect();
    let mut sgd = Sgd::new(&SgdConfig { lr: 0.01 }, spec.n_params());
    let mut grad = vec![0.0; spec.n_params()];
    run_epoch(&mut obj, &mut sgd, &mut theta, &perm, 32, &mut grad);
    let expected = golden_to_basin(&spec, &golden("mlp_sgd_epoch1_params_flat"));
    // Four steps (32, 32, 32, 4 examples) in f64: 1e-10 relative.
    assert!(max_rel_err(&theta, &expected) < 1e-10 && rel_err(&theta, &expected) < 1e-10);
}

fn mnist_s_union_a(attack: usize) -> (FcnSpec, FcnObjective<f32>) {
    let data = ClassMap::mnist_low_high()
        .apply(&embedded::mnist().unwrap())
        .unwrap();
    let spec = FcnSpec::paper(784);
    let idx: Vec<usize> = (0..500 + attack).collect();
    let mut sa = data.subset("S+A", &idx).unwrap();
    let labels: Vec<u8> = sa
        .labels()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, &l)| if i >= 500 { 1 - l } else { l })
        .collect();
    sa = sa.with_labels(labels).unwrap();
    (
        spec.clone(),
        FcnObjective::from_dataset(&spec, &sa).unwrap(),
    )
}

fn sgd_run(
    obj: &mut FcnObjective<f32>,
    cfg: &TrainConfig,
    seed: u64,
) -> (basin_nn::TrainReport, Vec<f32>) {
    let spec = obj.spec().clone();
    let mut theta: Vec<f32> = spec.init(seed);
    let opt_cfg: OptimizerConfig = "sgd".parse().unwrap();
    let mut opt = opt_cfg.build::<f32>(spec.n_params());
    let report = train(
        obj,
        opt.as_mut(),
        &mut theta,
        cfg,
        false,
        500,
        &mut |_, _| HookAction::Continue,
    );
    (report, theta)
}

#[test]
fn trains_the_papers_mnist_net_to_zero_error() {
    let (_, mut obj) = mnist_s_union_a(0);
    let cfg = TrainConfig {
        seed: 1,
        ..TrainConfig::default()
    };
    let (report, theta) = sgd_run(&mut obj, &cfg, 1);
    assert_eq!(report.status, TrainStatus::Converged);
    // The peers take 104–127 epochs (JAX, same protocol, other seeds); allow a wide band.
    assert!((40..400).contains(&report.epochs), "{report:?}");
    assert_eq!(obj.count_errors(&theta, &all_examples(500)), 0);
    let (again, theta2) = sgd_run(&mut obj, &cfg, 1);
    assert_eq!(
        (again.epochs, theta2),
        (report.epochs, theta),
        "same seed, same run"
    );
}

#[test]
fn max_epochs_gives_not_converged_and_overtraining_and_hook_work() {
    let (_, mut obj) = mnist_s_union_a(100);
    let cfg = TrainConfig {
        max_epochs: 2,
        seed: 3,
        ..TrainConfig::default()
    };
    let (report, _) = sgd_run(&mut obj, &cfg, 3);
    assert_eq!(
        (report.status, report.epochs, report.total_epochs),
        (TrainStatus::NotConverged, 2, 2)
    );

    let (spec, mut obj) = mnist_s_union_a(0);
    let cfg = TrainConfig {
        overtrain_epochs: 5,
        order: BatchOrder::Fixed,
        ..TrainConfig::default()
    };
    let mut theta: Vec<f32> = spec.init(4);
    let mut opt = "sgd"
        .parse::<OptimizerConfig>()
        .unwrap()
        .build::<f32>(spec.n_params());
    let mut seen = Vec::new();
    let report = train(
        &mut obj,
        opt.as_mut(),
        &mut theta,
        &cfg,
        false,
        500,
        &mut |info, _| {
            seen.push(info.epoch);
            HookAction::Continue
        },
    );
    assert_eq!(report.status, TrainStatus::Converged);
    assert_eq!(report.total_epochs, report.epochs + 5);
    assert_eq!(seen, (1..=report.total_epochs).collect::<Vec<_>>());
    let stopped = train(
        &mut obj,
        opt.as_mut(),
        &mut spec.init(5),
        &cfg,
        false,
        500,
        &mut |info, _| {
            if info.epoch == 3 {
                HookAction::Stop
            } else {
                HookAction::Continue
            }
        },
    );
    assert_eq!(
        (stopped.status, stopped.total_epochs),
        (TrainStatus::Stopped, 3)
    );
}

#[test]
fn alpha_scaling_keeps_the_function() {
    let spec = FcnSpec::paper(784);
    let x = golden("mlp_x");
    let y: Vec<u8> = golden("mlp_y").iter().map(|&v| v as u8).collect();
    let mut obj = FcnObjective::<f64>::new(&spec, &x, &y).unwrap();
    let theta = golden_to_basin(&spec, &golden("mlp_params_flat"));
    let batch = all_examples(100);
    let mut before = vec![0.0; 100];
    obj.logits(&theta, &batch, &mut before);
    for alpha in [0.01, 5.9, 100.0] {
        for layer in 0..2 {
            let mut scaled = theta.clone();
            alpha_scale(&spec, &mut scaled, layer, alpha).unwrap();
            assert_ne!(scaled, theta);
            let mut after = vec![0.0; 100];
            obj.logits(&scaled, &batch, &mut after);
            // Logits unchanged to 1e-12 relative in f64.
            let err = max_rel_err(&after, &before);
            assert!(err < 1e-12, "alpha {alpha} layer {layer}: {err:e}");
        }
    }
    let mut t = theta.clone();
    assert!(alpha_scale(&spec, &mut t, 2, 2.0).is_err());
    assert!(alpha_scale(&spec, &mut t, 0, -1.0).is_err());
    assert!(alpha_scale(&spec, &mut t, 0, f64::NAN).is_err());
    let tanh = FcnSpec {
        activation: basin_nn::Activation::Tanh,
        ..spec.clone()
    };
    assert!(alpha_scale(&tanh, &mut t, 0, 2.0).is_err());
    assert_eq!(t, theta, "failed calls leave θ untouched");
}

#[test]
fn an_alpha_that_over_or_underflows_the_weights_is_refused() {
    let spec = FcnSpec::paper(3);
    let theta: Vec<f64> = spec.init(1);
    // In f64, 1e-300 fits: w × 1e-300 and w × 1e300 are finite and nonzero.
    assert!(alpha_scaled_as::<f64>(&spec, &theta, 0, 1e-300).is_ok());
    // Stored as f32, the first layer underflows to 0 and the second overflows to inf.
    let err = alpha_scaled_as::<f32>(&spec, &theta, 0, 1e-300).unwrap_err();
    assert!(matches!(err, ScaleError::OutOfRange { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("over/underflows the weights"), "{text}");
    assert!(text.contains("layers.0.weight[0, 0]"), "{text}");
    assert!(!text.contains("diverge"), "{text}");
    let mut narrow: Vec<f32> = spec.init(1);
    let before = narrow.clone();
    assert!(alpha_scale(&spec, &mut narrow, 1, 1e-40).is_err());
    assert_eq!(narrow, before, "a refused α leaves θ untouched");
    assert!(alpha_scaled_as::<f32>(&spec, &theta, 1, 5.9).is_ok());
}

#[test]
fn stopping_on_s_union_a_fits_the_attack_set_too() {
    let (_, mut obj) = mnist_s_union_a(50);
    let cfg = TrainConfig {
        stop_on: basin_nn::StopOn::TrainAndAttack,
        seed: 6,
        ..TrainConfig::default()
    };
    let (report, theta) = sgd_run(&mut obj, &cfg, 6);
    assert_eq!(report.status, TrainStatus::Converged);
    assert_eq!(obj.count_errors(&theta, &all_examples(550)), 0);
}
