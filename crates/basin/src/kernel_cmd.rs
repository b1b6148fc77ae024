//! `basin kernel`: the NNGP kernel of a network on a data set's inputs, written as an f64
//! `.npy` matrix: analytic for fully-connected nets, or Monte Carlo over random networks of
//! any architecture (with each entry's standard error beside it), computed whole or in
//! shards that `basin kernel merge` adds up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use basin_conv::{ArchName, Graph};
use basin_data::npy::{self, NpyArray, NpyData};
use basin_data::{DataSource, Dataset};
use basin_lab::exec::shards::Shard;
use basin_nn::{Activation, FcnSpec, Precision};
use basin_prior::faer::Mat;
use basin_prior::kernel::{KernelSpec, LayerScale, into_row_major};
use basin_prior::mc_kernel::{
    ConvFeatures, DEFAULT_BLOCKS, FcnFeatures, FeatureExtractor, McConfig, McSums, SampleShard,
    mc_sums_parallel,
};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::common::{DataArgs, DeviceArgs, MeasureSet, SplitArgs, peak_rss_bytes, spinner};

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
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct KernelArgs {
    #[command(subcommand)]
    merge: Option<KernelCommand>,
    #[command(flatten)]
    data: DataArgs,
    /// Which examples of --data: all of them, or a part of the split described by
    /// --train-size, --attack-size, --test-size, --split, --test-offset and --split-seed
    /// (train+test is the prior's input set S then T).
    #[arg(long, value_enum, default_value_t = MeasureSet::Whole)]
    set: MeasureSet,
    #[command(flatten)]
    split: SplitArgs,
    /// Use only the first N examples of the set. Default: all of them. The kernel is N × N
    /// f64: 10,000 points take 0.8 GB.
    #[arg(long, value_name = "N")]
    take: Option<usize>,
    /// A conv net: a ResNet preset (resnet18, resnet34, resnet50, resnet101, resnet152) or
    /// KIND:BLOCKS:WIDTH (for example basic:1,1:8), its input channels from the data. Its
    /// kernel is Monte Carlo only (--method mc): the paper's empirical kernel of the network
    /// without its last linear layer. Without --arch, the network is fully connected
    /// (--hidden).
    #[arg(long, value_name = "SPEC", conflicts_with = "hidden")]
    arch: Option<ArchName>,
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
    /// Random networks M averaged by --method mc; each entry's error falls like 1/√M (and
    /// like 1/√width). The paper used 0.1 · N for its ResNet-50.
    #[arg(long, value_name = "M", default_value_t = 128)]
    samples: usize,
    /// Seed of --method mc: network m is drawn from (seed, m), so the same seed gives the
    /// same kernel whatever the threads or the shards.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Interleaved blocks of the samples (network m in block m mod B), kept apart in --sums
    /// for the jackknife error of log P(f) (B − 1 degrees of freedom). Each costs one N × N
    /// float64 of memory. Default: 8, or --samples when fewer.
    #[arg(long, value_name = "B")]
    blocks: Option<usize>,
    /// Compute only the networks m ≡ K − 1 (mod N) and write their sums to --output (a
    /// .safetensors of partial sums with their counts), for a job array; `basin kernel
    /// merge` adds the N shards' files into the kernel.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Precision of a conv net's forward passes (the kernel is accumulated in float64 either
    /// way); the paper's is f32.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    #[command(flatten)]
    device: DeviceArgs,
    /// Where to write the kernel: an N × N float64 .npy, rows in the order of the set
    /// (written atomically: a temporary file, then renamed). With --method mc each entry's
    /// Monte Carlo standard error goes beside it, to <stem>.std_err.npy. With --shard, the
    /// shard's partial sums (.safetensors) instead.
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
    /// With --method mc, also write the Monte Carlo sums (blocks and squares, .safetensors)
    /// here, to merge with other sums or to take the jackknife error of what is computed from
    /// the kernel (log P(f) above all).
    #[arg(long, value_name = "PATH")]
    sums: Option<PathBuf>,
    /// Print one JSON object: output, std_err, sums, n, input_dim, arch, depth, activation,
    /// method, samples, seed, blocks, shard, samples_done, wall_s, samples_per_s,
    /// mean_std_err, max_std_err, kernel_bytes, peak_rss_bytes (null where it does not
    /// apply or is unknown).
    #[arg(long)]
    json: bool,
}

