//! Helpers shared by the command-line tests: run the `basin` binary, parse its JSON.
#![allow(dead_code)]

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
