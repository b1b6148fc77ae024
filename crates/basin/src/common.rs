//! Flags shared by several commands: the data source with its binarisation, the split, the
//! model and the set a measuring command works on, and progress display.

use std::path::PathBuf;

use anyhow::{Context, Result};
use basin_data::{ClassMap, Corpus, DataSource, Dataset, Split, SplitOrder, SplitSpec};
use basin_nn::{Activation, safetensors, safetensors::Model};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A data source, binarised.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data source: mnist (the embedded 10,000-digit MNIST subset), idx:<images>,<labels>,
    /// cifar10:<dir>, npy:<x.npy>,<y.npy> or boolean:<n>:<target> (see `basin data info --help`).
    #[arg(long, value_name = "SOURCE", default_value = "mnist", value_parser = parse_source)]
    pub data: DataSource,
    /// How to binarise the labels: `default` (the source's own map: MNIST digits 0–4 → 0 and
    /// 5–9 → 1, CIFAR-10 automobile → 0 and cat → 1; none for npy and boolean), `none` (the
    /// labels must already be 0/1), or a map such as 0-4:0,5-9:1 (unlisted classes dropped).
    #[arg(long, value_name = "MAP", default_value = "default")]
    pub class_map: String,
}

/// Parses a `--data` or `SOURCE` argument (clap shows the error with the flag's name).
pub fn parse_source(s: &str) -> std::result::Result<DataSource, String> {
    s.parse().map_err(|e| format!("{e}"))
}

impl DataArgs {
    /// The class map to apply, if any.
    fn class_map(&self) -> Result<Option<ClassMap>> {
        class_map_arg(&self.class_map, &self.data)
    }

    /// Loads and binarises the source.
    pub fn load(&self) -> Result<Corpus> {
        let corpus = self
            .data
            .load()
            .with_context(|| format!("loading {}", self.data))?;
        let Some(map) = self.class_map()? else {
            return Ok(corpus);
        };
        Ok(Corpus {
            pool: map.apply(&corpus.pool)?,
            test: corpus.test.map(|t| map.apply(&t)).transpose()?,
        })
    }
}

/// A `--class-map` value: `default` (the source's own map, if it has one), `none`, or a map.
pub fn class_map_arg(arg: &str, source: &DataSource) -> Result<Option<ClassMap>> {
    Ok(match arg {
        "default" => source.default_class_map(),
        "none" => None,
        map => Some(map.parse()?),
    })
}

/// The S/A/T split.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Size of the training set S.
    #[arg(long, default_value_t = 500)]
    pub train_size: usize,
    /// Size of the attack set A (examples with flipped labels, trained on with S).
    #[arg(long, default_value_t = 0)]
    pub attack_size: usize,
    /// Size of the test set T.
    #[arg(long, default_value_t = 1000)]
    pub test_size: usize,
    /// How examples are chosen.
    #[arg(long, value_enum, default_value_t = SplitOrder::Ordered)]
    pub split: SplitOrder,
    /// First test example of an ordered split (default: 1000 for the embedded MNIST, 0 for a
    /// source with its own test set such as CIFAR-10).
    #[arg(long)]
    pub test_offset: Option<usize>,
    /// Seed of a seeded split (default: the run's --seed).
    #[arg(long)]
    pub split_seed: Option<u64>,
}

impl SplitArgs {
    /// Splits a loaded corpus.
    pub fn split(&self, source: &DataSource, corpus: &Corpus, run_seed: u64) -> Result<Split> {
        let mode = self.split.mode(
            self.split_seed.unwrap_or(run_seed),
            self.test_offset.or_else(|| source.default_test_offset()),
        );
        let spec = SplitSpec {
            train: self.train_size,
            attack: self.attack_size,
            test: self.test_size,
            mode,
        };
        Ok(spec.apply(&corpus.pool, corpus.test.as_ref())?)
    }
}

/// A spinner on stderr, hidden when stderr is not a terminal or with --quiet.
pub fn spinner(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
    );
    bar
}

/// The fraction of misclassified examples; `None` for an empty set, which has no error rate.
pub fn error_rate(errors: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| errors as f64 / n as f64)
}

/// The concatenation of S and A, the set a network trains on.
pub fn train_set(split: &Split) -> Result<Dataset> {
    Ok(Dataset::concat(
        format!("{}+A", split.train.name()),
        &[&split.train, &split.attack],
    )?)
}

/// Which examples of `--data` a measuring command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MeasureSet {
    /// Every example of --data, in file order (give S itself, for example as npy).
    Whole,
    /// S of the split that the split flags describe (the same flags as `basin train`).
    Train,
    /// A of the split, with its flipped labels.
    Attack,
    /// T of the split.
    Test,
    /// S then T of the split: the ordered input set of the prior's function.
    #[value(name = "train+test")]
    TrainTest,
}

/// A saved model and the data set a measuring command evaluates it on.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The model file (safetensors; basin's or a PyTorch export with layers.{i}.weight/bias).
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Override the model's activation (a file without basin metadata is read as relu).
    #[arg(long)]
    pub activation: Option<Activation>,
    /// Which examples of --data to use: all of them, or a part of the split described by
    /// --train-size, --attack-size, --test-size, --split, --test-offset and --split-seed.
    #[arg(long, value_enum, default_value_t = MeasureSet::Whole)]
    pub set: MeasureSet,
    #[command(flatten)]
    pub split: SplitArgs,
}

impl MeasureArgs {
    /// Loads the model and the chosen set of examples. A seeded split without --split-seed
    /// uses seed 1, the default --seed of `basin train`.
    pub fn load(&self) -> Result<(Model, Dataset)> {
        let model = safetensors::load(&self.model, self.activation)?;
        let corpus = self.data.load()?;
        let set = match self.set {
            MeasureSet::Whole => corpus.pool,
            part => {
                let split = self.split.split(&self.data.data, &corpus, 1)?;
                match part {
                    MeasureSet::Train => split.train,
                    MeasureSet::Attack => split.attack,
                    MeasureSet::Test => split.test,
                    _ => Dataset::concat(
                        format!("{}+{}", split.train.name(), split.test.name()),
                        &[&split.train, &split.test],
                    )?,
                }
            }
        };
        anyhow::ensure!(
            !set.is_empty(),
            "the measured set is empty: check --set and the split sizes"
        );
        anyhow::ensure!(
            set.dim() == model.spec.input_dim,
            "the model expects {} inputs per example but {} has {}: use the data the model \
             was trained on",
            model.spec.input_dim,
            self.data.data,
            set.dim()
        );
        Ok((model, set))
    }
}

/// The peak resident memory of this process (`VmHWM`), in bytes, on Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    basin_data::memory::proc_kb("/proc/self/status", "VmHWM:")
}

/// The most threads (or parallel jobs) a command starts: beyond the CPUs they compute no
/// faster, and each costs a stack.
pub const MAX_THREADS: usize = 1024;

/// An error unless `n` threads for `flag` is between 1 and [`MAX_THREADS`].
pub fn check_thread_count(flag: &str, n: usize) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    anyhow::ensure!(n > 0, "{flag} must be at least 1");
    anyhow::ensure!(
        n <= MAX_THREADS,
        "{flag} {n} is more than basin starts (at most {MAX_THREADS}); this machine has {cpus} \
         CPUs, and more threads than CPUs compute no faster: give {flag} {cpus}"
    );
    Ok(())
}
