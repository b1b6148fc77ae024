//! `basin prior` end to end: the kernel/labels mode against GPy's golden value, label dtypes,
//! the model mode, and bad input (exit code 1 or clap's 2, never a panic).

mod common;

use std::path::{Path, PathBuf};

use basin_data::{NpyArray, NpyData};
use common::{basin, json};

fn gp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../basin-prior/tests/fixtures/gp")
        .join(name)
}

/// GPy 1.15's `ep_probit_parallel_y` and `ep_heaviside_parallel_y` for N = 64 (values.json).
const GPY_PROBIT_64: f64 = -44.346489063647226;
const GPY_STEP_64: f64 = -39.53733973634044;

#[test]
fn kernel_mode_matches_gpy_with_any_label_dtype() {
    let k = gp("K_64.npy");
    let k = k.to_str().unwrap();
    let y = gp("y_64.npy");
    let v = json(&[
        "prior",
        "--kernel",
        k,
        "--labels",
        y.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        (v["log_prior"].as_f64().unwrap() - GPY_PROBIT_64).abs() < 1e-6,
        "{v}"
    );
    let l10 = v["log10_prior"].as_f64().unwrap();
    assert!((l10 - GPY_PROBIT_64 / std::f64::consts::LN_10).abs() < 1e-9);
    assert_eq!(
        (v["likelihood"].as_str(), v["method"].as_str()),
        (Some("probit"), Some("ep"))
    );
    assert_eq!(v["converged"], true);
    assert_eq!(v["iterations"], 4);
    assert!(v["std_err"].is_null() && v["wall_s"].is_number() && v.get("n_points").is_none());
    // All-f64 arithmetic: the same sweeps, and log Z within 1e-10 nats of the default mixed.
    let exact = json(&[
        "prior",
        "--kernel",
        k,
        "--labels",
        y.to_str().unwrap(),
        "--json",
        "--precision",
        "f64",
    ]);
    let d = (exact["log_prior"].as_f64().unwrap() - v["log_prior"].as_f64().unwrap()).abs();
    assert!(d < 1e-10 && exact["iterations"] == 4, "{exact} vs {v}");

    // The same labels as 0/1 int64 and as ±1 int8.
    let ypm = basin_data::npy::read(&y).unwrap().data.to_f64();
    let dir = tempfile::tempdir().unwrap();
    let p01 = dir.path().join("y01.npy");
    let d01 = NpyData::I64(ypm.iter().map(|&v| i64::from(v > 0.0)).collect());
    NpyArray::new(vec![64], d01).unwrap().write(&p01).unwrap();
    let pi8 = dir.path().join("yi8.npy");
    let di8 = NpyData::I8(ypm.iter().map(|&v| v as i8).collect());
    NpyArray::new(vec![64], di8).unwrap().write(&pi8).unwrap();
    for p in [&p01, &pi8] {
        let s = json(&[
            "prior",
            "--kernel",
            k,
            "--labels",
            p.to_str().unwrap(),
            "--json",
            "--likelihood",
            "step",
        ]);
        assert!(
            (s["log_prior"].as_f64().unwrap() - GPY_STEP_64).abs() < 1e-4,
            "{s}"
        );
        assert_eq!(s["likelihood"], "step");
    }
    let seq = json(&[
        "prior",
        "--kernel",
        k,
        "--labels",
        p01.to_str().unwrap(),
        "--json",
        "--method",
        "ep-sequential",
    ]);
    assert!((seq["log_prior"].as_f64().unwrap() - GPY_PROBIT_64).abs() < 1e-6);
    let lap = json(&[
        "prior",
        "--kernel",
        k,
        "--labels",
        p01.to_str().unwrap(),
        "--json",
        "--method",
        "laplace",
    ]);
    assert_eq!(lap["method"], "laplace");
    assert!(lap["log_prior"].as_f64().unwrap() < GPY_PROBIT_64);
    let text = basin(&["prior", "--kernel", k, "--labels", y.to_str().unwrap()]);
    assert!(String::from_utf8(text.stdout).unwrap().contains("log P(f)"));
}

/// SciPy Genz–Bretz values of the exact probabilities (values.json, N = 64, true labels) and
/// their 3-standard-error bounds.
const GENZ_PROBIT_64: (f64, f64) = (-44.346264466603394, 0.00016680423275020257);
const GENZ_STEP_64: (f64, f64) = (-39.437886083381926, 0.010976996098432222);

#[test]
fn tilting_gives_an_error_bar_that_covers_genz() {
    let k = gp("K_64.npy");
    let y = gp("y_64.npy");
    for (lik, (genz, genz_3se)) in [("probit", GENZ_PROBIT_64), ("step", GENZ_STEP_64)] {
        let v = json(&[
            "prior",
            "--kernel",
            k.to_str().unwrap(),
            "--labels",
            y.to_str().unwrap(),
            "--likelihood",
            lik,
            "--method",
            "tilting",
            "--samples",
            "4096",
            "--seed",
            "3",
            "--json",
        ]);
        let (est, se) = (
            v["log_prior"].as_f64().unwrap(),
            v["std_err"].as_f64().unwrap(),
        );
        let combined = (se * se + (genz_3se / 3.0).powi(2)).sqrt();
        assert!((est - genz).abs() < 3.0 * combined, "{lik}: {v}");
        assert!(se > 0.0 && se < 0.03, "{v}");
        assert_eq!(v["method"], "tilting");
        assert_eq!(v["converged"], true);
        assert_eq!(v["samples"], 4096);
        assert_eq!(v["seed"], 3);
        assert!(v["issues"].as_array().unwrap().is_empty());
        assert!(v["ess"].as_f64().unwrap() > 100.0);
        assert!(v["log_upper_bound"].as_f64().unwrap() > est);
    }
    // An unreachable target is a status: converged false and the issue named.
    let v = json(&[
        "prior",
        "--kernel",
        k.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--method",
        "tilting",
        "--samples",
        "256",
        "--max-samples",
        "512",
        "--target-std-err",
        "1e-5",
        "--json",
    ]);
    assert_eq!(v["converged"], false);
    assert_eq!(v["samples"], 512);
    assert!(v["issues"][0].as_str().unwrap().contains("target"));
    let text = basin(&[
        "prior",
        "--kernel",
        k.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--method",
        "tilting",
        "--samples",
        "256",
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("±") && text.contains("samples     256"),
        "{text}"
    );
}

/// `--method smc`: the step value covers Genz within 3 combined standard errors, the smc keys
/// are there (the probit checkpoint with its standard error), and a target out of reach is a
/// named status.
#[test]
fn smc_gives_an_error_bar_that_covers_genz() {
    let k = gp("K_64.npy");
    let y = gp("y_64.npy");
    let (genz, genz_3se) = GENZ_STEP_64;
    let v = json(&[
        "prior",
        "--kernel",
        k.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--likelihood",
        "step",
        "--method",
        "smc",
        "--particles",
        "128",
        "--replicates",
        "4",
        "--seed",
        "5",
        "--json",
    ]);
    let (est, se) = (
        v["log_prior"].as_f64().unwrap(),
        v["std_err"].as_f64().unwrap(),
    );
    let combined = (se * se + (genz_3se / 3.0).powi(2)).sqrt();
    assert!((est - genz).abs() < 3.0 * combined, "{v}");
    assert!(se > 0.0 && se < 0.4, "{v}");
    assert_eq!(v["method"], "smc");
    assert_eq!(
        (v["particles"].as_u64(), v["replicates"].as_u64()),
        (Some(128), Some(4))
    );
    assert_eq!(v["log_z_replicates"].as_array().unwrap().len(), 4);
    assert_eq!(v["noise_levels"].as_array().unwrap().last().unwrap(), 0.0);
    assert!(v["std_err_probit"].as_f64().unwrap() > 0.0);
    assert!(v["temperatures"].as_f64().unwrap() > 5.0);
    let v = json(&[
        "prior",
        "--kernel",
        k.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--likelihood",
        "step",
        "--method",
        "smc",
        "--particles",
        "32",
        "--replicates",
        "2",
        "--max-replicates",
        "3",
        "--target-std-err",
        "1e-6",
        "--json",
    ]);
    assert_eq!(v["converged"], false);
    assert_eq!(v["replicates"], 3);
    let issues = v["issues"].as_array().unwrap();
    assert!(
        issues
            .iter()
            .any(|i| i.as_str().unwrap().contains("target")),
        "{v}"
    );
}

/// `--method smc --mover hmc`: the step value covers Genz within 3 combined standard errors
/// and the HMC keys are there (bounces per trajectory, no violations, no capped trajectory).
#[test]
fn smc_with_the_hmc_mover_covers_genz() {
    let k = gp("K_64.npy");
    let y = gp("y_64.npy");
    let (genz, genz_3se) = GENZ_STEP_64;
    let v = json(&[
        "prior",
        "--kernel",
        k.to_str().unwrap(),
        "--labels",
        y.to_str().unwrap(),
        "--likelihood",
        "step",
        "--method",
        "smc",
        "--mover",
        "hmc",
        "--particles",
        "128",
        "--replicates",
        "6",
        "--seed",
        "5",
        "--json",
    ]);
    let (est, se) = (
        v["log_prior"].as_f64().unwrap(),
        v["std_err"].as_f64().unwrap(),
    );
    let combined = (se * se + (genz_3se / 3.0).powi(2)).sqrt();
    assert!((est - genz).abs() < 3.0 * combined, "{v}");
    assert!(se > 0.0 && se < 0.4, "{v}");
    assert_eq!(v["mover"], "hmc");
    assert!(v["mean_bounces"].as_f64().unwrap() > 1.0, "{v}");
    assert_eq!(
        (v["violations"].as_u64(), v["cap_hits"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(v["noise_levels"].as_array().unwrap().last().unwrap(), 0.0);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let k = gp("K_64.npy");
    let k = k.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.npy");
    NpyArray::new(vec![3], NpyData::F64(vec![1.0, -1.0, 1.0]))
        .unwrap()
        .write(&short)
        .unwrap();
    let bad = dir.path().join("bad.npy");
    NpyArray::new(vec![64], NpyData::F64(vec![0.5; 64]))
        .unwrap()
        .write(&bad)
        .unwrap();
    let y = gp("y_64.npy");
    for args in [
        vec!["prior", "--kernel", k, "--labels", short.to_str().unwrap()],
        vec!["prior", "--kernel", k, "--labels", bad.to_str().unwrap()],
        vec![
            "prior",
            "--kernel",
            k,
            "--labels",
            y.to_str().unwrap(),
            "--likelihood",
            "step",
            "--method",
            "laplace",
        ],
        vec![
            "prior",
            "--kernel",
            "/nonexistent.npy",
            "--labels",
            y.to_str().unwrap(),
        ],
    ] {
        let out = basin(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
    }
    // Modes are exclusive, and one of them is required: clap's usage errors.
    let both = basin(&[
        "prior",
        "--kernel",
        k,
        "--labels",
        "y.npy",
        "--model",
        "m.safetensors",
    ]);
    assert_eq!(both.status.code(), Some(2));
    assert_eq!(basin(&["prior"]).status.code(), Some(2));
    assert_eq!(basin(&["prior", "--kernel", k]).status.code(), Some(2));
    let help = String::from_utf8(basin(&["prior", "--help"]).stdout).unwrap();
    for flag in [
        "--kernel",
        "--labels",
        "--model",
        "--likelihood",
        "--method",
        "--precision",
        "--json",
        "--set",
        "--samples",
        "--target-std-err",
        "--max-samples",
    ] {
        assert!(help.contains(flag), "{flag} in help");
    }
}

#[test]
fn model_mode_uses_the_predicted_labels_on_s_then_t() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let m = model.to_str().unwrap();
    let t = json(&[
        "train",
        "--train-size",
        "60",
        "--test-size",
        "40",
        "--out",
        m,
        "--json",
    ]);
    assert_eq!(t["status"], "converged");
    let v = json(&[
        "prior",
        "--model",
        m,
        "--set",
        "train+test",
        "--train-size",
        "60",
        "--test-size",
        "40",
        "--json",
    ]);
    assert_eq!(v["n_points"], 100);
    let lp = v["log_prior"].as_f64().unwrap();
    assert!(lp < 0.0 && lp.is_finite(), "{v}");
    assert_eq!(v["converged"], true);
    let s = json(&[
        "prior",
        "--model",
        m,
        "--set",
        "train+test",
        "--train-size",
        "60",
        "--test-size",
        "40",
        "--json",
        "--likelihood",
        "step",
    ]);
    assert_eq!(s["n_points"], 100);
    assert!(s["log_prior"].as_f64().unwrap().is_finite());
}
