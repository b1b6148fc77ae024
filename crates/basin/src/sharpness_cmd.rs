//! `basin sharpness`: the Keskar sharpness of a saved network on a data set.

use anyhow::Result;
use basin_conv::Network;
use basin_data::Dataset;
use basin_flatness::keskar::{AscentOrder, KeskarConfig, Sharpness, sharpness_sgd};
use basin_flatness::lbfgsb::{LbfgsbConfig, LbfgsbStatus, sharpness_lbfgsb};
use basin_nn::{BatchOrder, Kernels, Precision};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::common::{DeviceArgs, MeasureArgs, spinner};

/// How the box maximum is searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Minibatch SGD ascent with clipping after every step (the paper's code).
    Sgd,
    /// L-BFGS-B maximisation of the full-set loss over the box (Keskar et al.'s original code).
    Lbfgsb,
}

/// Arguments of `basin sharpness`.
#[derive(Debug, Args)]
pub struct SharpnessArgs {
    #[command(flatten)]
    measure: MeasureArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// Relative half-width of the box: |θ'ᵢ − θᵢ| ≤ ε(|θᵢ| + 1).
    #[arg(long, default_value_t = 1e-4)]
    epsilon: f64,
    /// Ascent learning rate (sgd).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Ascent epochs (sgd). The paper uses 100 for MNIST and CIFAR-10, 10 for the Boolean system.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Ascent batch size (sgd); the last partial batch is kept.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Batch order (sgd): fixed sequential batches (the paper's code, effectively) or shuffled
    /// every epoch from --seed.
    #[arg(long, value_enum, default_value_t = BatchOrder::Fixed)]
    order: BatchOrder,
    /// Seed of the shuffled order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Arithmetic of the ascent: f32 (the paper's TensorFlow code) or f64.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// sgd (the paper's) or lbfgsb (Keskar et al.'s original).
    #[arg(long, value_enum, default_value_t = MethodArg::Sgd)]
    method: MethodArg,
    /// L-BFGS-B iterations (lbfgsb; 10 in the paper's ResNet code).
    #[arg(long, default_value_t = 10)]
    max_iter: usize,
    /// Print one JSON object: sharpness, log10_sharpness (null when 0), loss, max_loss, steps,
    /// evaluations, method, precision, n, wall_s (and lbfgsb_status with --method lbfgsb).
    #[arg(long)]
    json: bool,
}

/// What `basin sharpness` reports.
#[derive(Debug, Serialize)]
struct SharpnessOutput {
    #[serde(flatten)]
    sharpness: Sharpness,
    method: &'static str,
    precision: &'static str,
    n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    lbfgsb_status: Option<LbfgsbStatus>,
}

impl SharpnessArgs {
    /// The checks that need no model.
    pub fn check(&self) -> Result<()> {
        self.device.check()
    }
}

/// Runs `basin sharpness`.
pub fn run_sharpness(args: SharpnessArgs, quiet: bool) -> Result<()> {
    let (model, data) = args.measure.load()?;
    let bar = spinner(quiet);
    bar.set_message(format!("Keskar sharpness on {} examples", data.len()));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let out = match args.precision {
        Precision::F32 => measure::<f32>(&args, &model, &data)?,
        Precision::F64 => measure::<f64>(&args, &model, &data)?,
    };
    bar.finish_and_clear();
    print_sharpness(&out, args.json)
}

fn measure<T: Kernels>(
    args: &SharpnessArgs,
    model: &Network,
    data: &Dataset,
) -> Result<SharpnessOutput> {
    let mut obj = model.objective::<T>(data, args.device.run(0, false))?;
    let theta = model.theta_as::<T>();
    let (sharpness, status, method) = match args.method {
        MethodArg::Sgd => {
            let cfg = KeskarConfig {
                epsilon: args.epsilon,
                lr: args.lr,
                epochs: args.epochs,
                batch_size: args.batch,
                order: match args.order {
                    BatchOrder::Fixed => AscentOrder::Fixed,
                    BatchOrder::Shuffled => AscentOrder::Shuffled { seed: args.seed },
                },
            };
            let run = sharpness_sgd(obj.as_mut(), &theta, &cfg)?;
            (run.sharpness, None, "sgd")
        }
        MethodArg::Lbfgsb => {
            let cfg = LbfgsbConfig {
                max_iter: args.max_iter,
                ..LbfgsbConfig::default()
            };
            let (s, report) = sharpness_lbfgsb(obj.as_mut(), &theta, args.epsilon, &cfg)?;
            (s, Some(report.status), "lbfgsb")
        }
    };
    Ok(SharpnessOutput {
        sharpness,
        method,
        precision: T::NAME,
        n: data.len(),
        lbfgsb_status: status,
    })
}

fn print_sharpness(out: &SharpnessOutput, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(out)?);
        return Ok(());
    }
    let s = &out.sharpness;
    let log10 = s
        .log10_sharpness
        .map_or_else(|| "-inf".to_string(), |v| format!("{v:.4}"));
    println!(
        "sharpness {:.6} (log10 {log10})  loss {:.6} → max {:.6}  ({} {} steps, {} examples, {:.2} s)",
        s.sharpness, s.loss, s.max_loss, out.method, s.steps, out.n, s.wall_s
    );
    Ok(())
}
