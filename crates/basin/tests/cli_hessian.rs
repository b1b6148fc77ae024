//! `basin hessian` end to end on a 7-40-40-1 net over the Boolean cube, checked against the
//! dense Hessian spectrum computed in the test. Tolerances are stated per assertion.

mod common;

use std::path::Path;

use basin_data::DataSource;
use basin_flatness::dense::{DEFAULT_MAX_PARAMS, DenseSpectrum};
use basin_flatness::dense_spectrum;
use basin_nn::{FcnObjective, FcnSpec, safetensors};
use common::{basin, json};

const DATA: &str = "boolean:7:majority";

/// Writes a seeded 7-40-40-1 net and returns the dense spectrum of its loss on the cube.
fn boolean_net(path: &Path) -> DenseSpectrum {
    let spec = FcnSpec::paper(7);
    let theta = spec.init::<f64>(5);
    safetensors::save(path, &spec, &theta).unwrap();
    let data = DATA.parse::<DataSource>().unwrap().load().unwrap().pool;
    let mut obj = FcnObjective::<f64>::from_dataset(&spec, &data).unwrap();
    dense_spectrum(&mut obj, &theta, DEFAULT_MAX_PARAMS).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn hessian_json_matches_the_dense_spectrum() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let csv = dir.path().join("density.csv");
    let dense = boolean_net(&model);
    let m = model.to_str().unwrap();
    let c = csv.to_str().unwrap();
    let v = json(&[
        "hessian",
        "--model",
        m,
        "--data",
        DATA,
        "--top-k",
        "5",
        "--lanczos-steps",
        "300",
        "--trace",
        "--probes",
        "300",
        "--density",
        c,
        "--seed",
        "3",
        "--json",
    ]);
    let top = dense.top(5);
    let got: Vec<f64> = v["top_eigenvalues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(got.len(), 5);
    for (g, w) in got.iter().zip(&top) {
        // 1e-8 relative.
        assert!(rel(*g, *w) < 1e-8, "{g} vs {w}");
    }
    assert!(got.windows(2).all(|p| p[0] >= p[1]), "descending: {got:?}");
    let lmax = v["lambda_max"].as_f64().unwrap();
    assert!(rel(lmax, top[0]) < 1e-8);
    let lmin = dense.eigenvalues[0];
    let norm = lmax.abs().max(lmin.abs());
    assert!(rel(v["spectral_norm"].as_f64().unwrap(), norm) < 1e-8);
    let positive: f64 = top.iter().filter(|x| **x > 0.0).map(|x| x.ln()).sum();
    assert!((v["log_product_top_k"].as_f64().unwrap() - positive).abs() < 1e-7);
    assert_eq!(v["converged"].as_array().unwrap().len(), 5);
    assert_eq!(v["n_converged"], 5);
    assert_eq!(v["residuals"].as_array().unwrap().len(), 5);
    assert_eq!(
        (v["lanczos_steps"].as_u64(), v["n"].as_u64()),
        (Some(300), Some(128))
    );
    // Hutchinson within 3 standard errors of the exact trace.
    let (t, se) = (
        v["trace"].as_f64().unwrap(),
        v["trace_std_err"].as_f64().unwrap(),
    );
    assert!(
        (t - dense.trace).abs() < 3.0 * se,
        "{t} ± {se} vs {}",
        dense.trace
    );
    assert!(v["wall_s"].as_f64().unwrap() > 0.0);
    let lanczos_s = v["lanczos_wall_s"].as_f64().unwrap();
    assert!(lanczos_s > 0.0 && lanczos_s <= v["wall_s"].as_f64().unwrap());

    // The density CSV: header, 1001 rows, integrates to 1 (1e-6).
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("eigenvalue,density"));
    let rows: Vec<(f64, f64)> = lines
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 1001);
    let dx = rows[1].0 - rows[0].0;
    let mass: f64 = rows.iter().map(|r| r.1).sum::<f64>() * dx;
    assert!((mass - 1.0).abs() < 1e-6, "mass {mass}");
    assert_eq!(v["density_csv"], c);

    // The same seed gives the same numbers.
    let again = json(&[
        "hessian",
        "--model",
        m,
        "--data",
        DATA,
        "--top-k",
        "5",
        "--lanczos-steps",
        "300",
        "--seed",
        "3",
        "--json",
    ]);
    assert_eq!(again["top_eigenvalues"], v["top_eigenvalues"]);
    assert!(again.get("trace").is_none());
}

#[test]
fn hessian_human_output_and_a_short_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    boolean_net(&model);
    let m = model.to_str().unwrap();
    let out = basin(&[
        "hessian",
        "--model",
        m,
        "--data",
        DATA,
        "--top-k",
        "8",
        "--lanczos-steps",
        "10",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("λmax") && text.contains("top 8 eigenvalues"),
        "{text}"
    );
    assert!(
        text.contains("not converged"),
        "10 steps leave some unconverged: {text}"
    );
    let v = json(&[
        "hessian",
        "--model",
        m,
        "--data",
        DATA,
        "--top-k",
        "8",
        "--lanczos-steps",
        "10",
        "--json",
    ]);
    assert!(v["n_converged"].as_u64().unwrap() < 8, "{v}");
}

#[test]
fn hessian_bad_input_exits_1_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    boolean_net(&model);
    let m = model.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--data", DATA, "--lanczos-steps", "0"], "at least 1 step"),
        (&["--data", DATA, "--top-k", "0"], "top-k"),
        (
            &["--data", DATA, "--trace", "--probes", "1"],
            "at least 2 probes",
        ),
        (&["--data", "mnist"], "expects 7 inputs"),
    ];
    for (extra, msg) in cases {
        let mut args = vec!["hessian", "--model", m];
        args.extend_from_slice(extra);
        let out = basin(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(msg), "{extra:?}: {err}");
    }
    let missing = dir.path().join("missing.safetensors");
    let out = basin(&[
        "hessian",
        "--model",
        missing.to_str().unwrap(),
        "--data",
        DATA,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.safetensors"));
}
