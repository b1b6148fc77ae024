//! `basin prior`: log P(f), the Bayesian prior probability of a function (a labelling of an
//! ordered input set) under a Gaussian-process prior, by EP, Laplace, minimax tilting or
//! annealed SMC (the last two with a standard error).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use basin_data::npy::NpyData;
use basin_nn::FcnObjective;
use basin_nn::loss::predict;
use basin_prior::ep::{EpConfig, EpPrecision, EpSchedule, ep};
use basin_prior::estimate::Estimate;
use basin_prior::faer::{Mat, MatRef, Par};
use basin_prior::laplace::{LaplaceConfig, laplace};
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::{SmcConfig, SmcMover, smc};
use basin_prior::tilting::{TiltingConfig, tilting};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::common::{MeasureArgs, spinner};

/// The likelihood flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LikelihoodArg {
    /// Noise-free step: P(sign z = y), z ~ N(0, K) (the paper's text).
    Step,
    /// Probit Φ(y·z) = the step likelihood on K + I (the paper's code, through GPy).
    Probit,
}

/// The estimator flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// EP with parallel updates (GPy's loop: same start, stopping rule and log Z).
    Ep,
    /// EP with sequential rank-1 updates in a seeded random order.
    EpSequential,
    /// The Laplace approximation (probit only).
    Laplace,
    /// Botev's minimax-tilted importance sampler: an unbiased estimate with a standard error.
    Tilting,
    /// Annealed sequential Monte Carlo over the noise level: an unbiased estimate with a
    /// standard error from independent replicates, for the step likelihood where tilting fails.
    /// About 1.5 minutes per replicate of 128 particles at N = 1500 (exact HMC moves, plus one
    /// pilot replicate that fixes the levels), where a replicate's log Ẑ spreads by about 0.3
    /// nats, so s.e. ≈ 0.3/√R nats: 0.1 with 8 replicates in about 14 minutes on 2 cores
    /// (README, Benchmarks).
    Smc,
}

/// The smc mover flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MoverArg {
    /// Exact HMC of the augmented u = z + sε, a Gaussian truncated to the orthant
    /// (Pakman–Paninski): no rejections however sharp the constraints.
    Hmc,
    /// Elliptical slice sampling of z on the ellipses of each level's EP approximation.
    Slice,
}

impl MoverArg {
    /// The flag of a library mover.
    const fn of(m: SmcMover) -> Self {
        match m {
            SmcMover::ExactHmc => MoverArg::Hmc,
            SmcMover::EllipticalSlice => MoverArg::Slice,
        }
    }

    /// The library's mover.
    fn mover(self) -> SmcMover {
        match self {
            MoverArg::Hmc => SmcMover::ExactHmc,
            MoverArg::Slice => SmcMover::EllipticalSlice,
        }
    }
}

/// The EP arithmetic flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// f32 early posteriors, f64 near convergence and for log Z.
    Mixed,
    /// f64 throughout.
    F64,
}

