//! `basin boolean sample`: the direct-sampling prior of a ReLU network on {0,1}^7 — draw
//! random networks, count the functions they compute, and write the frequency table and its
//! plots.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use basin_boolean::{BooleanSampler, FunctionCounts, FunctionRow, function_hex};
use basin_data::atomic::AtomicFile;
use basin_lab::plot::{LegendCorner, ScatterPlot, Series};
use basin_nn::FcnSpec;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use basin_data::memory;

use crate::common::{check_thread_count, peak_rss_bytes};
use crate::kernel_cmd::Widths;

/// Rows of the frequency table computed (LZ complexity included) and written at a time.
const CSV_CHUNK: usize = 1 << 20;
/// Plot sizes in pixels.
const PLOT_SIZE: (u32, u32) = (900, 650);

/// The Boolean system of section 5.1: all 128 inputs of {0,1}^7.
#[derive(Debug, Subcommand)]
pub enum BooleanCommand {
    /// Draw random networks on all 128 inputs of {0,1}^7 and count the functions they
    /// compute: the frequency table, the number of distinct functions, the rank–frequency
    /// and P(f)–complexity plots.
    Sample(Box<SampleArgs>),
}

/// Arguments of `basin boolean sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Random networks to draw (1e7 and 10_000_000 are accepted).
    #[arg(long, value_name = "N", default_value = "10000000", value_parser = parse_count)]
    samples: u64,
    /// Hidden layer widths, input to output (the paper's: 40,40). ReLU, 7 inputs, one logit.
    #[arg(long, value_name = "W1,W2,..", default_value = "40,40")]
    hidden: Widths,
    /// Weight scale σ_w: W ~ N(0, σ_w²/fan_in). The paper's is √2.
    #[arg(long, value_name = "S", default_value = "1.4142135623730951")]
    sigma_w: f64,
    /// Bias scale σ_b: b ~ N(0, σ_b²). The paper's is 1.
    #[arg(long, value_name = "S", default_value = "1")]
    sigma_b: f64,
    /// Seed: the same seed gives the same samples on any number of threads, and the first N
    /// samples of a longer run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Functions to print (most frequent first).
    #[arg(long, value_name = "K", default_value_t = 10)]
    top: usize,
    /// Write the whole frequency table to this CSV file (written atomically): rank,
    /// function, count, probability, ci_low, ci_high, ones, lz_complexity.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Write rank_frequency.{png,svg} and prior_vs_lz.{png,svg} into this folder.
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// Threads to sample on (default: all CPUs). The samples do not depend on it.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Run even when the time estimate (from a short timed pilot) exceeds 6 hours.
    #[arg(long)]
    force: bool,
    /// Print one JSON object: samples, distinct, samples_per_second, wall_s, sample_s, seed,
    /// hidden, sigma_w, sigma_b, threads, peak_rss_bytes, csv, plots and top (a list of
    /// {rank, function, count, probability, ci_low, ci_high, ones, lz_complexity}).
    #[arg(long)]
    json: bool,
}

fn parse_count(s: &str) -> Result<u64, String> {
    let plain = s.replace('_', "");
    if let Ok(n) = plain.parse::<u64>() {
        return Ok(n);
    }
    match plain.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Ok(x as u64),
        _ => Err(format!(
            "{s:?} is not a whole number of samples; give e.g. 10000000, 10_000_000 or 1e7"
        )),
    }
}

/// What `basin boolean sample` reports.
#[derive(Debug, Serialize)]
struct SampleOutput {
    samples: u64,
    distinct: usize,
    samples_per_second: f64,
    wall_s: f64,
    sample_s: f64,
    seed: u64,
    hidden: Vec<usize>,
    sigma_w: f64,
    sigma_b: f64,
    threads: usize,
    peak_rss_bytes: Option<u64>,
    csv: Option<String>,
    plots: Option<String>,
    top: Vec<FunctionRow>,
}

