//! `basin reproduce` and `basin report` end to end on a small spec: outputs, resuming after a
//! kill, and shards merged by `basin report`.

mod common;

use common::{basin, small_spec};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn reproduce_writes_the_report_and_resumes_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), "small.toml", |t| t);
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    // Start, wait for the first stored run, kill.
    let mut child = Command::new(env!("CARGO_BIN_EXE_basin"))
        .args(["reproduce", &spec, "--out", o, "--jobs", "1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = out.join("results.jsonl");
    let start = Instant::now();
    while lines(&store) == 0 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = lines(&store);
    assert!(
        (1..6).contains(&kept),
        "killed in the middle: {kept} stored"
    );

    let text = ok(&basin(&[
        "reproduce",
        &spec,
        "--out",
        o,
        "--jobs",
        "1",
        "--quiet",
    ]));
    assert!(
        text.contains(&format!(
            "{} runs computed, {kept} already stored, 6 in all",
            6 - kept
        )),
        "{text}"
    );
    assert_eq!(lines(&store), 6);
    for f in [
        "summary.json",
        "report.md",
        "spec.toml",
        "sharpness.png",
        "sharpness.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let again = ok(&basin(&["reproduce", &spec, "--out", o, "--quiet"]));
    assert!(
        again.contains("0 runs computed, 6 already stored"),
        "{again}"
    );
}

#[test]
fn shards_merged_by_report_match_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), "small.toml", |t| t);
    let folder = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (whole, s1, s2, merged) = (folder("w"), folder("s1"), folder("s2"), folder("m"));
    ok(&basin(&["reproduce", &spec, "--out", &whole, "--quiet"]));
    ok(&basin(&[
        "reproduce",
        &spec,
        "--out",
        &s1,
        "--shard",
        "1/2",
        "--quiet",
    ]));
    ok(&basin(&[
        "reproduce",
        &spec,
        "--out",
        &s2,
        "--shard",
        "2/2",
        "--quiet",
    ]));
    assert_eq!(
        lines(&Path::new(&s1).join("results.jsonl")) + lines(&Path::new(&s2).join("results.jsonl")),
        6
    );
    ok(&basin(&["report", &s1, &s2, "--out", &merged]));
    let summary = |d: &str| std::fs::read_to_string(Path::new(d).join("summary.json")).unwrap();
    assert_eq!(summary(&merged), summary(&whole));
    assert!(Path::new(&merged).join("report.md").is_file());

    let empty = folder("empty");
    let out = basin(&["report", &empty]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("basin reproduce"));
    let out = basin(&["reproduce", "no-such-spec"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fig3-mnist"));
}