/// `basin kernel`'s subcommand.
#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// Add the partial sums of a Monte Carlo kernel's shards (`basin kernel --shard K/N`) in
    /// shard order, and write the kernel and its standard errors as one run would.
    Merge(MergeArgs),
}

/// Arguments of `basin kernel merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' sums files, every shard of one estimate once, in any order.
    #[arg(required = true, value_name = "SUMS")]
    parts: Vec<PathBuf>,
    /// Where to write the kernel (.npy); the standard errors go to <stem>.std_err.npy.
    #[arg(long, short, value_name = "PATH")]
    output: PathBuf,
    /// Also write the merged sums here (.safetensors).
    #[arg(long, value_name = "PATH")]
    sums: Option<PathBuf>,
    /// Print one JSON object, as `basin kernel --json`.
    #[arg(long)]
    json: bool,
}

/// What `basin kernel` reports.
#[derive(Debug, Default, Serialize)]
struct KernelOutput {
    output: String,
    std_err: Option<String>,
    sums: Option<String>,
    n: usize,
    input_dim: Option<usize>,
    arch: Option<String>,
    depth: Option<usize>,
    activation: Option<String>,
    method: &'static str,
    samples: Option<usize>,
    seed: Option<u64>,
    blocks: Option<usize>,
    shard: Option<String>,
    samples_done: Option<usize>,
    wall_s: f64,
    samples_per_s: Option<f64>,
    mean_std_err: Option<f64>,
    max_std_err: Option<f64>,
    kernel_bytes: u64,
    peak_rss_bytes: Option<u64>,
}

impl KernelArgs {
    /// The checks that need no data: the Monte Carlo settings, an architecture only with
    /// --method mc, and a kernel of --take points that fits in memory.
    pub fn check(&self) -> Result<()> {
        if let Some(KernelCommand::Merge(_)) = &self.merge {
            return Ok(());
        }
        ensure!(
            self.output.is_some(),
            "--output is required: give the path of the kernel (.npy), or of the shard's sums \
             with --shard"
        );
        self.device.check()?;
        if self.method == KernelMethod::Analytic {
            ensure!(
                self.arch.is_none(),
                "--arch has no analytic kernel: give --method mc for the empirical kernel"
            );
            ensure!(
                self.shard.is_none() && self.sums.is_none(),
                "--shard and --sums are for --method mc"
            );
        }
        if self.method == KernelMethod::Mc {
            self.mc_config().check()?;
            ensure!(
                self.shard.is_none() || self.sums.is_none(),
                "with --shard, --output is the sums file: drop --sums"
            );
        }
        match self.take {
            Some(take) => check_memory(take),
            None => Ok(()),
        }
    }

    fn mc_config(&self) -> McConfig {
        McConfig {
            samples: self.samples,
            seed: self.seed,
            blocks: self
                .blocks
                .unwrap_or_else(|| DEFAULT_BLOCKS.min(self.samples.max(1))),
            shard: self.shard.map_or(SampleShard::WHOLE, |s| SampleShard {
                index: s.index,
                count: s.count,
            }),
        }
    }
}

/// Runs `basin kernel` (its flags checked by [`KernelArgs::check`]).
pub fn run_kernel(mut args: KernelArgs, quiet: bool) -> Result<()> {
    if let Some(KernelCommand::Merge(m)) = args.merge.take() {
        return run_merge(m, quiet);
    }
    match args.method {
        KernelMethod::Analytic => run_analytic(&args, quiet),
        KernelMethod::Mc => run_mc(&args, quiet),
    }
}

fn output_of(args: &KernelArgs) -> &Path {
    args.output.as_deref().expect("checked: --output is given")
}

