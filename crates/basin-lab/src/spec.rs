//! Experiment specs: TOML files (`experiments/*.toml`, documented field by field in
//! `experiments/README.md`), parsed with serde. Unknown keys are rejected, with the key and
//! the line named.
//!
//! A spec is of one [`Kind`]: an attack-set experiment, or the experiment of its one kind
//! table (`[temporal]`, `[boolean]` or `[ep_accuracy]`). Its kind expands it into runs. Each
//! run's id is stable: the experiment name, a hash of every setting
//! that changes a run's result ([`ExperimentSpec::settings_hash`]), and the run's place (its
//! attack size and replicate, …). Adding attack sizes or replicates keeps the ids of the runs
//! already stored; changing, say, the learning rate changes every id.

use std::path::Path;

use basin_conv::ArchName;
use basin_data::{DataSource, SplitOrder};
use basin_nn::optim::{OptimizerConfig, SgdConfig};
use basin_nn::{Activation, Precision};
use basin_prior::estimate::Method;
use basin_prior::likelihood::Likelihood;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The specs shipped with basin, by name.
pub const BUILTIN: [(&str, &str); 12] = [
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
    (
        "fig3-resnet-mnist",
        include_str!("../experiments/fig3-resnet-mnist.toml"),
    ),
    (
        "fig3-resnet50-cifar",
        include_str!("../experiments/fig3-resnet50-cifar.toml"),
    ),
    (
        "figS17-resnet50-adam",
        include_str!("../experiments/figS17-resnet50-adam.toml"),
    ),
    (
        "figS19-fashion-10k",
        include_str!("../experiments/figS19-fashion-10k.toml"),
    ),
];

/// An error reading or checking a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Neither a built-in spec nor an existing file.
    #[error("{name}: no such file, nor a built-in spec ({builtins})")]
    Unknown {
        /// The name or path given.
        name: String,
        /// The built-in specs' names.
        builtins: String,
    },
    /// The file is not text (a spec is UTF-8 TOML).
    #[error(
        "{path}: not a UTF-8 TOML spec (byte {offset} is not UTF-8); give a spec file \
         (crates/basin-lab/experiments/README.md) or a built-in spec's name"
    )]
    NotText {
        /// The file.
        path: String,
        /// The offset of the first byte that is not UTF-8.
        offset: usize,
    },
    /// The file could not be read (the cause follows in the error chain).
    #[error("{path}: cannot read the spec")]
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
    #[error("{origin}: {problem}")]
    Invalid {
        /// The file or built-in name.
        origin: String,
        /// The field and its fix.
        problem: FieldError,
    },
}

/// A field of a spec out of range: the field (a TOML path such as `training.batch_size`) and
/// how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {fix}")]
pub struct FieldError {
    /// The field, or the table, at fault.
    pub field: String,
    /// What the value must be.
    pub fix: String,
}

impl FieldError {
    /// The error of `field`, fixed by `fix`.
    pub fn new(field: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            fix: fix.into(),
        }
    }
}

/// A whole experiment. In TOML, its kind is the kind table it has (none for an attack-set
/// experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SpecFile", into = "SpecFile")]
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
    pub measures: MeasuresSpec,
    /// The kind of experiment, with its settings.
    pub kind: Kind,
    /// What `--quick` runs instead of the spec's own sizes, where the spec's full size is too
    /// costly even for the three-size reduction (`[quick]`).
    pub quick: Option<QuickSpec>,
}

/// `[quick]`: the sizes of a spec's `--quick` form, for specs whose own sizes make even the
/// three-size reduction too costly (figure S19's |S| = 10,000). Its runs are not the full
/// run's (S differs), and the table is left out of the run ids of the full spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSpec {
    /// |S| of the quick form.
    pub train_size: Option<usize>,
    /// |T| of the quick form.
    pub test_size: Option<usize>,
    /// The attack sizes of the quick form (the first, a middle and the last are run).
    pub attack_sizes: Option<Vec<usize>>,
}

/// The kind of an experiment, with the settings of its kind table.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Kind {
    /// Networks trained with attack sets (figures 3 and 4): a spec without a kind table.
    #[default]
    AttackSet,
    /// Measures along training instead of at its end, and α-scaling (figure 5): `[temporal]`.
    Temporal(TemporalSpec),
    /// The most frequent functions of random networks on the cube, each trained and measured
    /// (figure 2): `[boolean]`.
    Boolean(BooleanSpec),
    /// EP against minimax tilting on functions of growing error: `[ep_accuracy]`.
    EpAccuracy(EpAccuracySpec),
}

