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

#[test]
fn sigusr1_stops_between_runs_with_status_75_and_the_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), "small.toml", |t| t);
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_basin"))
        .args(["reproduce", &spec, "--out", o, "--jobs", "1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let progress = out.join("progress.json");
    let start = Instant::now();
    while !progress.is_file() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("finishing the runs in progress"),
        "{stderr}"
    );
    assert!(stderr.contains("stopped on request"), "{stderr}");
    let kept = lines(&out.join("results.jsonl"));
    assert!(kept < 6, "stopped early: {kept} stored");
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    assert_eq!(p["state"], "stopped", "{p}");
    assert_eq!(p["runs"], 6, "{p}");

    let status = ok(&basin(&["status", o]));
    assert!(
        status.contains(&format!("all: {kept}/6 runs stored")),
        "{status}"
    );
    ok(&basin(&[
        "reproduce",
        &spec,
        "--out",
        o,
        "--jobs",
        "1",
        "--quiet",
    ]));
    assert_eq!(lines(&out.join("results.jsonl")), 6);
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    assert_eq!(
        (p["state"].as_str(), p["attempt"].as_u64()),
        (Some("done"), Some(2))
    );
    let status = ok(&basin(&["status", o]));
    assert!(status.contains("all: 6/6 runs stored"), "{status}");
    assert!(status.contains("ETA 0 s"), "{status}");
}

#[test]
fn submit_dry_run_prints_the_scripts_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub");
    let o = out.to_str().unwrap();
    let text = ok(&basin(&[
        "submit",
        "--slurm",
        "fig3-mnist",
        "--quick",
        "--array",
        "4",
        "--throttle",
        "2",
        "--time",
        "1:00:00",
        "--mem",
        "4G",
        "--sbatch=--account=abc",
        "--out",
        o,
        "--dry-run",
    ]));
    for want in [
        "#SBATCH --time=1:00:00",
        "#SBATCH --mem=4G",
        "#SBATCH --account=abc",
        "#SBATCH --signal=B:USR1@360",
        "#SBATCH --requeue",
        "reproduce fig3-mnist --quick --shard \"$shard/4\"",
        "report \"${dirs[@]}\" --out",
        "sbatch --parsable --array=0-",
        "--dependency=afterok:<array 1>",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(!out.exists(), "a dry run writes nothing");

    let refused = |args: &[&str], why: &str| {
        let out = basin(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(why),
            "{args:?}: {stderr}"
        );
    };
    refused(&["submit", "fig3-mnist", "--dry-run"], "--slurm");
    refused(
        &[
            "submit",
            "--slurm",
            "fig3-mnist",
            "--time",
            "10",
            "--signal-lead",
            "900",
            "--dry-run",
        ],
        "shorter than --time",
    );
    refused(
        &[
            "submit",
            "--slurm",
            "fig3-mnist",
            "--time",
            "1h",
            "--dry-run",
        ],
        "HH:MM:SS",
    );
    refused(
        &[
            "submit",
            "--slurm",
            "--kernel",
            "--dry-run",
            "--",
            "--method",
            "mc",
        ],
        "--output",
    );
    refused(
        &[
            "submit",
            "--slurm",
            "--kernel",
            "--dry-run",
            "--",
            "--shard",
            "1/2",
            "-o",
            "k.npy",
        ],
        "leave out --shard",
    );
    refused(
        &[
            "submit",
            "--slurm",
            "--kernel",
            "--dry-run",
            "--",
            "--samples",
            "0",
            "-o",
            "k.npy",
        ],
        "kernel",
    );
}

#[test]
fn shards_sharing_a_cache_make_the_empirical_kernel_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = small_spec(dir.path(), "mc.toml", |t| {
        t + "\n[measures.prior.mc_kernel]\nsamples = 16\nblocks = 4\n"
    });
    let folder = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (whole, cache, merged) = (folder("whole"), folder("cache"), folder("merged"));
    ok(&basin(&["reproduce", &spec, "--out", &whole, "--quiet"]));
    let shards: Vec<_> = ["1/2", "2/2"]
        .iter()
        .map(|k| {
            Command::new(env!("CARGO_BIN_EXE_basin"))
                .args([
                    "reproduce",
                    &spec,
                    "--quiet",
                    "--shard",
                    k,
                    "--cache",
                    &cache,
                ])
                .args(["--out", &folder(&format!("s{}", &k[..1]))])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in shards {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cached: Vec<_> = std::fs::read_dir(Path::new(&cache).join("kernels"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1, "one kernel in the shared cache");
    for s in ["s1", "s2"] {
        assert!(
            !Path::new(&folder(s)).join("kernels").exists(),
            "{s} made its own"
        );
    }
    ok(&basin(&[
        "report",
        &folder("s1"),
        &folder("s2"),
        "--out",
        &merged,
    ]));
    let summary = |d: &str| std::fs::read_to_string(Path::new(d).join("summary.json")).unwrap();
    assert_eq!(summary(&merged), summary(&whole));
}