/// The analytic NNGP kernel of the fully-connected net.
fn run_analytic(args: &KernelArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let (x, n, d) = load_points(args)?;
    check_memory(n)?;
    let bar = spinner(quiet);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar.set_message(format!("analytic NNGP kernel of {n} points"));
    let k = kernel_spec(args, d)?.kernel_row_major(&x, n)?;
    drop(x);
    let output = output_of(args);
    bar.set_message(format!("writing {}", output.display()));
    write_kernel(k, n, output)?;
    bar.finish_and_clear();
    print_summary(
        &KernelOutput {
            output: output.display().to_string(),
            n,
            input_dim: Some(d),
            depth: Some(args.hidden.0.len()),
            activation: Some(args.activation.to_string()),
            method: "analytic",
            wall_s: start.elapsed().as_secs_f64(),
            kernel_bytes: kernel_bytes(n),
            peak_rss_bytes: peak_rss_bytes(),
            ..KernelOutput::default()
        },
        args.json,
    )
}

/// The Monte Carlo kernel of a fully-connected or conv net: whole, or one shard's sums.
fn run_mc(args: &KernelArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let config = args.mc_config();
    let (sums, d) = match &args.arch {
        Some(arch) => conv_sums(args, arch, &config, quiet)?,
        None => fcn_sums(args, &config, quiet)?,
    };
    let done = sums.count();
    let mut out = KernelOutput {
        n: sums.meta.n,
        input_dim: Some(d),
        arch: args.arch.as_ref().map(|_| sums.meta.description.clone()),
        depth: args.arch.is_none().then_some(args.hidden.0.len()),
        activation: Some(args.activation.to_string()),
        samples_done: Some(done),
        shard: args.shard.map(|s| format!("{}/{}", s.index, s.count)),
        ..mc_output(&sums)
    };
    let output = output_of(args);
    if args.shard.is_some() {
        basin_prior::mc_file::write(&sums, output)?;
        out.output = output.display().to_string();
        out.kernel_bytes = kernel_bytes(sums.meta.n);
    } else {
        write_estimate(&sums, output, args.sums.as_deref(), &mut out, quiet)?;
    }
    finish(out, start, done, args.json)
}

/// Prints the report with the wall time and throughput of `done` samples.
fn finish(mut out: KernelOutput, start: Instant, done: usize, json: bool) -> Result<()> {
    out.wall_s = start.elapsed().as_secs_f64();
    out.samples_per_s = (done > 0).then(|| done as f64 / out.wall_s);
    out.peak_rss_bytes = peak_rss_bytes();
    print_summary(&out, json)
}

/// The fields of the report that the sums give.
fn mc_output(sums: &McSums) -> KernelOutput {
    let m = &sums.meta;
    KernelOutput {
        n: m.n,
        method: "mc",
        samples: Some(m.samples),
        seed: Some(m.seed),
        blocks: Some(m.blocks),
        samples_done: Some(sums.count()),
        ..KernelOutput::default()
    }
}

/// Writes a whole estimate: the kernel, its standard errors beside it, and the sums when
/// asked.
fn write_estimate(
    sums: &McSums,
    output: &Path,
    sums_path: Option<&Path>,
    out: &mut KernelOutput,
    quiet: bool,
) -> Result<()> {
    let n = sums.meta.n;
    check_memory(n)?;
    let bar = spinner(quiet);
    bar.set_message(format!("writing {}", output.display()));
    let k = sums.kernel()?;
    write_kernel(into_row_major(k), n, output)?;
    out.output = output.display().to_string();
    out.kernel_bytes = kernel_bytes(n);
    if let Some(se) = sums.std_err()? {
        let path = std_err_path(output);
        (out.mean_std_err, out.max_std_err) = mean_and_max(&se);
        write_kernel(into_row_major(se), n, &path)?;
        out.std_err = Some(path.display().to_string());
    }
    if let Some(path) = sums_path {
        basin_prior::mc_file::write(sums, path)?;
        out.sums = Some(path.display().to_string());
    }
    bar.finish_and_clear();
    Ok(())
}

/// The mean and the largest of a matrix's entries.
fn mean_and_max(m: &Mat<f64>) -> (Option<f64>, Option<f64>) {
    let (mut sum, mut max) = (0.0, 0.0f64);
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            sum += m[(i, j)];
            max = max.max(m[(i, j)]);
        }
    }
    let count = (m.nrows() * m.ncols()).max(1) as f64;
    (Some(sum / count), Some(max))
}

