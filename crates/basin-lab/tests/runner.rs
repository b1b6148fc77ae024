//! The executor on a small attack-set experiment over the embedded MNIST: records, the store,
//! resuming, sharding, reproducibility.

use std::path::Path;

mod common;

use basin_lab::exec::folder::RunFolder;
use basin_lab::exec::shards::Shard;
use basin_lab::exec::{RunOptions, RunOutcome};
use basin_lab::kinds::experiment;
use basin_lab::prepare::Prepared;
use basin_lab::spec::ExperimentSpec;

fn small() -> ExperimentSpec {
    let text = basin_lab::spec::BUILTIN[0]
        .1
        .replace("train_size = 500", "train_size = 100")
        .replace("test_size = 1000", "test_size = 200")
        .replace(
            "attack_sizes = [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500]",
            "attack_sizes = [0, 100]",
        )
        .replace("networks_per_size = 5", "networks_per_size = 2")
        .replace("epochs = 100", "epochs = 2");
    ExperimentSpec::from_toml(&text, "small").unwrap()
}

fn opts(jobs: usize, shard: Option<Shard>) -> RunOptions {
    RunOptions::new(jobs, shard)
}

/// Runs `spec` into `out`.
fn run(
    spec: &ExperimentSpec,
    out: &Path,
    opts: RunOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> RunOutcome {
    let folder = RunFolder::open(out).unwrap();
    experiment(spec).run(&folder, opts, progress).unwrap()
}

#[test]
fn runs_store_resume_and_reproduce() {
    let spec = small();
    let prep = Prepared::new(&spec).unwrap();
    assert_eq!(prep.split.attack.len(), 100);
    let dir = tempfile::tempdir().unwrap();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: usize, _: usize| {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    };
    let out = run(&spec, dir.path(), opts(2, None), &progress);
    assert_eq!((out.computed, out.skipped, out.records.len()), (4, 0, 4));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    for r in &out.records {
        assert_eq!(r.status, basin_nn::TrainStatus::Converged, "{}", r.id);
        assert_eq!(r.train_error, 0.0);
        assert!(
            r.test_error.is_some_and(|e| e > 0.0 && e < 0.75),
            "{:?}",
            r.test_error
        );
        assert!(r.measure("sharpness").is_some_and(|s| s > 0.0), "{r:?}");
        assert!(r.measure("lambda_max").is_some_and(|l| l > 0.0), "{r:?}");
        assert!(r.measure("log_product_top50").is_some(), "{r:?}");
        let (probit, step) = (
            r.measure("log_prior_probit").unwrap(),
            r.measure("log_prior_step").unwrap(),
        );
        // Log-probabilities of a labelling of 300 points, within twice a random labelling's
        // -300 ln 2 = -208 for the probit one; the noise-free step likelihood puts more mass
        // on a function the kernel favours than the probit (step on K + I) does.
        assert!(
            probit < step && step < 0.0 && probit > -2.0 * 208.0,
            "{r:?}"
        );
        let (occam, pac) = (
            r.measure("bound_occam").unwrap(),
            r.measure("bound_pac_bayes").unwrap(),
        );
        assert!(occam > 0.0 && pac > 0.0 && pac < 1.0, "{r:?}");
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        assert_eq!(r.function_hash.len(), 64);
        assert!(r.stage_s["train"] > 0.0);
    }
    // Attack sets hurt: the mean test error rises with |A|.
    let mean = |a: usize| {
        let e: Vec<f64> = out
            .records
            .iter()
            .filter(|r| r.attack_size == a)
            .filter_map(|r| r.test_error)
            .collect();
        e.iter().sum::<f64>() / e.len() as f64
    };
    assert!(mean(100) > mean(0) + 0.05, "{} {}", mean(0), mean(100));
    // An empty attack set has no error rate; a non-empty one has.
    for r in &out.records {
        assert_eq!(r.attack_error.is_none(), r.attack_size == 0, "{}", r.id);
    }
    // The kernel was computed once, on S ∪ T.
    assert_eq!(prep.kernel.as_ref().map(|k| k.nrows()), Some(300));

    // A rerun computes nothing.
    let again = run(&spec, dir.path(), opts(1, None), &|_, _| {});
    assert_eq!((again.computed, again.skipped), (0, 4));
    assert_eq!(again.records.len(), 4);

    // Two shards in two folders give the same records as one run (same seeds, one thread
    // per run, so the numbers are identical).
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s1 = run(
        &spec,
        d1.path(),
        opts(1, Some("1/2".parse().unwrap())),
        &|_, _| {},
    );
    let s2 = run(
        &spec,
        d2.path(),
        opts(1, Some("2/2".parse().unwrap())),
        &|_, _| {},
    );
    assert_eq!(s1.records.len() + s2.records.len(), 4);
    let mut sharded: Vec<_> = s1.records.into_iter().chain(s2.records).collect();
    let mut whole = out.records;
    sharded.sort_by(|a, b| a.id.cmp(&b.id));
    whole.sort_by(|a, b| a.id.cmp(&b.id));
    for (a, b) in sharded.iter().zip(&whole) {
        assert_eq!(
            (
                &a.id,
                a.test_error,
                &a.function_hash,
                a.measure("sharpness")
            ),
            (
                &b.id,
                b.test_error,
                &b.function_hash,
                b.measure("sharpness")
            )
        );
    }
}

/// A stop raised after the first job: the run ends with `Stopped`, that job's records are
/// stored, and a rerun computes only the rest.
#[test]
fn a_stopped_run_keeps_its_finished_jobs_and_resumes() {
    let spec = small();
    let dir = tempfile::tempdir().unwrap();
    let options = opts(1, None);
    let stop = options.stop.clone();
    let folder = RunFolder::open(dir.path()).unwrap();
    let err = experiment(&spec)
        .run(&folder, options, &|_, _| stop.request())
        .unwrap_err();
    assert!(
        matches!(
            err,
            basin_lab::error::LabError::Stopped {
                done: 1,
                total: 4,
                ..
            }
        ),
        "{err}"
    );
    drop(folder);
    let rest = run(&spec, dir.path(), opts(1, None), &|_, _| {});
    assert_eq!((rest.computed, rest.skipped), (3, 1));
}

#[test]
fn missing_cifar_data_is_a_clear_error() {
    let spec = ExperimentSpec::load("fig3-cifar-fcn").unwrap();
    let err = Prepared::new(&spec).unwrap_err().to_string();
    assert!(
        err.contains("data_batch_1.bin") && err.contains("fig3-cifar-fcn"),
        "{err}"
    );
}

/// The shipped CIFAR spec, shrunk, on a synthetic CIFAR-format directory: 3072 inputs,
/// normalised, cars vs cats, every stage measured.
#[test]
fn the_cifar_spec_runs_on_synthetic_cifar_files() {
    let data = tempfile::tempdir().unwrap();
    common::synthetic_cifar(data.path(), 60);
    let text = basin_lab::spec::BUILTIN[1]
        .1
        .replace(
            "cifar10:data/cifar-10-batches-bin",
            &format!("cifar10:{}", data.path().display()),
        )
        .replace("train_size = 5000", "train_size = 80")
        .replace("test_size = 2000", "test_size = 30")
        .replace(
            "attack_sizes = [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000]",
            "attack_sizes = [0, 40]",
        )
        .replace("networks_per_size = 5", "networks_per_size = 1")
        .replace("epochs = 100", "epochs = 2")
        .replace("lanczos_steps = 160", "lanczos_steps = 60");
    let spec = ExperimentSpec::from_toml(&text, "cifar-small").unwrap();
    let prep = Prepared::new(&spec).unwrap();
    assert_eq!(prep.net.fcn_spec().unwrap().input_dim, 3072);
    assert_eq!(prep.s_and_t.len(), 110);
    // Normalised with the paper's mean and std: no pixel stays in [0, 1].
    assert!(
        prep.split
            .train
            .features()
            .iter()
            .any(|&v| !(0.0..=1.0).contains(&v))
    );
    let out = tempfile::tempdir().unwrap();
    let done = run(&spec, out.path(), opts(1, None), &|_, _| {});
    assert_eq!(done.records.len(), 2);
    for r in &done.records {
        assert_eq!(r.status, basin_nn::TrainStatus::Converged);
        for m in [
            "sharpness",
            "lambda_max",
            "log_prior_probit",
            "log_prior_step",
        ] {
            assert!(r.measure(m).is_some(), "{m}: {r:?}");
        }
    }
}
