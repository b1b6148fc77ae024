//! `basin train`, `basin eval` and `basin scale`: train a fully-connected network to zero
//! training error, measure a saved one, α-scale a saved one.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use basin_data::{Dataset, Split, memory};
use basin_nn::optim::OptimizerConfig;
use basin_nn::safetensors::{self, StoredDtype};
use basin_nn::{
    Activation, BatchOrder, FcnObjective, FcnSpec, HookAction, Kernels, Objective, Precision,
    StopOn, TrainConfig, TrainReport, all_examples, alpha_scaled_as, derive_seed, train,
};
use clap::Args;
use serde::Serialize;

use crate::common::{DataArgs, SplitArgs, error_rate, spinner, train_set};

/// Arguments of `basin train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    split: SplitArgs,
    /// Hidden widths, input to output, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "40,40")]
    hidden: Vec<usize>,
    /// Hidden nonlinearity: relu (the paper's), tanh, erf or linear.
    #[arg(long, default_value = "relu")]
    activation: Activation,
    /// Weight init scale: W ~ N(0, σ_w²/fan_in). Default √2 (the paper's code).
    #[arg(long, default_value_t = std::f64::consts::SQRT_2)]
    sigma_w: f64,
    /// Bias init scale: b ~ N(0, σ_b²). Default 1 (the paper's code).
    #[arg(long, default_value_t = 1.0)]
    sigma_b: f64,
    /// Optimizer: sgd, momentum, adam, adagrad, rmsprop, gd (full batch) or entropy_sgd, with
    /// its documented default hyper-parameters.
    #[arg(long, default_value = "sgd")]
    optimizer: OptimizerConfig,
    /// Full optimizer hyper-parameters as JSON, e.g. '{"kind":"momentum","momentum":0.9,"nesterov":true}'
    /// (replaces --optimizer; unknown fields are rejected).
    #[arg(long, value_name = "JSON", conflicts_with = "optimizer")]
    optimizer_json: Option<String>,
    /// Learning rate (overrides the optimizer's default: 0.01 for sgd, 1e-3 for adam, …).
    #[arg(long)]
    lr: Option<f64>,
    /// Minibatch size; the last partial batch is kept. Ignored by gd.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Seed of the run: the init, the batch order and the optimizer's noise derive from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Batch order: shuffled every epoch from the seed, or fixed (the paper's code, effectively).
    #[arg(long, value_enum, default_value_t = BatchOrder::Shuffled)]
    order: BatchOrder,
    /// Stop at the first epoch with 100% accuracy on S (train) or on S ∪ A (train-and-attack).
    #[arg(long, value_enum, default_value_t = StopOn::Train)]
    stop_on: StopOn,
    /// Give up after this many epochs (status not_converged).
    #[arg(long, default_value_t = 50_000)]
    max_epochs: usize,
    /// Train this many more epochs after reaching zero error.
    #[arg(long, default_value_t = 0)]
    overtrain_epochs: usize,
    /// Floating-point precision of training: f32 (the paper's) or f64.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Where to write the trained network (safetensors, with the spec in its metadata).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Print one JSON object: status, epochs, train_error, attack_error, test_error, wall_s,
    /// seconds_per_epoch, total_epochs.
    #[arg(long)]
    json: bool,
}

/// What `basin train` reports: the library's training report, flattened, and the error rates
/// of the trained network (null for an empty set).
#[derive(Debug, Serialize)]
struct TrainOutput {
    #[serde(flatten)]
    report: TrainReport,
    train_error: Option<f64>,
    attack_error: Option<f64>,
    test_error: Option<f64>,
}

