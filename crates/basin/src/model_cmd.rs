//! `basin train`, `basin eval` and `basin scale`: train a fully-connected network or a ResNet
//! to zero training error, measure a saved one, α-scale a saved one.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use basin_conv::model::{self as conv_model, ConvModel};
use basin_conv::scaling::alpha_scaled_bn_as;
use basin_conv::{ArchName, BnMode, BnState, ConvObjective, Graph, Network, ResNetSpec};
use basin_data::{Augment, Dataset, Split, memory};
use basin_nn::optim::OptimizerConfig;
use basin_nn::safetensors::{self, StoredDtype};
use basin_nn::{
    Activation, BatchOrder, FcnObjective, FcnSpec, HookAction, Kernels, Precision, StopOn,
    TrainConfig, TrainReport, all_examples, alpha_scaled_as, derive_seed, train,
};
use clap::Args;
use serde::Serialize;

use crate::common::{DataArgs, DeviceArgs, SplitArgs, error_rate, spinner, train_set};

/// Arguments of `basin train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    split: SplitArgs,
    /// Train a ResNet of the pytorch-cifar family instead of a fully-connected net: resnet18,
    /// resnet34, resnet50, resnet101, resnet152, or KIND:BLOCKS:WIDTH such as basic:1,1:8
    /// (block kind basic or bottleneck, blocks per stage, base width) for CPU-sized variants.
    /// Its input channels come from the data, which must be images (mnist, idx, cifar10, or
    /// npy of shape (n, C, H, W) or (n, H, W)). BatchNorm trains on batch statistics; every
    /// error is measured in eval mode (running statistics).
    #[arg(long, value_name = "ARCH", conflicts_with = "hidden")]
    arch: Option<ArchName>,
    /// Augment the ResNet's training images as the paper's CIFAR-10 code does: a random crop
    /// with 4 pixels of zero padding, then a horizontal flip with probability ½, drawn from
    /// the run's seed.
    #[arg(long, requires = "arch")]
    augment: bool,
    /// Hidden widths of a fully-connected net, input to output, comma-separated.
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
    /// Minibatch size; the last partial batch is kept. Ignored by gd. Default 32 for a
    /// fully-connected net, 128 for a ResNet (the paper's code).
    #[arg(long)]
    batch: Option<usize>,
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
    /// Where to write the trained network (safetensors, with the spec in its metadata; a
    /// ResNet as a PyTorch state_dict in the pytorch-cifar layout).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
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
        ensure!(self.batch != Some(0), "--batch must be at least 1");
        self.device.check()?;
        let each = match self.precision {
            Precision::F32 => 4,
            Precision::F64 => 8,
        };
        if let Some(arch) = &self.arch {
            let spec = self.conv_spec(arch, 3)?;
            let n = Graph::resnet(&spec, 32, 32).n_params();
            memory::check_count(
                n as u64,
                each * TRAINING_COPIES,
                || format!("training the ResNet {spec} ({n} parameters)"),
                "give a smaller architecture with --arch (fewer blocks or a smaller base width)",
            )?;
            return Ok(());
        }
        let spec = self.spec(1)?;
        memory::check_count(
            spec.checked_n_params().unwrap_or(usize::MAX) as u64,
            each * TRAINING_COPIES,
            || format!("training a network of hidden widths {:?}", self.hidden),
            "give narrower or fewer hidden layers with --hidden",
        )?;
        Ok(())
    }

    /// The minibatch size: --batch, or the family's default.
    fn batch_size(&self) -> usize {
        self.batch
            .unwrap_or(if self.arch.is_some() { 128 } else { 32 })
    }

    /// The ResNet of `arch` on `channels` input channels, with the activation and init
    /// scales of the flags.
    fn conv_spec(&self, arch: &ArchName, channels: usize) -> Result<ResNetSpec> {
        let mut spec = arch.with_channels(channels);
        spec.activation = self.activation;
        spec.sigma_w = self.sigma_w;
        spec.sigma_b = self.sigma_b;
        spec.validate()?;
        Ok(spec)
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
        let cfg: OptimizerConfig = match &self.optimizer_json {
            Some(json) => serde_json::from_str(json).context("--optimizer-json")?,
            None => self.optimizer.clone(),
        };
        let seed_given = self
            .optimizer_json
            .as_deref()
            .is_some_and(|j| j.contains("\"seed\""));
        let mut cfg = cfg.for_run(self.seed, seed_given);
        if let Some(lr) = self.lr {
            cfg = cfg.with_lr(lr);
        }
        cfg.validate().context("optimizer hyper-parameters")?;
        Ok(cfg)
    }

    fn train_config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch_size(),
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
    if let Some(arch) = &args.arch {
        let output = match args.precision {
            Precision::F32 => train_conv::<f32>(&args, arch, &split, quiet)?,
            Precision::F64 => train_conv::<f64>(&args, arch, &split, quiet)?,
        };
        return print_train(&output, &args);
    }
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
    let network = Network::Fcn(safetensors::Model {
        spec: spec.clone(),
        theta: theta.iter().map(|x| x.to_f64()).collect(),
        dtype: StoredDtype::of::<T>(),
        has_basin_metadata: true,
    });
    train_output(report, &network, &theta, split, args.device.run(0, false))
}