/// Arguments of `basin prior`. Give either --kernel with --labels, or --model with its data.
#[derive(Debug, Args)]
pub struct PriorArgs {
    /// The kernel matrix K (n × n `.npy`, float64 or float32). Needs --labels; excludes --model.
    #[arg(
        long,
        value_name = "K.npy",
        requires = "labels",
        conflicts_with = "model",
        required_unless_present = "model"
    )]
    kernel: Option<PathBuf>,
    /// The function: n labels (`.npy`, ±1 or 0/1, any integer or float dtype).
    #[arg(long, value_name = "y.npy", requires = "kernel")]
    labels: Option<PathBuf>,
    /// A model mode: the function is the model's predicted labels on the chosen set
    /// (`--set train+test` gives S then T, the paper's input set) and K is the NNGP kernel of
    /// the model's architecture on those inputs.
    #[command(flatten)]
    measure: ModelMode,
    /// step (noise-free, P(sign z = y)) or probit (Φ(y·z), GPy's default Bernoulli).
    #[arg(long, value_enum, default_value_t = LikelihoodArg::Probit)]
    likelihood: LikelihoodArg,
    /// ep (parallel EP), ep-sequential, laplace (probit only), tilting (importance
    /// sampling with a standard error) or smc (annealed SMC with a standard error).
    #[arg(long, value_enum, default_value_t = MethodArg::Ep)]
    method: MethodArg,
    /// EP stops when the mean squared changes of the site precisions and natural means in a
    /// sweep are both below this (GPy's epsilon).
    #[arg(long, default_value_t = 1e-6)]
    epsilon: f64,
    /// EP damping in (0, 1]: the fraction of each site update applied (1 = none, GPy's).
    #[arg(long, default_value_t = 1.0)]
    damping: f64,
    /// The most EP sweeps (or Laplace Newton steps); reaching it reports converged: false.
    #[arg(long, default_value_t = 1000)]
    max_sweeps: usize,
    /// Seed of the site order of ep-sequential, and of tilting's and smc's samplers.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Importance samples of tilting (rounded up to a multiple of 128); with
    /// --target-std-err, the first batch.
    #[arg(long, default_value_t = 10_240)]
    samples: usize,
    /// Tilting keeps drawing samples (smc: running replicates) until log P(f)'s standard
    /// error (nats) is at most this, or --max-samples (--max-replicates) is reached (then
    /// converged is false).
    #[arg(long)]
    target_std_err: Option<f64>,
    /// The most samples tilting draws when chasing --target-std-err.
    #[arg(long, default_value_t = 1_048_576)]
    max_samples: usize,
    /// Particles of each smc replicate.
    #[arg(long, default_value_t = SmcConfig::default().particles)]
    particles: usize,
    /// Independent smc replicates (at least 2; the standard error comes from their spread);
    /// with --target-std-err, the first batch.
    #[arg(long, default_value_t = SmcConfig::default().replicates)]
    replicates: usize,
    /// The most smc replicates when chasing --target-std-err.
    #[arg(long, default_value_t = SmcConfig::default().max_replicates)]
    max_replicates: usize,
    /// The fewest sweeps per smc level, each one HMC trajectory or one elliptical-slice update
    /// per particle. Default: the mover's, 1 for hmc (whose levels are closely spaced) and 4
    /// for slice (which then runs more until the particles decorrelate, up to 100).
    #[arg(long)]
    moves: Option<usize>,
    /// How smc moves its particles: hmc (exact HMC on the augmented space, the default) or
    /// slice (elliptical slice on EP's ellipses; 2.5–3× slower at N = 1500).
    #[arg(long, value_enum, default_value_t = MoverArg::of(SmcConfig::default().mover))]
    mover: MoverArg,
    /// EP's arithmetic: mixed (the early posteriors in f32, twice as fast; the sweeps near
    /// the stopping rule and log Z in f64; the same sweeps as f64 and log Z within ~1e-10
    /// nats) or f64 (GPy's arithmetic throughout).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Mixed)]
    precision: PrecisionArg,
    /// Threads for EP's dense algebra (default: all CPUs). With two or more, EP's parallel
    /// schedule also checks the kernel's Cholesky factor on one thread while it starts on
    /// another. The value is the same for every thread count up to round-off (about 1e-14
    /// relative), and the same for a given count.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print one JSON object: log_prior (natural log), log10_prior, likelihood, method,
    /// converged, iterations, std_err (null where the method has none), jitter, wall_s,
    /// estimate_wall_s (the estimator alone, without reading the inputs),
    /// n_points in --model mode, for tilting samples, seed, ess, log_upper_bound and
    /// issues, and for smc mover, particles, replicates, seed, log_z_replicates,
    /// log_z_spread, temperatures, noise_levels, sweeps_per_level, mean_slice_tries,
    /// mean_bounces, cap_hits, violations, log_prior_probit, std_err_probit and issues.
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

/// What `basin prior` prints.
#[derive(Debug, Serialize)]
struct PriorOutput {
    log_prior: f64,
    log10_prior: f64,
    likelihood: &'static str,
    method: &'static str,
    converged: bool,
    iterations: usize,
    std_err: Option<f64>,
    jitter: f64,
    wall_s: f64,
    estimate_wall_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    n_points: Option<usize>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    tilting: Option<TiltingOutput>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    smc: Option<SmcOutput>,
}

/// The extra keys of `--method smc`.
#[derive(Debug, Serialize)]
struct SmcOutput {
    mover: &'static str,
    particles: usize,
    replicates: usize,
    seed: u64,
    log_z_replicates: Vec<f64>,
    log_z_spread: f64,
    temperatures: f64,
    noise_levels: Vec<f64>,
    pilot_schedule: bool,
    sweeps_per_level: f64,
    mean_slice_tries: f64,
    mean_bounces: f64,
    cap_hits: u64,
    violations: u64,
    log_prior_probit: Option<f64>,
    std_err_probit: Option<f64>,
    issues: Vec<String>,
}

