//! The record of one run: one line of `results.jsonl`. The keys are documented in the README
//! ("The result store"); logs are natural unless a key says `log10`.

use std::collections::BTreeMap;

use basin_nn::TrainStatus;
use serde::{Deserialize, Serialize};

/// One trained network and everything measured on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The stable run id (see `spec::ExperimentSpec::runs`).
    pub id: String,
    /// The experiment's name.
    pub experiment: String,
    /// |A|.
    pub attack_size: usize,
    /// The replicate within its attack size.
    pub replicate: usize,
    /// The run's seed.
    pub seed: u64,
    /// How training ended.
    pub status: TrainStatus,
    /// Epochs to 100% on S (all epochs run, if it never got there).
    pub epochs: usize,
    /// Error on S.
    pub train_error: f64,
    /// Error on A, against its flipped labels.
    pub attack_error: f64,
    /// Error on T.
    pub test_error: f64,
    /// SHA-256 (hex) of the predicted labels on S then T, one byte per label: equal hashes
    /// mean the same function.
    pub function_hash: String,
    /// The measures, by name (`sharpness`, `lambda_max`, `log_prior_probit`, …); absent or
    /// null where not measured or not defined.
    pub measures: BTreeMap<String, Option<f64>>,
    /// Estimator statuses and notes, by measure (for example an EP that did not converge).
    #[serde(default)]
    pub notes: BTreeMap<String, String>,
    /// Wall-clock seconds of each stage (`train`, `sharpness`, `hessian`, `prior`, …).
    pub stage_s: BTreeMap<String, f64>,
}

impl RunRecord {
    /// The measure `name`, if measured and finite.
    pub fn measure(&self, name: &str) -> Option<f64> {
        self.measures
            .get(name)
            .copied()
            .flatten()
            .filter(|v| v.is_finite())
    }
}
