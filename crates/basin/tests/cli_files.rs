//! Files and folders under hostile use: special files are never replaced, spec names stay
//! inside the results folder, one writer per output folder, `basin report` refuses mixed
//! folders, and no temporary or empty run folder outlives a failure or an interrupt.

mod common;

use common::{basin, small_spec};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fails_with(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} in {err}");
    }
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Starts `basin` with `args` in the background.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_basin"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(path.exists(), "{} appears", path.display());
}

#[test]
fn outputs_that_are_fifos_are_refused_and_kept() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("table.csv");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let out = basin(&[
        "boolean",
        "sample",
        "--samples",
        "1000",
        "--out",
        f,
        "--quiet",
    ]);
    fails_with(&out, &[f, "FIFO"]);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(entries(dir.path()), ["table.csv"], "no temporary left");
}

#[test]
fn a_spec_name_that_leaves_the_results_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("a/b");
    std::fs::create_dir_all(&work).unwrap();
    for name in ["../../evil", "/tmp/evil-basin-abs"] {
        let spec = small_spec(dir.path(), "evil.toml", |t| {
            t.replace("name = \"fig3-mnist\"", &format!("name = {name:?}"))
        });
        let out = Command::new(env!("CARGO_BIN_EXE_basin"))
            .args(["reproduce", &spec, "--quiet"])
            .current_dir(&work)
            .output()
            .unwrap();
        fails_with(&out, &["name", "safe folder name"]);
    }
    assert_eq!(entries(&work), Vec::<String>::new(), "nothing written");
    assert_eq!(entries(dir.path()), ["a", "evil.toml"]);
}

#[test]
fn a_second_reproduce_on_one_folder_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), "small.toml", |t| t);
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let mut first = spawn(&["reproduce", &spec, "--out", o, "--jobs", "1", "--quiet"]);
    wait_for(&out.join("spec.toml"));
    let second = basin(&["reproduce", &spec, "--out", o, "--jobs", "1", "--quiet"]);
    let still_running = first.try_wait().unwrap().is_none();
    if still_running {
        fails_with(&second, &[&format!("PID {}", first.id()), "in use", o]);
    }
    let status = first.wait().unwrap();
    assert!(status.success());
    let stored = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert_eq!(stored.lines().count(), 6, "each run stored once");
    // Shards run into their own folders, side by side.
    let (s1, s2) = (dir.path().join("s1"), dir.path().join("s2"));
    let shard = |k: &str, d: &PathBuf| {
        spawn(&[
            "reproduce",
            &spec,
            "--out",
            d.to_str().unwrap(),
            "--shard",
            k,
            "--jobs",
            "1",
            "--quiet",
        ])
    };
    let (mut a, mut b) = (shard("1/2", &s1), shard("2/2", &s2));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
}

#[test]
fn report_refuses_folders_of_different_settings_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), "a.toml", |t| t);
    let other = small_spec(dir.path(), "b.toml", |t| {
        t.replace("epochs = 3", "epochs = 4")
    });
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for (s, o) in [(&spec, a), (&other, b)] {
        assert!(
            basin(&["reproduce", s, "--out", o, "--quiet"])
                .status
                .success()
        );
    }
    let m = dir.path().join("m");
    let m = m.to_str().unwrap();
    let out = basin(&["report", a, b, "--out", m]);
    fails_with(&out, &[a, b, "different settings", "--allow-mixed"]);
    assert!(!Path::new(m).exists(), "nothing written");
    let out = basin(&["report", a, b, "--out", m, "--allow-mixed"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn messages_name_the_path_and_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let out = basin(&[
        "boolean",
        "sample",
        "--samples",
        "1000",
        "--plots",
        f,
        "--quiet",
    ]);
    fails_with(
        &out,
        &[f, "exists and is a file, where a folder is expected"],
    );
    let out = basin(&["report", f]);
    fails_with(
        &out,
        &[f, "exists and is a file, where a folder is expected"],
    );
    let binary = dir.path().join("spec.bin");
    std::fs::write(&binary, [0xffu8, 0xfe, 0, 1, 2]).unwrap();
    let b = binary.to_str().unwrap();
    let out = basin(&["reproduce", b]);
    fails_with(&out, &[b, "not a UTF-8 TOML spec"]);
}

#[test]
fn a_failed_or_interrupted_run_removes_the_folder_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-cifar");
    let spec = small_spec(dir.path(), "bad.toml", |t| {
        t.replace(
            "source = \"mnist\"",
            &format!("source = \"cifar10:{}\"", missing.display()),
        )
    });
    let out = dir.path().join("failed");
    let o = out.to_str().unwrap();
    let failed = basin(&["reproduce", &spec, "--out", o, "--quiet"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(!out.exists(), "the failed run's folder is gone");

    let spec = small_spec(dir.path(), "small.toml", |t| t);
    let out = dir.path().join("interrupted");
    let o = out.to_str().unwrap();
    let mut child = spawn(&["reproduce", &spec, "--out", o, "--jobs", "1", "--quiet"]);
    wait_for(&out.join("spec.toml"));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exits as interrupted");
    let stored = std::fs::metadata(out.join("results.jsonl")).is_ok_and(|m| m.len() > 0);
    assert!(
        stored || !out.exists(),
        "the interrupted run's empty folder is gone"
    );
}