/// What an estimator adds to the output.
#[derive(Default)]
struct Extras {
    tilting: Option<TiltingOutput>,
    smc: Option<SmcOutput>,
}

/// The extra keys of `--method tilting`.
#[derive(Debug, Serialize)]
struct TiltingOutput {
    samples: usize,
    seed: u64,
    ess: f64,
    log_upper_bound: f64,
    issues: Vec<String>,
}

/// Runs `basin prior`.
pub fn run_prior(args: PriorArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let (k, y, n_points) = match (&args.kernel, &args.labels, &args.measure.0) {
        (Some(k), Some(y), _) => {
            let (k, y) = load_kernel_labels(k, y)?;
            (k, y, None)
        }
        (_, _, Some(m)) => {
            let (k, y) = model_function(m)?;
            let n = y.len();
            (Kernel::Mat(k), y, Some(n))
        }
        _ => anyhow::bail!("give --kernel with --labels, or --model"),
    };
    let bar = spinner(quiet);
    bar.set_message(format!("log P(f) on {} points", y.len()));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let estimate_start = Instant::now();
    let (est, extras) = estimate(&args, k.as_ref(), &y)?;
    let estimate_wall_s = estimate_start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let out = PriorOutput {
        log_prior: est.log_p,
        log10_prior: est.log_p / std::f64::consts::LN_10,
        likelihood: est.likelihood.name(),
        method: est.method.name(),
        converged: est.converged,
        iterations: est.iterations,
        std_err: est.std_err,
        jitter: est.jitter,
        wall_s: start.elapsed().as_secs_f64(),
        estimate_wall_s,
        n_points,
        tilting: extras.tilting,
        smc: extras.smc,
    };
    print_output(&out, args.json)
}

fn estimate(args: &PriorArgs, k: MatRef<'_, f64>, y: &[f64]) -> Result<(Estimate, Extras)> {
    let lik = match args.likelihood {
        LikelihoodArg::Step => Likelihood::Step,
        LikelihoodArg::Probit => Likelihood::Probit,
    };
    let schedule = match args.method {
        MethodArg::Laplace => {
            let cfg = LaplaceConfig {
                max_iter: args.max_sweeps,
                ..LaplaceConfig::default()
            };
            return Ok((laplace(k, y, lik, &cfg)?, Extras::default()));
        }
        MethodArg::Tilting => return estimate_tilting(args, k, y, lik),
        MethodArg::Smc => return estimate_smc(args, k, y, lik),
        MethodArg::Ep => EpSchedule::Parallel,
        MethodArg::EpSequential => EpSchedule::Sequential,
    };
    let cfg = EpConfig {
        schedule,
        epsilon: args.epsilon,
        damping: args.damping,
        max_sweeps: args.max_sweeps,
        seed: args.seed,
        precision: match args.precision {
            PrecisionArg::Mixed => EpPrecision::Mixed,
            PrecisionArg::F64 => EpPrecision::F64,
        },
        par: ep_parallelism(args.threads)?,
        ..EpConfig::default()
    };
    Ok((ep(k, y, lik, &cfg, None)?.estimate, Extras::default()))
}

fn estimate_smc(
    args: &PriorArgs,
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Likelihood,
) -> Result<(Estimate, Extras)> {
    let tuned = SmcConfig::for_mover(args.mover.mover());
    let moves = args.moves.unwrap_or(tuned.moves);
    let cfg = SmcConfig {
        particles: args.particles,
        replicates: args.replicates,
        max_replicates: args.max_replicates.max(args.replicates),
        moves,
        max_moves: tuned.max_moves.max(moves),
        target_std_err: args.target_std_err,
        seed: args.seed,
        ..tuned
    };
    let r = smc(k, y, lik, &cfg)?;
    let d = &r.diagnostics;
    let levels: usize = d.replicates.iter().map(|r| r.sweeps.len()).sum();
    let sweeps: usize = d
        .replicates
        .iter()
        .map(|r| r.sweeps.iter().sum::<usize>())
        .sum();
    let out = SmcOutput {
        mover: cfg.mover.name(),
        particles: cfg.particles,
        replicates: d.replicates.len(),
        seed: cfg.seed,
        log_z_replicates: d.log_z_replicates.clone(),
        log_z_spread: d.log_z_spread,
        temperatures: d.mean_temperatures,
        noise_levels: d.replicates[0].noise_levels.clone(),
        pilot_schedule: d.pilot.as_ref().is_some_and(|p| p.reached_end),
        sweeps_per_level: sweeps as f64 / levels.max(1) as f64,
        mean_slice_tries: d.mean_tries,
        mean_bounces: d.mean_bounces,
        cap_hits: d.cap_hits,
        violations: d.violations,
        log_prior_probit: d.probit.map(|p| p.0),
        std_err_probit: d.probit.map(|p| p.1),
        issues: r.issues.clone(),
    };
    Ok((
        r.estimate,
        Extras {
            smc: Some(out),
            ..Extras::default()
        },
    ))
}

