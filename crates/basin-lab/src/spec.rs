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
use basin_prior::estimate::Method;
use basin_prior::likelihood::Likelihood;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The specs shipped with basin, by name.
pub const BUILTIN: [(&str, &str); 8] = [
    ("fig3-mnist", include_str!("../experiments/fig3-mnist.toml")),
    (
        "fig3-cifar-fcn",
        include_str!("../experiments/fig3-cifar-fcn.toml"),
    ),
    (
        "fig4-optimizers",
        include_str!("../experiments/fig4-optimizers.toml"),
    ),
    (
        "overtrain-mnist",
        include_str!("../experiments/overtrain-mnist.toml"),
    ),
    (
        "fig5-temporal",
        include_str!("../experiments/fig5-temporal.toml"),
    ),
    (
        "fig2-boolean",
        include_str!("../experiments/fig2-boolean.toml"),
    ),
    (
        "ep-accuracy",
        include_str!("../experiments/ep-accuracy.toml"),
    ),
    (
        "fig3-mnist-exact",
        include_str!("../experiments/fig3-mnist-exact.toml"),
    ),
];

/// An error reading or checking a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read (the cause follows in the error chain).
    #[error("{path}")]
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
    /// A temporal experiment (figure 5): measures along training instead of at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temporal: Option<TemporalSpec>,
    /// A Boolean experiment (figure 2): the most frequent functions of random networks on
    /// the cube, each trained and measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean: Option<BooleanSpec>,
    /// The EP-accuracy study: EP against minimax tilting on functions of growing error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ep_accuracy: Option<EpAccuracySpec>,
}

/// The EP-accuracy study (see `basin_lab::ep_accuracy`): on the first N points of S ∪ T,
/// functions with a fraction of the true labels flipped (`data.networks_per_size` replicates
/// each), EP against minimax tilting for each likelihood of `[measures.prior]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpAccuracySpec {
    /// The numbers of points N.
    #[serde(default = "paper_sizes")]
    pub sizes: Vec<usize>,
    /// The fractions of labels flipped.
    #[serde(default = "flip_fractions")]
    pub flip_fractions: Vec<f64>,
    /// Tilting's samples.
    #[serde(default = "tilting_samples")]
    pub samples: usize,
    /// Tilting's target standard error (nats): more samples until it is met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_std_err: Option<f64>,
    /// Annealed SMC as a second reference for the step likelihood (where tilting's weights
    /// are too heavy-tailed), at the sizes `smc_sizes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smc: Option<SmcSpec>,
    /// The sizes N at which SMC runs (empty: all of `sizes`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smc_sizes: Vec<usize>,
    /// The fractions of labels flipped at which SMC runs (empty: all of `flip_fractions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smc_flip_fractions: Vec<f64>,
}

fn paper_sizes() -> Vec<usize> {
    vec![64, 300, 1500]
}

fn flip_fractions() -> Vec<f64> {
    vec![0.0, 0.1, 0.2, 0.3, 0.5]
}

fn tilting_samples() -> usize {
    10_240
}

/// The Boolean system (the paper's figure 2): the prior measured by sampling random networks
/// on {0,1}^n (`data.source = "boolean:<n>"`, n ≤ 7), then the `top_k` most frequent
/// functions each trained to zero error on all inputs and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooleanSpec {
    /// Random networks drawn.
    #[serde(default = "ten_million")]
    pub samples: u64,
    /// The most frequent functions kept, trained and measured.
    #[serde(default = "thousand_fns")]
    pub top_k: usize,
}

fn ten_million() -> u64 {
    10_000_000
}

fn thousand_fns() -> usize {
    1000
}

/// The temporal and α-scaling experiment (the paper's figure 5 and appendix H): each network
/// is trained to zero error on S and overtrained, measured every few epochs, and α-scaled
/// once during overtraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalSpec {
    /// Measure every this many epochs (and always at initialisation, at the epoch of zero
    /// training error, right after the scaling and at the end).
    #[serde(default = "ten")]
    pub every: usize,
    /// Epochs trained after zero training error.
    #[serde(default = "thousand")]
    pub overtrain_epochs: usize,
    /// Overtraining epochs before the α-scaling.
    #[serde(default = "five_hundred")]
    pub scale_after: usize,
    /// One trajectory per α, all from the same initialisation and batch order; α = 1 is the
    /// unscaled run.
    #[serde(default = "paper_alphas")]
    pub alphas: Vec<f64>,
    /// The hidden layer scaled by α (its next layer by 1/α), from 0.
    #[serde(default)]
    pub layer: usize,
}

