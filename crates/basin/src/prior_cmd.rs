//! `basin prior`: log P(f), the Bayesian prior probability of a function (a labelling of an
//! ordered input set) under a Gaussian-process prior, by EP, Laplace, minimax tilting or
//! annealed SMC (the last two with a standard error).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use basin_data::memory;
use basin_data::npy::NpyData;
use basin_nn::FcnObjective;
use basin_nn::loss::predict;
use basin_prior::dispatch::{Diagnostics, EstimatorOptions, Estimators};
use basin_prior::ep::EpPrecision;
use basin_prior::estimate::{Method, Outcome};
use basin_prior::faer::{Mat, MatRef};
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::{SmcMover, SmcSummary};
use basin_prior::tilting::TiltingSummary;
use clap::Args;
use serde::Serialize;

use crate::common::{MeasureArgs, check_thread_count, spinner};

/// Arguments of `basin prior`. Give either --kernel with --labels, or --model with its data.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").args(["kernel", "kernel_sums", "model"]).required(true))]
pub struct PriorArgs {
    /// The kernel matrix K (n × n `.npy`, float64 or float32). Needs --labels; excludes --model.
    #[arg(
        long,
        value_name = "K.npy",
        requires = "labels",
        conflicts_with = "model"
    )]
    kernel: Option<PathBuf>,
    /// An empirical kernel's Monte Carlo sums (`basin kernel --method mc --sums`, or
    /// `basin kernel merge --sums`) in place of --kernel: log P(f) on their kernel, with its
    /// Monte Carlo error by the jackknife over their sample blocks (mc_std_err). Needs
    /// --labels.
    #[arg(
        long,
        value_name = "S.safetensors",
        requires = "labels",
        conflicts_with = "model"
    )]
    kernel_sums: Option<PathBuf>,
    /// The function: n labels (`.npy`, ±1 or 0/1, any integer or float dtype).
    #[arg(long, value_name = "y.npy", conflicts_with = "model")]
    labels: Option<PathBuf>,
    /// A model mode: the function is the model's predicted labels on the chosen set
    /// (`--set train+test` gives S then T, the paper's input set) and K is the NNGP kernel of
    /// the model's architecture on those inputs.
    #[command(flatten)]
    measure: ModelMode,
    /// step (noise-free, P(sign z = y)) or probit (Φ(y·z), GPy's default Bernoulli).
    #[arg(long, value_enum, default_value_t = Likelihood::Probit)]
    likelihood: Likelihood,
    /// ep (parallel EP), ep-sequential, laplace (probit only), tilting (importance
    /// sampling with a standard error) or smc (annealed SMC with a standard error).
    #[arg(long, value_enum, default_value_t = Method::Ep)]
    method: Method,
    /// EP stops when the mean squared changes of the site precisions and natural means in a
    /// sweep are both below this (GPy's epsilon).
    #[arg(long, default_value_t = EstimatorOptions::default().epsilon)]
    epsilon: f64,
    /// EP damping in (0, 1]: the fraction of each site update applied (1 = none, GPy's).
    #[arg(long, default_value_t = EstimatorOptions::default().damping)]
    damping: f64,
    /// The most EP sweeps (or Laplace Newton steps); reaching it reports converged: false.
    #[arg(long, default_value_t = EstimatorOptions::default().max_sweeps)]
    max_sweeps: usize,
    /// Seed of the site order of ep-sequential, and of tilting's and smc's samplers.
    #[arg(long, default_value_t = EstimatorOptions::default().seed)]
    seed: u64,
    /// Importance samples of tilting (rounded up to a multiple of 128); with
    /// --target-std-err, the first batch.
    #[arg(long, default_value_t = EstimatorOptions::default().samples)]
    samples: usize,
    /// Tilting keeps drawing samples (smc: running replicates) until log P(f)'s standard
    /// error (nats) is at most this, or --max-samples (--max-replicates) is reached (then
    /// converged is false).
    #[arg(long)]
    target_std_err: Option<f64>,
    /// The most samples tilting draws when chasing --target-std-err.
    #[arg(long, default_value_t = EstimatorOptions::default().max_samples)]
    max_samples: usize,
    /// Particles of each smc replicate.
    #[arg(long, default_value_t = EstimatorOptions::default().particles)]
    particles: usize,
    /// Independent smc replicates (at least 2; the standard error comes from their spread);
    /// with --target-std-err, the first batch.
    #[arg(long, default_value_t = EstimatorOptions::default().replicates)]
    replicates: usize,
    /// The most smc replicates when chasing --target-std-err.
    #[arg(long, default_value_t = EstimatorOptions::default().max_replicates)]
    max_replicates: usize,
    /// The fewest sweeps per smc level, each one HMC trajectory or one elliptical-slice update
    /// per particle. Default: the mover's, 1 for hmc (whose levels are closely spaced) and 4
    /// for slice (which then runs more until the particles decorrelate, up to 100).
    #[arg(long)]
    moves: Option<usize>,
    /// How smc moves its particles: hmc (exact HMC on the augmented space, the default) or
    /// slice (elliptical slice on EP's ellipses).
    #[arg(long, value_enum, default_value_t = EstimatorOptions::default().mover)]
    mover: SmcMover,
    /// EP's arithmetic: mixed (the early posteriors in f32, twice as fast; the sweeps near
    /// the stopping rule and log Z in f64; the same sweeps as f64 and log Z within ~1e-10
    /// nats) or f64 (GPy's arithmetic throughout).
    #[arg(long, value_enum, default_value_t = EstimatorOptions::default().precision)]
    precision: EpPrecision,
    /// Threads for EP's dense algebra (default: all CPUs). With two or more, EP's parallel
    /// schedule also checks the kernel's Cholesky factor on one thread while it starts on
    /// another. The value is the same for every thread count up to round-off (about 1e-14
    /// relative), and the same for a given count.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print one JSON object: log_prior (natural log), log10_prior, likelihood, method,
    /// converged, iterations, std_err (null where the method has none), jitter, issues,
    /// wall_s, estimate_wall_s (the estimator alone, without reading the inputs), n_points
    /// in --model mode; for ep f32_factorisations, redone_sweeps and stopped_at_floor (EP
    /// stopped at its sites' rounding floor with log Z settled, docs/estimators.md); for
    /// tilting samples, seed, ess and log_upper_bound; for smc mover, particles, replicates, seed,
    /// log_z_replicates, log_z_spread, temperatures, noise_levels, pilot_schedule,
    /// sweeps_per_level, mean_slice_tries, mean_bounces, cap_hits, violations,
    /// log_prior_probit and std_err_probit; with --kernel-sums mc_std_err and
    /// mc_leave_one_out (log P(f) without each block). A log P(f) that is not a finite number is printed
    /// as null, with the issues, and the command then exits with status 1.
    #[arg(long)]
    json: bool,
}

