//! Reports from records: the summary's numbers, the files, and what the Markdown says.

use std::collections::BTreeMap;

use basin_lab::kinds::attack_set::summarize;
use basin_lab::kinds::report;
use basin_lab::record::RunRecord;
use basin_lab::spec::ExperimentSpec;
use basin_lab::stats::{kendall_tau_b, pearson, spearman};
use basin_nn::TrainStatus;

/// 3 attack sizes × 4 runs; log P(f) falls with test error, sharpness rises loosely; one run
/// did not converge and must be left out.
fn records() -> Vec<RunRecord> {
    let mut out = Vec::new();
    for (k, a) in [0usize, 250, 500].into_iter().enumerate() {
        for r in 0..4 {
            let err = 0.12 + 0.15 * k as f64 + 0.01 * r as f64;
            let mut measures = BTreeMap::new();
            measures.insert("log_prior_probit".into(), Some(-700.0 - 900.0 * err));
            measures.insert("sharpness".into(), Some(0.1 + err * ((r % 3) as f64)));
            measures.insert("lambda_max".into(), None);
            out.push(RunRecord {
                id: format!("x-a{a}-r{r}"),
                experiment: "x".into(),
                variant: String::new(),
                optimizer: "sgd".into(),
                overtrain_epochs: 0,
                attack_size: a,
                replicate: r,
                seed: r as u64,
                status: if a == 500 && r == 3 {
                    TrainStatus::NotConverged
                } else {
                    TrainStatus::Converged
                },
                epochs: 100 + a / 5,
                train_error: 0.0,
                attack_error: Some(0.0),
                test_error: Some(err),
                function_hash: "00".into(),
                measures,
                notes: BTreeMap::new(),
                stage_s: BTreeMap::from([("train".into(), 0.2), ("prior".into(), 0.01)]),
                trajectory: Vec::new(),
            });
        }
    }
    out
}

#[test]
fn summary_uses_converged_runs_and_matches_the_statistics() {
    let recs = records();
    let s = summarize(&recs, 1);
    assert_eq!((s.runs, s.converged), (12, 11));
    let good: Vec<&RunRecord> = recs
        .iter()
        .filter(|r| r.status == TrainStatus::Converged)
        .collect();
    let e: Vec<f64> = good.iter().filter_map(|r| r.test_error).collect();
    let p: Vec<f64> = good
        .iter()
        .map(|r| r.measure("log_prior_probit").unwrap())
        .collect();
    let c = &s.correlations["log_prior_probit"];
    assert_eq!(c.n, 11);
    assert_eq!(c.pearson, pearson(&p, &e));
    assert_eq!(c.spearman, spearman(&p, &e));
    assert_eq!(c.kendall, kendall_tau_b(&p, &e));
    assert!(
        (c.pearson.unwrap() + 1.0).abs() < 1e-12,
        "exactly linear, falling"
    );
    assert!(s.correlations.contains_key("sharpness"));
    assert!(!s.correlations.contains_key("lambda_max"), "never measured");
}

#[test]
fn outputs_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ExperimentSpec::load("fig3-mnist").unwrap();
    let recs = records();
    report(Some(&spec), dir.path(), &recs).unwrap();
    for f in [
        "summary.json",
        "report.md",
        "log_prior_probit.png",
        "log_prior_probit.svg",
        "sharpness.png",
        "sharpness.svg",
        "fig3.png",
        "fig3.svg",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    assert!(!dir.path().join("lambda_max.png").exists());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["runs"], 12);
    let c = &summary["correlations"]["log_prior_probit"];
    for key in ["pearson", "spearman", "kendall"] {
        assert!(
            c[key].is_number() && c["ci95"][key]["lo"].is_number(),
            "{key}"
        );
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for needle in [
        "# fig3-mnist",
        "| `log_prior_probit` | 11 | -1.000",
        "![sharpness against test error](sharpness.png)",
        "![log10 P(f) and sharpness against test error](fig3.png)",
        "| 500 | 4 | 3 |",
        "| train | 0.200 | 2.4 |",
        "[measures.sharpness]",
    ] {
        assert!(md.contains(needle), "{needle} in\n{md}");
    }
    // The log10 axis: log P(f) values are natural logs, plotted as log10.
    let svg = std::fs::read_to_string(dir.path().join("log_prior_probit.svg")).unwrap();
    assert!(svg.contains("log10 P(f)"));
}

