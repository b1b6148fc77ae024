//! Helpers shared by the command-line tests: run the `basin` binary, parse its JSON.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `basin` with `args`.
pub fn basin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basin"))
        .args(args)
        .output()
        .expect("basin runs")
}

/// Runs `basin` with `args`, asserts success and parses stdout as one JSON value.
pub fn json(args: &[&str]) -> serde_json::Value {
    let out = basin(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// The shipped fig3-mnist spec, shrunk (S = 100, T = 200, sizes 0/50/100, 2 networks each),
/// with `edit` applied to its text.
pub fn small_spec(dir: &Path, file: &str, edit: impl Fn(String) -> String) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../basin-lab/experiments/fig3-mnist.toml"),
    )
    .unwrap()
    .replace("train_size = 500", "train_size = 100")
    .replace("test_size = 1000", "test_size = 200")
    .replace(
        "attack_sizes = [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500]",
        "attack_sizes = [0, 50, 100]",
    )
    .replace("networks_per_size = 5", "networks_per_size = 2")
    .replace("epochs = 100", "epochs = 3");
    let path = dir.join(file);
    std::fs::write(&path, edit(text)).unwrap();
    path.to_str().unwrap().to_owned()
}
