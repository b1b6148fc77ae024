//! Conv nets end to end through the command line: `train --arch` to 100% on S with and
//! without an attack set, then `eval --logits`, `sharpness`, `hessian` and `scale` on the
//! saved ResNet, and the errors of a conv model used wrongly.

mod common;

use common::{basin, json};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Trains a small ResNet (one basic block per stage, two stages, base width 4) with Adam on
/// S = 150 embedded MNIST digits plus `attack` flipped ones; returns its path and the report.
fn small_resnet(dir: &std::path::Path, attack: usize) -> (String, serde_json::Value) {
    let m = dir
        .join(format!("r{attack}.safetensors"))
        .to_str()
        .unwrap()
        .to_owned();
    let attack = attack.to_string();
    let report = json(&[
        "train",
        "--arch",
        "basic:1,1:4",
        "--optimizer",
        "adam",
        "--batch",
        "32",
        "--train-size",
        "150",
        "--attack-size",
        &attack,
        "--test-size",
        "100",
        "--max-epochs",
        "400",
        "--out",
        &m,
        "--json",
    ]);
    (m, report)
}

/// The logits `eval --logits` writes (float64 .npy of shape (n,)).
fn logits(model: &str, out: &std::path::Path) -> Vec<f64> {
    let path = out.to_str().unwrap();
    let e = json(&[
        "eval", "--model", model, "--data", "mnist", "--logits", path, "--json",
    ]);
    assert_eq!(e["n"], 10_000, "{e}");
    let a = basin_data::npy::read(out).unwrap();
    assert_eq!(a.shape, vec![10_000]);
    a.data.to_f64()
}

#[test]
fn a_small_resnet_trains_to_zero_error_and_every_measure_runs_on_it() {
    let dir = tmp();
    for attack in [0, 100] {
        let (_, t) = small_resnet(dir.path(), attack);
        assert_eq!(t["status"], "converged", "{t}");
        assert_eq!(t["train_error"], 0.0, "{t}");
        assert!(t["test_error"].as_f64().unwrap() < 0.5, "{t}");
    }
    let m = dir
        .path()
        .join("r0.safetensors")
        .to_str()
        .unwrap()
        .to_owned();
    let measured = ["--data", "mnist", "--set", "train", "--train-size", "150"];
    let s = json(
        &[
            &["sharpness", "--model", &m, "--epochs", "2", "--json"][..],
            &measured[..],
        ]
        .concat(),
    );
    assert!(s["sharpness"].as_f64().unwrap() >= 0.0, "{s}");
    let lb = json(
        &[
            &[
                "sharpness",
                "--model",
                &m,
                "--method",
                "lbfgsb",
                "--max-iter",
                "2",
                "--json",
            ][..],
            &measured[..],
        ]
        .concat(),
    );
    assert!(lb["sharpness"].as_f64().unwrap() >= 0.0, "{lb}");
    let t = json(
        &[
            &[
                "hessian",
                "--model",
                &m,
                "--top-k",
                "2",
                "--lanczos-steps",
                "10",
                "--trace",
            ][..],
            &["--probes", "3", "--json"][..],
            &measured[..],
        ]
        .concat(),
    );
    assert!(t["trace"].as_f64().unwrap().is_finite(), "{t}");
    let hessian = |model: &str| {
        json(
            &[
                &[
                    "hessian",
                    "--model",
                    model,
                    "--top-k",
                    "5",
                    "--lanczos-steps",
                    "40",
                    "--json",
                ][..],
                &measured[..],
            ]
            .concat(),
        )
    };
    let h = hessian(&m);
    assert_eq!(h["top_eigenvalues"].as_array().unwrap().len(), 5, "{h}");
    assert_eq!(h["residuals"].as_array().unwrap().len(), 5, "{h}");
    assert!(h["lambda_max"].as_f64().unwrap() > 0.0, "{h}");
    assert_eq!(h["hvp"], "exact");
    // α-scaling a BatchNorm layer keeps the function and changes the curvature.
    let scaled = dir
        .path()
        .join("scaled.safetensors")
        .to_str()
        .unwrap()
        .to_owned();
    let out = basin(&[
        "scale",
        "--model",
        &m,
        "--layer",
        "layer1.0.bn1",
        "--alpha",
        "5.9",
        "--out",
        &scaled,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, b) = (
        logits(&m, &dir.path().join("a.npy")),
        logits(&scaled, &dir.path().join("b.npy")),
    );
    for (x, y) in a.iter().zip(&b) {
        // f32 arithmetic: a few ulps of the logit.
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} {y}");
    }
    let hs = hessian(&scaled);
    let (l0, l1) = (
        h["lambda_max"].as_f64().unwrap(),
        hs["lambda_max"].as_f64().unwrap(),
    );
    assert!((l1 / l0 - 1.0).abs() > 0.01, "λmax {l0} → {l1}");
}

