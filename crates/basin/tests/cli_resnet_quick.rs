//! The shipped `fig3-resnet-mnist` spec in its `--quick` form, end to end: six ResNets trained
//! to zero error on the embedded MNIST, measured, with log P(f) on the empirical kernel and
//! its Monte Carlo error, the report and the plots. It takes about 5 minutes on two cores, so
//! `cargo test` leaves it out and `.ci/run` runs it (`-- --ignored`).

mod common;

use common::basin;

#[test]
#[ignore = "about 5 minutes on two cores; .ci/run runs it"]
fn the_resnet_spec_runs_quick_from_a_fresh_folder_with_report_plots_and_mc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let run = basin(&[
        "reproduce",
        "fig3-resnet-mnist",
        "--quick",
        "--out",
        o,
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");

    let records: Vec<serde_json::Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 6, "three attack sizes, two networks each");
    for r in &records {
        assert_eq!(r["status"], "converged", "{r}");
        assert_eq!(r["train_error"], 0.0, "{r}");
        let m = &r["measures"];
        for key in [
            "log_prior_step",
            "log_prior_probit",
            "lambda_max",
            "sharpness",
        ] {
            assert!(m[key].as_f64().is_some_and(f64::is_finite), "{key}: {r}");
        }
        // The jackknife's error is positive and small beside the value (a few nats of ~1,000).
        for key in ["log_prior_step", "log_prior_probit"] {
            let (value, err) = (m[key].as_f64().unwrap(), &m[format!("{key}_mc_std_err")]);
            let err = err.as_f64().unwrap_or(f64::NAN);
            assert!(
                err > 0.0 && err < 0.1 * value.abs(),
                "{key}: {value} ± {err}"
            );
        }
    }
    let kernels: Vec<_> = std::fs::read_dir(out.join("kernels")).unwrap().collect();
    assert_eq!(kernels.len(), 1, "one cached kernel for all runs");

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("The Monte Carlo error of log P(f)"),
        "{report}"
    );
    for plot in [
        "fig3.png",
        "fig3.svg",
        "log_prior_step.png",
        "sharpness.svg",
    ] {
        let len = std::fs::metadata(out.join(plot)).map_or(0, |m| m.len());
        assert!(len > 1000, "{plot}: {len} bytes");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary.to_string().contains("log_prior_step"), "{summary}");
}
