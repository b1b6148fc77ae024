//! Experiment specs: TOML files (`experiments/*.toml`, documented field by field in
//! `experiments/README.md`), parsed with serde. Unknown keys are rejected, with the key and
//! the line named.
//!
//! A spec expands into runs ([`ExperimentSpec::runs`]): one per attack size and replicate.
//! Each run's id is stable: the experiment name, a hash of every setting that changes a run's
//! result, the attack size and the replicate. Adding attack sizes or replicates keeps the ids
//! of the runs already stored; changing, say, the learning rate changes every id.

use std::path::Path;

use basin_data::DataSource;
use basin_nn::Activation;
use basin_nn::optim::{OptimizerConfig, SgdConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The specs shipped with basin, by name.
pub const BUILTIN: [(&str, &str); 2] = [
    (
        "fig3-mnist",
        include_str!("../../../experiments/fig3-mnist.toml"),
    ),
    (
        "fig3-cifar-fcn",
        include_str!("../../../experiments/fig3-cifar-fcn.toml"),
    ),
];

/// An error reading or checking a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown or mistyped keys.
    #[error("{origin}: {message}")]
    Parse {
        /// The file or built-in name.
        origin: String,
        /// The parser's message (with the line and the key).
        message: String,
    },
    /// A value is out of range.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file or built-in name.
        origin: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// The experiment's name (part of every run id).
    pub name: String,
    /// A sentence for the report.
    #[serde(default)]
    pub description: String,
    /// The master seed: each run's seeds derive from it and the run's place.
    #[serde(default = "one")]
    pub seed: u64,
    /// The data and the split.
    pub data: DataSpec,
    /// The network.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Training.
    #[serde(default)]
    pub training: TrainingSpec,
    /// What to measure on each trained network.
    #[serde(default)]
    pub measures: MeasuresSpec,
}

fn one() -> u64 {
    1
}

/// The data set and its split into S, A and T.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// A basin data source (`mnist`, `idx:…`, `cifar10:<dir>`, `npy:…`, `boolean:…`).
    pub source: String,
    /// `default`, `none` or a class map such as `0-4:0,5-9:1`.
    #[serde(default = "default_class_map")]
    pub class_map: String,
    /// |S|.
    pub train_size: usize,
    /// |T|.
    pub test_size: usize,
    /// The attack-set sizes |A|, one group of runs each.
    pub attack_sizes: Vec<usize>,
    /// Networks trained per attack size.
    #[serde(default = "five")]
    pub networks_per_size: usize,
    /// `ordered` (the paper's code) or `seeded`.
    #[serde(default)]
    pub split: SplitKindSpec,
    /// First test example of an ordered split (the source's default when absent).
    #[serde(default)]
    pub test_offset: Option<usize>,
    /// Per-channel normalisation of CIFAR-10 inputs with the paper's mean and std.
    #[serde(default)]
    pub normalize: bool,
}

fn default_class_map() -> String {
    "default".into()
}

fn five() -> usize {
    5
}

/// How the split chooses its examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SplitKindSpec {
    /// S, A, T in stored order (the paper's code).
    #[default]
    Ordered,
    /// A seeded permutation (from the experiment seed), nested across attack sizes.
    Seeded,
}

/// The fully-connected network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Hidden widths.
    #[serde(default = "paper_hidden")]
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity.
    #[serde(default)]
    pub activation: Activation,
    /// Weight scale: W ~ N(0, σ_w²/fan_in).
    #[serde(default = "sqrt2")]
    pub sigma_w: f64,
    /// Bias scale: b ~ N(0, σ_b²).
    #[serde(default = "unit")]
    pub sigma_b: f64,
}

fn paper_hidden() -> Vec<usize> {
    vec![40, 40]
}

fn sqrt2() -> f64 {
    std::f64::consts::SQRT_2
}

fn unit() -> f64 {
    1.0
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            hidden: paper_hidden(),
            activation: Activation::Relu,
            sigma_w: sqrt2(),
            sigma_b: unit(),
        }
    }
}

/// Training to zero error on S.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// The optimizer, as `{ kind = "sgd", lr = 0.01 }` (see `basin train --optimizer-json`).
    #[serde(default = "paper_optimizer")]
    pub optimizer: OptimizerConfig,
    /// Minibatch size.
    #[serde(default = "batch32")]
    pub batch_size: usize,
    /// `f32` (the paper's) or `f64`.
    #[serde(default)]
    pub precision: PrecisionSpec,
    /// `shuffled` every epoch, or `fixed`.
    #[serde(default)]
    pub order: basin_nn::BatchOrder,
    /// Epochs before a run is recorded as not converged.
    #[serde(default = "max_epochs")]
    pub max_epochs: usize,
    /// Extra epochs after zero training error.
    #[serde(default)]
    pub overtrain_epochs: usize,
}

