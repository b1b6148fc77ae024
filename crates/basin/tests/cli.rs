//! The `basin` binary end to end: output formats, exit codes (1 for bad input, never 101) and
//! help text.

mod common;

use std::path::Path;

use basin_data::{NpyArray, NpyData, cifar};
use common::{basin, json};

#[test]
fn data_info_on_the_embedded_mnist() {
    let v = json(&["data", "info", "mnist", "--json"]);
    assert_eq!(v["n"], 10_000);
    assert_eq!(v["dim"], 784);
    assert_eq!(v["class_counts"]["5"], 863);
    assert_eq!(
        (v["min"].as_f64(), v["max"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    assert_eq!(v["image_shape"], serde_json::json!([1, 28, 28]));
    let b = json(&["data", "info", "mnist", "--json", "--class-map", "default"]);
    assert_eq!(b["class_counts"]["0"], 5131);
    let table = basin(&["data", "info", "mnist"]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("examples     10000") && text.contains("5: 863"),
        "{text}"
    );
}

#[test]
fn data_info_on_npy_boolean_and_cifar() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    NpyArray::new(
        vec![3, 2],
        NpyData::F64(vec![-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]),
    )
    .unwrap()
    .write(&x)
    .unwrap();
    NpyArray::new(vec![3], NpyData::U8(vec![0, 1, 1]))
        .unwrap()
        .write(&y)
        .unwrap();
    let v = json(&[
        "data",
        "info",
        &format!("npy:{},{}", x.display(), y.display()),
        "--json",
    ]);
    assert_eq!(
        (v["n"].as_u64(), v["dim"].as_u64(), v["min"].as_f64()),
        (Some(3), Some(2), Some(-1.0))
    );
    assert_eq!(v["class_counts"]["1"], 2);
    let unlabelled = json(&["data", "info", &format!("npy:{}", x.display()), "--json"]);
    assert!(unlabelled["class_counts"].is_null());

    let parity = json(&["data", "info", "boolean:4:parity", "--json"]);
    assert_eq!(
        (parity["n"].as_u64(), parity["class_counts"]["1"].as_u64()),
        (Some(16), Some(8))
    );

    write_cifar(dir.path());
    let c = json(&[
        "data",
        "info",
        &format!("cifar10:{}", dir.path().display()),
        "--json",
        "--class-map",
        "default",
    ]);
    assert_eq!((c["n"].as_u64(), c["dim"].as_u64()), (Some(20), Some(3072)));
    assert_eq!(
        (
            c["test"]["n"].as_u64(),
            c["test"]["class_counts"]["1"].as_u64()
        ),
        (Some(4), Some(2))
    );
}

fn write_cifar(dir: &Path) {
    let labels = [1u8, 3, 5, 1, 3];
    let pixels = vec![128u8; labels.len() * cifar::IMAGE_BYTES];
    for f in cifar::TRAIN_FILES.iter().chain([cifar::TEST_FILE].iter()) {
        std::fs::write(dir.join(f), cifar::encode_batch(&labels, &pixels)).unwrap();
    }
}

#[test]
fn bad_input_exits_with_1_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.idx");
    std::fs::write(&bad, b"\x00\x00\x08\x03\x00\x00").unwrap();
    let cases = [
        format!("idx:{0},{0}", bad.display()),
        format!("npy:{}", bad.display()),
        format!("cifar10:{}", dir.path().display()),
        format!("idx:{0}/missing,{0}/missing", dir.path().display()),
    ];
    for source in &cases {
        let out = basin(&["data", "info", source]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{source}: {err}");
        assert!(
            err.contains(&dir.path().display().to_string()),
            "{source}: {err}"
        );
    }
    let out = basin(&["data", "info", "nonsense:x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected mnist"));
}

#[test]
fn version_and_help() {
    let v = basin(&["--version"]);
    assert!(String::from_utf8(v.stdout).unwrap().starts_with("basin "));
    let help = String::from_utf8(basin(&["data", "info", "--help"]).stdout).unwrap();
    for flag in ["--json", "--class-map", "--quiet", "--verbose", "SOURCE"] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
}

#[test]
fn train_eval_scale_on_the_embedded_mnist() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let m = model.to_str().unwrap();
    let t = json(&[
        "train",
        "--train-size",
        "200",
        "--test-size",
        "300",
        "--seed",
        "2",
        "--out",
        m,
        "--json",
    ]);
    assert_eq!(t["status"], "converged");
    assert_eq!(t["train_error"], 0.0);
    let test_error = t["test_error"].as_f64().unwrap();
    // 200 digits of S: the paper's net generalises far better than chance.
    assert!(test_error > 0.0 && test_error < 0.3, "{t}");
    for key in ["epochs", "wall_s", "seconds_per_epoch"] {
        assert!(t[key].is_number(), "{key} in {t}");
    }
    assert!(
        t["attack_error"].is_null(),
        "no attack set, no error rate: {t}"
    );
    let again = json(&[
        "train",
        "--train-size",
        "200",
        "--test-size",
        "300",
        "--seed",
        "2",
        "--out",
        m,
        "--json",
    ]);
    assert_eq!(
        (&again["epochs"], &again["test_error"]),
        (&t["epochs"], &t["test_error"]),
        "same seed, same run"
    );

    let e = json(&["eval", "--model", m, "--json"]);
    assert_eq!(e["n"], 10_000);
    let scaled = dir.path().join("s.safetensors");
    let s = scaled.to_str().unwrap();
    assert!(
        basin(&[
            "scale", "--model", m, "--layer", "1", "--alpha", "5.9", "--out", s
        ])
        .status
        .success()
    );
    let e2 = json(&["eval", "--model", s, "--json"]);
    assert_eq!(e2["error"], e["error"], "α-scaling keeps the function");
    let (l1, l2) = (e["loss"].as_f64().unwrap(), e2["loss"].as_f64().unwrap());
    assert!((l1 - l2).abs() < 1e-5 * l1, "{l1} {l2}");
}

#[test]
fn train_reports_not_converged_and_rejects_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.safetensors");
    let m = m.to_str().unwrap();
    let t = json(&[
        "train",
        "--attack-size",
        "300",
        "--max-epochs",
        "2",
        "--optimizer",
        "adam",
        "--out",
        m,
        "--json",
    ]);
    assert_eq!(
        (t["status"].as_str(), t["epochs"].as_u64()),
        (Some("not_converged"), Some(2))
    );
    for bad in [
        vec!["train", "--attack-size", "600", "--out", m],
        vec!["train", "--lr=-1", "--out", m],
        vec!["train", "--batch", "0", "--out", m],
        vec!["train", "--data", "boolean:7", "--out", m],
        vec![
            "scale", "--model", m, "--layer", "2", "--alpha", "2", "--out", m,
        ],
        vec!["eval", "--model", "/nonexistent.safetensors"],
    ] {
        let out = basin(&bad);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(dir.path().join("junk"), b"not a model").unwrap();
    let junk = dir.path().join("junk");
    let out = basin(&["eval", "--model", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk"));
}

/// `basin … | head`: a reader that closes the pipe early ends basin quietly (by SIGPIPE or a
/// clean exit), with no panic and no error message.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_basin"))
        .args(["data", "info", "mnist"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "stderr after a closed pipe: {err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let quiet = out.status.success() || out.status.signal() == Some(libc_sigpipe());
        assert!(quiet, "status after a closed pipe: {:?}", out.status);
    }
}

/// SIGPIPE's number on Linux and the BSDs.
#[cfg(unix)]
fn libc_sigpipe() -> i32 {
    13
}