impl TrainArgs {
    /// The checks that need no data: a training set and a batch of at least one example, and
    /// the hidden widths (positive, with a parameter count that fits in memory).
    pub fn check(&self) -> Result<()> {
        ensure!(
            self.split.train_size > 0,
            "--train-size 0 leaves nothing to train on: give at least 1"
        );
        ensure!(self.batch > 0, "--batch must be at least 1");
        let spec = self.spec(1)?;
        let each = match self.precision {
            Precision::F32 => 4,
            Precision::F64 => 8,
        };
        memory::check_count(
            spec.checked_n_params().unwrap_or(usize::MAX) as u64,
            each * TRAINING_COPIES,
            || format!("training a network of hidden widths {:?}", self.hidden),
            "give narrower or fewer hidden layers with --hidden",
        )?;
        Ok(())
    }

    fn spec(&self, input_dim: usize) -> Result<FcnSpec> {
        let spec = FcnSpec {
            input_dim,
            hidden: self.hidden.clone(),
            activation: self.activation,
            sigma_w: self.sigma_w,
            sigma_b: self.sigma_b,
        };
        spec.validate()?;
        Ok(spec)
    }

    fn optimizer(&self) -> Result<OptimizerConfig> {
        let mut cfg = match &self.optimizer_json {
            Some(json) => serde_json::from_str(json).context("--optimizer-json")?,
            None => self.optimizer.clone(),
        };
        let seed_given = self
            .optimizer_json
            .as_deref()
            .is_some_and(|j| j.contains("\"seed\""));
        if let OptimizerConfig::EntropySgd(c) = &mut cfg
            && !seed_given
        {
            c.seed = derive_seed(self.seed, 2);
        }
        if let Some(lr) = self.lr {
            cfg = cfg.with_lr(lr);
        }
        cfg.validate().context("optimizer hyper-parameters")?;
        Ok(cfg)
    }

    fn train_config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch,
            order: self.order,
            stop_on: self.stop_on,
            max_epochs: self.max_epochs,
            overtrain_epochs: self.overtrain_epochs,
            seed: derive_seed(self.seed, 1),
        }
    }
}

/// Copies of the parameters that training holds at once: θ, the gradient, up to three
/// optimizer states (Entropy-SGD's), and the engine's copy and first-layer scratch.
const TRAINING_COPIES: u64 = 7;

/// Runs `basin train` (its flags checked by [`TrainArgs::check`]).
pub fn run_train(args: TrainArgs, quiet: bool) -> Result<()> {
    let corpus = args.data.load()?;
    let split = args.split.split(&args.data.data, &corpus, args.seed)?;
    let spec = args.spec(split.train.dim())?;
    let each = match args.precision {
        Precision::F32 => 4,
        Precision::F64 => 8,
    };
    memory::check_count(
        spec.n_params() as u64,
        each * TRAINING_COPIES,
        || format!("training a network of widths {:?}", spec.widths()),
        "give narrower or fewer hidden layers with --hidden",
    )?;
    let output = match args.precision {
        Precision::F32 => train_and_save::<f32>(&args, &spec, &split, quiet)?,
        Precision::F64 => train_and_save::<f64>(&args, &spec, &split, quiet)?,
    };
    print_train(&output, &args)
}

fn train_and_save<T: Kernels>(
    args: &TrainArgs,
    spec: &FcnSpec,
    split: &Split,
    quiet: bool,
) -> Result<TrainOutput> {
    let train_data = train_set(split)?;
    let mut obj = FcnObjective::<T>::from_dataset(spec, &train_data)?;
    let opt_cfg = args.optimizer()?;
    let mut opt = opt_cfg.build::<T>(spec.n_params());
    let mut theta: Vec<T> = spec.init(derive_seed(args.seed, 0));
    let cfg = args.train_config();
    let bar = spinner(quiet);
    let mut hook = |info: &basin_nn::EpochInfo, _: &[T]| {
        bar.set_message(format!(
            "epoch {} · loss {:.4} · errors on the stopping set {}",
            info.epoch, info.mean_batch_loss, info.stop_set_errors
        ));
        bar.tick();
        HookAction::Continue
    };
    let report = train(
        &mut obj,
        opt.as_mut(),
        &mut theta,
        &cfg,
        opt_cfg.full_batch(),
        split.train.len(),
        &mut hook,
    );
    bar.finish_and_clear();
    safetensors::save(&args.out, spec, &theta)?;
    let errors = |data: &Dataset| -> Result<Option<f64>> {
        if data.is_empty() {
            return Ok(None);
        }
        let mut o = FcnObjective::<T>::from_dataset(spec, data)?;
        Ok(error_rate(
            o.count_errors(&theta, &all_examples(data.len())),
            data.len(),
        ))
    };
    Ok(TrainOutput {
        report,
        train_error: errors(&split.train)?,
        attack_error: errors(&split.attack)?,
        test_error: errors(&split.test)?,
    })
}

