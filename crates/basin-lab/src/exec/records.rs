//! Records as the store holds them (JSON objects) and as runs ([`RunRecord`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::StoreError;
use crate::exec::store::{RESULTS_FILE, load_numbered, record_id};
use crate::record::RunRecord;

/// An error reading the records of output folders.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// A store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored line is a JSON object without the fields of a run.
    #[error(
        "{file}, line {line}: run {id}: the record does not have the fields of a run \
         ({source}); remove the line to recompute the run"
    )]
    NotARun {
        /// The store's file.
        file: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The record's id.
        id: String,
        /// What is missing or mistyped.
        source: serde_json::Error,
    },
}

/// The stored records that are runs (a line of another shape is skipped: the executor
/// recomputes nothing for it, and a report names it through [`load`]).
pub fn runs_of(stored: Vec<Value>) -> Vec<RunRecord> {
    stored
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

/// The value of a record, as the store appends it.
pub fn to_value(record: &RunRecord) -> Value {
    serde_json::to_value(record).expect("a record serialises")
}

/// A run as stored: the record, with its file and line.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// The store's file.
    pub file: PathBuf,
    /// The 1-based line number.
    pub line: usize,
    /// The run.
    pub record: RunRecord,
}

/// The runs stored in one folder, each with its file and line; a line that is not a run is
/// an error naming both.
pub fn load_folder(dir: &Path) -> Result<Vec<StoredRun>, RecordsError> {
    let file = dir.join(RESULTS_FILE);
    load_numbered(dir)?
        .into_iter()
        .map(|(line, v)| {
            let id = record_id(&v).unwrap_or("?").to_owned();
            let record = serde_json::from_value(v).map_err(|source| RecordsError::NotARun {
                file: file.clone(),
                line,
                id,
                source,
            })?;
            Ok(StoredRun {
                file: file.clone(),
                line,
                record,
            })
        })
        .collect()
}

/// The runs of several folders' [`load_folder`]s, each id once: a run whose id was already
/// read from an earlier folder is skipped with a warning.
pub fn each_id_once(folders: Vec<Vec<StoredRun>>) -> Vec<RunRecord> {
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for run in folders.into_iter().flatten() {
        if seen.insert(run.record.id.clone()) {
            all.push(run.record);
        } else {
            tracing::warn!(
                "{}, line {}: run {} is stored twice; kept the first",
                run.file.display(),
                run.line,
                run.record.id
            );
        }
    }
    all
}

/// The runs stored in several folders (the shards of one experiment), each id once.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<RunRecord>, RecordsError> {
    let folders = dirs
        .iter()
        .map(|d| load_folder(d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(each_id_once(folders))
}
