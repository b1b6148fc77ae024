//! The `basin` binary end to end: output formats, exit codes (1 for bad input, never 101) and
//! help text.

use std::path::Path;
use std::process::{Command, Output};

use basin_data::{NpyArray, NpyData, cifar};

fn basin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basin"))
        .args(args)
        .output()
        .expect("basin runs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = basin(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

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
