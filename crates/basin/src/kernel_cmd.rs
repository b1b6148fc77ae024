//! `basin kernel`: the NNGP kernel of a fully-connected network on a data set's inputs,
//! written as an f64 `.npy` matrix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use basin_data::DataSource;
use basin_data::npy::{self, NpyArray, NpyData};
use basin_nn::{Activation, FcnSpec};
use basin_prior::kernel::{KernelSpec, LayerScale, into_row_major};
use basin_prior::mc_kernel::{FcnFeatures, McConfig, mc_kernel_with_progress};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::common::{DataArgs, peak_rss_bytes, spinner};

/// How the kernel is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KernelMethod {
    /// The infinite-width closed form (relu, erf, linear): exact to round-off.
    Analytic,
    /// The average of σ_w²/width·φφᵀ + σ_b² over --samples random networks of the --hidden
    /// widths (φ: the last hidden layer); any activation, tanh included.
    Mc,
}

/// Hidden widths: `40,40`, or `none` for no hidden layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widths(pub Vec<usize>);

impl FromStr for Widths {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" || s.is_empty() {
            return Ok(Self(Vec::new()));
        }
        s.split(',')
            .map(|w| match w.trim().parse::<usize>() {
                Ok(w) if w > 0 => Ok(w),
                _ => Err(format!(
                    "{w:?} is not a positive width; give widths such as 40,40, or none"
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl fmt::Display for Widths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// Arguments of `basin kernel`.
#[derive(Debug, Args)]
pub struct KernelArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Use only the first N examples of --data (after --class-map). Default: all of them.
    /// The kernel is N × N f64: 10,000 points take 0.8 GB.
    #[arg(long, value_name = "N")]
    take: Option<usize>,
    /// Hidden layer widths, input to output, comma-separated (the paper's network: 40,40), or
    /// `none` for no hidden layer (the linear kernel of the inputs). The analytic kernel
    /// depends only on the number of layers; --method mc draws networks of these widths.
    #[arg(long, value_name = "W1,W2,..", default_value = "40,40")]
    hidden: Widths,
    /// Hidden nonlinearity: relu, erf or linear (closed forms), or tanh (--method mc only).
    #[arg(long, value_name = "NAME", default_value = "relu")]
    activation: Activation,
    /// Weight scale σ_w (W ~ N(0, σ_w²/fan_in)): one value for every layer, or one per
    /// linear layer, input layer first (depth + 1 values; analytic only). The paper's is √2.
    #[arg(
        long,
        value_name = "S",
        value_delimiter = ',',
        allow_negative_numbers = true,
        default_value = "1.4142135623730951"
    )]
    sigma_w: Vec<f64>,
    /// Bias scale σ_b (b ~ N(0, σ_b²); 0 for no bias): one value, or one per linear layer
    /// as for --sigma-w. The paper's is 1.
    #[arg(
        long,
        value_name = "S",
        value_delimiter = ',',
        allow_negative_numbers = true,
        default_value = "1"
    )]
    sigma_b: Vec<f64>,
    /// analytic (closed form) or mc (Monte Carlo over random networks).
    #[arg(long, value_enum, default_value_t = KernelMethod::Analytic)]
    method: KernelMethod,
    /// Random networks averaged by --method mc; its error falls like 1/√(samples · width).
    #[arg(long, value_name = "M", default_value_t = 128)]
    samples: usize,
    /// Seed of --method mc: the same seed gives the same kernel, bit for bit.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the kernel: an N × N float64 .npy, rows in the order of --data
    /// (written atomically: a temporary file, then renamed).
    #[arg(long, short, value_name = "PATH")]
    output: PathBuf,
    /// Print one JSON object: output, n, input_dim, depth, activation, method, samples (null
    /// for analytic), seed (null for analytic), wall_s, kernel_bytes, peak_rss_bytes (null
    /// where unknown).
    #[arg(long)]
    json: bool,
}

