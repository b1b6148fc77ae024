//! Flags shared by several commands: the data source with its binarisation, the split, the
//! model and the set a measuring command works on, and progress display.

use std::path::PathBuf;

use anyhow::{Context, Result};
use basin_conv::{ConvRun, Network};
use basin_data::{ClassMap, Corpus, DataSource, Dataset, Split, SplitOrder, SplitSpec};
use basin_nn::Activation;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A data source, binarised.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data source: mnist (the embedded 10,000-digit MNIST subset), idx:<images>,<labels>,
    /// idx:<dir> (MNIST's four IDX files), cifar10:<dir>, npy:<x.npy>,<y.npy> or
    /// boolean:<n>:<target> (see `basin data info --help`).
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

/// A bar over the optimizer steps of one epoch, with the epoch's ETA, on stderr; hidden as
/// [`spinner`] is.
pub fn step_bar(quiet: bool, steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed} {msg} [{bar:30}] step {pos}/{len} of the epoch, ETA {eta}",
        )
        .expect("valid template"),
    );
    bar
}

/// An objective that advances a progress bar at every gradient (one optimizer step).
pub struct Ticking<'a, T> {
    /// The objective.
    pub inner: &'a mut dyn basin_nn::Objective<T>,
    /// The bar.
    pub bar: &'a ProgressBar,
}

impl<T: basin_nn::Real> basin_nn::Objective<T> for Ticking<'_, T> {
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }

    fn n_examples(&self) -> usize {
        self.inner.n_examples()
    }

    fn loss(&mut self, theta: &[T], batch: &[usize]) -> T {
        self.inner.loss(theta, batch)
    }

    fn loss_grad(&mut self, theta: &[T], batch: &[usize], grad: &mut [T]) -> T {
        let loss = self.inner.loss_grad(theta, batch, grad);
        self.bar.inc(1);
        loss
    }

    fn hvp(&mut self, theta: &[T], batch: &[usize], v: &[T], out: &mut [T]) {
        self.inner.hvp(theta, batch, v, out);
    }

    fn count_errors(&mut self, theta: &[T], batch: &[usize]) -> usize {
        self.inner.count_errors(theta, batch)
    }
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
    /// The model file (safetensors): basin's, a PyTorch export of an FCN with
    /// layers.{i}.weight/bias, or a pytorch-cifar ResNet state_dict (conv1.weight, layer1.0.…).
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
    pub fn load(&self) -> Result<(Network, Dataset)> {
        let model = Network::load(&self.model, self.activation)?;
        let corpus = self.data.load()?;
        let set = select_set(&self.data.data, &corpus, self.set, &self.split)?;
        anyhow::ensure!(
            !set.is_empty(),
            "the measured set is empty: check --set and the split sizes"
        );
        model.check_data(&set)?;
        Ok((model, set))
    }
}

/// The examples of `corpus` that `set` chooses (a seeded split without --split-seed uses
/// seed 1, the default --seed of `basin train`).
pub fn select_set(
    source: &DataSource,
    corpus: &Corpus,
    set: MeasureSet,
    split: &SplitArgs,
) -> Result<Dataset> {
    if set == MeasureSet::Whole {
        return Ok(corpus.pool.clone());
    }
    let split = split.split(source, corpus, 1)?;
    Ok(match set {
        MeasureSet::Train => split.train,
        MeasureSet::Attack => split.attack,
        MeasureSet::Test => split.test,
        _ => Dataset::concat(
            format!("{}+{}", split.train.name(), split.test.name()),
            &[&split.train, &split.test],
        )?,
    })
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

/// Where and how a conv net computes (fully-connected nets run single-threaded on the CPU).
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// The device of conv nets: cpu. This build has no CUDA backend, so cuda or cuda:N is
    /// refused with a message.
    #[arg(long, value_name = "DEVICE", default_value = "cpu", value_parser = parse_device)]
    pub device: String,
    /// Threads of a conv net's matrix products (default: every CPU of the machine). `basin
    /// kernel --method mc` draws this many networks at once instead, one per thread.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// The most examples in one pass of a conv net (its activations' memory grows with it; a
    /// training batch always goes in one pass). Default: the whole measured set when its
    /// passes fit in 2 GiB, else the most that do (a training batch when training).
    #[arg(long, value_name = "N")]
    pub chunk: Option<usize>,
}

/// Parses `--device`: `cpu`, or a CUDA device this build cannot use.
pub fn parse_device(s: &str) -> std::result::Result<String, String> {
    match s {
        "cpu" => Ok(s.to_string()),
        _ if s == "cuda"
            || s.strip_prefix("cuda:")
                .is_some_and(|n| n.parse::<u32>().is_ok()) =>
        {
            Err(
                "this build of basin has no CUDA backend: conv nets run on the CPU (--device cpu)"
                    .into(),
            )
        }
        _ => Err(format!("unknown device {s:?}: expected cpu")),
    }
}

impl DeviceArgs {
    /// An error unless the thread count and the chunk are usable.
    pub fn check(&self) -> Result<()> {
        if let Some(n) = self.threads {
            check_thread_count("--threads", n)?;
        }
        anyhow::ensure!(self.chunk != Some(0), "--chunk must be at least 1");
        Ok(())
    }

    /// The conv run settings, with at least `batch` examples per pass (`batch` 0 leaves an
    /// unset --chunk automatic, see [`ConvRun::chunk`]), and room for Hessian-vector products
    /// when `curvature`.
    pub fn run(&self, batch: usize, curvature: bool) -> ConvRun {
        let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
        ConvRun {
            curvature,
            chunk: self.chunk.unwrap_or(0).max(batch),
            threads: self.threads.unwrap_or(cpus),
        }
    }
}
