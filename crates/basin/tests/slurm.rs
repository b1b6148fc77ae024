//! `basin submit` and `basin status` on a real Slurm cluster: an experiment's job array and
//! its merge job, a Monte Carlo kernel's, and a task stopped by the pre-timeout signal,
//! requeued and resumed. Each is checked against one unsharded run.
//!
//! These tests need a running cluster, so they are ignored by `cargo test`. `.ci/run` brings
//! up a single-node one from Debian's packages (`.ci/slurm/up.sh`, with `MaxArraySize=3`, so
//! that a four-task array is split) and runs them with
//! `cargo test --release -p basin --test slurm -- --ignored --test-threads 1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use basin_data::{NpyData, npy};
use common::basin;
use serde_json::Value;

/// How long a submission may take before the test gives up.
const TIMEOUT: Duration = Duration::from_secs(600);

fn ok(args: &[&str]) -> String {
    let out = basin(args);
    assert!(
        out.status.success(),
        "basin {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A folder that outlives the test process when a test fails, so that CI's logs can show it.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("basin-slurm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The summary of one unsharded `fig3-mnist --quick` run, made once.
fn unsharded_summary() -> &'static str {
    static SUMMARY: OnceLock<String> = OnceLock::new();
    SUMMARY.get_or_init(|| {
        let out = scratch("whole").join("out");
        let o = out.to_str().unwrap();
        ok(&[
            "--quiet",
            "reproduce",
            "fig3-mnist",
            "--quick",
            "--out",
            o,
            "--jobs",
            "2",
        ]);
        std::fs::read_to_string(out.join("summary.json")).unwrap()
    })
}

fn scontrol_field(job: &str, field: &str) -> Option<String> {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", job])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")).map(str::to_owned))
}

/// Every log the submission's jobs wrote, for a failure message.
fn logs(out: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(out.join("slurm/logs"))
        .into_iter()
        .flatten()
    {
        let path = entry.unwrap().path();
        let body = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&format!("==> {} <==\n{body}\n", path.display()));
    }
    text
}

/// The submission's `submit.json`.
fn manifest(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("submit.json")).unwrap()).unwrap()
}

