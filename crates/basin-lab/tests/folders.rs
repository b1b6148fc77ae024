//! Output folders: one writer at a time, a failed run's empty folder removed, spec names that
//! stay inside the results folder, and merges that refuse folders of different experiments.

use std::path::{Path, PathBuf};

use basin_lab::error::FolderError;
use basin_lab::exec::folder::{LOCK_FILE, RunFolder, SPEC_FILE, file_in};
use basin_lab::exec::store::RESULTS_FILE;
use basin_lab::merge::{MergeError, check_folder_settings, merge};
use basin_lab::spec::{BUILTIN, ExperimentSpec};

/// The shipped fig3-mnist spec.
fn fig3() -> ExperimentSpec {
    ExperimentSpec::load("fig3-mnist").unwrap()
}

/// A stored run of `spec` (attack size 0, replicate `r`), as one line of `results.jsonl`.
fn run_line(spec: &ExperimentSpec, r: usize) -> String {
    let hash = spec.settings_hash(&spec.training.optimizer_list()[0], 0);
    serde_json::json!({
        "id": format!("{}-{hash}-a0-r{r}", spec.name),
        "experiment": spec.name,
        "attack_size": 0, "replicate": r, "seed": r,
        "status": "converged", "epochs": 3,
        "train_error": 0.0, "attack_error": 0.0, "test_error": 0.1,
        "function_hash": "00", "measures": {}, "stage_s": {}
    })
    .to_string()
}

/// A folder as `basin reproduce` leaves it: `spec.toml` and the given store lines.
fn folder(root: &Path, name: &str, spec: &ExperimentSpec, lines: &[String]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(SPEC_FILE), toml::to_string(spec).unwrap()).unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join(RESULTS_FILE), text).unwrap();
    dir
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = RunFolder::open(dir.path()).unwrap();
    // Another thread stands for another process: the lock is per open file.
    let second = std::thread::scope(|s| s.spawn(|| RunFolder::open(dir.path())).join())
        .unwrap()
        .unwrap_err();
    let msg = second.to_string();
    assert!(matches!(second, FolderError::Busy { .. }), "{msg}");
    assert!(
        msg.contains(&format!("PID {}", std::process::id())) && msg.contains(LOCK_FILE),
        "{msg}"
    );
    drop(first);
    RunFolder::open(dir.path()).expect("free again once the holder is gone");
}

#[test]
fn a_failed_run_removes_the_folder_it_created_only() {
    let root = tempfile::tempdir().unwrap();
    let new = root.path().join("new");
    let f = RunFolder::open(&new).unwrap();
    std::fs::write(new.join(SPEC_FILE), "name = \"x\"\n").unwrap();
    std::fs::write(new.join(RESULTS_FILE), "").unwrap();
    f.abandon();
    assert!(!new.exists(), "only scaffolding: removed");

    let kept = root.path().join("kept");
    let f = RunFolder::open(&kept).unwrap();
    std::fs::write(kept.join(RESULTS_FILE), "{\"id\":\"a\"}\n").unwrap();
    f.abandon();
    assert!(kept.join(RESULTS_FILE).is_file(), "a stored run keeps it");

    let existing = tempfile::tempdir().unwrap();
    RunFolder::open(existing.path()).unwrap().abandon();
    assert!(existing.path().is_dir(), "a folder it did not create stays");
}

#[test]
fn an_output_folder_that_is_a_file_is_named() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("f");
    std::fs::write(&file, "").unwrap();
    let msg = RunFolder::open(&file).unwrap_err().to_string();
    assert!(
        msg.contains("exists and is a file, where a folder is expected"),
        "{msg}"
    );
}

#[test]
fn derived_file_names_stay_inside_the_folder() {
    let dir = Path::new("out");
    assert_eq!(file_in(dir, "fig3.png").unwrap(), dir.join("fig3.png"));
    for bad in ["../x.png", "/etc/x", "a/b.png", "..", ".", ""] {
        assert!(file_in(dir, bad).is_err(), "{bad:?}");
    }
}