/// The training report with the trained network's error rates on S, A and T, each measured
/// in `T` (a ResNet in eval mode); `None` for an empty set.
fn train_output<T: Kernels>(
    report: TrainReport,
    network: &Network,
    theta: &[T],
    split: &Split,
    run: basin_conv::ConvRun,
) -> Result<TrainOutput> {
    let errors = |data: &Dataset| -> Result<Option<f64>> {
        if data.is_empty() {
            return Ok(None);
        }
        let mut o = network.objective::<T>(data, run)?;
        Ok(error_rate(
            o.count_errors(theta, &all_examples(data.len())),
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

/// Trains a ResNet on S ∪ A (batch statistics, the running ones updated), then measures its
/// errors in eval mode and saves it as a PyTorch state_dict.
fn train_conv<T: Kernels>(
    args: &TrainArgs,
    arch: &ArchName,
    split: &Split,
    quiet: bool,
) -> Result<TrainOutput> {
    let train_data = train_set(split)?;
    let shape = train_data.require_image_shape()?;
    let spec = args.conv_spec(arch, shape.channels)?;
    let graph = Graph::resnet(&spec, shape.height, shape.width);
    let run = args.device.run(args.batch_size(), false);
    let state = BnState::fresh(&graph);
    let mut obj =
        ConvObjective::<T>::from_dataset(graph.clone(), state, &train_data, run.chunk, run.par())?;
    obj.set_mode(BnMode::Train);
    if args.augment {
        obj.set_augment(Augment::default(), derive_seed(args.seed, 3))?;
    }
    let opt_cfg = args.optimizer()?;
    let mut opt = opt_cfg.build::<T>(graph.n_params());
    let mut theta: Vec<T> = graph.init(derive_seed(args.seed, 0));
    let cfg = args.train_config();
    let steps = if opt_cfg.full_batch() {
        1
    } else {
        train_data.len().div_ceil(cfg.batch_size)
    };
    let bar = crate::common::step_bar(quiet, steps as u64);
    let report = {
        let mut ticking = crate::common::Ticking {
            inner: &mut obj,
            bar: &bar,
        };
        let mut hook = |info: &basin_nn::EpochInfo, _: &[T]| {
            bar.set_message(format!(
                "epoch {} · loss {:.4} · errors on the stopping set {}",
                info.epoch + 1,
                info.mean_batch_loss,
                info.stop_set_errors
            ));
            bar.set_position(0);
            bar.reset_eta();
            HookAction::Continue
        };
        bar.set_message("epoch 1".to_string());
        train(
            &mut ticking,
            opt.as_mut(),
            &mut theta,
            &cfg,
            opt_cfg.full_batch(),
            split.train.len(),
            &mut hook,
        )
    };
    bar.finish_and_clear();
    conv_model::save(&args.out, &spec, &theta, obj.state())?;
    let network = Network::Conv(ConvModel {
        spec,
        theta: theta.iter().map(|x| x.to_f64()).collect(),
        state: obj.state().clone(),
        f32: T::NAME == "f32",
    });
    train_output(report, &network, &theta, split, run)
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
    /// The model file (safetensors): basin's, a PyTorch export of an FCN with
    /// layers.{i}.weight/bias, or a pytorch-cifar ResNet state_dict (recognised by its tensor
    /// names; measured in eval mode).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Override the model's activation (a file without basin metadata is read as relu).
    #[arg(long)]
    activation: Option<Activation>,
    /// Also write the logits, one per example in data order, to this .npy file (float64,
    /// shape (n,)).
    #[arg(long, value_name = "PATH")]
    logits: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
    /// Print one JSON object: loss (mean sigmoid cross-entropy, f64), error, n (and logits,
    /// the path, with --logits).
    #[arg(long)]
    json: bool,
}

/// What `basin eval` reports.
#[derive(Debug, Serialize)]
struct EvalOutput {
    loss: f64,
    error: f64,
    n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    logits: Option<PathBuf>,
}

impl EvalArgs {
    /// The checks that need no input.
    pub fn check(&self) -> Result<()> {
        self.device.check()
    }
}

/// Runs `basin eval`: the mean loss and the error of the model on every example of the data.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    let model = Network::load(&args.model, args.activation)?;
    let data = args.data.load()?.pool;
    ensure!(
        !data.is_empty(),
        "{} has no examples left after --class-map {}: a class map keeps only the classes it \
         lists (e.g. 0-4:0,5-9:1); list classes the data has (`basin data info` shows them)",
        args.data.data,
        args.data.class_map
    );
    let run = args.device.run(0, false);
    let mut obj = model.objective::<f64>(&data, run)?;
    let all = all_examples(data.len());
    let out = EvalOutput {
        loss: obj.loss(model.theta(), &all),
        error: obj.count_errors(model.theta(), &all) as f64 / data.len() as f64,
        n: data.len(),
        logits: args.logits.clone(),
    };
    if let Some(path) = &args.logits {
        let z = model.logits(&data, run)?;
        let array = basin_data::npy::NpyArray::new(vec![z.len()], basin_data::npy::NpyData::F64(z))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        array
            .write(path)
            .with_context(|| format!("writing the logits to {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("n {}  loss {:.6}  error {:.4}", out.n, out.loss, out.error);
        if let Some(path) = &out.logits {
            println!("logits written to {}", path.display());
        }
    }
    Ok(())
}

/// Arguments of `basin scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The model to rescale.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The layer to scale. A fully-connected net: the hidden layer's index (0-based); its
    /// weight and bias are multiplied by α and the next layer's weight by 1/α. A ResNet: a
    /// BatchNorm layer's name (e.g. layer1.0.bn1); its γ and β are multiplied by α and the
    /// weight of the conv that reads it (through the ReLU) by 1/α, which keeps the eval-mode
    /// function of a BatchNorm net, as the fully-connected form does not. The function is
    /// unchanged; its flatness is not.
    #[arg(long, value_name = "LAYER")]
    layer: String,
    /// The factor α (> 0). The paper uses 5.9 to knock SGD off the zero-error set.
    #[arg(long)]
    alpha: f64,
    /// Where to write the rescaled model (same dtype as the input).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

/// Runs `basin scale`.
pub fn run_scale(args: ScaleArgs) -> Result<()> {
    let alpha = args.alpha;
    match Network::load(&args.model, None)? {
        Network::Fcn(model) => {
            let layer: usize = args.layer.parse().with_context(|| {
                format!(
                    "--layer {:?}: {} is a fully-connected net, whose layers are numbered \
                     0, 1, …",
                    args.layer,
                    args.model.display()
                )
            })?;
            let spec = &model.spec;
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
        }
        Network::Conv(model) => {
            let graph = Graph::resnet(&model.spec, 32, 32);
            let (spec, state) = (&model.spec, &model.state);
            if model.f32 {
                let theta = alpha_scaled_bn_as::<f32>(&graph, &model.theta, &args.layer, alpha)?;
                conv_model::save(&args.out, spec, &theta, state)?;
            } else {
                let theta = alpha_scaled_bn_as::<f64>(&graph, &model.theta, &args.layer, alpha)?;
                conv_model::save(&args.out, spec, &theta, state)?;
            }
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