fn print_train(o: &TrainOutput, args: &TrainArgs) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string(o)?);
        return Ok(());
    }
    let r = &o.report;
    let status = serde_json::to_value(r.status)?;
    println!(
        "{} after {} epochs ({} in all; {:.2} s, {:.2} ms/epoch)",
        status.as_str().unwrap_or("?"),
        r.epochs,
        r.total_epochs,
        r.wall_s,
        1e3 * r.seconds_per_epoch
    );
    let rate = |e: Option<f64>| e.map_or_else(|| "- (empty)".to_string(), |e| format!("{e:.4}"));
    println!(
        "errors: S {}  A {} (against its flipped labels)  T {}",
        rate(o.train_error),
        rate(o.attack_error),
        rate(o.test_error)
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Arguments of `basin eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file (safetensors; basin's or a PyTorch export with layers.{i}.weight/bias).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Override the model's activation (a file without basin metadata is read as relu).
    #[arg(long)]
    activation: Option<Activation>,
    /// Print one JSON object: loss (mean sigmoid cross-entropy, f64), error, n.
    #[arg(long)]
    json: bool,
}

/// What `basin eval` reports.
#[derive(Debug, Serialize)]
struct EvalOutput {
    loss: f64,
    error: f64,
    n: usize,
}

/// Runs `basin eval`: the mean loss and the error of the model on every example of the data.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    let model = safetensors::load(&args.model, args.activation)?;
    let data = args.data.load()?.pool;
    ensure!(
        !data.is_empty(),
        "{} has no examples left after --class-map {}: a class map keeps only the classes it \
         lists (e.g. 0-4:0,5-9:1); list classes the data has (`basin data info` shows them)",
        args.data.data,
        args.data.class_map
    );
    let mut obj = FcnObjective::<f64>::from_dataset(&model.spec, &data)?;
    let all = all_examples(data.len());
    let out = EvalOutput {
        loss: obj.loss(&model.theta, &all),
        error: obj.count_errors(&model.theta, &all) as f64 / data.len() as f64,
        n: data.len(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("n {}  loss {:.6}  error {:.4}", out.n, out.loss, out.error);
    }
    Ok(())
}

/// Arguments of `basin scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The model to rescale.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// Hidden layer to scale (0-based): its weight and bias are multiplied by α and the next
    /// layer's weight by 1/α. The function of a ReLU net is unchanged; its flatness is not.
    #[arg(long)]
    layer: usize,
    /// The factor α (> 0). The paper uses 5.9 to knock SGD off the zero-error set.
    #[arg(long)]
    alpha: f64,
    /// Where to write the rescaled model (same dtype as the input).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

/// Runs `basin scale`.
pub fn run_scale(args: ScaleArgs) -> Result<()> {
    let model = safetensors::load(&args.model, None)?;
    let (spec, layer, alpha) = (&model.spec, args.layer, args.alpha);
    match model.dtype {
        StoredDtype::F32 => {
            let theta = alpha_scaled_as::<f32>(spec, &model.theta, layer, alpha)?;
            safetensors::save(&args.out, spec, &theta)?;
        }
        StoredDtype::F64 => {
            let theta = alpha_scaled_as::<f64>(spec, &model.theta, layer, alpha)?;
            safetensors::save(&args.out, spec, &theta)?;
        }
    }
    println!(
        "wrote {} (layer {} scaled by {})",
        args.out.display(),
        args.layer,
        args.alpha
    );
    Ok(())
}
