//! The errors of the lab: the one that stops an experiment (a run that fails is recorded with
//! a note, not raised) and the store's.

use std::path::PathBuf;

/// An error that stops an experiment (a failing run is recorded, not raised).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The data could not be loaded or split.
    #[error("data for experiment {experiment}: {source}")]
    Data {
        /// The experiment.
        experiment: String,
        /// The cause.
        source: basin_data::DataError,
    },
    /// The spec does not fit the data.
    #[error("experiment {experiment}: {message}")]
    Setup {
        /// The experiment.
        experiment: String,
        /// What does not fit.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run was asked to stop ([`crate::exec::StopFlag`]) before every job was computed;
    /// the jobs that finished are stored, and a rerun into the same folder resumes.
    #[error(
        "experiment {experiment}: stopped on request after {done} of {total} jobs; the finished \
         runs are stored, and rerunning into the same folder resumes"
    )]
    Stopped {
        /// The experiment.
        experiment: String,
        /// Jobs finished.
        done: usize,
        /// Jobs this run had to compute.
        total: usize,
    },
    /// The output folder could not be made or locked.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

impl LabError {
    /// A setup error of the experiment named `experiment`.
    pub fn setup(experiment: &str, message: impl ToString) -> Self {
        Self::Setup {
            experiment: experiment.to_owned(),
            message: message.to_string(),
        }
    }
}

/// An error reading or writing a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line other than the last is not a JSON object with a string `id`.
    #[error(
        "{path}, line {line}: {problem}; the store is corrupt (remove the line to recompute that run)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A record to append has no string `id`, or one already stored.
    #[error("record {0}")]
    BadRecord(String),
    /// The atomic rewrite failed.
    #[error(transparent)]
    Write(#[from] basin_data::DataError),
}

/// An error making, locking or writing into an output folder.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// Another process holds the folder's lock.
    #[error(
        "{dir} is in use by another basin process ({holder}), which holds {lock}; wait for it to \
         finish (or stop it), or write to another folder"
    )]
    Busy {
        /// The folder.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// `PID <n>`, or `PID unknown` when the lock file does not say.
        holder: String,
    },
    /// The folder could not be made (its path is a file, or the file system failed).
    #[error(transparent)]
    Make(#[from] basin_data::DataError),
    /// The lock file failed.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file name derived from the spec or the records would leave the folder.
    #[error("{name:?} is not a plain file name inside {dir}; refusing to write it")]
    Escapes {
        /// The folder.
        dir: PathBuf,
        /// The name.
        name: String,
    },
}
