//! The record of one run: one line of `results.jsonl`. The keys are documented in the README
//! ("The result store"); logs are natural unless a key says `log10`.

use std::collections::BTreeMap;

use basin_nn::TrainStatus;
use serde::{Deserialize, Serialize};

/// One trained network and everything measured on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The stable run id: the experiment name, `spec::ExperimentSpec::settings_hash` and the
    /// run's place (see the kinds' `run_keys`).
    pub id: String,
    /// The experiment's name.
    pub experiment: String,
    /// The report group (the optimizer's kind when several are compared, `+<epochs>` for an
    /// overtraining checkpoint, the α of a temporal run); empty when the experiment has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// The optimizer's kind (`sgd`, `adam`, …).
    #[serde(default = "sgd")]
    pub optimizer: String,
    /// Epochs trained after zero training error before measuring.
    #[serde(default)]
    pub overtrain_epochs: usize,
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
    /// Error on A, against its flipped labels; null when A is empty.
    pub attack_error: Option<f64>,
    /// Error on T; null when T is empty (the Boolean experiment trains on the whole cube).
    pub test_error: Option<f64>,
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
    /// For a temporal run, the measures every few epochs along training (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trajectory: Vec<TrajectoryPoint>,
}

fn sgd() -> String {
    "sgd".into()
}

/// The state of a network at one epoch of a temporal run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryPoint {
    /// Epochs completed (0: at initialisation).
    pub epoch: usize,
    /// The cross-entropy loss on S.
    pub train_loss: f64,
    /// Error on S.
    pub train_error: f64,
    /// Error on T (null when T is empty).
    pub test_error: Option<f64>,
    /// Keskar sharpness on S (null where it failed or is not measured).
    pub sharpness: Option<f64>,
    /// log P(f) of the function on S ∪ T, probit likelihood (null where not measured).
    pub log_prior_probit: Option<f64>,
    /// Whether the function on S ∪ T differs from the previous point's (its prior was then
    /// recomputed; otherwise reused).
    pub function_changed: bool,
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