/// A spec as its TOML file has it: each kind a table of its own.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "one")]
    seed: u64,
    data: DataSpec,
    #[serde(default)]
    network: NetworkSpec,
    #[serde(default)]
    training: TrainingSpec,
    #[serde(default)]
    measures: MeasuresSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temporal: Option<TemporalSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boolean: Option<BooleanSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ep_accuracy: Option<EpAccuracySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quick: Option<QuickSpec>,
}

/// A spec with more than one kind table: the tables it has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} are the tables of different experiment kinds; keep one of them (a spec is of one kind)",
    .0.join(" and ")
)]
pub struct TwoKinds(pub Vec<&'static str>);

impl TryFrom<SpecFile> for ExperimentSpec {
    type Error = TwoKinds;

    fn try_from(f: SpecFile) -> Result<Self, TwoKinds> {
        let mut kinds = Vec::new();
        if let Some(t) = f.temporal {
            kinds.push(("[temporal]", Kind::Temporal(t)));
        }
        if let Some(b) = f.boolean {
            kinds.push(("[boolean]", Kind::Boolean(b)));
        }
        if let Some(e) = f.ep_accuracy {
            kinds.push(("[ep_accuracy]", Kind::EpAccuracy(e)));
        }
        if kinds.len() > 1 {
            return Err(TwoKinds(kinds.into_iter().map(|k| k.0).collect()));
        }
        Ok(Self {
            name: f.name,
            description: f.description,
            seed: f.seed,
            data: f.data,
            network: f.network,
            training: f.training,
            measures: f.measures,
            kind: kinds.pop().map_or(Kind::AttackSet, |k| k.1),
            quick: f.quick,
        })
    }
}

impl From<ExperimentSpec> for SpecFile {
    fn from(s: ExperimentSpec) -> Self {
        let mut f = Self {
            name: s.name,
            description: s.description,
            seed: s.seed,
            data: s.data,
            network: s.network,
            training: s.training,
            measures: s.measures,
            temporal: None,
            boolean: None,
            ep_accuracy: None,
            quick: s.quick,
        };
        match s.kind {
            Kind::AttackSet => {}
            Kind::Temporal(t) => f.temporal = Some(t),
            Kind::Boolean(b) => f.boolean = Some(b),
            Kind::EpAccuracy(e) => f.ep_accuracy = Some(e),
        }
        f
    }
}

impl Kind {
    /// The settings as the run ids hash them: what does not change a run's result left out
    /// (a temporal experiment's α list), the SMC schedule as run.
    fn canonical(&self) -> Kind {
        match self {
            Kind::Temporal(t) => Kind::Temporal(TemporalSpec {
                alphas: Vec::new(),
                ..t.clone()
            }),
            Kind::EpAccuracy(e) => Kind::EpAccuracy(EpAccuracySpec {
                smc: e.smc.as_ref().map(SmcSpec::resolved),
                ..e.clone()
            }),
            other => other.clone(),
        }
    }

    /// Checks the kind's table against the rest of the spec.
    fn validate(&self, spec: &ExperimentSpec) -> Result<(), FieldError> {
        match self {
            Kind::AttackSet => {
                spec.validate_trained()?;
                spec.require_resnet_kernel()
            }
            Kind::Temporal(t) => t.validate(spec),
            Kind::Boolean(b) => b.validate(spec),
            Kind::EpAccuracy(e) => e.validate(spec),
        }
    }
}

/// The EP-accuracy study (see `basin_lab::kinds::ep_accuracy`): on the first N points of S ∪ T,
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
    pub split: SplitOrder,
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

/// The network: a fully-connected net of `hidden` widths, or a ResNet named by `arch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NetworkFile", into = "NetworkFile")]
pub struct NetworkSpec {
    /// Hidden widths of a fully-connected net (empty for a ResNet).
    pub hidden: Vec<usize>,
    /// The ResNet, instead of a fully-connected net: a preset (`resnet18` … `resnet152`) or
    /// `KIND:BLOCKS:WIDTH` such as `basic:1,1:8`; its input channels come from the data.
    pub arch: Option<ArchName>,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Weight scale: W ~ N(0, σ_w²/fan_in).
    pub sigma_w: f64,
    /// Bias scale: b ~ N(0, σ_b²).
    pub sigma_b: f64,
}

/// `[network]` as its TOML table has it: `hidden` or `arch`, at most one of them. A
/// fully-connected net serialises exactly as before ResNets existed (no `arch` key), so the
/// settings hashes of FCN specs do not change.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hidden: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arch: Option<String>,
    #[serde(default)]
    activation: Activation,
    #[serde(default = "sqrt2")]
    sigma_w: f64,
    #[serde(default = "unit")]
    sigma_b: f64,
}

