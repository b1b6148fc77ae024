//! Specs with variants: optimizers compared and overtraining checkpoints (one training run
//! measured several times), and the temporal α-scaling experiment.

use basin_lab::report::write_outputs;
use basin_lab::runner::{Prepared, RunOptions, run};
use basin_lab::spec::ExperimentSpec;

/// A small attack-set spec: |S| = 100, |T| = 100, one attack size, two networks, cheap
/// measures (no Hessian).
fn small(training: &str) -> ExperimentSpec {
    let text = format!(
        r#"
name = "v"
[data]
source = "mnist"
train_size = 100
test_size = 100
attack_sizes = [20]
networks_per_size = 2
[training]
{training}
[measures.sharpness]
epochs = 2
[measures.prior]
likelihoods = ["probit"]
"#
    );
    ExperimentSpec::from_toml(&text, "small").unwrap()
}

fn all(spec: &ExperimentSpec) -> Vec<basin_lab::record::RunRecord> {
    let prep = Prepared::new(spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        jobs: 2,
        shard: None,
    };
    let mut records = run(&prep, dir.path(), opts, &|_, _| {}).unwrap().records;
    records.sort_by(|a, b| a.id.cmp(&b.id));
    records
}

/// A checkpoint of a multi-optimizer, multi-checkpoint spec is the same run, with the same id
/// and the same numbers, as a spec with that optimizer alone overtrained that long.
#[test]
fn checkpoints_equal_separate_overtrained_runs() {
    let both = small(
        r#"optimizers = [{ kind = "sgd", lr = 0.01 }, { kind = "adam" }]
measure_at = [0, 30]"#,
    );
    let records = all(&both);
    assert_eq!(records.len(), 2 * 2 * 2);
    let variants: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(
        variants.into_iter().collect::<Vec<_>>(),
        ["adam +0", "adam +30", "sgd +0", "sgd +30"]
    );
    let single = all(&small(
        r#"optimizer = { kind = "adam" }
overtrain_epochs = 30"#,
    ));
    assert_eq!(single.len(), 2);
    for s in &single {
        let twin = records.iter().find(|r| r.id == s.id).expect("same id");
        assert_eq!(twin.variant, "adam +30");
        assert_eq!(
            (twin.epochs, twin.test_error, &twin.function_hash),
            (s.epochs, s.test_error, &s.function_hash)
        );
        assert_eq!(twin.measure("sharpness"), s.measure("sharpness"));
        assert_eq!(
            twin.measure("log_prior_probit"),
            s.measure("log_prior_probit")
        );
    }
    // Overtraining does not change the zero-error epoch, and lowers the loss, so the
    // sharpness falls (100 × the loss rise over 1 + loss, for a loss that shrinks).
    for r in records.iter().filter(|r| r.variant == "sgd +30") {
        let at_zero = records
            .iter()
            .find(|z| z.variant == "sgd +0" && z.replicate == r.replicate)
            .unwrap();
        assert_eq!(r.epochs, at_zero.epochs);
        assert!(
            r.measure("sharpness") < at_zero.measure("sharpness"),
            "{r:?}"
        );
    }
    // Both optimizers start from the same initialisation: the same seeds.
    let seeds = |v: &str| -> Vec<u64> {
        records
            .iter()
            .filter(|r| r.variant == v)
            .map(|r| r.seed)
            .collect()
    };
    let (mut a, mut s) = (seeds("adam +0"), seeds("sgd +0"));
    a.sort();
    s.sort();
    assert_eq!(a, s);
}

fn temporal() -> ExperimentSpec {
    let text = r#"
name = "t"
[data]
source = "mnist"
train_size = 100
test_size = 50
attack_sizes = [0]
networks_per_size = 1
[measures.sharpness]
epochs = 2
[measures.prior]
likelihoods = ["probit"]
[temporal]
every = 5
overtrain_epochs = 20
scale_after = 10
alphas = [1.0, 0.05]
"#;
    ExperimentSpec::from_toml(text, "temporal").unwrap()
}

/// The trajectory starts at initialisation, marks the zero-error epoch and the scaling, reuses
/// the prior while the function is unchanged, and the scaled and unscaled runs agree up to
/// the scaling; the outputs are written.
#[test]
fn temporal_runs_trace_training_and_scaling() {
    let spec = temporal();
    let records = all(&spec);
    assert_eq!(records.len(), 2);
    let unscaled = records.iter().find(|r| r.variant == "α = 1").unwrap();
    let scaled = records.iter().find(|r| r.variant == "α = 0.05").unwrap();
    let zero = unscaled.epochs;
    assert_eq!(unscaled.status, basin_nn::TrainStatus::Converged);
    let epochs: Vec<usize> = unscaled.trajectory.iter().map(|p| p.epoch).collect();
    assert_eq!(epochs[0], 0);
    assert!(epochs.contains(&zero) && epochs.last() == Some(&(zero + 20)));
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    let scaled_epochs: Vec<usize> = scaled.trajectory.iter().map(|p| p.epoch).collect();
    let twice = scaled_epochs.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(
        twice, 1,
        "the scaling epoch, before and after: {scaled_epochs:?}"
    );
    assert_eq!(unscaled.measure("scaled_at_epoch"), None);
    assert_eq!(scaled.measure("scaled_at_epoch"), Some((zero + 10) as f64));
    for p in &unscaled.trajectory {
        assert!(
            p.sharpness.is_some() && p.log_prior_probit.is_some(),
            "{p:?}"
        );
    }
    for w in unscaled.trajectory.windows(2) {
        if !w[1].function_changed {
            assert_eq!(w[1].log_prior_probit, w[0].log_prior_probit, "reused");
        }
    }
    assert!(unscaled.trajectory[0].function_changed);
    // Up to the scaling the two runs are the same run.
    let k = scaled
        .trajectory
        .iter()
        .position(|p| p.epoch == zero + 10)
        .unwrap();
    assert_eq!(scaled.trajectory[..k], unscaled.trajectory[..k]);
    // The scaling keeps the function and its prior, and (α < 1 on the first layer) raises
    // the sharpness.
    let (before, after) = (&scaled.trajectory[k], &scaled.trajectory[k + 1]);
    assert!(!after.function_changed, "{before:?} {after:?}");
    assert_eq!(after.log_prior_probit, before.log_prior_probit);
    assert!(after.sharpness > before.sharpness, "{before:?} {after:?}");

    let dir = tempfile::tempdir().unwrap();
    let summary = write_outputs(dir.path(), Some(&spec), &records).unwrap();
    assert_eq!(summary.temporal.len(), 2);
    for f in [
        "fig5.png",
        "fig5.svg",
        "trajectories.csv",
        "summary.json",
        "report.md",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let csv = std::fs::read_to_string(dir.path().join("trajectories.csv")).unwrap();
    let rows = unscaled.trajectory.len() + scaled.trajectory.len();
    assert_eq!(csv.lines().count(), 1 + rows);
}