/// Records of two optimizers: per-variant correlations, one figure-3 and one pairs figure per
/// variant, and the per-variant table in the report.
#[test]
fn variants_are_reported_separately() {
    let mut recs = Vec::new();
    for (v, flip) in [("adam", -1.0), ("sgd", 1.0)] {
        for mut r in records() {
            r.variant = v.into();
            r.id = format!("{v}-{}", r.id);
            let s = r.measure("sharpness").unwrap();
            r.measures.insert("sharpness".into(), Some(flip * s));
            recs.push(r);
        }
    }
    let s = summarize(&recs, 1);
    assert_eq!(s.by_variant.len(), 2);
    let (adam, sgd) = (
        s.by_variant["adam"]["sharpness"].spearman.unwrap(),
        s.by_variant["sgd"]["sharpness"].spearman.unwrap(),
    );
    assert!((adam + sgd).abs() < 1e-12 && sgd > 0.0, "{adam} {sgd}");
    assert_eq!(
        s.by_variant["sgd"]["log_prior_probit"],
        summarize(&records(), 1).correlations["log_prior_probit"],
        "a variant's correlations are those of its records alone"
    );
    let dir = tempfile::tempdir().unwrap();
    report(None, dir.path(), &recs).unwrap();
    for f in [
        "fig3-adam.png",
        "fig3-sgd.svg",
        "pairs-adam.png",
        "pairs-sgd.svg",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    assert!(
        !dir.path().join("sharpness.png").exists(),
        "no pooled plots"
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for needle in [
        "| measure | adam | sgd |",
        "![log10 P(f) and sharpness against test error (adam)](fig3-adam.png)",
        "| sgd, 500 | 4 | 3 |",
    ] {
        assert!(md.contains(needle), "{needle} in\n{md}");
    }
}

/// With the SMC reference (fig3-mnist-exact): both Spearman coefficients side by side and EP's
/// per-run bias (mean and range) in the report; the reference's own correlation in the
/// summary. Here EP is 0.5 nats above SMC on every run but the last two (1.5), SMC's s.e. 0.2.
#[test]
fn the_smc_reference_is_compared_with_ep() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ExperimentSpec::load("fig3-mnist-exact").unwrap();
    let mut recs = records();
    for (i, r) in recs.iter_mut().enumerate() {
        let smc = -500.0 - 400.0 * r.test_error.expect("records() sets it");
        let bias = if i >= 10 { 1.5 } else { 0.5 };
        r.measures.insert("log_prior_step".into(), Some(smc + bias));
        r.measures.insert("log_prior_step_smc".into(), Some(smc));
        r.measures
            .insert("log_prior_step_smc_std_err".into(), Some(0.2));
    }
    let summary = report(Some(&spec), dir.path(), &recs).unwrap().summary;
    assert_eq!(summary.correlations["log_prior_step_smc"].n, 11);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    // Runs 0–9 and 10 converged (11 is not): mean bias (10·0.5 + 1.5)/11.
    let mean = (10.0 * 0.5 + 1.5) / 11.0;
    for needle in [
        "## EP against the SMC reference (step likelihood)".to_string(),
        "| SMC (reference) | -1.000".to_string(),
        format!("over 11 runs: mean {mean:+.3} nats, range [+0.500, +1.500]"),
        "standard error 0.200 nats".to_string(),
    ] {
        assert!(md.contains(&needle), "{needle} in\n{md}");
    }
}

/// A spec's Hessian `top_k` other than 50 (the ResNet specs take 2 and 10): the records'
/// `log_product_top{k}` is correlated, plotted with its k on the axis, and in the pairs figure.
#[test]
fn the_log_product_of_any_top_k_is_reported() {
    let mut recs = records();
    for (i, r) in recs.iter_mut().enumerate() {
        let v = 3.0 + 0.1 * i as f64;
        r.measures.insert("log_product_top2".into(), Some(v));
        r.measures.insert("lambda_max".into(), Some(v.exp()));
    }
    let s = summarize(&recs, 1);
    assert_eq!(s.correlations["log_product_top2"].n, 11);
    assert!(!s.correlations.contains_key("log_product_top50"));
    let dir = tempfile::tempdir().unwrap();
    report(None, dir.path(), &recs).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("log_product_top2.svg")).unwrap();
    assert!(
        svg.contains("top-2 Hessian eigenvalues"),
        "the axis names k"
    );
    let pairs = std::fs::read_to_string(dir.path().join("pairs.svg")).unwrap();
    assert!(
        pairs.contains("top-2 Hessian eigenvalues"),
        "the pairs figure's middle panel"
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| `log_product_top2` | 11 |"), "{md}");
}
