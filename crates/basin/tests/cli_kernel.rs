//! `basin kernel` end to end: the golden NNGP kernel from an `.npy` input, the Monte Carlo
//! method, other sources, and bad input (exit code 1 with a message that says what to fix).

mod common;

use std::path::{Path, PathBuf};

use basin_data::{NpyArray, NpyData, npy};
use common::{basin, json};

fn gp_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../basin-prior/tests/fixtures/gp")
        .join(name)
}

/// Reads an `(n, n)` float64 `.npy`.
fn read_square(path: &Path) -> (usize, Vec<f64>) {
    let a = npy::read(path).unwrap();
    let NpyData::F64(v) = a.data else {
        panic!("{} is not float64", path.display())
    };
    assert_eq!(a.shape.len(), 2);
    assert_eq!(a.shape[0], a.shape[1]);
    (a.shape[0], v)
}

/// Writes the golden inputs X = milli / 1000 (float64, 64 × 784) to `dir/X.npy`.
fn golden_inputs(dir: &Path) -> PathBuf {
    let a = npy::read(&gp_fixture("X_64_milli_u16.npy")).unwrap();
    let NpyData::U16(milli) = a.data else {
        panic!("not uint16")
    };
    let x: Vec<f64> = milli.iter().map(|&m| f64::from(m) / 1000.0).collect();
    let path = dir.join("X.npy");
    NpyArray::new(a.shape, NpyData::F64(x))
        .unwrap()
        .write(&path)
        .unwrap();
    path
}

