//! The attack-set experiment on ResNets: a tiny ResNet on the embedded MNIST through the
//! runner (records, errors, measures, reproducibility, BatchNorm's running statistics carried
//! from training to the measures), and the shipped CIFAR-10 ResNet specs' code path on a
//! synthetic CIFAR-10 directory.

use std::path::Path;

mod common;

use basin_lab::exec::folder::RunFolder;
use basin_lab::exec::{RunOptions, RunOutcome};
use basin_lab::kinds::experiment;
use basin_lab::measure::errors_of;
use basin_lab::net::Net;
use basin_lab::prepare::Prepared;
use basin_lab::record::RunRecord;
use basin_lab::spec::{BUILTIN, ExperimentSpec};
use basin_nn::{TrainConfig, TrainStatus};

/// The text of the built-in spec `name`.
fn builtin(name: &str) -> &'static str {
    BUILTIN.iter().find(|b| b.0 == name).expect("a built-in").1
}

/// fig3-resnet-mnist shrunk to seconds: a ResNet of two one-block stages of widths 4 and 8
/// on 60 digits (plus 20 flipped), batches of 16, the Hessian's top 5, two ascent epochs, and
/// the prior on an empirical kernel of 16 networks in 4 blocks.
fn tiny_mnist() -> ExperimentSpec {
    let mut spec = ExperimentSpec::load("fig3-resnet-mnist").unwrap();
    spec.name = "resnet-tiny".into();
    spec.network.arch = Some("basic:1,1:4".parse().unwrap());
    spec.data.train_size = 60;
    spec.data.test_size = 100;
    spec.data.attack_sizes = vec![0, 20];
    spec.data.networks_per_size = 1;
    spec.training.optimizer = Some(basin_nn::optim::OptimizerConfig::Adam(
        basin_nn::optim::AdamConfig {
            lr: 0.003,
            ..Default::default()
        },
    ));
    spec.training.batch_size = 16;
    spec.training.max_epochs = 200;
    let s = spec.measures.sharpness.as_mut().unwrap();
    s.epochs = 2;
    let h = spec.measures.hessian.as_mut().unwrap();
    (h.top_k, h.lanczos_steps) = (5, Some(20));
    let k = small_kernel(&mut spec);
    (k.samples, k.blocks) = (16, 4);
    spec.validate().unwrap();
    spec
}

/// The spec's empirical-kernel settings.
fn small_kernel(spec: &mut ExperimentSpec) -> &mut basin_lab::spec::McKernelSpec {
    let prior = spec
        .measures
        .prior
        .as_mut()
        .expect("the spec measures the prior");
    prior.mc_kernel.as_mut().expect("an empirical kernel")
}

/// Runs `spec` into `out` on `jobs` threads.
fn run(spec: &ExperimentSpec, out: &Path, jobs: usize) -> RunOutcome {
    let folder = RunFolder::open(out).unwrap();
    let opts = RunOptions::new(jobs, None);
    experiment(spec).run(&folder, opts, &|_, _| {}).unwrap()
}

/// The records of `out`, by id.
fn by_id(out: &RunOutcome) -> Vec<&RunRecord> {
    let mut records: Vec<&RunRecord> = out.records.iter().collect();
    records.sort_by(|a, b| a.id.cmp(&b.id));
    records
}

