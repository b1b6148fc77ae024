//! The result store: append and reopen, torn last lines, corruption, compaction and merging.

use basin_lab::exec::store::{RESULTS_FILE, Store, load, load_merged};
use serde_json::json;

#[test]
fn append_reopen_and_skip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, records) = Store::open(dir.path()).unwrap();
    assert!(records.is_empty() && store.is_empty());
    store.append(&json!({"id": "a", "x": 1.5})).unwrap();
    store.append(&json!({"id": "b", "x": [1, 2]})).unwrap();
    assert!(store.append(&json!({"id": "a"})).is_err(), "ids are unique");
    assert!(store.append(&json!({"x": 3})).is_err(), "records need ids");
    drop(store);
    let (store, records) = Store::open(dir.path()).unwrap();
    assert_eq!(
        records,
        vec![
            json!({"id": "a", "x": 1.5}),
            json!({"id": "b", "x": [1, 2]})
        ]
    );
    assert!(store.contains("a") && store.contains("b") && !store.contains("c"));
    assert_eq!(store.len(), 2);
}

/// A process killed mid-write leaves a partial line: it is dropped, cut from the file, and
/// the next append lands on a clean line.
#[test]
fn a_torn_last_line_is_dropped_and_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(RESULTS_FILE);
    std::fs::write(&path, "{\"id\":\"a\",\"x\":1}\n{\"id\":\"b\",\"x\":").unwrap();
    let (mut store, records) = Store::open(dir.path()).unwrap();
    assert_eq!(records.len(), 1);
    assert!(!store.contains("b"));
    store.append(&json!({"id": "b", "x": 2})).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, "{\"id\":\"a\",\"x\":1}\n{\"id\":\"b\",\"x\":2}\n");
    // A complete last line without its newline is torn too (the write may have been cut
    // exactly there).
    std::fs::write(&path, "{\"id\":\"a\"}\n{\"id\":\"b\"}").unwrap();
    assert_eq!(load(dir.path()).unwrap().len(), 1);
}

#[test]
fn a_bad_line_in_the_middle_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(RESULTS_FILE);
    std::fs::write(&path, "{\"id\":\"a\"}\nnot json\n{\"id\":\"c\"}\n").unwrap();
    let err = Store::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("line 2") && err.contains("results.jsonl"),
        "{err}"
    );
    std::fs::write(&path, "{\"id\":\"a\"}\n{\"x\":1}\n{\"id\":\"c\"}\n").unwrap();
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("id"), "{err}");
}

#[test]
fn compaction_rewrites_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::open(dir.path()).unwrap();
    for i in 0..3 {
        store.append(&json!({"id": format!("r{i}")})).unwrap();
    }
    store
        .compact(&[json!({"id": "r2"}), json!({"id": "r0"})])
        .unwrap();
    store.append(&json!({"id": "r1"})).unwrap();
    let ids: Vec<String> = load(dir.path())
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["r2", "r0", "r1"]);
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left");
}

#[test]
fn shards_merge_each_id_once() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut sa, _) = Store::open(a.path()).unwrap();
    let (mut sb, _) = Store::open(b.path()).unwrap();
    sa.append(&json!({"id": "1", "v": 1})).unwrap();
    sb.append(&json!({"id": "2", "v": 2})).unwrap();
    sb.append(&json!({"id": "1", "v": 9})).unwrap();
    let missing = a.path().join("none");
    let all = load_merged(&[a.path().into(), b.path().into(), missing]).unwrap();
    assert_eq!(
        all,
        vec![json!({"id": "1", "v": 1}), json!({"id": "2", "v": 2})]
    );
}
