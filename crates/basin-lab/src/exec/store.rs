//! The result store: one JSON object per line in `<dir>/results.jsonl`, one line per run,
//! keyed by the run's `id`.
//!
//! - Each record is appended with one `write`, then flushed and `fsync`ed, so a killed process
//!   loses at most the runs still in flight.
//! - On open, a torn last line (no final newline, or not valid JSON: the process died while
//!   writing it) is dropped with a warning and cut from the file, so the run is recomputed. A
//!   bad line anywhere else is corruption and an error naming the line.
//! - [`Store::compact`] rewrites the file atomically (temporary file, then rename).
//! - [`load_merged`] reads the stores of several folders (the shards of one experiment).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::StoreError;

/// The store's file name inside its folder.
pub const RESULTS_FILE: &str = "results.jsonl";

/// An open store: the file, appended to, and the ids it holds.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    file: File,
    ids: HashSet<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The string `id` of a record.
pub fn record_id(record: &Value) -> Option<&str> {
    record.get("id")?.as_str()
}

/// Parses the store's text; returns the records with their 1-based line numbers and the byte
/// length of the good prefix (shorter than the text when the last line is torn).
fn parse(path: &Path, text: &str) -> Result<(Vec<(usize, Value)>, usize), StoreError> {
    let mut records = Vec::new();
    let mut good = 0;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let parsed = serde_json::from_str::<Value>(line.trim_end());
        let problem = match &parsed {
            _ if !line.ends_with('\n') => Some("no final newline".to_string()),
            Err(e) => Some(format!("invalid JSON ({e})")),
            Ok(v) if record_id(v).is_none() => Some("no string \"id\"".to_string()),
            Ok(_) => None,
        };
        match (problem, last) {
            (None, _) => {
                records.push((i + 1, parsed.expect("checked")));
                good += line.len();
            }
            (Some(problem), true) => {
                tracing::warn!(
                    "{}: dropping a torn last line ({problem}); its run will be recomputed",
                    path.display()
                );
            }
            (Some(problem), false) => {
                return Err(StoreError::Corrupt {
                    path: path.to_owned(),
                    line: i + 1,
                    problem,
                });
            }
        }
    }
    Ok((records, good))
}

/// Reads the records of `<dir>/results.jsonl` (none if it does not exist), dropping a torn
/// last line.
pub fn load(dir: &Path) -> Result<Vec<Value>, StoreError> {
    Ok(load_numbered(dir)?.into_iter().map(|(_, v)| v).collect())
}

/// The records of `<dir>/results.jsonl` as [`load`] reads them, each with its 1-based line
/// number.
pub fn load_numbered(dir: &Path) -> Result<Vec<(usize, Value)>, StoreError> {
    let path = dir.join(RESULTS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse(&path, &text)?.0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// The records of several stores (the shards of one experiment), each id once: a record whose
/// id was already read from an earlier folder is skipped with a warning.
pub fn load_merged(dirs: &[PathBuf]) -> Result<Vec<Value>, StoreError> {
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for dir in dirs {
        for record in load(dir)? {
            let id = record_id(&record).expect("parse checks ids").to_owned();
            if seen.insert(id.clone()) {
                all.push(record);
            } else {
                tracing::warn!(
                    "{}: run {id} is stored twice; kept the first",
                    dir.display()
                );
            }
        }
    }
    Ok(all)
}

impl Store {
    /// Opens (creating the folder and file if needed) the store in `dir` and returns it with
    /// the records it holds. A torn last line is cut from the file.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Value>), StoreError> {
        basin_data::atomic::create_dir(dir)?;
        let path = dir.join(RESULTS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let (records, good) = parse(&path, &text)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if good < text.len() {
            file.set_len(good as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        let ids = records
            .iter()
            .filter_map(|(_, r)| record_id(r).map(str::to_owned))
            .collect();
        let records = records.into_iter().map(|(_, r)| r).collect();
        Ok((Self { path, file, ids }, records))
    }

    /// True if a run with this id is stored.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// The number of stored runs.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True if no run is stored.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record (a JSON object with a new string `id`) as one line, then flushes and
    /// fsyncs the file.
    pub fn append(&mut self, record: &Value) -> Result<(), StoreError> {
        let id = record_id(record)
            .ok_or_else(|| StoreError::BadRecord("without a string \"id\"".into()))?
            .to_owned();
        if self.ids.contains(&id) {
            return Err(StoreError::BadRecord(format!("{id} is already stored")));
        }
        let mut line = serde_json::to_string(record).expect("a Value serialises");
        line.push('\n');
        let path = self.path.clone();
        self.file
            .write_all(line.as_bytes())
            .map_err(io_err(&path))?;
        self.file.flush().map_err(io_err(&path))?;
        self.file.sync_data().map_err(io_err(&path))?;
        self.ids.insert(id);
        Ok(())
    }

    /// Rewrites the file atomically with exactly `records` (in this order).
    pub fn compact(&mut self, records: &[Value]) -> Result<(), StoreError> {
        let mut text = String::new();
        let mut ids = HashSet::new();
        for r in records {
            let id = record_id(r).ok_or_else(|| StoreError::BadRecord("without an id".into()))?;
            ids.insert(id.to_owned());
            text.push_str(&serde_json::to_string(r).expect("a Value serialises"));
            text.push('\n');
        }
        basin_data::io::write_atomic(&self.path, text.as_bytes())?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        self.ids = ids;
        Ok(())
    }
}
