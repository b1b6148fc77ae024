//! `basin sharpness` end to end on a small network trained on the embedded MNIST.

mod common;

use common::{basin, json};

const SPLIT: [&str; 6] = [
    "--train-size",
    "100",
    "--test-size",
    "100",
    "--set",
    "train",
];

#[test]
fn sharpness_by_sgd_and_lbfgsb() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let m = model.to_str().unwrap();
    let t = json(&[
        "train",
        "--train-size",
        "100",
        "--test-size",
        "100",
        "--out",
        m,
        "--json",
    ]);
    assert_eq!(t["status"], "converged");

    let run = |extra: &[&str]| {
        let mut args = vec!["sharpness", "--model", m, "--epochs", "5", "--json"];
        args.extend_from_slice(&SPLIT);
        args.extend_from_slice(extra);
        json(&args)
    };
    let s32 = run(&[]);
    for key in ["sharpness", "log10_sharpness", "loss", "max_loss", "wall_s"] {
        assert!(s32[key].is_number(), "{key} in {s32}");
    }
    assert_eq!(
        (s32["n"].as_u64(), s32["steps"].as_u64()),
        (Some(100), Some(20))
    );
    assert_eq!(s32["precision"], "f32");
    let (sharp, loss, max) = (
        s32["sharpness"].as_f64().unwrap(),
        s32["loss"].as_f64().unwrap(),
        s32["max_loss"].as_f64().unwrap(),
    );
    assert!(sharp > 0.0 && max > loss, "{s32}");
    assert!((sharp - 100.0 * (max - loss) / (1.0 + loss)).abs() < 1e-9 * sharp);
    // f64 follows the same path as f32 up to f32 round-off.
    let s64 = run(&["--precision", "f64"]);
    let sharp64 = s64["sharpness"].as_f64().unwrap();
    assert!(
        (sharp - sharp64).abs() < 1e-3 * sharp64,
        "{sharp} vs {sharp64}"
    );
    // The same seed gives the same numbers; another order gives others.
    let a = run(&["--order", "shuffled", "--seed", "4"]);
    let b = run(&["--order", "shuffled", "--seed", "4"]);
    assert_eq!(a["max_loss"], b["max_loss"]);
    assert_ne!(a["max_loss"], s32["max_loss"]);

    let l = run(&["--method", "lbfgsb", "--precision", "f64"]);
    assert_eq!(l["method"], "lbfgsb");
    assert!(l["lbfgsb_status"].is_string(), "{l}");
    assert!(l["sharpness"].as_f64().unwrap() > 0.0);
    assert_eq!(l["loss"], s64["loss"]);

    let human = basin(&["sharpness", "--model", m, "--epochs", "1", "--quiet"]);
    assert!(human.status.success());
    assert!(String::from_utf8_lossy(&human.stdout).starts_with("sharpness "));
}

#[test]
fn sharpness_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let m = model.to_str().unwrap();
    assert!(
        basin(&[
            "train",
            "--train-size",
            "50",
            "--test-size",
            "50",
            "--out",
            m
        ])
        .status
        .success()
    );
    for (args, needle) in [
        (vec!["--epsilon", "0"], "epsilon"),
        (vec!["--batch", "0"], "batch"),
        (vec!["--data", "boolean:7:parity"], "inputs"),
        (vec!["--set", "attack"], "empty"),
    ] {
        let mut all = vec!["sharpness", "--model", m];
        all.extend(args);
        let out = basin(&all);
        assert_eq!(out.status.code(), Some(1), "{all:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{all:?}: {err}");
    }
    let out = basin(&["sharpness", "--model", "/nonexistent.safetensors"]);
    assert_eq!(out.status.code(), Some(1));
}
