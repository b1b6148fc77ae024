//! Records as the store holds them (JSON objects) and as runs ([`RunRecord`]).

use std::path::PathBuf;

use serde_json::Value;

use crate::error::StoreError;
use crate::exec::store::{load_merged, record_id};
use crate::record::RunRecord;

/// An error reading the records of output folders.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// A store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored line is a JSON object without the fields of a run.
    #[error(
        "run {id}: a stored record does not have the fields of a run ({source}); remove its \
         line from results.jsonl to recompute it"
    )]
    NotARun {
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

/// The runs stored in several folders (the shards of one experiment), each id once.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<RunRecord>, RecordsError> {
    load_merged(dirs)?
        .into_iter()
        .map(|v| {
            let id = record_id(&v).unwrap_or("?").to_owned();
            serde_json::from_value(v).map_err(|source| RecordsError::NotARun { id, source })
        })
        .collect()
}