impl TryFrom<NetworkFile> for NetworkSpec {
    type Error = FieldError;

    fn try_from(f: NetworkFile) -> Result<Self, FieldError> {
        let arch = match (&f.hidden, &f.arch) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "network.hidden and network.arch",
                    "give one: hidden for a fully-connected net, arch for a ResNet",
                ));
            }
            (_, Some(name)) => Some(
                name.parse::<ArchName>()
                    .map_err(|e| FieldError::new("network.arch", e.to_string()))?,
            ),
            (_, None) => None,
        };
        let hidden = match (f.hidden, &arch) {
            (_, Some(_)) => Vec::new(),
            (hidden, None) => hidden.unwrap_or_else(paper_hidden),
        };
        Ok(Self {
            hidden,
            arch,
            activation: f.activation,
            sigma_w: f.sigma_w,
            sigma_b: f.sigma_b,
        })
    }
}

impl From<NetworkSpec> for NetworkFile {
    fn from(n: NetworkSpec) -> Self {
        let arch = n.arch.as_ref().map(arch_name);
        Self {
            hidden: arch.is_none().then_some(n.hidden),
            arch,
            activation: n.activation,
            sigma_w: n.sigma_w,
            sigma_b: n.sigma_b,
        }
    }
}

/// The canonical name of an architecture: its preset's name, or `KIND:BLOCKS:WIDTH`.
pub fn arch_name(arch: &ArchName) -> String {
    arch.with_channels(1).to_string()
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
            arch: None,
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
    pub precision: Precision,
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
    /// Augment a ResNet's training images as the paper's CIFAR-10 code does (a random crop
    /// with 4 pixels of zero padding, then a horizontal flip with probability ½), drawn from
    /// the run's seed. Absent or false: no augmentation (and the runs' ids do not change).
    #[serde(default, skip_serializing_if = "is_false")]
    pub augment: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
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

    fn validate(&self) -> Result<(), FieldError> {
        if self.optimizer.is_some() && !self.optimizers.is_empty() {
            return Err(FieldError::new(
                "training",
                "give either optimizer or optimizers, not both",
            ));
        }
        let kinds: Vec<&str> = self.optimizers.iter().map(|o| o.name()).collect();
        if (1..kinds.len()).any(|i| kinds[..i].contains(&kinds[i])) {
            return Err(FieldError::new(
                "training.optimizers",
                format!("each kind at most once, got {}", kinds.join(", ")),
            ));
        }
        for o in self.optimizer_list() {
            o.validate()
                .map_err(|e| FieldError::new("training.optimizer", e.to_string()))?;
        }
        if self.batch_size == 0 || self.max_epochs == 0 {
            return Err(FieldError::new(
                "training.batch_size and training.max_epochs",
                "must be at least 1",
            ));
        }
        if !self.measure_at.is_empty() && self.overtrain_epochs != 0 {
            return Err(FieldError::new(
                "training",
                "give either overtrain_epochs or measure_at (whose largest value is the \
                 overtraining), not both",
            ));
        }
        if self.measure_at.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FieldError::new(
                "training.measure_at",
                "epochs ascending, each once",
            ));
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
            precision: Precision::F32,
            order: basin_nn::BatchOrder::Shuffled,
            max_epochs: max_epochs(),
            overtrain_epochs: 0,
            measure_at: Vec::new(),
            augment: false,
        }
    }
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
    pub precision: Precision,
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
    /// The Monte Carlo empirical NNGP kernel (the paper's ResNet recipe) in place of the
    /// analytic one: required for a ResNet, optional for a fully-connected net (its
    /// finite-width kernel). Absent: the analytic kernel (and the runs' ids do not change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mc_kernel: Option<McKernelSpec>,
}