/// `K.npy` → `K.std_err.npy`, beside it.
fn std_err_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map_or_else(|| "kernel".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}.std_err.npy"))
}

/// A bar over the shard's networks, with the throughput and the ETA.
fn sample_bar(quiet: bool, total: usize, n: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    if quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed} {msg} [{bar:30}] network {pos}/{len}, {per_sec}, ETA {eta}",
        )
        .expect("valid template"),
    );
    bar.set_message(format!("Monte Carlo kernel of {n} points"));
    bar
}

/// The networks drawn at once: --threads (default: every CPU), each on one thread.
fn workers(args: &KernelArgs) -> usize {
    args.device.run(0, false).threads.max(1)
}

/// One single-threaded conv feature map per worker.
fn conv_workers<T: basin_nn::Real>(
    graph: &Graph,
    data: &Dataset,
    chunk: usize,
    workers: usize,
) -> Result<Vec<ConvFeatures<T>>> {
    let par = basin_prior::faer::Par::Seq;
    (0..workers)
        .map(|_| Ok(ConvFeatures::<T>::new(graph.clone(), data, chunk, par)?))
        .collect()
}

/// Accumulates the sums of the `features` workers, with the progress bar.
fn sums_of<F: FeatureExtractor + Send>(
    features: &mut [F],
    config: &McConfig,
    description: &str,
    quiet: bool,
) -> Result<McSums> {
    let total = config.shard.samples(config.samples).count();
    let n = features.first().map_or(0, |f| f.n_points());
    let bar = sample_bar(quiet, total, n);
    let sums = mc_sums_parallel(features, config, description, |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    Ok(sums)
}

/// The sums of the fully-connected net of the flags.
fn fcn_sums(args: &KernelArgs, config: &McConfig, quiet: bool) -> Result<(McSums, usize)> {
    let (x, n, d) = load_points(args)?;
    let spec = fcn_spec(args, d)?;
    let description = format!(
        "fully connected {}, {} points of {}",
        Widths(spec.hidden.clone()),
        n,
        basin_prior::mc_kernel::inputs_fingerprint(x.iter().copied())
    );
    let features = FcnFeatures::new(&spec, &x, n)?;
    drop(x);
    let mut workers = vec![features; workers(args)];
    Ok((sums_of(&mut workers, config, &description, quiet)?, d))
}

/// The sums of the conv net `arch` on the set's images.
fn conv_sums(
    args: &KernelArgs,
    arch: &ArchName,
    config: &McConfig,
    quiet: bool,
) -> Result<(McSums, usize)> {
    let data = load_set(args)?;
    let shape = data.require_image_shape()?;
    let (sigma_w, sigma_b) = single_scales(args)?;
    let mut spec = arch.with_channels(shape.channels);
    spec.activation = args.activation;
    spec.sigma_w = sigma_w;
    spec.sigma_b = sigma_b;
    spec.validate()?;
    let graph = Graph::resnet(&spec, shape.height, shape.width);
    let run = args.device.run(0, false);
    let description = format!(
        "ResNet {spec} in {:?}, {} images of {}",
        args.precision,
        data.len(),
        basin_prior::mc_kernel::inputs_fingerprint(data.features().iter().map(|&v| v.into()))
    );
    let d = data.dim();
    let sums = match args.precision {
        Precision::F32 => {
            let mut f = conv_workers::<f32>(
                &graph,
                &data,
                run.chunk_for::<f32>(&graph, data.len()),
                workers(args),
            )?;
            sums_of(&mut f, config, &description, quiet)?
        }
        Precision::F64 => {
            let mut f = conv_workers::<f64>(
                &graph,
                &data,
                run.chunk_for::<f64>(&graph, data.len()),
                workers(args),
            )?;
            sums_of(&mut f, config, &description, quiet)?
        }
    };
    Ok((sums, d))
}

/// Runs `basin kernel merge`.
fn run_merge(args: MergeArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let parts = args
        .parts
        .iter()
        .map(|p| basin_prior::mc_file::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let sums = McSums::merge(parts)?;
    sums.require_complete()?;
    let mut out = mc_output(&sums);
    out.arch = Some(sums.meta.description.clone());
    write_estimate(&sums, &args.output, args.sums.as_deref(), &mut out, quiet)?;
    out.wall_s = start.elapsed().as_secs_f64();
    out.peak_rss_bytes = peak_rss_bytes();
    print_summary(&out, args.json)
}

/// The examples of the set the flags choose, the first --take of them.
fn load_set(args: &KernelArgs) -> Result<Dataset> {
    let corpus = args.data.load()?;
    let set = crate::common::select_set(&args.data.data, &corpus, args.set, &args.split)?;
    let Some(take) = args.take else {
        return Ok(set);
    };
    ensure!(
        take > 0 && take <= set.len(),
        "--take {take} but the set has {} examples: give 1 to {}",
        set.len(),
        set.len()
    );
    Ok(set.subset(set.name(), &(0..take).collect::<Vec<_>>())?)
}

/// The inputs, row-major `n × d` in f64. An `.npy` source with no class map is read at its
/// own precision (float64 stays float64); other sources hold f32 features.
fn load_points(args: &KernelArgs) -> Result<(Vec<f64>, usize, usize)> {
    let own_precision =
        args.set == MeasureSet::Whole && matches!(args.data.class_map.as_str(), "default" | "none");
    let DataSource::Npy { x: path, .. } = &args.data.data else {
        return widened(load_set(args)?);
    };
    if !own_precision {
        return widened(load_set(args)?);
    }
    let (mut x, n, d) = read_npy_points(path)?;
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

/// A set's features in f64, row-major.
fn widened(set: Dataset) -> Result<(Vec<f64>, usize, usize)> {
    let x = set.features().iter().map(|&v| f64::from(v)).collect();
    Ok((x, set.len(), set.dim()))
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

/// The one σ_w and σ_b of a Monte Carlo kernel's network.
fn single_scales(args: &KernelArgs) -> Result<(f64, f64)> {
    match (args.sigma_w.as_slice(), args.sigma_b.as_slice()) {
        ([w], [b]) => Ok((*w, *b)),
        _ => bail!("--method mc takes one --sigma-w and one --sigma-b for every layer"),
    }
}

/// The Monte Carlo kernel's fully-connected network from the flags.
fn fcn_spec(args: &KernelArgs, d: usize) -> Result<FcnSpec> {
    let (sigma_w, sigma_b) = single_scales(args)?;
    Ok(FcnSpec {
        input_dim: d,
        hidden: args.hidden.0.clone(),
        activation: args.activation,
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
    let network = match (&out.arch, out.depth) {
        (Some(arch), _) => arch.clone(),
        (None, Some(depth)) => format!(
            "{depth} hidden {} layers",
            out.activation.as_deref().unwrap_or("?")
        ),
        (None, None) => "merged shards".to_string(),
    };
    let method = match (out.samples, &out.shard) {
        (Some(m), Some(shard)) => format!(
            "Monte Carlo partial sums of shard {shard}: {} of {m} networks, seed {}",
            out.samples_done.unwrap_or(0),
            out.seed.unwrap_or(0)
        ),
        (Some(m), None) => format!("Monte Carlo, {m} networks, seed {}", out.seed.unwrap_or(0)),
        (None, _) => "analytic".to_string(),
    };
    let what = if out.shard.is_some() {
        "partial sums of"
    } else {
        "float64 NNGP kernel,"
    };
    println!(
        "wrote {}: {what} {n} × {n} ({network}; {method}) in {:.2} s; kernel {:.1} MiB, peak \
         memory {peak}",
        out.output,
        out.wall_s,
        mib(out.kernel_bytes),
        n = out.n,
    );
    if let (Some(path), Some(mean), Some(max)) = (&out.std_err, out.mean_std_err, out.max_std_err) {
        println!(
            "wrote {path}: each entry's Monte Carlo standard error (mean {mean:.3e}, largest {max:.3e})"
        );
    }
    if let Some(path) = &out.sums {
        println!("wrote {path}: the Monte Carlo sums");
    }
    Ok(())
}