#[test]
fn writes_the_golden_k64_from_an_npy_input() {
    let dir = tempfile::tempdir().unwrap();
    let x = golden_inputs(dir.path());
    let out = dir.path().join("K.npy");
    let data = format!("npy:{}", x.display());
    let v = json(&[
        "kernel",
        "--data",
        &data,
        "--hidden",
        "40,40",
        "--activation",
        "relu",
        "--sigma-w",
        "1.41421356237309515",
        "--sigma-b",
        "1",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        (v["n"].as_u64(), v["input_dim"].as_u64()),
        (Some(64), Some(784))
    );
    assert_eq!(
        (v["method"].as_str(), v["depth"].as_u64()),
        (Some("analytic"), Some(2))
    );
    assert!(v["samples"].is_null() && v["wall_s"].is_number(), "{v}");
    assert_eq!(v["kernel_bytes"].as_u64(), Some(64 * 64 * 8));
    let (n, k) = read_square(&out);
    let (_, golden) = read_square(&gp_fixture("K_64.npy"));
    assert_eq!(n, 64);
    let worst = k
        .iter()
        .zip(&golden)
        .map(|(a, b)| (a - b).abs() / b.abs())
        .fold(0.0f64, f64::max);
    assert!(worst < 1e-12, "max relative error {worst:e}");
}

#[test]
fn monte_carlo_is_reproducible_and_near_the_analytic_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let common = [
        "kernel",
        "--data",
        "boolean:5",
        "--hidden",
        "400",
        "--quiet",
    ];
    let run = |extra: &[&str]| {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        let out = basin(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (a, b, c) = (path("a.npy"), path("b.npy"), path("exact.npy"));
    let mc = ["--method", "mc", "--samples", "16", "--seed", "3"];
    let summary = run(&[&mc[..], &["-o", &a]].concat());
    run(&[&mc[..], &["-o", &b]].concat());
    run(&["-o", &c]);
    assert!(
        summary.contains("32 × 32") && summary.contains("Monte Carlo, 16 networks"),
        "{summary}"
    );
    let (ka, kb, exact) = (
        read_square(Path::new(&a)),
        read_square(Path::new(&b)),
        read_square(Path::new(&c)),
    );
    assert_eq!(ka.1, kb.1, "the same seed gave different kernels");
    let num: f64 =
        ka.1.iter()
            .zip(&exact.1)
            .map(|(x, y)| (x - y).powi(2))
            .sum();
    let den: f64 = exact.1.iter().map(|y| y * y).sum();
    let err = (num / den).sqrt();
    // One hidden layer of 400, 16 networks: noise ≈ 1/√6400 ≈ 1.3%.
    assert!(err < 0.06, "relative Frobenius error {err}");
}

#[test]
fn takes_the_first_examples_of_any_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("K.npy");
    let v = json(&[
        "kernel",
        "--data",
        "mnist",
        "--take",
        "50",
        "--activation",
        "erf",
        "--hidden",
        "none",
        "--sigma-w",
        "1.5",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!((v["n"].as_u64(), v["depth"].as_u64()), (Some(50), Some(0)));
    let (n, k) = read_square(&out);
    assert_eq!(n, 50);
    assert!((0..50).all(|i| (0..50).all(|j| k[i * 50 + j] == k[j * 50 + i])));
}

#[test]
fn bad_input_exits_1_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let nan = dir.path().join("nan.npy");
    NpyArray::new(vec![2, 2], NpyData::F64(vec![1.0, f64::NAN, 0.5, 0.25]))
        .unwrap()
        .write(&nan)
        .unwrap();
    let out = dir.path().join("K.npy");
    let o = out.to_str().unwrap();
    let nan_src = format!("npy:{}", nan.display());
    let cases: [(&[&str], &str); 7] = [
        (&["--data", &nan_src], "finite"),
        (&["--data", "npy:/nonexistent/x.npy"], "/nonexistent/x.npy"),
        (&["--data", "mnist", "--take", "0"], "--take"),
        (
            &["--data", "boolean:3", "--activation", "tanh"],
            "Monte Carlo",
        ),
        (
            &["--data", "boolean:3", "--sigma-w", "1,2"],
            "3 linear layers",
        ),
        (&["--data", "boolean:3", "--sigma-b", "-1"], "sigma_b"),
        (
            &["--data", "boolean:3", "--method", "mc", "--samples", "0"],
            "--samples",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["kernel", "-o", o];
        args.extend_from_slice(extra);
        let r = basin(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err:?} lacks {needle:?}");
    }
    assert!(!out.exists(), "a failed run wrote its output");
    // A malformed flag value is a usage error (exit 2) that names the fix.
    let r = basin(&["kernel", "-o", o, "--hidden", "40,x"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("positive width"));
}

#[test]
fn a_resnets_empirical_kernel_in_shards_merges_to_one_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let common = [
        "kernel",
        "--arch",
        "basic:1:2",
        "--method",
        "mc",
        "--samples",
        "6",
        "--blocks",
        "3",
        "--seed",
        "4",
        "--data",
        "mnist",
        "--take",
        "12",
        "--threads",
        "1",
        "--quiet",
        "--json",
    ];
    let run = |extra: &[&str]| {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        json(&args)
    };
    let whole = run(&["-o", &path("K.npy"), "--sums", &path("K.safetensors")]);
    assert_eq!(whole["samples_done"].as_u64(), Some(6));
    assert_eq!(
        whole["std_err"].as_str(),
        Some(path("K.std_err.npy").as_str())
    );
    assert!(
        whole["arch"].as_str().unwrap().contains("basic:1:2"),
        "{whole}"
    );
    for k in ["1/2", "2/2"] {
        let part = run(&["--shard", k, "-o", &path(&format!("part{}", &k[..1]))]);
        assert_eq!(part["samples_done"].as_u64(), Some(3), "{part}");
    }
    let merged = json(&[
        "kernel",
        "merge",
        &path("part2"),
        &path("part1"),
        "-o",
        &path("M.npy"),
        "--json",
    ]);
    assert_eq!(merged["samples_done"].as_u64(), Some(6));
    for (a, b) in [("K.npy", "M.npy"), ("K.std_err.npy", "M.std_err.npy")] {
        let ((n, x), (_, y)) = (
            read_square(Path::new(&path(a))),
            read_square(Path::new(&path(b))),
        );
        assert_eq!(n, 12);
        let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = x
            .iter()
            .zip(&y)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            diff <= 1e-12 * scale,
            "{a} and {b} differ by {diff} (scale {scale})"
        );
        assert!(x.iter().all(|v| v.is_finite() && *v >= 0.0));
    }
    // log P(f) on the sums' kernel equals it on the kernel's file, with its Monte Carlo error.
    let y = path("y.npy");
    NpyArray::new(
        vec![12],
        NpyData::F64((0..12).map(|i| f64::from(i % 3 == 0)).collect()),
    )
    .unwrap()
    .write(Path::new(&y))
    .unwrap();
    let on_file = json(&[
        "prior",
        "--kernel",
        &path("K.npy"),
        "--labels",
        &y,
        "--json",
    ]);
    let on_sums = json(&[
        "prior",
        "--kernel-sums",
        &path("K.safetensors"),
        "--labels",
        &y,
        "--json",
    ]);
    let lp = |v: &serde_json::Value| v["log_prior"].as_f64().unwrap();
    assert!(
        (lp(&on_file) - lp(&on_sums)).abs() < 1e-9,
        "{on_file} vs {on_sums}"
    );
    let se = on_sums["mc_std_err"].as_f64().unwrap();
    assert!(se.is_finite() && se > 0.0, "{on_sums}");
    assert_eq!(on_sums["mc_leave_one_out"].as_array().unwrap().len(), 3);
    assert!(on_file.get("mc_std_err").is_none());
    // A missing shard, a shard given twice, and sums of another seed are refused.
    let r = basin(&["kernel", "merge", &path("part1"), "-o", &path("X.npy")]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("2/2") && err.contains("missing"), "{err}");
    let r = basin(&[
        "kernel",
        "merge",
        &path("part1"),
        &path("part1"),
        "-o",
        &path("X.npy"),
    ]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("twice"));
    let r = basin(&[
        "kernel",
        "merge",
        &path("part1"),
        &path("K.safetensors"),
        "-o",
        &path("X.npy"),
    ]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("different estimates"));
    assert!(!Path::new(&path("X.npy")).exists());
    // No analytic kernel for a conv net, and a shard outside the samples.
    let r = basin(&["kernel", "--arch", "resnet18", "-o", &path("X.npy")]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("--method mc"));
    let x = path("X.npy");
    let mut args = common.to_vec();
    args.extend_from_slice(&["--shard", "7/7", "-o", &x]);
    let r = basin(&args);
    assert!(String::from_utf8_lossy(&r.stderr).contains("K/N"));
}
