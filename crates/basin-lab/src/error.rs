//! The error that stops an experiment. A run that fails is recorded with a note, not raised.

use crate::exec::store::StoreError;

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