/// The longest run `basin boolean sample` starts without --force, in seconds.
const MAX_UNFORCED_S: f64 = 6.0 * 3600.0;
/// The pilot that times sampling stops once it has taken this long, in seconds.
const PILOT_S: f64 = 0.2;

impl BooleanCommand {
    /// The checks that need no sampling: see [`SampleArgs::check`].
    pub fn check(&self) -> Result<()> {
        match self {
            BooleanCommand::Sample(args) => args.check(),
        }
    }
}

impl SampleArgs {
    /// The network of the flags: ReLU on the 7 inputs of the cube.
    fn spec(&self) -> FcnSpec {
        FcnSpec {
            hidden: self.hidden.0.clone(),
            sigma_w: self.sigma_w,
            sigma_b: self.sigma_b,
            ..FcnSpec::paper(7)
        }
    }

    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The checks that need no sampling: at least one sample and one thread, a valid network,
    /// and the samplers' buffers (one set per thread) within the memory available.
    pub fn check(&self) -> Result<()> {
        ensure!(self.samples > 0, "--samples must be at least 1");
        check_thread_count("--threads", self.threads())?;
        let spec = self.spec();
        spec.validate()?;
        let params = spec.checked_n_params().unwrap_or(usize::MAX) as u64;
        // Per thread: the parameters three times (random words, normals, θ) and two layers of
        // activations on the 128 inputs, all 4 bytes each; the sampler itself holds the layout.
        let per_thread = params
            .saturating_mul(3)
            .saturating_add(256u64.saturating_mul(spec.max_width() as u64));
        let values = per_thread.saturating_mul(self.threads() as u64 + 1);
        memory::check_count(
            values,
            4,
            || format!("sampling networks of hidden widths {:?}", spec.hidden),
            "give narrower hidden layers with --hidden, or fewer --threads",
        )?;
        Ok(())
    }
}

/// Times sampling on a pilot of doubling size until it takes [`PILOT_S`], and refuses a run
/// estimated to take longer than [`MAX_UNFORCED_S`] unless `force`; returns the estimate in
/// seconds.
fn estimate_time(
    sampler: &BooleanSampler,
    pool: &rayon::ThreadPool,
    args: &SampleArgs,
) -> Result<f64> {
    let mut n: u64 = 1024;
    let rate = loop {
        let start = Instant::now();
        pool.install(|| sampler.sample(n.min(args.samples), args.seed))?;
        let took = start.elapsed().as_secs_f64();
        if took >= PILOT_S || n >= args.samples {
            break n.min(args.samples) as f64 / took.max(1e-9);
        }
        n = n.saturating_mul(2);
    };
    let estimate = args.samples as f64 / rate;
    ensure!(
        args.force || estimate <= MAX_UNFORCED_S,
        "--samples {} would take about {} at the {rate:.0} samples/s a pilot measured on {} \
         threads; give fewer --samples, or --force to run it anyway",
        args.samples,
        human_duration(estimate),
        args.threads()
    );
    Ok(estimate)
}

/// Seconds as a rounded duration in the largest fitting unit.
fn human_duration(s: f64) -> String {
    const UNITS: [(f64, &str); 4] = [
        (365.25 * 86400.0, "years"),
        (86400.0, "days"),
        (3600.0, "hours"),
        (60.0, "minutes"),
    ];
    match UNITS.iter().find(|(u, _)| s >= *u) {
        Some((u, name)) if s / u < 1e4 => format!("{:.1} {name}", s / u),
        Some((u, name)) => format!("{:.2e} {name}", s / u),
        None => format!("{s:.1} seconds"),
    }
}

/// Runs a `basin boolean` command.
pub fn run(cmd: BooleanCommand, quiet: bool) -> Result<()> {
    match cmd {
        BooleanCommand::Sample(args) => run_sample(*args, quiet),
    }
}