fn paper_optimizer() -> OptimizerConfig {
    OptimizerConfig::Sgd(SgdConfig { lr: 0.01 })
}

fn batch32() -> usize {
    32
}

fn max_epochs() -> usize {
    50_000
}

impl Default for TrainingSpec {
    fn default() -> Self {
        Self {
            optimizer: paper_optimizer(),
            batch_size: batch32(),
            precision: PrecisionSpec::F32,
            order: basin_nn::BatchOrder::Shuffled,
            max_epochs: max_epochs(),
            overtrain_epochs: 0,
        }
    }
}

/// Floating-point precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrecisionSpec {
    /// 32-bit.
    #[default]
    F32,
    /// 64-bit.
    F64,
}

/// The measures; a section left out is not measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MeasuresSpec {
    /// Keskar sharpness on S.
    #[serde(default)]
    pub sharpness: Option<SharpnessSpec>,
    /// The Hessian spectrum on S.
    #[serde(default)]
    pub hessian: Option<HessianSpec>,
    /// log P(f) of the function on S ∪ T.
    #[serde(default)]
    pub prior: Option<PriorSpec>,
    /// Generalization bounds from log P(f).
    #[serde(default)]
    pub bounds: Option<BoundsSpec>,
}

/// Keskar sharpness settings (see `basin sharpness`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharpnessSpec {
    /// Relative half-width of the box.
    #[serde(default = "eps")]
    pub epsilon: f64,
    /// Ascent learning rate.
    #[serde(default = "ascent_lr")]
    pub lr: f64,
    /// Ascent epochs.
    #[serde(default = "ascent_epochs")]
    pub epochs: usize,
    /// Ascent batch size.
    #[serde(default = "batch32")]
    pub batch_size: usize,
    /// Arithmetic of the ascent.
    #[serde(default)]
    pub precision: PrecisionSpec,
}

fn eps() -> f64 {
    1e-4
}

fn ascent_lr() -> f64 {
    1e-3
}

fn ascent_epochs() -> usize {
    100
}

/// Hessian spectrum settings (see `basin hessian`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HessianSpec {
    /// The number of top eigenvalues.
    #[serde(default = "top50")]
    pub top_k: usize,
    /// Lanczos steps (basin's default when absent).
    #[serde(default)]
    pub lanczos_steps: Option<usize>,
}

fn top50() -> usize {
    50
}

/// log P(f) settings (see `basin prior`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorSpec {
    /// `probit` (the paper's code) and/or `step` (the paper's text).
    #[serde(default = "both_likelihoods")]
    pub likelihoods: Vec<LikelihoodSpec>,
    /// The estimator.
    #[serde(default)]
    pub method: PriorMethodSpec,
}

fn both_likelihoods() -> Vec<LikelihoodSpec> {
    vec![LikelihoodSpec::Probit, LikelihoodSpec::Step]
}

/// A likelihood of the labels given the latent function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LikelihoodSpec {
    /// Φ(y·z): the step likelihood on K + I.
    Probit,
    /// P(sign z = y), noise-free.
    Step,
}

/// An estimator of log P(f).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PriorMethodSpec {
    /// Expectation Propagation, parallel updates.
    #[default]
    Ep,
    /// Expectation Propagation, sequential updates.
    EpSequential,
    /// The Laplace approximation.
    Laplace,
}

/// Bound settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundsSpec {
    /// The confidence parameter δ.
    #[serde(default = "delta")]
    pub delta: f64,
}

fn delta() -> f64 {
    0.05
}

/// One run of an experiment: one network trained with one attack size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// The stable id.
    pub id: String,
    /// |A|.
    pub attack_size: usize,
    /// The replicate number within its attack size, from 0.
    pub replicate: usize,
    /// The run's seed (init, batch order and optimizer noise derive from it).
    pub seed: u64,
}