fn ten() -> usize {
    10
}

fn thousand() -> usize {
    1000
}

fn five_hundred() -> usize {
    500
}

fn paper_alphas() -> Vec<f64> {
    vec![1.0, 5.9]
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
    /// The optimizer, as `{ kind = "sgd", lr = 0.01 }` (see `basin train --optimizer-json`);
    /// the paper's SGD when neither this nor `optimizers` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerConfig>,
    /// Several optimizers (distinct kinds), instead of `optimizer`: every run is repeated
    /// with each, from the same initialisation and batch order, and reported per optimizer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optimizers: Vec<OptimizerConfig>,
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
    /// Overtraining epochs (ascending) at which to measure each network, instead of
    /// `overtrain_epochs`: one record per checkpoint, from one training run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measure_at: Vec<usize>,
}

impl TrainingSpec {
    /// The optimizers the runs are trained with: `optimizers`, or `optimizer`, or the paper's
    /// SGD.
    pub fn optimizer_list(&self) -> Vec<OptimizerConfig> {
        match (&self.optimizer, self.optimizers.is_empty()) {
            (_, false) => self.optimizers.clone(),
            (Some(o), true) => vec![o.clone()],
            (None, true) => vec![paper_optimizer()],
        }
    }

    /// The overtraining epochs at which each network is measured: `measure_at`, or
    /// `overtrain_epochs` alone.
    pub fn checkpoints(&self) -> Vec<usize> {
        if self.measure_at.is_empty() {
            vec![self.overtrain_epochs]
        } else {
            self.measure_at.clone()
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.optimizer.is_some() && !self.optimizers.is_empty() {
            return Err("training: give either optimizer or optimizers, not both".into());
        }
        let kinds: Vec<&str> = self.optimizers.iter().map(|o| o.name()).collect();
        if (1..kinds.len()).any(|i| kinds[..i].contains(&kinds[i])) {
            return Err(format!(
                "training.optimizers: each kind at most once, got {}",
                kinds.join(", ")
            ));
        }
        for o in self.optimizer_list() {
            o.validate()
                .map_err(|e| format!("training.optimizer: {e}"))?;
        }
        if self.batch_size == 0 || self.max_epochs == 0 {
            return Err("training.batch_size and training.max_epochs must be at least 1".into());
        }
        if !self.measure_at.is_empty() && self.overtrain_epochs != 0 {
            return Err(
                "training: give either overtrain_epochs or measure_at (whose largest value is \
                 the overtraining), not both"
                    .into(),
            );
        }
        if self.measure_at.windows(2).any(|w| w[0] >= w[1]) {
            return Err("training.measure_at: epochs ascending, each once".into());
        }
        Ok(())
    }
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
            optimizer: None,
            optimizers: Vec::new(),
            batch_size: batch32(),
            precision: PrecisionSpec::F32,
            order: basin_nn::BatchOrder::Shuffled,
            max_epochs: max_epochs(),
            overtrain_epochs: 0,
            measure_at: Vec::new(),
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
    pub likelihoods: Vec<Likelihood>,
    /// The estimator: `ep` (the default), `ep-sequential`, `laplace`, `tilting` or `smc`,
    /// each with its default settings.
    #[serde(default = "ep_method")]
    pub method: Method,
    /// A reference estimator with an error bar, run besides `method` on each function (the
    /// step likelihood's log P(f) by annealed SMC: measures `log_prior_step_smc` and
    /// `log_prior_step_smc_std_err`). Absent: none (and the runs' ids do not change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<SmcSpec>,
}

/// Settings of the annealed-SMC reference (see `basin prior --method smc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmcSpec {
    /// The reference method: `smc`.
    #[serde(default)]
    pub method: ReferenceMethodSpec,
    /// Particles per replicate.
    #[serde(default = "smc_particles")]
    pub particles: usize,
    /// Independent replicates (at least 2; the standard error comes from their spread).
    #[serde(default = "smc_replicates")]
    pub replicates: usize,
    /// The fewest sweeps per level: HMC trajectories per particle (the default mover) or
    /// elliptical slice sweeps. Default: the mover's (`SmcConfig::for_mover`: 1 for hmc, 4
    /// for slice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves: Option<usize>,
    /// The moves: `hmc` (exact HMC in the augmented space, the default) or `slice`
    /// (elliptical slice sampling on EP's ellipses).
    #[serde(default)]
    pub mover: basin_prior::smc::SmcMover,
    /// The ESS fraction of each level's incremental weights, in (0, 1). Default: the
    /// mover's (0.97 for hmc, 0.5 for slice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ess_fraction: Option<f64>,
    /// HMC: the time of each trajectory, in (0, π]. Default: the mover's (π/4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory_time: Option<f64>,
}