fn run_sample(args: SampleArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let spec = args.spec();
    let sampler = BooleanSampler::new(&spec)?;
    let threads = args.threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the sampling threads")?;
    let estimate = estimate_time(&sampler, &pool, &args)?;
    if !quiet && estimate > 60.0 {
        eprintln!(
            "sampling {} networks: about {} (from a timed pilot)",
            args.samples,
            human_duration(estimate)
        );
    }
    let bar = progress_bar(args.samples, quiet);
    let sample_start = Instant::now();
    let counts = pool.install(|| {
        sampler.sample_with_progress(args.samples, args.seed, &|done| bar.set_position(done))
    })?;
    let sample_s = sample_start.elapsed().as_secs_f64();
    bar.set_message("sorting the functions");
    let top_rows = pool.install(|| counts.rows(&counts.top(args.top), 1));
    let mut plot_points = PlotPoints::default();
    if args.out.is_some() || args.plots.is_some() {
        bar.set_message("frequency table: LZ complexities");
        let sorted = pool.install(|| counts.sorted());
        let mut csv = args.out.as_deref().map(CsvWriter::create).transpose()?;
        for (k, chunk) in sorted.chunks(CSV_CHUNK).enumerate() {
            let rows = pool.install(|| counts.rows(chunk, (k * CSV_CHUNK) as u64 + 1));
            if let Some(csv) = csv.as_mut() {
                csv.write_rows(&rows)?;
            }
            plot_points.add(&rows);
        }
        if let Some(csv) = csv {
            csv.finish()?;
        }
    }
    if let Some(dir) = &args.plots {
        bar.set_message("plots");
        write_plots(dir, &plot_points, &counts)?;
    }
    bar.finish_and_clear();
    let output = SampleOutput {
        samples: counts.total(),
        distinct: counts.distinct(),
        samples_per_second: counts.total() as f64 / sample_s,
        wall_s: start.elapsed().as_secs_f64(),
        sample_s,
        seed: args.seed,
        hidden: spec.hidden.clone(),
        sigma_w: spec.sigma_w,
        sigma_b: spec.sigma_b,
        threads,
        peak_rss_bytes: peak_rss_bytes(),
        csv: args.out.as_ref().map(|p| p.display().to_string()),
        plots: args.plots.as_ref().map(|p| p.display().to_string()),
        top: top_rows,
    };
    print_output(&output, &spec, args.json)
}

fn progress_bar(samples: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(samples);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} samples · {per_sec} · {elapsed} · ETA {eta} {msg}",
        )
        .expect("valid template"),
    );
    bar
}

fn print_output(out: &SampleOutput, spec: &FcnSpec, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(out)?);
        return Ok(());
    }
    let arch: Vec<String> = spec.widths().iter().map(usize::to_string).collect();
    println!(
        "{} samples of a {} ReLU net (σ_w {}, σ_b {}, seed {}): {} distinct functions",
        out.samples,
        arch.join("-"),
        spec.sigma_w,
        spec.sigma_b,
        out.seed,
        out.distinct
    );
    println!(
        "sampling {:.2} s on {} threads ({:.0} samples/s); {:.2} s in all",
        out.sample_s, out.threads, out.samples_per_second, out.wall_s
    );
    println!(
        "{:>5}  {:<32}  {:>10}  {:>10}  {:>23}  {:>4}  {:>6}",
        "rank",
        "function (hex, bit i = f(x_i))",
        "count",
        "P(f)",
        "95% CI (Wilson)",
        "ones",
        "K_LZ"
    );
    for r in &out.top {
        println!(
            "{:>5}  {}  {:>10}  {:>10.4e}  [{:.4e}, {:.4e}]  {:>4}  {:>6.2}",
            r.rank,
            r.function,
            r.count,
            r.probability,
            r.ci_low,
            r.ci_high,
            r.ones,
            r.lz_complexity
        );
    }
    if let Some(csv) = &out.csv {
        println!("frequency table: {csv}");
    }
    if let Some(dir) = &out.plots {
        println!("plots: {dir}");
    }
    Ok(())
}