/// What `basin kernel` reports.
#[derive(Debug, Serialize)]
struct KernelOutput {
    output: String,
    n: usize,
    input_dim: usize,
    depth: usize,
    activation: String,
    method: &'static str,
    samples: Option<usize>,
    seed: Option<u64>,
    wall_s: f64,
    kernel_bytes: u64,
    peak_rss_bytes: Option<u64>,
}

impl KernelArgs {
    /// The checks that need no data: a positive --samples, and a kernel of --take points that
    /// fits in memory.
    pub fn check(&self) -> Result<()> {
        ensure!(self.samples > 0, "--samples must be at least 1");
        match self.take {
            Some(take) => check_memory(take),
            None => Ok(()),
        }
    }
}

/// Runs `basin kernel` (its flags checked by [`KernelArgs::check`]).
pub fn run_kernel(args: KernelArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let (x, n, d) = load_points(&args)?;
    check_memory(n)?;
    let bar = spinner(quiet);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let k = match args.method {
        KernelMethod::Analytic => {
            bar.set_message(format!("analytic NNGP kernel of {n} points"));
            kernel_spec(&args, d)?.kernel_row_major(&x, n)?
        }
        KernelMethod::Mc => {
            let features = FcnFeatures::new(&fcn_spec(&args, d)?, &x, n)?;
            let config = McConfig {
                samples: args.samples,
                seed: args.seed,
            };
            let k = mc_kernel_with_progress(&features, &config, |m| {
                bar.set_message(format!(
                    "Monte Carlo kernel of {n} points: network {m}/{}",
                    args.samples
                ));
            })?;
            into_row_major(k)
        }
    };
    drop(x);
    tracing::debug!(
        "kernel computed at {:.2} s, peak memory so far {:?} bytes",
        start.elapsed().as_secs_f64(),
        peak_rss_bytes()
    );
    bar.set_message(format!("writing {}", args.output.display()));
    write_kernel(k, n, &args.output)?;
    tracing::debug!("kernel written at {:.2} s", start.elapsed().as_secs_f64());
    bar.finish_and_clear();
    let mc = args.method == KernelMethod::Mc;
    print_summary(
        &KernelOutput {
            output: args.output.display().to_string(),
            n,
            input_dim: d,
            depth: args.hidden.0.len(),
            activation: args.activation.to_string(),
            method: if mc { "mc" } else { "analytic" },
            samples: mc.then_some(args.samples),
            seed: mc.then_some(args.seed),
            wall_s: start.elapsed().as_secs_f64(),
            kernel_bytes: kernel_bytes(n),
            peak_rss_bytes: peak_rss_bytes(),
        },
        args.json,
    )
}

/// The inputs, row-major `n × d` in f64. An `.npy` source with no class map is read at its
/// own precision (float64 stays float64); other sources hold f32 features.
fn load_points(args: &KernelArgs) -> Result<(Vec<f64>, usize, usize)> {
    let (mut x, n, d) = match &args.data.data {
        DataSource::Npy { x, .. } if matches!(args.data.class_map.as_str(), "default" | "none") => {
            read_npy_points(x)?
        }
        _ => {
            let pool = args.data.load()?.pool;
            let wide: Vec<f64> = pool.features().iter().map(|&v| f64::from(v)).collect();
            (wide, pool.len(), pool.dim())
        }
    };
    let Some(take) = args.take else {
        return Ok((x, n, d));
    };
    ensure!(
        take > 0 && take <= n,
        "--take {take} but {} has {n} examples: give 1 to {n}",
        args.data.data
    );
    x.truncate(take * d);
    Ok((x, take, d))
}