#[test]
fn spec_names_must_be_one_safe_path_component() {
    let text = BUILTIN[0].1;
    let long = "n".repeat(101);
    for bad in [
        "../../evil",
        "/abs",
        "a/b",
        ".hidden",
        "",
        "a b",
        "é",
        long.as_str(),
    ] {
        let spec = text.replace("name = \"fig3-mnist\"", &format!("name = {bad:?}"));
        let err = ExperimentSpec::from_toml(&spec, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("name") && err.contains("safe folder name"),
            "{bad:?}: {err}"
        );
    }
    for (name, _) in BUILTIN {
        let spec = ExperimentSpec::load(name).unwrap();
        assert_eq!(spec.default_out(), Path::new("results").join(name));
    }
}

#[test]
fn a_binary_spec_file_is_named_as_not_utf8_toml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.toml");
    std::fs::write(&path, [0x80u8, 0xff, 0x00, 0x01]).unwrap();
    let err = ExperimentSpec::load(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a UTF-8 TOML spec") && err.contains("x.toml"),
        "{err}"
    );
}

#[test]
fn settings_survive_the_spec_file() {
    for (name, _) in BUILTIN {
        let spec = ExperimentSpec::load(name).unwrap();
        let again = ExperimentSpec::from_toml(&toml::to_string(&spec).unwrap(), name).unwrap();
        assert_eq!(again.settings_id(), spec.settings_id(), "{name}");
        assert_eq!(again.settings_hashes(), spec.settings_hashes(), "{name}");
    }
}

#[test]
fn report_refuses_folders_of_different_settings_unless_allowed() {
    let root = tempfile::tempdir().unwrap();
    let spec = fig3();
    let mut other = spec.clone();
    other.training.max_epochs += 1;
    let a = folder(root.path(), "a", &spec, &[run_line(&spec, 0)]);
    let b = folder(root.path(), "b", &other, &[run_line(&other, 1)]);
    let err = merge(&[a.clone(), b.clone()], false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MergeError::MixedSettings { .. }), "{msg}");
    for needle in [
        a.display().to_string(),
        b.display().to_string(),
        spec.settings_id(),
        other.settings_id(),
    ] {
        assert!(msg.contains(&needle), "{needle}: {msg}");
    }
    assert_eq!(merge(&[a, b], true).unwrap().records.len(), 2);
}

#[test]
fn report_refuses_records_of_another_experiment_naming_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let spec = fig3();
    let mut renamed = spec.clone();
    renamed.name = "other".into();
    let mut changed = spec.clone();
    changed.seed += 1;
    for stray in [run_line(&renamed, 1), run_line(&changed, 1)] {
        let a = folder(root.path(), "a", &spec, &[run_line(&spec, 0), stray]);
        let msg = merge(std::slice::from_ref(&a), false)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("{}, line 2", a.join(RESULTS_FILE).display())),
            "{msg}"
        );
        assert_eq!(merge(&[a], true).unwrap().records.len(), 2);
    }
    // Shards of one spec (one of them run with --quick) merge.
    let quick = spec.quick_sizes();
    let s1 = folder(root.path(), "s1", &spec, &[run_line(&spec, 0)]);
    let s2 = folder(root.path(), "s2", &quick, &[run_line(&quick, 1)]);
    assert_eq!(merge(&[s1, s2], false).unwrap().records.len(), 2);
}

#[test]
fn a_line_that_is_not_a_run_is_named_by_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let spec = fig3();
    let a = folder(
        root.path(),
        "a",
        &spec,
        &[run_line(&spec, 0), "{\"id\": \"x\"}".into()],
    );
    let msg = merge(std::slice::from_ref(&a), true)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&format!("{}, line 2", a.join(RESULTS_FILE).display())) && msg.contains("x"),
        "{msg}"
    );
}

#[test]
fn a_run_into_a_folder_of_other_settings_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let spec = fig3();
    let a = folder(root.path(), "a", &spec, &[run_line(&spec, 0)]);
    check_folder_settings(&a, &spec).expect("the same settings run on");
    let mut quick = spec.clone();
    quick.data.attack_sizes.truncate(1);
    check_folder_settings(&a, &quick).expect("fewer attack sizes are the same settings");
    let mut other = spec.clone();
    other.training.max_epochs += 1;
    let err = check_folder_settings(&a, &other).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MergeError::OtherSettings { .. }), "{msg}");
    for needle in [spec.settings_id(), other.settings_id(), "--out".into()] {
        assert!(msg.contains(&needle), "{needle}: {msg}");
    }
    let empty = root.path().join("new");
    check_folder_settings(&empty, &other).expect("a new folder takes any spec");
}