/// The frequency table as CSV, written to a temporary file and renamed into place
/// ([`AtomicFile`]: never over a special file, no temporary left behind).
struct CsvWriter {
    file: AtomicFile,
}

impl CsvWriter {
    fn create(path: &Path) -> Result<Self> {
        let file = AtomicFile::create(path).context("--out")?;
        let mut w = Self { file };
        w.line("rank,function,count,probability,ci_low,ci_high,ones,lz_complexity")?;
        Ok(w)
    }

    fn line(&mut self, s: &str) -> Result<()> {
        writeln!(self.file, "{s}").with_context(|| format!("writing {}", self.file.tmp().display()))
    }

    fn write_rows(&mut self, rows: &[FunctionRow]) -> Result<()> {
        for r in rows {
            writeln!(
                self.file,
                "{},{},{},{:e},{:e},{:e},{},{}",
                r.rank,
                function_hex(r.function),
                r.count,
                r.probability,
                r.ci_low,
                r.ci_high,
                r.ones,
                r.lz_complexity
            )
            .with_context(|| format!("writing {}", self.file.tmp().display()))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        Ok(self.file.commit()?)
    }
}

/// What the plots need from the whole table, kept small: the rank–frequency curve at the
/// first and last rank of every count (it is flat in between), and each distinct
/// (complexity, count) pair once.
#[derive(Debug, Default)]
struct PlotPoints {
    rank_count: Vec<(u64, u64)>,
    lz_count: std::collections::BTreeSet<(u64, u64)>,
}

impl PlotPoints {
    fn add(&mut self, rows: &[FunctionRow]) {
        for (k, r) in rows.iter().enumerate() {
            let last_of_run = rows.get(k + 1).is_none_or(|next| next.count != r.count);
            let first_of_run = self.rank_count.last().is_none_or(|&(_, c)| c != r.count);
            if first_of_run || last_of_run {
                self.rank_count.push((r.rank, r.count));
            }
            self.lz_count.insert((r.lz_complexity.to_bits(), r.count));
        }
    }
}

fn write_plots(dir: &Path, points: &PlotPoints, counts: &FunctionCounts) -> Result<()> {
    basin_data::atomic::create_dir(dir).context("--plots")?;
    let n = counts.total() as f64;
    let log_p = |c: u64| (c as f64 / n).log10();
    let caption = format!(
        "{} samples, {} distinct functions",
        counts.total(),
        counts.distinct()
    );
    let rank = ScatterPlot {
        title: format!("rank–frequency ({caption})"),
        x_label: "log10 rank".into(),
        y_label: "log10 P(f)".into(),
        series: vec![Series {
            label: "functions (first and last rank of each count)".into(),
            points: points
                .rank_count
                .iter()
                .map(|&(r, c)| ((r as f64).log10(), log_p(c)))
                .collect(),
        }],
        legend: LegendCorner::UpperRight,
        ..ScatterPlot::default()
    };
    let lz = ScatterPlot {
        title: format!("P(f) against LZ complexity ({caption})"),
        x_label: "K_LZ(f) (Lempel–Ziv, Valle-Pérez et al. 2018)".into(),
        y_label: "log10 P(f)".into(),
        series: vec![Series {
            label: "functions (each complexity–count pair once)".into(),
            points: points
                .lz_count
                .iter()
                .map(|&(k, c)| (f64::from_bits(k), log_p(c)))
                .collect(),
        }],
        legend: LegendCorner::UpperRight,
        ..ScatterPlot::default()
    };
    for (name, plot) in [("rank_frequency", &rank), ("prior_vs_lz", &lz)] {
        plot.write_png(&dir.join(format!("{name}.png")), PLOT_SIZE)?;
        plot.write_svg(&dir.join(format!("{name}.svg")), PLOT_SIZE)?;
    }
    Ok(())
}