/// A reference estimator of log P(f) with an error bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceMethodSpec {
    /// Annealed sequential Monte Carlo over the noise level (`basin_prior::smc`).
    #[default]
    Smc,
}

fn smc_particles() -> usize {
    128
}

fn smc_replicates() -> usize {
    4
}

impl SmcSpec {
    /// particles ≥ 2, replicates ≥ 2, moves ≥ 1, 0 < ess_fraction < 1 and
    /// 0 < trajectory_time ≤ π; `section` names where it is.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        let (moves, ess, time) = self.schedule();
        if self.particles < 2
            || self.replicates < 2
            || moves == 0
            || !(ess > 0.0 && ess < 1.0)
            || !(time > 0.0 && time <= std::f64::consts::PI)
        {
            return Err(format!(
                "{section}: particles ≥ 2, replicates ≥ 2 (the error bar comes from their \
                 spread), moves ≥ 1, 0 < ess_fraction < 1 and 0 < trajectory_time ≤ π (got \
                 {}, {}, {moves}, {ess} and {time})",
                self.particles, self.replicates
            ));
        }
        Ok(())
    }

    /// (moves, ess_fraction, trajectory_time) as run: the spec's, or the mover's tuned ones
    /// (`SmcConfig::for_mover`) where it leaves them out.
    fn schedule(&self) -> (usize, f64, f64) {
        let tuned = basin_prior::smc::SmcConfig::for_mover(self.mover);
        (
            self.moves.unwrap_or(tuned.moves),
            self.ess_fraction.unwrap_or(tuned.ess_fraction),
            self.trajectory_time.unwrap_or(tuned.trajectory_time),
        )
    }

    /// The spec with every setting left to the mover's default filled in, as run: what run
    /// ids hash, so that a change of the defaults changes the ids.
    pub fn resolved(&self) -> SmcSpec {
        let (moves, ess, time) = self.schedule();
        SmcSpec {
            moves: Some(moves),
            ess_fraction: Some(ess),
            trajectory_time: Some(time),
            ..self.clone()
        }
    }

    /// The estimator's settings, with the given seed.
    pub fn config(&self, seed: u64) -> basin_prior::smc::SmcConfig {
        let tuned = basin_prior::smc::SmcConfig::for_mover(self.mover);
        let (moves, ess_fraction, trajectory_time) = self.schedule();
        basin_prior::smc::SmcConfig {
            particles: self.particles,
            replicates: self.replicates,
            max_replicates: self.replicates,
            moves,
            max_moves: tuned.max_moves.max(moves),
            ess_fraction,
            trajectory_time,
            seed,
            ..tuned
        }
    }
}

fn both_likelihoods() -> Vec<Likelihood> {
    vec![Likelihood::Probit, Likelihood::Step]
}