#[test]
fn finite_difference_hvps_agree_with_exact_ones_on_a_smooth_resnet() {
    // tanh: central differences of the gradient are accurate only where the loss is smooth.
    // On a ReLU net a step that moves a pre-activation across 0 adds a jump of the gradient
    // divided by 2ε, and the finite-difference λmax is off by 10% or more.
    let dir = tmp();
    let m = dir
        .path()
        .join("t.safetensors")
        .to_str()
        .unwrap()
        .to_owned();
    json(&[
        "train",
        "--arch",
        "basic:1:4",
        "--activation",
        "tanh",
        "--train-size",
        "60",
        "--test-size",
        "0",
        "--max-epochs",
        "3",
        "--out",
        &m,
        "--json",
    ]);
    let hessian = |hvp: &str| {
        json(&[
            "hessian",
            "--model",
            &m,
            "--data",
            "mnist",
            "--set",
            "train",
            "--train-size",
            "60",
            "--top-k",
            "1",
            "--lanczos-steps",
            "30",
            "--hvp",
            hvp,
            "--json",
        ])
    };
    let (exact, fd) = (hessian("exact"), hessian("finite-difference"));
    assert_eq!(
        (exact["hvp"].as_str(), fd["hvp"].as_str()),
        (Some("exact"), Some("finite_difference"))
    );
    let (e, f) = (
        exact["lambda_max"].as_f64().unwrap(),
        fd["lambda_max"].as_f64().unwrap(),
    );
    assert!(
        (f / e - 1.0).abs() < 1e-6,
        "exact {e} finite-difference {f}"
    );
}

#[test]
fn conv_models_used_wrongly_give_clear_errors() {
    let dir = tmp();
    let (m, _) = small_resnet(dir.path(), 0);
    // Status 1 for an error in the input, 2 for a flag clap refuses.
    let fail_with = |args: &[&str], code: i32| {
        let out = basin(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "basin {args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    let fail = |args: &[&str]| fail_with(args, 1);
    let out = dir.path().join("x.safetensors");
    let out = out.to_str().unwrap();
    let err = fail(&[
        "scale", "--model", &m, "--layer", "bn1", "--alpha", "2", "--out", out,
    ]);
    assert!(
        err.contains("layer1.0.bn1"),
        "names the scalable layers: {err}"
    );
    let err = fail(&[
        "scale", "--model", &m, "--layer", "0", "--alpha", "2", "--out", out,
    ]);
    assert!(err.contains("BatchNorm") || err.contains("bn"), "{err}");
    let err = fail(&[
        "eval",
        "--model",
        &m,
        "--data",
        "boolean:7:majority",
        "--class-map",
        "none",
    ]);
    assert!(err.contains("image"), "{err}");
    let err = fail(&[
        "prior",
        "--model",
        &m,
        "--data",
        "mnist",
        "--set",
        "train",
        "--train-size",
        "20",
    ]);
    assert!(err.contains("NNGP kernel"), "{err}");
    let err = fail_with(&["eval", "--model", &m, "--device", "cuda:0"], 2);
    assert!(err.contains("no CUDA backend"), "{err}");
    let err = fail_with(&["train", "--arch", "resnet19", "--out", out], 2);
    assert!(err.contains("resnet18"), "{err}");
}
