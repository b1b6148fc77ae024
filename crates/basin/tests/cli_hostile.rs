//! Hostile input to every command: absurd sizes, empty sets, negative numbers and bad maps
//! give a clear error (exit status 1, no panic, no abort) or a null where there is no value.

mod common;

use common::{basin, json};

/// Runs `basin`, asserts a clean failure (status 1: an error, not a panic or an abort) and
/// returns stderr.
fn fails(args: &[&str]) -> String {
    let out = basin(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "basin {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Whether this machine tells how much memory the process has (the memory checks pass where
/// it cannot).
fn memory_known() -> bool {
    basin_data::memory::available_bytes().is_some()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Trains a small network (S = 50, no T, no A) on the embedded MNIST into `dir`; returns its
/// path and `train`'s JSON report.
fn small_model(dir: &std::path::Path) -> (String, serde_json::Value) {
    let m = dir.join("m.safetensors").to_str().unwrap().to_owned();
    let report = json(&[
        "train",
        "--train-size",
        "50",
        "--test-size",
        "0",
        "--out",
        &m,
        "--json",
    ]);
    (m, report)
}

#[test]
fn an_empty_test_or_attack_set_has_no_error_rate() {
    let dir = tmp();
    let (_, t) = small_model(dir.path());
    assert_eq!(t["train_error"], 0.0, "{t}");
    assert!(t["test_error"].is_null(), "{t}");
    assert!(t["attack_error"].is_null(), "{t}");
}

#[test]
fn an_empty_training_set_or_evaluation_set_is_an_error_not_a_panic() {
    let dir = tmp();
    let err = fails(&["train", "--train-size", "0", "--out", "unused.safetensors"]);
    assert!(err.contains("--train-size"), "{err}");
    let (m, _) = small_model(dir.path());
    let err = fails(&["eval", "--model", &m, "--class-map", "11:0"]);
    assert!(
        err.contains("no examples left after --class-map 11:0"),
        "{err}"
    );
}

#[test]
fn split_sizes_that_overflow_are_an_error() {
    let err = fails(&[
        "train",
        "--train-size",
        "18446744073709551615",
        "--attack-size",
        "5",
        "--out",
        "x",
    ]);
    assert!(err.contains("cannot split"), "{err}");
}

#[test]
fn sizes_beyond_memory_are_refused_with_the_flag_that_reduces_them() {
    if !memory_known() {
        return;
    }
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "train",
                "--hidden",
                "100000000",
                "--train-size",
                "10",
                "--out",
                "x",
            ],
            "--hidden",
        ),
        (
            &[
                "kernel",
                "--method",
                "mc",
                "--hidden",
                "100000000",
                "--samples",
                "1",
                "-o",
                "k",
            ],
            "--hidden",
        ),
        (&["kernel", "--take", "10000000", "-o", "k"], "--take"),
        (
            &[
                "boolean",
                "sample",
                "--hidden",
                "100000000",
                "--samples",
                "10",
            ],
            "--hidden",
        ),
        (
            &[
                "prior",
                "--kernel",
                "k.npy",
                "--labels",
                "y.npy",
                "--method",
                "tilting",
                "--samples",
                "18446744073709551615",
            ],
            "--samples",
        ),
    ];
    for (args, flag) in cases {
        let err = fails(args);
        assert!(err.contains("GiB of memory"), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn prior_of_a_model_on_a_huge_input_set_is_refused_before_the_kernel() {
    if !memory_known() {
        return;
    }
    let dir = tmp();
    let m = dir.path().join("b.safetensors");
    let m = m.to_str().unwrap();
    let data = "boolean:20:parity";
    let t = json(&[
        "train",
        "--data",
        data,
        "--train-size",
        "10",
        "--test-size",
        "0",
        "--test-offset",
        "10",
        "--out",
        m,
        "--json",
    ]);
    assert_eq!(t["status"], "converged", "{t}");
    let err = fails(&["prior", "--model", m, "--data", data]);
    assert!(err.contains("NNGP kernel of 1048576 points"), "{err}");
    assert!(err.contains("--set"), "{err}");
}

#[test]
fn negative_numbers_are_read_as_values() {
    let err = fails(&["train", "--lr", "-0.01", "--train-size", "10", "--out", "x"]);
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(err.contains("-0.01"), "{err}");
}

#[test]
fn class_map_errors_name_the_class_map() {
    let err = fails(&["data", "info", "mnist", "--class-map", "x"]);
    assert!(err.contains("bad class map \"x\""), "{err}");
    assert!(!err.contains("data source"), "{err}");
    assert!(err.contains("0-4:0,5-9:1"), "{err}");
    let out = basin(&["data", "info", "mnist", "--class-map", "none", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_alpha_that_overflows_the_weights_says_so() {
    let dir = tmp();
    let (m, _) = small_model(dir.path());
    let out = dir.path().join("s.safetensors");
    let err = fails(&[
        "scale",
        "--model",
        &m,
        "--layer",
        "0",
        "--alpha",
        "1e-300",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("over/underflows the weights"), "{err}");
    assert!(!err.contains("diverge"), "{err}");
    assert!(!out.exists());
}

#[test]
fn prior_without_input_lists_every_way_to_give_it() {
    let out = basin(&["prior"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--kernel") && err.contains("--model"), "{err}");
}

#[test]
fn an_absurd_number_of_boolean_samples_is_refused_with_a_time_estimate() {
    let err = fails(&["boolean", "sample", "--samples", "1e19", "--threads", "1"]);
    assert!(err.contains("would take about"), "{err}");
    assert!(err.contains("years"), "{err}");
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn a_log_prior_that_is_not_finite_is_printed_as_null_and_exits_with_an_error() {
    let dir = tmp();
    let (k, y) = (dir.path().join("k.npy"), dir.path().join("y.npy"));
    // Probit on 8 MNIST digits' kernel times 1e300: the Laplace approximation has no finite
    // value there.
    json(&[
        "kernel",
        "--take",
        "8",
        "--output",
        k.to_str().unwrap(),
        "--json",
    ]);
    let unit = basin_data::npy::read(&k).unwrap().data.to_f64();
    let kernel = unit.iter().map(|v| v * 1e300).collect();
    basin_data::NpyArray::new(vec![8, 8], basin_data::NpyData::F64(kernel))
        .unwrap()
        .write(&k)
        .unwrap();
    let labels = vec![1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0];
    basin_data::NpyArray::new(vec![8], basin_data::NpyData::F64(labels))
        .unwrap()
        .write(&y)
        .unwrap();
    let args = [
        "prior",
        "--kernel",
        k.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--method",
        "laplace",
        "--likelihood",
        "probit",
        "--json",
    ];
    let err = fails(&args);
    assert!(err.contains("no finite log P(f)"), "{err}");
    let out = basin(&args);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["log_prior"].is_null(), "{report}");
    assert_eq!(report["converged"], false, "{report}");
    assert!(!report["issues"].as_array().unwrap().is_empty(), "{report}");
}

#[test]
fn absurd_thread_and_job_counts_are_refused_before_any_thread_starts() {
    for args in [
        &[
            "prior",
            "--kernel",
            "k.npy",
            "--labels",
            "y.npy",
            "--threads",
            "100000000",
        ][..],
        &[
            "boolean",
            "sample",
            "--samples",
            "100",
            "--threads",
            "100000000",
        ],
        &[
            "reproduce",
            "fig2-boolean",
            "--quick",
            "--jobs",
            "100000000",
        ],
    ] {
        let err = fails(args);
        assert!(err.contains("at most 1024"), "{args:?}: {err}");
    }
}