fn ep_method() -> Method {
    Method::Ep
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

/// One run of an experiment: one network trained with one attack size and one optimizer,
/// measured after one number of overtraining epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    /// The stable id.
    pub id: String,
    /// The group it is reported in: the optimizer's kind when the spec compares optimizers,
    /// and `+<epochs>` when it measures at several overtraining epochs (empty when neither).
    pub variant: String,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// Epochs trained after zero training error before measuring.
    pub overtrain_epochs: usize,
    /// The α of a temporal run.
    pub alpha: Option<f64>,
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
        if self.boolean.is_some() {
            return self.validate_boolean();
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
        self.training.validate()?;
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
        if let Some(p) = &self.measures.prior
            && p.method == Method::Exact
        {
            return Err(
                "measures.prior.method: exact has no general kernel; use ep, ep-sequential, \
                 laplace, tilting or smc"
                    .into(),
            );
        }
        if let Some(r) = self
            .measures
            .prior
            .as_ref()
            .and_then(|p| p.reference.as_ref())
        {
            r.validate("measures.prior.reference")?;
        }
        if let Some(t) = &self.temporal {
            t.validate(self)?;
        }
        if let Some(e) = &self.ep_accuracy {
            e.validate(self)?;
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
    /// and the number of replicates, and the description): 12 hex digits. A run trained with
    /// `optimizer` and measured after `overtrain` epochs hashes as a spec with just that
    /// optimizer and that overtraining would, so the ids of single-optimizer specs do not
    /// depend on whether other optimizers or checkpoints are listed.
    pub fn settings_hash(&self, optimizer: &OptimizerConfig, overtrain: usize) -> String {
        let mut canonical = self.clone();
        canonical.description.clear();
        canonical.data.attack_sizes.clear();
        canonical.data.networks_per_size = 0;
        canonical.training.optimizer = Some(optimizer.clone());
        canonical.training.optimizers.clear();
        canonical.training.measure_at.clear();
        canonical.training.overtrain_epochs = overtrain;
        if let Some(t) = &mut canonical.temporal {
            t.alphas.clear();
        }
        if let Some(r) = canonical
            .measures
            .prior
            .as_mut()
            .and_then(|p| p.reference.as_mut())
        {
            *r = r.resolved();
        }
        if let Some(smc) = canonical.ep_accuracy.as_mut().and_then(|e| e.smc.as_mut()) {
            *smc = smc.resolved();
        }
        let json = serde_json::to_string(&canonical).expect("a spec serialises");
        let digest = Sha256::digest(json.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The runs, in order of optimizer, attack size, replicate and checkpoint. A run's seed
    /// depends only on the master seed and its (attack size, replicate), so it survives edits
    /// to the lists, and the optimizers compared start from the same initialisation.
    pub fn runs(&self) -> Vec<RunKey> {
        if let Some(t) = &self.temporal {
            return self.temporal_runs(t);
        }
        let optimizers = self.training.optimizer_list();
        let checkpoints = self.training.checkpoints();
        let mut runs = Vec::new();
        for opt in &optimizers {
            for &a in &self.data.attack_sizes {
                for r in 0..self.data.networks_per_size {
                    let seed = basin_nn::derive_seed(
                        basin_nn::derive_seed(self.seed, a as u64),
                        r as u64 + 1,
                    );
                    for &e in &checkpoints {
                        let hash = self.settings_hash(opt, e);
                        runs.push(RunKey {
                            id: format!("{}-{hash}-a{a}-r{r}", self.name),
                            variant: variant_label(opt, optimizers.len(), e, checkpoints.len()),
                            optimizer: opt.clone(),
                            overtrain_epochs: e,
                            alpha: None,
                            attack_size: a,
                            replicate: r,
                            seed,
                        });
                    }
                }
            }
        }
        runs
    }
}

impl ExperimentSpec {
    /// The runs of a temporal experiment: one per α and replicate, with ids
    /// `<name>-<hash>-x<α>-r<replicate>`; the replicates' seeds do not depend on α.
    fn temporal_runs(&self, t: &TemporalSpec) -> Vec<RunKey> {
        let opt = &self.training.optimizer_list()[0];
        let hash = self.settings_hash(opt, t.overtrain_epochs);
        let mut runs = Vec::new();
        for &alpha in &t.alphas {
            for r in 0..self.data.networks_per_size {
                runs.push(RunKey {
                    id: format!("{}-{hash}-x{alpha}-r{r}", self.name),
                    variant: format!("α = {}", short(alpha)),
                    optimizer: opt.clone(),
                    overtrain_epochs: t.overtrain_epochs,
                    alpha: Some(alpha),
                    attack_size: 0,
                    replicate: r,
                    seed: basin_nn::derive_seed(basin_nn::derive_seed(self.seed, 0), r as u64 + 1),
                });
            }
        }
        runs
    }
}

/// A number with at most four significant digits, for labels (`0.1694915…` → `0.1695`).
fn short(x: f64) -> String {
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A run's report group: the optimizer kind if several are compared, then `+<epochs>` if
/// several checkpoints are measured.
fn variant_label(opt: &OptimizerConfig, n_opt: usize, epochs: usize, n_ckpt: usize) -> String {
    match (n_opt > 1, n_ckpt > 1) {
        (false, false) => String::new(),
        (true, false) => opt.name().to_owned(),
        (false, true) => format!("+{epochs}"),
        (true, true) => format!("{} +{epochs}", opt.name()),
    }
}

impl ExperimentSpec {
    /// The n of a Boolean experiment's `data.source = "boolean:<n>"`.
    pub fn boolean_bits(&self) -> Result<u32, String> {
        match self.data.source.parse::<DataSource>() {
            Ok(DataSource::Boolean { n, target: None }) if n == 7 => Ok(n),
            _ => Err(format!(
                "data.source: a Boolean experiment takes \"boolean:7\" (the sampler's cube), \
                 got {:?}",
                self.data.source
            )),
        }
    }

    /// The checks of a Boolean experiment (its `[data]` sizes are those of the cube).
    fn validate_boolean(&self) -> Result<(), String> {
        let n = self.boolean_bits()?;
        let b = self
            .boolean
            .as_ref()
            .expect("called with a boolean section");
        if b.samples == 0 || b.top_k == 0 {
            return Err("boolean: samples and top_k must be at least 1".into());
        }
        let d = &self.data;
        if d.train_size != 1 << n || d.test_size != 0 || d.attack_sizes != [0] {
            return Err(format!(
                "a Boolean experiment trains on the whole cube: data.train_size = {}, \
                 test_size = 0, attack_sizes = [0]",
                1 << n
            ));
        }
        if self.temporal.is_some() || self.measures.bounds.is_some() {
            return Err("a Boolean experiment has no [temporal] or [measures.bounds]".into());
        }
        if self.network.activation != basin_nn::Activation::Relu {
            return Err("network.activation: the Boolean sampler draws ReLU networks".into());
        }
        self.training.validate()
    }
}

impl EpAccuracySpec {
    /// Whether the SMC reference runs on the cell (N, flipped fraction).
    pub fn smc_at(&self, n: usize, flip: f64) -> bool {
        self.smc.is_some()
            && (self.smc_sizes.is_empty() || self.smc_sizes.contains(&n))
            && (self.smc_flip_fractions.is_empty() || self.smc_flip_fractions.contains(&flip))
    }

    fn validate(&self, spec: &ExperimentSpec) -> Result<(), String> {
        let points = spec.data.train_size + spec.data.test_size;
        if self.sizes.is_empty() || self.sizes.iter().any(|&n| n < 2 || n > points) {
            return Err(format!(
                "ep_accuracy.sizes: each between 2 and |S| + |T| = {points}"
            ));
        }
        if self.flip_fractions.is_empty()
            || self.flip_fractions.iter().any(|f| !(0.0..=1.0).contains(f))
        {
            return Err("ep_accuracy.flip_fractions: each in [0, 1]".into());
        }
        if self.samples < 2 || self.target_std_err.is_some_and(|s| s.is_nan() || s <= 0.0) {
            return Err("ep_accuracy: samples ≥ 2 and target_std_err > 0".into());
        }
        if let Some(smc) = &self.smc {
            smc.validate("ep_accuracy.smc")?;
        }
        if self.smc_sizes.iter().any(|n| !self.sizes.contains(n))
            || self
                .smc_flip_fractions
                .iter()
                .any(|f| !self.flip_fractions.contains(f))
        {
            return Err(
                "ep_accuracy.smc_sizes and smc_flip_fractions: each one of sizes and \
                 flip_fractions"
                    .into(),
            );
        }
        if spec.measures.prior.is_none() || spec.temporal.is_some() {
            return Err(
                "ep_accuracy needs [measures.prior] (its likelihoods) and no [temporal]".into(),
            );
        }
        Ok(())
    }
}

impl TemporalSpec {
    fn validate(&self, spec: &ExperimentSpec) -> Result<(), String> {
        if self.every == 0 || self.alphas.is_empty() {
            return Err("temporal: every ≥ 1 and at least one alpha".into());
        }
        if let Some(a) = self.alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
            return Err(format!(
                "temporal.alphas: {a} is not a finite positive number"
            ));
        }
        if self.scale_after > self.overtrain_epochs {
            return Err("temporal.scale_after must be at most temporal.overtrain_epochs".into());
        }
        if self.layer + 1 > spec.network.hidden.len() {
            return Err(format!(
                "temporal.layer: {} is not a hidden layer (0..{})",
                self.layer,
                spec.network.hidden.len()
            ));
        }
        let t = &spec.training;
        if spec.data.attack_sizes != [0] || t.overtrain_epochs != 0 || !t.measure_at.is_empty() {
            return Err(
                "a temporal experiment takes data.attack_sizes = [0] and its \
                        overtraining from temporal.overtrain_epochs (not training.overtrain_epochs \
                        or measure_at)"
                    .into(),
            );
        }
        if !t.optimizers.is_empty() {
            return Err("a temporal experiment trains with one training.optimizer".into());
        }
        Ok(())
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