/// An `.npy` of shape `(n, …)` as `n` rows of the remaining dimensions, in f64.
fn read_npy_points(path: &Path) -> Result<(Vec<f64>, usize, usize)> {
    let a = npy::read(path)?;
    let (n, d) = match a.shape.as_slice() {
        [] => bail!(
            "{}: a scalar is not a data set; x must have shape (n, d)",
            path.display()
        ),
        [n] => (*n, 1),
        [n, rest @ ..] => (*n, rest.iter().product()),
    };
    ensure!(
        n > 0 && d > 0,
        "{}: shape {:?} holds no examples; x must have shape (n, d) with n, d > 0",
        path.display(),
        a.shape
    );
    Ok((a.data.to_f64(), n, d))
}

/// The analytic kernel's spec from the flags.
fn kernel_spec(args: &KernelArgs, d: usize) -> Result<KernelSpec> {
    let depth = args.hidden.0.len();
    let w = per_layer("--sigma-w", &args.sigma_w, depth)?;
    let b = per_layer("--sigma-b", &args.sigma_b, depth)?;
    Ok(KernelSpec {
        input_dim: d,
        activation: args.activation,
        layers: w
            .into_iter()
            .zip(b)
            .map(|(sigma_w, sigma_b)| LayerScale { sigma_w, sigma_b })
            .collect(),
    })
}

/// One value for every layer, or one per linear layer.
fn per_layer(flag: &str, values: &[f64], depth: usize) -> Result<Vec<f64>> {
    match values {
        [v] => Ok(vec![*v; depth + 1]),
        vs if vs.len() == depth + 1 => Ok(vs.to_vec()),
        vs => bail!(
            "{flag} has {} values but the network has {} linear layers ({depth} hidden + \
             readout): give one value, or {}",
            vs.len(),
            depth + 1,
            depth + 1
        ),
    }
}

/// The Monte Carlo kernel's network from the flags.
fn fcn_spec(args: &KernelArgs, d: usize) -> Result<FcnSpec> {
    let activation = args.activation;
    let (sigma_w, sigma_b) = match (args.sigma_w.as_slice(), args.sigma_b.as_slice()) {
        ([w], [b]) => (*w, *b),
        _ => bail!("--method mc takes one --sigma-w and one --sigma-b for every layer"),
    };
    Ok(FcnSpec {
        input_dim: d,
        hidden: args.hidden.0.clone(),
        activation,
        sigma_w,
        sigma_b,
    })
}

fn kernel_bytes(n: usize) -> u64 {
    (n as u64).saturating_mul(n as u64).saturating_mul(8)
}

/// Refuses a kernel whose computation and writing (about three copies of N² f64) would not
/// fit in the memory available to the process (its cgroup limit counts).
fn check_memory(n: usize) -> Result<()> {
    let need = kernel_bytes(n).saturating_mul(3);
    basin_data::memory::check(
        need,
        || format!("a kernel of {n} points (three N × N float64 copies, to compute and write it)"),
        "use --take to keep fewer examples",
    )?;
    Ok(())
}

/// Writes the kernel, `n × n`, as a float64 `.npy`.
fn write_kernel(data: Vec<f64>, n: usize, path: &Path) -> Result<()> {
    let array = NpyArray::new(vec![n, n], NpyData::F64(data)).map_err(anyhow::Error::msg)?;
    array
        .write(path)
        .with_context(|| format!("writing the kernel to {}", path.display()))
}

fn print_summary(out: &KernelOutput, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(out)?);
        return Ok(());
    }
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    let peak = out
        .peak_rss_bytes
        .map_or_else(|| "unknown".to_string(), |b| format!("{:.0} MiB", mib(b)));
    let method = match out.samples {
        Some(m) => format!("Monte Carlo, {m} networks, seed {}", out.seed.unwrap_or(0)),
        None => "analytic".to_string(),
    };
    println!(
        "wrote {}: {n} × {n} float64 NNGP kernel ({} hidden {} layers, {method}) in {:.2} s; \
         kernel {:.1} MiB, peak memory {peak}",
        out.output,
        out.depth,
        out.activation,
        out.wall_s,
        mib(out.kernel_bytes),
        n = out.n,
    );
    Ok(())
}