/// Settings of the empirical kernel on S ∪ T (see `basin kernel --method mc`). The kernel is
/// computed once per experiment and cached in the output folder under the hash of what it
/// depends on; each log P(f) then has a Monte Carlo error (`log_prior_<lik>_mc_std_err`) by
/// the jackknife over the sample blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McKernelSpec {
    /// Random networks M (the paper: 0.1 · N, 700 for its ResNet-50).
    pub samples: usize,
    /// Interleaved blocks of the samples for the jackknife (2 ≤ blocks ≤ samples).
    #[serde(default = "default_blocks")]
    pub blocks: usize,
    /// The precision of the conv net's forward passes (the sums are float64 either way).
    #[serde(default)]
    pub precision: Precision,
    /// The seed of the networks (default: derived from the experiment's seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

fn default_blocks() -> usize {
    basin_prior::mc_kernel::DEFAULT_BLOCKS
}

impl McKernelSpec {
    /// 1 ≤ samples, 2 ≤ blocks ≤ samples.
    fn validate(&self) -> Result<(), FieldError> {
        if self.samples == 0 || self.blocks < 2 || self.blocks > self.samples {
            return Err(FieldError::new(
                "measures.prior.mc_kernel",
                format!(
                    "samples ≥ 2 and 2 ≤ blocks ≤ samples (got {} samples in {} blocks): the \
                     Monte Carlo error of log P(f) needs two blocks at least",
                    self.samples, self.blocks
                ),
            ));
        }
        Ok(())
    }
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
    pub fn validate(&self, section: &str) -> Result<(), FieldError> {
        let (moves, ess, time) = self.schedule();
        if self.particles < 2
            || self.replicates < 2
            || moves == 0
            || !(ess > 0.0 && ess < 1.0)
            || !(time > 0.0 && time <= std::f64::consts::PI)
        {
            return Err(FieldError::new(
                section,
                format!(
                    "particles ≥ 2, replicates ≥ 2 (the error bar comes from their spread), \
                     moves ≥ 1, 0 < ess_fraction < 1 and 0 < trajectory_time ≤ π (got {}, {}, \
                     {moves}, {ess} and {time})",
                    self.particles, self.replicates
                ),
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

/// The longest spec name.
pub const MAX_NAME_LEN: usize = 100;

/// Checks a spec name: it names the default output folder and starts every run id, so it is
/// one safe path component: 1 to [`MAX_NAME_LEN`] of `A–Z a–z 0–9 . _ -`, not starting with
/// `.` (no `..`, no separator, no absolute path).
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.starts_with('.')
        || !name.chars().all(safe)
    {
        return Err(FieldError::new(
            "name",
            format!(
                "{name:?} is not a safe folder name: use 1 to {MAX_NAME_LEN} of the characters \
                 A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'"
            ),
        ));
    }
    Ok(())
}

impl ExperimentSpec {
    /// Parses and checks a spec; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, SpecError> {
        let spec: Self = toml::from_str(text).map_err(|e| SpecError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        spec.validate().map_err(|problem| SpecError::Invalid {
            origin: origin.to_owned(),
            problem,
        })?;
        Ok(spec)
    }

    /// A built-in spec by name, or a spec file by path.
    pub fn load(name_or_path: &str) -> Result<Self, SpecError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::from_toml(text, &format!("built-in spec {name}"));
        }
        let bytes = std::fs::read(Path::new(name_or_path)).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                SpecError::Unknown {
                    name: name_or_path.to_owned(),
                    builtins: BUILTIN.map(|b| b.0).join(", "),
                }
            } else {
                SpecError::Read {
                    path: name_or_path.to_owned(),
                    source,
                }
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|e| SpecError::NotText {
            path: name_or_path.to_owned(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Self::from_toml(&text, name_or_path)
    }

    /// Checks every value against its range; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.data
            .source
            .parse::<DataSource>()
            .map_err(|e| FieldError::new("data.source", e.to_string()))?;
        validate_name(&self.name)?;
        self.kind.validate(self)?;
        if let Some(q) = &self.quick {
            if q.attack_sizes.as_ref().is_some_and(Vec::is_empty) {
                return Err(FieldError::new(
                    "quick.attack_sizes",
                    "give at least one attack size, or leave the key out",
                ));
            }
            let quick = self.quick_sizes();
            quick
                .kind
                .validate(&quick)
                .map_err(|e| FieldError::new("quick", format!("the --quick form: {e}")))?;
        }
        Ok(())
    }

    /// The default output folder: `results/<name>` (the name is one safe path component, as
    /// [`ExperimentSpec::validate`] checks).
    pub fn default_out(&self) -> std::path::PathBuf {
        Path::new("results").join(&self.name)
    }

    /// A hash of every setting of the spec but the lists of attack sizes and the number of
    /// replicates (which `--quick` and sharding leave out or split) and the description: 12
    /// hex digits. Folders whose specs have different settings ids hold different runs.
    pub fn settings_id(&self) -> String {
        let mut canonical = self.clone();
        canonical.quick = None;
        canonical.description.clear();
        canonical.data.attack_sizes.clear();
        canonical.data.networks_per_size = 0;
        let json = serde_json::to_string(&canonical).expect("a spec serialises");
        let digest = Sha256::digest(json.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Every settings hash a run of this spec can carry in its id (a superset: each optimizer
    /// at each checkpoint, at the overtraining of a temporal run, and at none).
    pub fn settings_hashes(&self) -> std::collections::BTreeSet<String> {
        let mut epochs = self.training.checkpoints();
        epochs.extend([0, self.training.overtrain_epochs]);
        if let Kind::Temporal(t) = &self.kind {
            epochs.push(t.overtrain_epochs);
        }
        let mut hashes = std::collections::BTreeSet::new();
        for opt in self.training.optimizer_list() {
            for &e in &epochs {
                hashes.insert(self.settings_hash(&opt, e));
            }
        }
        hashes
    }

    /// The checks of a spec whose networks are trained on S ∪ A and measured on S and T: the
    /// sizes, the network, the training and the measures.
    fn validate_trained(&self) -> Result<(), FieldError> {
        let d = &self.data;
        if d.train_size == 0 || d.test_size == 0 || d.networks_per_size == 0 {
            return Err(FieldError::new(
                "data.train_size, data.test_size and data.networks_per_size",
                "must be at least 1",
            ));
        }
        if d.attack_sizes.is_empty() || d.attack_sizes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FieldError::new(
                "data.attack_sizes",
                "give at least one size, ascending, each once",
            ));
        }
        self.validate_network()?;
        self.training.validate()?;
        self.measures.validate()
    }

    /// The checks of `[network]`, and of the augmentation that only a ResNet takes.
    fn validate_network(&self) -> Result<(), FieldError> {
        let n = &self.network;
        let scales_ok = n.sigma_w > 0.0 && n.sigma_b >= 0.0 && n.sigma_w.is_finite();
        if n.hidden.contains(&0) || !scales_ok || !n.sigma_b.is_finite() {
            return Err(FieldError::new(
                "network",
                "widths ≥ 1, sigma_w > 0 and sigma_b ≥ 0",
            ));
        }
        if self.training.augment && n.arch.is_none() {
            return Err(FieldError::new(
                "training.augment",
                "augmentation crops and flips a ResNet's images: give network.arch, or remove \
                 training.augment for a fully-connected net",
            ));
        }
        Ok(())
    }

    /// An error unless a ResNet whose prior is measured has its empirical kernel's settings.
    fn require_resnet_kernel(&self) -> Result<(), FieldError> {
        let prior = self.measures.prior.as_ref();
        match &self.network.arch {
            Some(arch) if prior.is_some_and(|p| p.mc_kernel.is_none()) => Err(FieldError::new(
                "measures.prior.mc_kernel",
                format!(
                    "the prior of the ResNet {} needs its Monte Carlo empirical kernel: add \
                     [measures.prior.mc_kernel] with samples = M (the paper: 0.1 · N)",
                    arch_name(arch)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// An error naming `kind` unless the network is fully connected (`network.hidden`).
    fn require_fcn(&self, kind: &str) -> Result<(), FieldError> {
        match &self.network.arch {
            None => Ok(()),
            Some(arch) => Err(FieldError::new(
                "network.arch",
                format!(
                    "{kind} takes a fully-connected net, not the ResNet {}: give network.hidden \
                     instead",
                    arch_name(arch)
                ),
            )),
        }
    }

    /// A hash of every setting that changes a run's result (all but the lists of attack sizes
    /// and the number of replicates, and the description): 12 hex digits. A run trained with
    /// `optimizer` and measured after `overtrain` epochs hashes as a spec with just that
    /// optimizer and that overtraining would, so the ids of single-optimizer specs do not
    /// depend on whether other optimizers or checkpoints are listed.
    pub fn settings_hash(&self, optimizer: &OptimizerConfig, overtrain: usize) -> String {
        let mut canonical = self.clone();
        canonical.quick = None;
        canonical.description.clear();
        canonical.data.attack_sizes.clear();
        canonical.data.networks_per_size = 0;
        canonical.training.optimizer = Some(optimizer.clone());
        canonical.training.optimizers.clear();
        canonical.training.measure_at.clear();
        canonical.training.overtrain_epochs = overtrain;
        canonical.kind = self.kind.canonical();
        if let Some(r) = canonical
            .measures
            .prior
            .as_mut()
            .and_then(|p| p.reference.as_mut())
        {
            *r = r.resolved();
        }
        let json = serde_json::to_string(&canonical).expect("a spec serialises");
        let digest = Sha256::digest(json.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The spec with the reduction of `--quick` that every kind shares: three attack sizes
    /// (the first, a middle and the last) and at most two networks each. The runs keep their
    /// ids, so a later full run into the same folder reuses them, unless the spec's `[quick]`
    /// table gives other sizes (then S, T or the attack sizes differ from the full run's).
    pub fn quick_sizes(&self) -> ExperimentSpec {
        let mut spec = self.clone();
        if let Some(q) = spec.quick.take() {
            spec.data.train_size = q.train_size.unwrap_or(spec.data.train_size);
            spec.data.test_size = q.test_size.unwrap_or(spec.data.test_size);
            spec.data.attack_sizes = q.attack_sizes.unwrap_or(spec.data.attack_sizes);
        }
        let sizes = &spec.data.attack_sizes;
        let mut keep = vec![sizes[0], sizes[sizes.len() / 2], sizes[sizes.len() - 1]];
        keep.dedup();
        spec.data.attack_sizes = keep;
        spec.data.networks_per_size = spec.data.networks_per_size.min(2);
        spec
    }

    /// The n of a Boolean experiment's `data.source = "boolean:<n>"`.
    pub fn boolean_bits(&self) -> Result<u32, FieldError> {
        match self.data.source.parse::<DataSource>() {
            Ok(DataSource::Boolean { n, target: None }) if n == 7 => Ok(n),
            _ => Err(FieldError::new(
                "data.source",
                format!(
                    "a Boolean experiment takes \"boolean:7\" (the sampler's cube), got {:?}",
                    self.data.source
                ),
            )),
        }
    }
}

impl MeasuresSpec {
    fn validate(&self) -> Result<(), FieldError> {
        if let Some(s) = &self.sharpness {
            let ok = s.epsilon > 0.0 && s.lr > 0.0 && s.batch_size > 0;
            if !ok {
                return Err(FieldError::new(
                    "measures.sharpness",
                    "epsilon > 0, lr > 0, batch_size ≥ 1",
                ));
            }
        }
        if let Some(h) = &self.hessian
            && (h.top_k == 0 || h.lanczos_steps.is_some_and(|s| s < h.top_k))
        {
            return Err(FieldError::new(
                "measures.hessian",
                "top_k ≥ 1 and lanczos_steps ≥ top_k",
            ));
        }
        if let Some(p) = &self.prior {
            if p.likelihoods.is_empty() {
                return Err(FieldError::new(
                    "measures.prior.likelihoods",
                    "name probit and/or step",
                ));
            }
            if p.method == Method::Exact {
                return Err(FieldError::new(
                    "measures.prior.method",
                    "exact has no general kernel; use ep, ep-sequential, laplace, tilting or smc",
                ));
            }
            if let Some(r) = &p.reference {
                r.validate("measures.prior.reference")?;
            }
            if let Some(k) = &p.mc_kernel {
                k.validate()?;
            }
        }
        if let Some(b) = &self.bounds {
            if !(b.delta > 0.0 && b.delta < 1.0) {
                return Err(FieldError::new(
                    "measures.bounds.delta",
                    "must lie in (0, 1)",
                ));
            }
            if self.prior.is_none() {
                return Err(FieldError::new(
                    "measures.bounds",
                    "needs measures.prior (the bounds use log P(f))",
                ));
            }
        }
        Ok(())
    }
}

impl BooleanSpec {
    /// The checks of a Boolean experiment (its `[data]` sizes are those of the cube).
    fn validate(&self, spec: &ExperimentSpec) -> Result<(), FieldError> {
        let n = spec.boolean_bits()?;
        if self.samples == 0 || self.top_k == 0 {
            return Err(FieldError::new(
                "boolean",
                "samples and top_k must be at least 1",
            ));
        }
        let d = &spec.data;
        if d.train_size != 1 << n || d.test_size != 0 || d.attack_sizes != [0] {
            return Err(FieldError::new(
                "data",
                format!(
                    "a Boolean experiment trains on the whole cube: data.train_size = {}, \
                     test_size = 0, attack_sizes = [0]",
                    1 << n
                ),
            ));
        }
        if spec.measures.bounds.is_some() {
            return Err(FieldError::new(
                "measures.bounds",
                "a Boolean experiment has no bounds (it has no test set); remove the table",
            ));
        }
        if spec.network.activation != basin_nn::Activation::Relu {
            return Err(FieldError::new(
                "network.activation",
                "the Boolean sampler draws ReLU networks",
            ));
        }
        spec.require_fcn("a Boolean experiment (its sampler draws fully-connected nets)")?;
        spec.validate_network()?;
        spec.training.validate()
    }
}

impl EpAccuracySpec {
    /// Whether the SMC reference runs on the cell (N, flipped fraction).
    pub fn smc_at(&self, n: usize, flip: f64) -> bool {
        self.smc.is_some()
            && (self.smc_sizes.is_empty() || self.smc_sizes.contains(&n))
            && (self.smc_flip_fractions.is_empty() || self.smc_flip_fractions.contains(&flip))
    }

    fn validate(&self, spec: &ExperimentSpec) -> Result<(), FieldError> {
        spec.validate_trained()?;
        let points = spec.data.train_size + spec.data.test_size;
        if self.sizes.is_empty() || self.sizes.iter().any(|&n| n < 2 || n > points) {
            return Err(FieldError::new(
                "ep_accuracy.sizes",
                format!("each between 2 and |S| + |T| = {points}"),
            ));
        }
        if self.flip_fractions.is_empty()
            || self.flip_fractions.iter().any(|f| !(0.0..=1.0).contains(f))
        {
            return Err(FieldError::new(
                "ep_accuracy.flip_fractions",
                "each in [0, 1]",
            ));
        }
        if self.samples < 2 || self.target_std_err.is_some_and(|s| s.is_nan() || s <= 0.0) {
            return Err(FieldError::new(
                "ep_accuracy",
                "samples ≥ 2 and target_std_err > 0",
            ));
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
            return Err(FieldError::new(
                "ep_accuracy.smc_sizes and smc_flip_fractions",
                "each one of sizes and flip_fractions",
            ));
        }
        if spec.measures.prior.is_none() {
            return Err(FieldError::new(
                "ep_accuracy",
                "needs [measures.prior] (its likelihoods)",
            ));
        }
        Ok(())
    }
}

impl TemporalSpec {
    fn validate(&self, spec: &ExperimentSpec) -> Result<(), FieldError> {
        spec.require_fcn("a temporal experiment (it α-scales a hidden layer)")?;
        spec.validate_trained()?;
        if self.every == 0 || self.alphas.is_empty() {
            return Err(FieldError::new(
                "temporal",
                "every ≥ 1 and at least one alpha",
            ));
        }
        if let Some(a) = self.alphas.iter().find(|a| !(a.is_finite() && **a > 0.0)) {
            return Err(FieldError::new(
                "temporal.alphas",
                format!("{a} is not a finite positive number"),
            ));
        }
        if self.scale_after > self.overtrain_epochs {
            return Err(FieldError::new(
                "temporal.scale_after",
                "must be at most temporal.overtrain_epochs",
            ));
        }
        if self.layer + 1 > spec.network.hidden.len() {
            return Err(FieldError::new(
                "temporal.layer",
                format!(
                    "{} is not a hidden layer (0..{})",
                    self.layer,
                    spec.network.hidden.len()
                ),
            ));
        }
        let t = &spec.training;
        if spec.data.attack_sizes != [0] || t.overtrain_epochs != 0 || !t.measure_at.is_empty() {
            return Err(FieldError::new(
                "temporal",
                "a temporal experiment takes data.attack_sizes = [0] and its overtraining from \
                 temporal.overtrain_epochs (not training.overtrain_epochs or measure_at)",
            ));
        }
        if !t.optimizers.is_empty() {
            return Err(FieldError::new(
                "training.optimizers",
                "a temporal experiment trains with one training.optimizer",
            ));
        }
        Ok(())
    }
}