#[test]
fn a_tiny_resnet_runs_the_attack_set_experiment_reproducibly() {
    let spec = tiny_mnist();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = run(&spec, a.path(), 2);
    assert_eq!((first.computed, first.records.len()), (2, 2));
    for r in &first.records {
        assert_eq!(r.status, TrainStatus::Converged, "{r:?}");
        // Measured in eval mode with the running statistics the training left, as the
        // training loop's stopping test was: zero error on S.
        assert_eq!(r.train_error, 0.0, "{r:?}");
        assert_eq!(r.attack_error.is_some(), r.attack_size > 0);
        assert!(
            r.attack_error.is_none_or(|e| (0.0..=1.0).contains(&e)),
            "{r:?}"
        );
        assert!(r.test_error.is_some_and(|e| e < 0.75), "{r:?}");
        for m in ["sharpness", "lambda_max", "log_product_top5"] {
            assert!(r.measure(m).is_some_and(f64::is_finite), "{m}: {r:?}");
        }
        for m in ["log_prior_probit", "log_prior_step", "bound_pac_bayes"] {
            assert!(r.measure(m).is_some_and(f64::is_finite), "{m}: {r:?}");
        }
        // 16 networks of 4 and 8 channels: an error of a nat or more (measured 1.3 for
        // probit, 9.9 for the step likelihood), but a finite one.
        for m in ["log_prior_probit_mc_std_err", "log_prior_step_mc_std_err"] {
            assert!(
                r.measure(m).is_some_and(|e| e > 0.0 && e.is_finite()),
                "{m}: {r:?}"
            );
        }
        for stage in ["train", "sharpness", "hessian", "prior"] {
            assert!(r.stage_s.contains_key(stage), "{stage}: {r:?}");
        }
    }
    let again = run(&spec, b.path(), 1);
    for (x, y) in by_id(&first).into_iter().zip(by_id(&again)) {
        assert_eq!(x.id, y.id);
        assert_eq!(
            (x.epochs, x.test_error, &x.function_hash, &x.measures),
            (y.epochs, y.test_error, &y.function_hash, &y.measures),
            "the same seed gives the same numbers"
        );
    }
}

/// The running statistics that training leaves are what the measures use: with them the
/// trained net has no error on S; with BatchNorm's initial statistics it computes another
/// function.
#[test]
fn the_trained_batch_norm_state_reaches_the_measures() {
    let spec = tiny_mnist();
    let prep = Prepared::new(&spec).unwrap();
    let Net::ResNet { spec: resnet, .. } = &prep.net else {
        panic!("a ResNet: {}", prep.net.describe())
    };
    assert_eq!((resnet.in_channels, resnet.base_width), (1, 4));
    let train = prep.training_set(0).unwrap();
    let trainer = prep.net.trainer::<f32>(&train, 16, None).unwrap();
    let mut theta: Vec<f32> = prep.net.init(7);
    let mut opt = spec.training.optimizer_list()[0].build::<f32>(prep.net.n_params());
    let cfg = TrainConfig {
        batch_size: 16,
        max_epochs: 200,
        seed: 3,
        ..TrainConfig::default()
    };
    let report = basin_nn::train(
        &mut &trainer,
        opt.as_mut(),
        &mut theta,
        &cfg,
        false,
        train.len(),
        &mut |_, _| basin_nn::HookAction::Continue,
    );
    assert_eq!(report.status, TrainStatus::Converged);
    let trained = trainer.state();
    let fresh = prep.net.fresh_state();
    assert!(trained.batch_norm().is_some() && trained != fresh);
    assert_eq!(errors_of(&prep, &theta, &trained, 0).unwrap().train, 0.0);
    let with = prep.net.logits(&theta, &trained, &prep.s_and_t).unwrap();
    let without = prep.net.logits(&theta, &fresh, &prep.s_and_t).unwrap();
    assert!(with.iter().zip(&without).any(|(a, b)| a != b));
}

/// A ResNet's prior needs its empirical kernel's settings; the kernel is computed once,
/// cached in the output folder under the hash of what it depends on, and read back.
#[test]
fn a_resnet_prior_uses_its_empirical_kernel_cached_in_the_folder() {
    let mut spec = tiny_mnist();
    spec.measures.prior.as_mut().unwrap().mc_kernel = None;
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("measures.prior.mc_kernel"), "{err}");

    let spec = tiny_mnist();
    let out = tempfile::tempdir().unwrap();
    let cache = |threads| basin_lab::prior_kernel::KernelCache {
        out: out.path(),
        threads,
    };
    let first = Prepared::cached(&spec, Some(cache(2))).unwrap();
    let files: Vec<_> = std::fs::read_dir(out.path().join("kernels"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    let again = Prepared::cached(&spec, Some(cache(1))).unwrap();
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        written
    );
    let (k, k2) = (first.kernel.unwrap(), again.kernel.unwrap());
    assert!((0..k.nrows()).all(|i| k[(i, i)] == k2[(i, i)] && k[(i, i)] > 1.0));
    assert_eq!(first.jackknife_kernels.len(), 4);
    // Without a cache the same kernel is computed (one thread or two, the same sums).
    let uncached = Prepared::new(&spec).unwrap().kernel.unwrap();
    assert!((0..k.nrows()).all(|j| (0..k.nrows()).all(|i| k[(i, j)] == uncached[(i, j)])));
    // Another M is another kernel, in another file.
    let mut more = spec.clone();
    small_kernel(&mut more).samples = 20;
    Prepared::cached(&more, Some(cache(2))).unwrap();
    assert_eq!(
        std::fs::read_dir(out.path().join("kernels"))
            .unwrap()
            .count(),
        2
    );
}

