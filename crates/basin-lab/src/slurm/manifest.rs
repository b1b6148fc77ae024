//! `submit.json`: what `basin submit` sent to the scheduler from an output folder, read by
//! `basin status` and checked by a later submission into the same folder.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Chunk, Submission};

/// The manifest file inside a submission's output folder.
pub const MANIFEST_FILE: &str = "submit.json";

/// One `sbatch --array` of the submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedChunk {
    /// Its shards.
    #[serde(flatten)]
    pub chunk: Chunk,
    /// The array's job id.
    pub job_id: String,
}

/// What was submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The submission.
    #[serde(flatten)]
    pub submission: Submission,
    /// The arrays, in shard order.
    pub arrays: Vec<SubmittedChunk>,
    /// The merge job's id.
    pub merge_job_id: String,
    /// When it was submitted (seconds since the Unix epoch).
    pub submitted_unix_s: f64,
}

impl Manifest {
    /// The shard that Slurm's task `job_task` (`<array id>_<index>`) runs, if it is one of
    /// this submission's.
    pub fn shard_of_task(&self, job_task: &str) -> Option<usize> {
        let (job, task) = job_task.split_once('_')?;
        let task: usize = task.parse().ok()?;
        let array = self.arrays.iter().find(|a| a.job_id == job)?;
        (task < array.chunk.len).then_some(array.chunk.offset + task + 1)
    }

    /// Every job id: the arrays' and the merge job's.
    pub fn job_ids(&self) -> Vec<String> {
        self.arrays
            .iter()
            .map(|a| a.job_id.clone())
            .chain(std::iter::once(self.merge_job_id.clone()))
            .collect()
    }
}

/// A manifest that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Reading or writing failed.
    #[error("{path}: {message}")]
    Io {
        /// The manifest file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Reads `dir`'s manifest; `None` if it has none.
pub fn read(dir: &Path) -> Result<Option<Manifest>, ManifestError> {
    let path = dir.join(MANIFEST_FILE);
    let err = |message: String| ManifestError::Io {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Writes `manifest` into `dir` atomically.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<(), ManifestError> {
    let path = dir.join(MANIFEST_FILE);
    let err = |message: String| ManifestError::Io {
        path: path.display().to_string(),
        message,
    };
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| err(e.to_string()))?;
    basin_data::io::write_atomic(&path, &json).map_err(|e| err(e.to_string()))
}
