//! Specs with variants: optimizers compared and overtraining checkpoints (one training run
//! measured several times), and the temporal α-scaling experiment.

use basin_lab::exec::RunOptions;
use basin_lab::exec::folder::RunFolder;
use basin_lab::kinds::experiment;
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
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions::new(2, None);
    let mut records = experiment(spec)
        .run(&RunFolder::open(dir.path()).unwrap(), opts, &|_, _| {})
        .unwrap()
        .records;
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
    let summary = experiment(&spec)
        .report(dir.path(), &records)
        .unwrap()
        .summary;
    assert_eq!(summary.section["temporal"].as_array().unwrap().len(), 2);
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

/// The Boolean experiment: the sampled table is stored and reused, each kept function is
/// trained to zero error on the whole cube, and its record carries the sampled prior; the
/// outputs are written.
#[test]
fn boolean_functions_are_trained_against_their_sampled_prior() {
    let text = basin_lab::spec::BUILTIN
        .iter()
        .find(|b| b.0 == "fig2-boolean")
        .unwrap()
        .1
        .replace("samples = 10000000", "samples = 20000")
        .replace("top_k = 1000", "top_k = 4");
    let spec = ExperimentSpec::from_toml(&text, "small boolean").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions::new(2, None);
    let exp = experiment(&spec);
    let out = exp
        .run(
            &RunFolder::open(dir.path()).unwrap(),
            opts.clone(),
            &|_, _| {},
        )
        .unwrap();
    assert_eq!(out.records.len(), 4);
    // The whole cube is S: there is no test set, so no test error (nor an attack error).
    for r in &out.records {
        assert_eq!((r.test_error, r.attack_error), (None, None), "{}", r.id);
    }
    let table: basin_lab::kinds::boolean::SampledFunctions =
        serde_json::from_slice(&std::fs::read(dir.path().join("functions.json")).unwrap()).unwrap();
    assert_eq!((table.samples, table.top.len()), (20000, 4));
    // The two constants lead, each with about a quarter of the samples.
    let constants = ["0".repeat(32), "f".repeat(32)];
    for f in &table.top[..2] {
        assert!(constants.contains(&f.function), "{}", f.function);
        assert!((4400..5600).contains(&f.count), "{}", f.count);
    }
    for r in &out.records {
        let f = &table.top[r.replicate - 1];
        assert!(r.id.ends_with(&f.function));
        assert_eq!(r.status, basin_nn::TrainStatus::Converged);
        assert_eq!(r.train_error, 0.0);
        let sampled = r.measure("log_prior_sampled").unwrap();
        assert!((sampled - (f.count as f64 / 20000.0).ln()).abs() < 1e-12);
        assert!(r.measure("sharpness").is_some() && r.measure("spectral_norm").is_some());
        assert!(r.measure("log_prior_step").is_some_and(|l| l < 0.0));
    }
    // A rerun reads the table and computes nothing.
    let again = exp
        .run(&RunFolder::open(dir.path()).unwrap(), opts, &|_, _| {})
        .unwrap();
    assert_eq!((again.computed, again.skipped), (0, 4));
    let summary = exp.report(dir.path(), &out.records).unwrap().summary;
    let b = &summary.section["boolean"];
    assert!(b["against_sampled"].get("sharpness").is_some());
    assert_eq!(b["ep_error"]["step"]["n"], 4);
    for f in ["fig2.png", "ep_vs_sampled.svg", "report.md", "summary.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}

/// The EP-accuracy study on small kernels: one record per (N, flipped fraction, replicate),
/// EP within a few tilting standard errors of the truth on the probit likelihood (where EP is
/// known to be accurate), and the bias table written.
#[test]
fn ep_accuracy_compares_ep_with_tilting() {
    let text = basin_lab::spec::BUILTIN
        .iter()
        .find(|b| b.0 == "ep-accuracy")
        .unwrap()
        .1
        .replace("sizes = [64, 300, 1500]", "sizes = [24, 48]")
        .replace(
            "flip_fractions = [0.0, 0.1, 0.2, 0.3, 0.5]",
            "flip_fractions = [0.0, 0.25]",
        )
        .replace("samples = 10240", "samples = 4096")
        .replace("smc_sizes = [300, 1500]", "smc_sizes = [48]");
    let spec = ExperimentSpec::from_toml(&text, "small ep-accuracy").unwrap();
    let records = all(&spec);
    assert_eq!(records.len(), 2 * 2 * 2);
    for r in &records {
        let n = r.measure("points").unwrap() as usize;
        let f = r.measure("flip_fraction").unwrap();
        assert_eq!(r.test_error, Some((f * n as f64).round() / n as f64));
        let (bias, se) = (
            r.measure("bias_probit").unwrap(),
            r.measure("tilting_probit_std_err").unwrap(),
        );
        assert!(se > 0.0 && se < 0.05, "{r:?}");
        assert!(bias.abs() < 4.0 * se + 0.02, "probit EP is accurate: {r:?}");
        assert_eq!(r.measure("reliable_probit"), Some(1.0), "{:?}", r.notes);
        let ep = r.measure("ep_step").unwrap();
        assert!(
            (ep - r.measure("tilting_step").unwrap() - r.measure("bias_step").unwrap()).abs()
                < 1e-9
        );
    }
    // The SMC reference on the step likelihood, on (N = 48, φ = 0) only: the same EP value,
    // and SMC within 3 combined standard errors of tilting (+0.05 nats).
    for r in &records {
        let at = r.variant == "N = 48" && r.measure("flip_fraction") == Some(0.0);
        assert_eq!(r.measure("smc_step").is_some(), at, "{r:?}");
        if at {
            let (s, s_se) = (
                r.measure("smc_step").unwrap(),
                r.measure("smc_step_std_err").unwrap(),
            );
            let (t, t_se) = (
                r.measure("tilting_step").unwrap(),
                r.measure("tilting_step_std_err").unwrap(),
            );
            let both = (s_se * s_se + t_se * t_se).sqrt();
            assert!(
                (s - t).abs() < 3.0 * both + 0.05,
                "smc {s} ± {s_se}, tilting {t} ± {t_se}"
            );
            let ep = r.measure("ep_step").unwrap();
            assert!((ep - s - r.measure("bias_smc_step").unwrap()).abs() < 1e-9);
        }
    }
    // More flipped labels: a less likely function.
    let mean = |f: f64| {
        let v: Vec<f64> = records
            .iter()
            .filter(|r| r.measure("flip_fraction") == Some(f) && r.variant == "N = 48")
            .map(|r| r.measure("tilting_probit").unwrap())
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean(0.25) < mean(0.0), "{} {}", mean(0.25), mean(0.0));
    let dir = tempfile::tempdir().unwrap();
    let summary = experiment(&spec)
        .report(dir.path(), &records)
        .unwrap()
        .summary;
    assert_eq!(
        summary.section["ep_accuracy"].as_array().unwrap().len(),
        2 * 2 * 2 + 1,
        "N × φ × likelihood, and the SMC cell"
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| 48 | 0.00 | step | smc | 2 / 2 |"), "{md}");
    for f in ["bias.png", "bias.svg", "report.md", "summary.json"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
}