/// A shipped CIFAR-10 ResNet spec with a synthetic data directory, a tiny ResNet, few
/// examples and cheap measures (the prior on an empirical kernel of 4 networks).
fn tiny_cifar(name: &str, dir: &Path) -> ExperimentSpec {
    let text = builtin(name).replace(
        "cifar10:data/cifar-10-batches-bin",
        &format!("cifar10:{}", dir.display()),
    );
    let mut spec = ExperimentSpec::from_toml(&text, name).unwrap();
    spec.network.arch = Some("bottleneck:1:2".parse().unwrap());
    (spec.data.train_size, spec.data.test_size) = (40, 20);
    spec.data.attack_sizes = vec![0, 20];
    spec.data.networks_per_size = 1;
    spec.training.batch_size = 16;
    spec.training.max_epochs = 100;
    let s = spec.measures.sharpness.as_mut().unwrap();
    (s.epochs, s.batch_size) = (1, 16);
    let h = spec.measures.hessian.as_mut().unwrap();
    (h.top_k, h.lanczos_steps) = (3, Some(10));
    let k = small_kernel(&mut spec);
    assert_eq!(k.samples, 700, "the paper's M");
    (k.samples, k.blocks) = (4, 2);
    spec.validate().unwrap();
    spec
}

/// fig3-resnet50-cifar's path: CIFAR-10 cars vs cats, normalised, augmented, a bottleneck
/// ResNet on 3 channels, trained to zero error and measured.
#[test]
fn the_resnet50_cifar_spec_runs_on_synthetic_cifar_files() {
    let data = tempfile::tempdir().unwrap();
    common::synthetic_cifar(data.path(), 60);
    let spec = tiny_cifar("fig3-resnet50-cifar", data.path());
    assert!(spec.training.augment && spec.data.normalize);
    let prep = Prepared::new(&spec).unwrap();
    let Net::ResNet { spec: resnet, .. } = &prep.net else {
        panic!("a ResNet: {}", prep.net.describe())
    };
    assert_eq!(resnet.in_channels, 3);
    assert!(prep.augmentation().is_some_and(|a| a.pad_values.len() == 3));
    let out = tempfile::tempdir().unwrap();
    let done = run(&spec, out.path(), 2);
    assert_eq!(done.records.len(), 2);
    for r in &done.records {
        assert_eq!(r.status, TrainStatus::Converged, "{r:?}");
        assert_eq!(r.train_error, 0.0, "{r:?}");
        for m in [
            "sharpness",
            "lambda_max",
            "log_product_top3",
            "log_prior_probit",
            "log_prior_probit_mc_std_err",
        ] {
            assert!(r.measure(m).is_some_and(f64::is_finite), "{m}: {r:?}");
        }
    }
}

/// figS17-resnet50-adam's path: a run that has not reached zero training error within
/// `max_epochs` is recorded as not converged, measured where it stopped.
#[test]
fn an_unconverged_resnet_run_is_recorded_as_such() {
    let data = tempfile::tempdir().unwrap();
    common::synthetic_cifar(data.path(), 60);
    let mut spec = tiny_cifar("figS17-resnet50-adam", data.path());
    assert_eq!(spec.training.optimizer_list()[0].name(), "adam");
    spec.data.attack_sizes = vec![20];
    spec.training.max_epochs = 1;
    let out = tempfile::tempdir().unwrap();
    let done = run(&spec, out.path(), 1);
    let [r] = &done.records[..] else {
        panic!("one run: {:?}", done.records)
    };
    assert_eq!(
        (r.status, r.epochs),
        (TrainStatus::NotConverged, 1),
        "{r:?}"
    );
    assert!(r.train_error > 0.0 || r.attack_error.is_some_and(|e| e > 0.0));
    assert!(r.measure("lambda_max").is_some(), "{r:?}");
}