/// faer's parallelism for `--threads` (default: all CPUs).
fn ep_parallelism(threads: Option<usize>) -> Result<Par> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.unwrap_or(all);
    anyhow::ensure!(threads > 0, "--threads must be at least 1");
    Ok(if threads == 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    })
}

fn estimate_tilting(
    args: &PriorArgs,
    k: MatRef<'_, f64>,
    y: &[f64],
    lik: Likelihood,
) -> Result<(Estimate, Extras)> {
    let cfg = TiltingConfig {
        samples: args.samples,
        target_std_err: args.target_std_err,
        max_samples: args.max_samples.max(args.samples),
        seed: args.seed,
        ..TiltingConfig::default()
    };
    let r = tilting(k, y, lik, &cfg)?;
    let d = &r.diagnostics;
    let out = TiltingOutput {
        samples: d.samples,
        seed: d.seed,
        ess: d.ess,
        log_upper_bound: d.log_upper_bound,
        issues: d.issues(r.estimate.log_p, r.estimate.std_err.unwrap_or(f64::NAN)),
    };
    Ok((
        r.estimate,
        Extras {
            tilting: Some(out),
            ..Extras::default()
        },
    ))
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
    let ya = basin_data::npy::read(yp)
        .with_context(|| format!("reading the labels {}", yp.display()))?;
    let flat = ya.shape.len() == 1 || (ya.shape.len() == 2 && ya.shape.contains(&1));
    anyhow::ensure!(
        flat && ya.data.len() == n,
        "{}: expected {n} labels (one per kernel row) in a 1-D array, got shape {:?}",
        yp.display(),
        ya.shape
    );
    let values = match ka.data {
        NpyData::F64(v) => v,
        other => other.to_f64(),
    };
    Ok((Kernel::RowMajor { values, n }, ya.data.to_f64()))
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
    let (model, data) = m.load()?;
    let mut obj = FcnObjective::<f64>::from_dataset(&model.spec, &data)?;
    let all: Vec<usize> = (0..data.len()).collect();
    let mut logits = vec![0.0; data.len()];
    obj.logits(&model.theta, &all, &mut logits);
    let y: Vec<f64> = logits.iter().map(|&z| f64::from(predict(z))).collect();
    let k = basin_prior::kernel::nngp(&model.spec, data.features(), data.len())?;
    Ok((k, y))
}

fn print_output(out: &PriorOutput, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(out)?);
        return Ok(());
    }
    match out.std_err {
        Some(se) => println!(
            "log P(f)    {:.6} ± {:.6} nats (log10 {:.6})",
            out.log_prior, se, out.log10_prior
        ),
        None => println!(
            "log P(f)    {:.6} nats (log10 {:.6})",
            out.log_prior, out.log10_prior
        ),
    }
    println!("likelihood  {}", out.likelihood);
    println!("method      {}", out.method);
    println!(
        "converged   {} after {} iterations",
        out.converged, out.iterations
    );
    if out.jitter > 0.0 {
        println!(
            "jitter      {:e} added to the kernel's diagonal",
            out.jitter
        );
    }
    if let Some(n) = out.n_points {
        println!("points      {n}");
    }
    if let Some(t) = &out.tilting {
        println!(
            "samples     {} (seed {}, effective {:.0}); upper bound {:.6}",
            t.samples, t.seed, t.ess, t.log_upper_bound
        );
        for issue in &t.issues {
            println!("issue       {issue}");
        }
    }
    if let Some(m) = &out.smc {
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
        if m.mover == "hmc" {
            println!(
                "hmc         {:.1} bounces per trajectory, {} capped, {} violations",
                m.mean_bounces, m.cap_hits, m.violations
            );
        }
        if let (Some(p), Some(se)) = (m.log_prior_probit, m.std_err_probit) {
            println!("probit      {p:.6} ± {se:.6} nats (the same paths at s = 1)");
        }
        for issue in &m.issues {
            println!("issue       {issue}");
        }
    }
    println!(
        "wall        {:.3} s (estimator {:.3} s)",
        out.wall_s, out.estimate_wall_s
    );
    Ok(())
}