/// The model mode's flags: [`MeasureArgs`] with `--model` made optional, present when
/// `--model` is given. (clap's `Option<MeasureArgs>` flatten does not see `--model` because
/// MeasureArgs itself flattens other argument groups.)
#[derive(Debug)]
struct ModelMode(Option<MeasureArgs>);

impl clap::FromArgMatches for ModelMode {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut m.clone())
    }

    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        if m.try_contains_id("model").unwrap_or(false) {
            Ok(ModelMode(Some(MeasureArgs::from_arg_matches_mut(m)?)))
        } else {
            Ok(ModelMode(None))
        }
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for ModelMode {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        MeasureArgs::augment_args(cmd).mut_arg("model", |a| a.required(false))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// What `basin prior` prints: the estimator's outcome and the command's own keys.
#[derive(Debug, Serialize)]
struct PriorReport {
    #[serde(flatten)]
    outcome: Outcome<Diagnostics>,
    log10_prior: f64,
    wall_s: f64,
    estimate_wall_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    n_points: Option<usize>,
    /// The jackknife over an empirical kernel's blocks (with --kernel-sums).
    #[serde(skip_serializing_if = "Option::is_none")]
    mc_std_err: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mc_leave_one_out: Option<Vec<f64>>,
}

/// n × n float64 matrices an estimator holds besides the kernel it is given: its column-major
/// copy, the Cholesky factors and the posterior covariance.
const ESTIMATOR_KERNEL_COPIES: u64 = 4;

impl PriorArgs {
    /// The checks that need no input: thread counts and the memory of tilting's samples.
    pub fn check(&self) -> Result<()> {
        if let Some(threads) = self.threads {
            check_thread_count("--threads", threads)?;
        }
        if self.method == Method::Tilting {
            let most = match self.target_std_err {
                Some(_) => self.max_samples.max(self.samples),
                None => self.samples,
            };
            // Each sample's log weight, its block's copy and the joined copy.
            memory::check_count(
                most as u64,
                3 * 8,
                || format!("tilting's {most} importance samples"),
                "use fewer --samples (and --max-samples with --target-std-err)",
            )?;
        }
        Ok(())
    }
}

/// Refuses an estimate on `n` points whose matrices and (for smc) particles would not fit in
/// memory.
fn check_estimate_memory(args: &PriorArgs, n: usize) -> Result<()> {
    let n64 = n as u64;
    let mut need = n64
        .saturating_mul(n64)
        .saturating_mul(8 * ESTIMATOR_KERNEL_COPIES);
    if args.method == Method::Smc {
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let running = args.replicates.min(args.threads.unwrap_or(threads)).max(1) as u64;
        let particles = n64.saturating_mul(args.particles as u64).saturating_mul(16);
        need = need.saturating_add(particles.saturating_mul(running));
    }
    memory::check(
        need,
        || format!("{} on {n} points", args.method.name()),
        "use fewer points (a smaller kernel, or a smaller --set or split in --model mode), \
         or fewer --particles for smc",
    )?;
    Ok(())
}

/// Runs `basin prior` (its flags checked by [`PriorArgs::check`]).
pub fn run_prior(args: PriorArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let mut sums = None;
    let (k, y, n_points) = match (&args.kernel, &args.labels, &args.measure.0) {
        (Some(k), Some(y), _) => {
            let (k, y) = load_kernel_labels(k, y)?;
            (k, y, None)
        }
        (None, Some(y), None) if args.kernel_sums.is_some() => {
            let path = args.kernel_sums.as_deref().expect("matched");
            let s = basin_prior::mc_file::read(path)?;
            let k = s
                .kernel()
                .with_context(|| format!("the kernel of {}", path.display()))?;
            let y = load_labels(y, k.nrows())?;
            sums = Some(s);
            (Kernel::Mat(k), y, None)
        }
        (_, _, Some(m)) => {
            let (k, y) = model_function(m)?;
            let n = y.len();
            (Kernel::Mat(k), y, Some(n))
        }
        _ => anyhow::bail!(
            "give the function and its kernel: --kernel K.npy with --labels y.npy, or --model \
             with the data the model labels (--data, --set)"
        ),
    };
    check_estimate_memory(&args, y.len())?;
    let bar = spinner(quiet);
    bar.set_message(format!("log P(f) on {} points", y.len()));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let estimators = estimators(&args)?;
    let estimate_start = Instant::now();
    let outcome = estimators.estimate(args.method, k.as_ref(), &y, args.likelihood)?;
    let estimate_wall_s = estimate_start.elapsed().as_secs_f64();
    let jackknife = match &sums {
        Some(s) => {
            bar.set_message(format!(
                "the Monte Carlo error over {} blocks",
                s.meta.blocks
            ));
            Some(basin_prior::mc_error::jackknife(
                s,
                outcome.estimate.log_p,
                |k| {
                    Ok(estimators
                        .estimate(args.method, k, &y, args.likelihood)?
                        .estimate
                        .log_p)
                },
            )?)
        }
        None => None,
    };
    bar.finish_and_clear();
    let report = PriorReport {
        mc_std_err: jackknife.as_ref().map(|j| j.std_err),
        mc_leave_one_out: jackknife.map(|j| j.leave_one_out),
        log10_prior: outcome.estimate.log_p / std::f64::consts::LN_10,
        outcome,
        wall_s: start.elapsed().as_secs_f64(),
        estimate_wall_s,
        n_points,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    refuse_non_finite(&report)
}

/// An error (so a non-zero exit) after the report when the estimate is not a finite number:
/// the report names the issues, and a script that reads only the exit status sees the failure.
fn refuse_non_finite(report: &PriorReport) -> Result<()> {
    let est = &report.outcome.estimate;
    anyhow::ensure!(
        est.log_p.is_finite(),
        "{} gave no finite log P(f) ({}): see the issues above",
        est.method.name(),
        est.log_p
    );
    Ok(())
}

/// Every estimator's settings from the flags.
fn estimators(args: &PriorArgs) -> Result<Estimators> {
    let options = EstimatorOptions {
        epsilon: args.epsilon,
        damping: args.damping,
        max_sweeps: args.max_sweeps,
        seed: args.seed,
        samples: args.samples,
        target_std_err: args.target_std_err,
        max_samples: args.max_samples,
        particles: args.particles,
        replicates: args.replicates,
        max_replicates: args.max_replicates,
        moves: args.moves,
        mover: args.mover,
        precision: args.precision,
        threads: args.threads,
    };
    Ok(options.estimators()?)
}

/// The kernel (row-major, as `.npy` stores it) and the labels. The kernel stays in its file's
/// layout: the estimators copy it once, column-major, when they check it.
fn load_kernel_labels(kp: &Path, yp: &Path) -> Result<(Kernel, Vec<f64>)> {
    let ka = basin_data::npy::read(kp)
        .with_context(|| format!("reading the kernel {}", kp.display()))?;
    anyhow::ensure!(
        ka.shape.len() == 2 && ka.shape[0] == ka.shape[1],
        "{}: the kernel must be a square 2-D array, got shape {:?}",
        kp.display(),
        ka.shape
    );
    let n = ka.shape[0];
    let y = load_labels(yp, n)?;
    let values = match ka.data {
        NpyData::F64(v) => v,
        other => other.to_f64(),
    };
    Ok((Kernel::RowMajor { values, n }, y))
}

/// The `n` labels of `yp`, one per kernel row.
fn load_labels(yp: &Path, n: usize) -> Result<Vec<f64>> {
    let ya = basin_data::npy::read(yp)
        .with_context(|| format!("reading the labels {}", yp.display()))?;
    let flat = ya.shape.len() == 1 || (ya.shape.len() == 2 && ya.shape.contains(&1));
    anyhow::ensure!(
        flat && ya.data.len() == n,
        "{}: expected {n} labels (one per kernel row) in a 1-D array, got shape {:?}",
        yp.display(),
        ya.shape
    );
    Ok(ya.data.to_f64())
}

/// A kernel as read from a file (row-major) or computed (a faer matrix).
enum Kernel {
    RowMajor { values: Vec<f64>, n: usize },
    Mat(Mat<f64>),
}

impl Kernel {
    fn as_ref(&self) -> MatRef<'_, f64> {
        match self {
            Kernel::RowMajor { values, n } => MatRef::from_row_major_slice(values, *n, *n),
            Kernel::Mat(m) => m.as_ref(),
        }
    }
}

/// The model's predicted labels on the chosen set and the NNGP kernel of its spec there.
fn model_function(m: &MeasureArgs) -> Result<(Mat<f64>, Vec<f64>)> {
    let (network, data) = m.load()?;
    let basin_conv::Network::Fcn(model) = network else {
        anyhow::bail!(
            "{} is {}: log P(f) with --model needs the network's NNGP kernel, and basin has the \
             analytic kernel of fully-connected nets only",
            m.model.display(),
            network.describe()
        );
    };
    let n = data.len() as u64;
    memory::check_count(
        n.saturating_mul(n),
        8,
        || format!("the NNGP kernel of {n} points of {}", m.data.data),
        "measure fewer points: choose --set train, test or train+test with smaller \
         --train-size and --test-size",
    )?;
    let mut obj = FcnObjective::<f64>::from_dataset(&model.spec, &data)?;
    let all: Vec<usize> = (0..data.len()).collect();
    let mut logits = vec![0.0; data.len()];
    obj.logits(&model.theta, &all, &mut logits);
    let y: Vec<f64> = logits.iter().map(|&z| f64::from(predict(z))).collect();
    let k = basin_prior::kernel::nngp(&model.spec, data.features(), data.len())?;
    Ok((k, y))
}

/// The report as text, one quantity per line.
fn print_report(r: &PriorReport) {
    let est = &r.outcome.estimate;
    match est.std_err {
        Some(se) => println!(
            "log P(f)    {:.6} ± {:.6} nats (log10 {:.6})",
            est.log_p, se, r.log10_prior
        ),
        None => println!(
            "log P(f)    {:.6} nats (log10 {:.6})",
            est.log_p, r.log10_prior
        ),
    }
    if let Some(se) = r.mc_std_err {
        println!(
            "MC error    ± {se:.6} nats: the kernel's Monte Carlo error, by the jackknife over its {} blocks",
            r.mc_leave_one_out.as_ref().map_or(0, Vec::len)
        );
    }
    println!("likelihood  {}", est.likelihood.name());
    println!("method      {}", est.method.name());
    println!(
        "converged   {} after {} iterations",
        est.converged, est.iterations
    );
    if est.jitter > 0.0 {
        println!(
            "jitter      {:e} added to the kernel's diagonal",
            est.jitter
        );
    }
    if let Some(n) = r.n_points {
        println!("points      {n}");
    }
    match &r.outcome.diagnostics {
        Diagnostics::Tilting(d) => print_tilting(&d.summary()),
        Diagnostics::Smc(d) => print_smc(&d.summary()),
        Diagnostics::Ep(_) | Diagnostics::Laplace => {}
    }
    for issue in &r.outcome.issues {
        println!("issue       {issue}");
    }
    println!(
        "wall        {:.3} s (estimator {:.3} s)",
        r.wall_s, r.estimate_wall_s
    );
}

fn print_tilting(t: &TiltingSummary) {
    println!(
        "samples     {} (seed {}, effective {:.0}); upper bound {:.6}",
        t.samples, t.seed, t.ess, t.log_upper_bound
    );
}

fn print_smc(m: &SmcSummary) {
    println!(
        "smc         {} mover, {} particles × {} replicates (seed {}); {:.1} levels, {:.1} \
         sweeps per level; log Ẑ_r spread {:.3}",
        m.mover,
        m.particles,
        m.replicates,
        m.seed,
        m.temperatures,
        m.sweeps_per_level,
        m.log_z_spread
    );
    if m.mover == SmcMover::ExactHmc.name() {
        println!(
            "hmc         {:.1} bounces per trajectory, {} capped, {} violations",
            m.mean_bounces, m.cap_hits, m.violations
        );
    }
    if let (Some(p), Some(se)) = (m.log_prior_probit, m.std_err_probit) {
        println!("probit      {p:.6} ± {se:.6} nats (the same paths at s = 1)");
    }
}