/// Waits until the submission's merge job has ended and asserts that it completed.
fn wait_for_merge(out: &Path) -> Value {
    let manifest = manifest(out);
    let merge = manifest["merge_job_id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let state = scontrol_field(&merge, "JobState").unwrap_or_default();
        match state.as_str() {
            "COMPLETED" => return manifest,
            "FAILED" | "CANCELLED" | "TIMEOUT" | "NODE_FAIL" | "OUT_OF_MEMORY" => {
                panic!("merge job {merge} ended {state}; logs:\n{}", logs(out))
            }
            _ => {}
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "merge job {merge} still {state:?} after {TIMEOUT:?}; logs:\n{}",
            logs(out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn status_json(out: &Path) -> Value {
    serde_json::from_str(&ok(&["status", out.to_str().unwrap(), "--json"])).unwrap()
}

/// Every run id stored in the shards' folders, with repeats.
fn stored_ids(out: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(out.join("shards")).unwrap() {
        let store = entry.unwrap().path().join("results.jsonl");
        for line in std::fs::read_to_string(store).unwrap_or_default().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            ids.push(v["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

#[test]
#[ignore = "needs a Slurm cluster: run .ci/slurm/up.sh first"]
fn an_experiment_s_array_and_merge_job_give_the_unsharded_summary() {
    let whole = unsharded_summary();
    let out = scratch("array").join("out");
    let o = out.to_str().unwrap();
    let said = ok(&[
        "submit",
        "--slurm",
        "fig3-mnist",
        "--quick",
        "--array",
        "4",
        "--throttle",
        "2",
        "--time",
        "20",
        "--out",
        o,
    ]);
    assert!(said.contains("merge job"), "{said}");
    let manifest = wait_for_merge(&out);
    let arrays = manifest["arrays"].as_array().unwrap();
    let tasks: u64 = arrays.iter().map(|a| a["len"].as_u64().unwrap()).sum();
    assert_eq!(tasks, 4);
    if Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("MaxArraySize            = 3"))
    {
        assert_eq!(
            arrays.len(),
            2,
            "MaxArraySize=3 splits 4 tasks in two arrays"
        );
    }
    let merged = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert_eq!(merged, whole, "logs:\n{}", logs(&out));
    let st = status_json(&out);
    assert_eq!(st["stored"].as_u64(), Some(6), "{st}");
    assert_eq!(st["runs"].as_u64(), Some(6), "{st}");
    assert_eq!(st["merged"].as_bool(), Some(true), "{st}");
    assert_eq!(st["failed"].as_u64(), Some(0), "{st}");
    let mut ids = stored_ids(&out);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

fn read_square(path: &Path) -> Vec<f64> {
    let a = npy::read(path).unwrap();
    let NpyData::F64(v) = a.data else {
        panic!("{} is not float64", path.display())
    };
    v
}

/// The largest difference of two arrays relative to the first's largest entry.
fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()));
    diff / scale
}

#[test]
#[ignore = "needs a Slurm cluster: run .ci/slurm/up.sh first"]
fn a_kernel_s_array_and_merge_job_give_one_run_s_kernel() {
    let dir = scratch("kernel");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    // The empirical kernel of a small ResNet, as the paper's recipe takes it for ResNet-50.
    let kernel_args = [
        "--data",
        "mnist",
        "--set",
        "train+test",
        "--train-size",
        "60",
        "--test-size",
        "20",
        "--arch",
        "basic:1:2",
        "--method",
        "mc",
        "--samples",
        "12",
        "--seed",
        "3",
    ];
    let mut one = vec!["--quiet", "kernel"];
    one.extend(kernel_args);
    let whole = path("whole.npy");
    one.extend(["--output", &whole]);
    ok(&one);
    let out = dir.join("out");
    let merged = path("merged.npy");
    let mut submit = vec![
        "submit",
        "--slurm",
        "--array",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--kernel",
        "--",
    ];
    submit.extend(kernel_args);
    submit.extend(["--output", &merged]);
    ok(&submit);
    wait_for_merge(&out);
    // Sums of the same networks added in another grouping: equal to round-off.
    for (a, b) in [
        ("whole.npy", "merged.npy"),
        ("whole.std_err.npy", "merged.std_err.npy"),
    ] {
        let d = relative_difference(&read_square(&dir.join(a)), &read_square(&dir.join(b)));
        assert!(d <= 1e-12, "{a} and {b} differ by {d} relative");
    }
    let st = status_json(&out);
    assert_eq!(st["stored"].as_u64(), Some(4), "{st}");
    assert_eq!(st["merged"].as_bool(), Some(true), "{st}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits for shard 1's first attempt to be computing its first job.
fn wait_until_computing(shard: &Path) {
    let start = Instant::now();
    while !shard.join("progress.json").is_file() {
        assert!(start.elapsed() < TIMEOUT, "shard 1 never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A fig3-mnist --quick run takes several seconds; a second in, the first is under way.
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
#[ignore = "needs a Slurm cluster: run .ci/slurm/up.sh first"]
fn a_task_stopped_by_the_pre_timeout_signal_is_requeued_and_loses_nothing() {
    let whole = unsharded_summary();
    let out = scratch("preempt").join("out");
    let o = out.to_str().unwrap();
    ok(&[
        "submit",
        "--slurm",
        "fig3-mnist",
        "--quick",
        "--array",
        "2",
        "--throttle",
        "1",
        "--time",
        "20",
        "--out",
        o,
    ]);
    wait_until_computing(&out.join("shards/1"));
    let task = format!(
        "{}_0",
        manifest(&out)["arrays"][0]["job_id"].as_str().unwrap()
    );
    // The signal that `--signal=B:USR1@<lead>` sends before the time limit, to the same
    // process (the batch shell), now rather than at a time Slurm rounds to its minute.
    let sent = Command::new("scancel")
        .args(["--batch", "--signal=USR1", &task])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_for_merge(&out);
    let log = logs(&out);
    assert!(
        log.contains("SIGUSR1: finishing the runs in progress"),
        "{log}"
    );
    assert!(log.contains("requeueing"), "{log}");
    assert_eq!(
        scontrol_field(&task, "Restarts").as_deref(),
        Some("1"),
        "{log}"
    );
    let st = status_json(&out);
    assert_eq!(
        st["shards"][0]["progress"]["attempt"].as_u64(),
        Some(2),
        "{st}"
    );
    let ids = stored_ids(&out);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (6, 6), "{ids:?}");
    let merged = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert_eq!(merged, whole, "logs:\n{log}");
    let _ = std::fs::remove_dir_all(out.parent().unwrap());
}

#[test]
#[ignore = "needs a Slurm cluster: run .ci/slurm/up.sh first"]
fn figure_s19_s_quick_form_runs_through_submit_on_the_real_fashion_mnist() {
    let data = Path::new("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
    assert!(
        data.exists(),
        "figS19-fashion-10k reads Debian's dataset-fashion-mnist: apt-get install it"
    );
    let dir = scratch("s19");
    let (whole, out) = (dir.join("whole"), dir.join("out"));
    let spec = ["figS19-fashion-10k", "--quick"];
    let mut one = vec!["--quiet", "reproduce"];
    one.extend(spec);
    one.extend(["--jobs", "2", "--out", whole.to_str().unwrap()]);
    ok(&one);
    let mut submit = vec!["submit", "--slurm"];
    submit.extend(spec);
    submit.extend([
        "--array",
        "2",
        "--time",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&submit);
    wait_for_merge(&out);
    let summary = |d: &Path| std::fs::read_to_string(d.join("summary.json")).unwrap();
    assert_eq!(summary(&out), summary(&whole), "logs:\n{}", logs(&out));
    let st = status_json(&out);
    assert_eq!(st["stored"].as_u64(), Some(6), "{st}");
    let _ = std::fs::remove_dir_all(&dir);
}