impl ExperimentSpec {
    /// Parses and checks a spec; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, SpecError> {
        let spec: Self = toml::from_str(text).map_err(|e| SpecError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        spec.validate().map_err(|message| SpecError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(spec)
    }

    /// A built-in spec by name, or a spec file by path.
    pub fn load(name_or_path: &str) -> Result<Self, SpecError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::from_toml(text, &format!("built-in spec {name}"));
        }
        let text =
            std::fs::read_to_string(Path::new(name_or_path)).map_err(|source| SpecError::Read {
                path: format!(
                    "{name_or_path} (not a file, nor a built-in spec: {})",
                    BUILTIN.map(|b| b.0).join(", ")
                ),
                source,
            })?;
        Self::from_toml(&text, name_or_path)
    }

    /// Checks every value against its range; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let d = &self.data;
        d.source
            .parse::<DataSource>()
            .map_err(|e| format!("data.source: {e}"))?;
        if self.name.is_empty() || self.name.contains(char::is_whitespace) {
            return Err("name: give a non-empty name without spaces".into());
        }
        if d.train_size == 0 || d.test_size == 0 || d.networks_per_size == 0 {
            return Err(
                "data.train_size, data.test_size and data.networks_per_size must be at \
                        least 1"
                    .into(),
            );
        }
        if d.attack_sizes.is_empty() || d.attack_sizes.windows(2).any(|w| w[0] >= w[1]) {
            return Err("data.attack_sizes: give at least one size, ascending, each once".into());
        }
        let n = &self.network;
        let scales_ok = n.sigma_w > 0.0 && n.sigma_b >= 0.0 && n.sigma_w.is_finite();
        if n.hidden.contains(&0) || !scales_ok || !n.sigma_b.is_finite() {
            return Err("network: widths ≥ 1, sigma_w > 0 and sigma_b ≥ 0".into());
        }
        let t = &self.training;
        t.optimizer
            .validate()
            .map_err(|e| format!("training.optimizer: {e}"))?;
        if t.batch_size == 0 || t.max_epochs == 0 {
            return Err("training.batch_size and training.max_epochs must be at least 1".into());
        }
        if let Some(s) = &self.measures.sharpness {
            let ok = s.epsilon > 0.0 && s.lr > 0.0 && s.batch_size > 0;
            if !ok {
                return Err("measures.sharpness: epsilon > 0, lr > 0, batch_size ≥ 1".into());
            }
        }
        if let Some(h) = &self.measures.hessian
            && (h.top_k == 0 || h.lanczos_steps.is_some_and(|s| s < h.top_k))
        {
            return Err("measures.hessian: top_k ≥ 1 and lanczos_steps ≥ top_k".into());
        }
        if let Some(p) = &self.measures.prior
            && p.likelihoods.is_empty()
        {
            return Err("measures.prior.likelihoods: name probit and/or step".into());
        }
        if let Some(b) = &self.measures.bounds {
            if !(b.delta > 0.0 && b.delta < 1.0) {
                return Err("measures.bounds.delta must lie in (0, 1)".into());
            }
            if self.measures.prior.is_none() {
                return Err(
                    "measures.bounds needs measures.prior (the bounds use log P(f))".into(),
                );
            }
        }
        Ok(())
    }

    /// A hash of every setting that changes a run's result (all but the lists of attack sizes
    /// and the number of replicates, and the description): 12 hex digits.
    pub fn settings_hash(&self) -> String {
        let mut canonical = self.clone();
        canonical.description.clear();
        canonical.data.attack_sizes.clear();
        canonical.data.networks_per_size = 0;
        let json = serde_json::to_string(&canonical).expect("a spec serialises");
        let digest = Sha256::digest(json.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The runs, in order of attack size then replicate. A run's seed depends only on the
    /// master seed and its (attack size, replicate), so it survives edits to the lists.
    pub fn runs(&self) -> Vec<RunKey> {
        let hash = self.settings_hash();
        let mut runs = Vec::new();
        for &a in &self.data.attack_sizes {
            for r in 0..self.data.networks_per_size {
                let seed =
                    basin_nn::derive_seed(basin_nn::derive_seed(self.seed, a as u64), r as u64 + 1);
                runs.push(RunKey {
                    id: format!("{}-{hash}-a{a}-r{r}", self.name),
                    attack_size: a,
                    replicate: r,
                    seed,
                });
            }
        }
        runs
    }
}

/// A `K/N` shard of an experiment's runs (1-based K).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1..=count.
    pub index: usize,
    /// The number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard {s:?}: write K/N with 1 ≤ K ≤ N, for example 2/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// True if the run with this id belongs to this shard. Membership hashes the id, so it
    /// does not depend on the order or number of runs: shards of an extended spec still hold
    /// the same old runs.
    pub fn holds(&self, id: &str) -> bool {
        let digest = Sha256::digest(id.as_bytes());
        let h = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        (h % self.count as u64) as usize + 1 == self.index
    }
}
