//! `basin hessian`: the Hessian spectrum of a saved network's loss on a data set — λmax, the
//! spectral norm, the top-k eigenvalues and their log-product by Lanczos, optionally the
//! Hutchinson trace and the spectral density by stochastic Lanczos quadrature.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use basin_data::memory;
use basin_flatness::hutchinson::DEFAULT_PROBES;
use basin_flatness::lanczos::{DEFAULT_STEPS, DEFAULT_TOL, DEFAULT_TOP_K};
use basin_flatness::{
    LanczosConfig, SlqConfig, SpectralDensity, Spectrum, TraceEstimate, hutchinson, lanczos,
    spectral_density,
};
use clap::Args;
use serde::Serialize;

use crate::common::{DeviceArgs, MeasureArgs, spinner};

/// Arguments of `basin hessian`.
#[derive(Debug, Args)]
pub struct HessianArgs {
    #[command(flatten)]
    measure: MeasureArgs,
    #[command(flatten)]
    device: DeviceArgs,
    /// How many of the largest eigenvalues to report; the log-product runs over the positive
    /// ones among them (the paper's k = 50).
    #[arg(long, default_value_t = DEFAULT_TOP_K)]
    top_k: usize,
    /// Lanczos steps, one Hessian-vector product each (capped at the parameter count). The
    /// default converges the top 50 on the paper's MNIST nets; raise it when `converged`
    /// falls short of --top-k.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_STEPS)]
    lanczos_steps: usize,
    /// Relative tolerance of the converged flags: eigenvalue i is converged when its Ritz
    /// residual bound plus a round-off allowance (steps · ε · spectral norm) is at most
    /// tol · |λᵢ|.
    #[arg(long, default_value_t = DEFAULT_TOL)]
    tol: f64,
    /// Also estimate the trace of the Hessian by Hutchinson's method (Rademacher probes).
    #[arg(long)]
    trace: bool,
    /// Rademacher probes (Hessian-vector products) for --trace.
    #[arg(long, value_name = "P", default_value_t = DEFAULT_PROBES, requires = "trace")]
    probes: usize,
    /// Write the spectral density (stochastic Lanczos quadrature, Gaussian-broadened) to this
    /// CSV file, columns `eigenvalue,density`.
    #[arg(long, value_name = "PATH")]
    density: Option<PathBuf>,
    /// Random probes (Lanczos runs) for --density.
    #[arg(long, value_name = "P", default_value_t = 10, requires = "density")]
    density_probes: usize,
    /// Lanczos steps per probe for --density.
    #[arg(long, value_name = "N", default_value_t = 80, requires = "density")]
    density_steps: usize,
    /// Gaussian broadening of --density, as a fraction of the width of the spectrum.
    #[arg(
        long,
        value_name = "FRACTION",
        default_value_t = 0.01,
        requires = "density"
    )]
    density_sigma: f64,
    /// Grid points of --density.
    #[arg(long, value_name = "N", default_value_t = 1001, requires = "density")]
    density_points: usize,
    /// The Hessian-vector product: exact (the R-operator) or finite-difference, the central
    /// difference of exact gradients, an approximation kept as an independent check (its
    /// results carry `"hvp": "finite_difference"`). It is accurate only where the loss is
    /// smooth: on ReLU nets, steps across the kinks bias it.
    #[arg(long, value_enum, default_value_t = HvpArg::Exact)]
    hvp: HvpArg,
    /// Seed of the Lanczos start vector; the trace probes use seed + 1 and the density probes
    /// seed + 2.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object: lambda_max, lambda_min, spectral_norm, top_eigenvalues
    /// (descending), residuals, converged (one flag per eigenvalue), n_converged,
    /// bottom_eigenvalues (ascending), bottom_residuals, bottom_converged, log_product_top_k,
    /// n_positive_top_k, lanczos_steps, breakdown, tol, seed, hvp, n, n_params, lanczos_wall_s,
    /// wall_s; trace, trace_std_err, trace_probes, trace_seed and trace_wall_s with --trace;
    /// density_csv and density_mean with --density.
    #[arg(long)]
    json: bool,
}

/// How `basin hessian` multiplies by the Hessian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HvpArg {
    /// Pearlmutter's R-operator: exact.
    Exact,
    /// (∇L(θ + εv) − ∇L(θ − εv)) / 2ε with ε = 1e-5 · max(1, ‖θ‖∞) / ‖v‖∞: approximate.
    FiniteDifference,
}

/// What `basin hessian --json` prints: the library's spectrum and trace, flattened, beside
/// the density file and the command's own counts.
#[derive(Debug, Serialize)]
struct HessianOutput {
    #[serde(flatten)]
    spectrum: Spectrum,
    #[serde(flatten)]
    trace: Option<TraceEstimate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    density_csv: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    density_mean: Option<f64>,
    /// `exact` or `finite_difference`.
    hvp: HvpArg,
    n: usize,
    n_params: usize,
    /// Seconds of the whole command, loading the model and the data included.
    wall_s: f64,
}

impl HessianArgs {
    /// The checks that need no model: the density's grid fits in memory.
    pub fn check(&self) -> Result<()> {
        self.device.check()?;
        if self.density.is_some() {
            memory::check_count(
                self.density_points as u64,
                16,
                || format!("a spectral density on {} grid points", self.density_points),
                "use fewer --density-points",
            )?;
        }
        Ok(())
    }
}

/// Refuses a Lanczos basis (`steps` vectors of the `n_params` parameters, f64, capped at
/// `n_params` of them) that would not fit in memory.
fn check_basis(steps: usize, n_params: usize, flag: &str) -> Result<()> {
    let vectors = steps.min(n_params) as u64;
    memory::check_count(
        vectors.saturating_mul(n_params as u64),
        8,
        || format!("a Lanczos basis of {vectors} vectors of {n_params} parameters"),
        &format!("use fewer {flag}"),
    )?;
    Ok(())
}

/// Runs `basin hessian` (its flags checked by [`HessianArgs::check`]).
pub fn run_hessian(args: HessianArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let (model, data) = args.measure.load()?;
    check_basis(args.lanczos_steps, model.theta().len(), "--lanczos-steps")?;
    if args.density.is_some() {
        check_basis(args.density_steps, model.theta().len(), "--density-steps")?;
    }
    let mut exact = model.objective::<f64>(&data, args.device.run(0, true))?;
    let mut fd;
    let obj: &mut dyn basin_nn::Objective<f64> = match args.hvp {
        HvpArg::Exact => exact.as_mut(),
        HvpArg::FiniteDifference => {
            fd = basin_nn::FiniteDifferenceHvp::new(exact.as_mut(), 1e-5);
            &mut fd
        }
    };
    let theta = model.theta_as::<f64>();
    let bar = spinner(quiet);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(format!(
        "Lanczos, {} steps on {} examples",
        args.lanczos_steps,
        data.len()
    ));
    let cfg = LanczosConfig {
        steps: args.lanczos_steps,
        top_k: args.top_k,
        seed: args.seed,
        tol: args.tol,
    };
    let mut out = HessianOutput {
        spectrum: lanczos(obj, &theta, &cfg)?,
        trace: None,
        density_csv: None,
        density_mean: None,
        hvp: args.hvp,
        n: data.len(),
        n_params: theta.len(),
        wall_s: 0.0,
    };
    if args.trace {
        bar.set_message(format!("Hutchinson trace, {} probes", args.probes));
        let t = hutchinson(obj, &theta, args.probes, args.seed.wrapping_add(1))?;
        out.trace = Some(t);
    }
    if let Some(path) = &args.density {
        bar.set_message(format!("spectral density, {} probes", args.density_probes));
        let slq = SlqConfig {
            probes: args.density_probes,
            steps: args.density_steps,
            seed: args.seed.wrapping_add(2),
            sigma_rel: args.density_sigma,
            grid_points: args.density_points,
        };
        let d = spectral_density(obj, &theta, &slq)?;
        write_density(path, &d)?;
        out.density_csv = Some(path.clone());
        out.density_mean = Some(d.mean);
    }
    bar.finish_and_clear();
    out.wall_s = start.elapsed().as_secs_f64();
    print_hessian(&out, args.json)
}

/// Writes the density as CSV (`eigenvalue,density`), atomically.
fn write_density(path: &std::path::Path, d: &SpectralDensity) -> Result<()> {
    let mut csv = String::from("eigenvalue,density\n");
    for (t, p) in d.grid.iter().zip(&d.density) {
        writeln!(csv, "{t:e},{p:e}").expect("writing to a String cannot fail");
    }
    basin_data::io::write_atomic(path, csv.as_bytes())
        .with_context(|| format!("writing the spectral density to {}", path.display()))
}

fn print_hessian(out: &HessianOutput, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(out)?);
        return Ok(());
    }
    let s = &out.spectrum;
    println!(
        "λmax {:.6}  λmin {:.6}  spectral norm {:.6}  ({} examples, {} parameters)",
        s.lambda_max, s.lambda_min, s.spectral_norm, out.n, out.n_params
    );
    if out.hvp == HvpArg::FiniteDifference {
        println!("(approximate: finite-difference Hessian-vector products)");
    }
    println!(
        "top {} eigenvalues ({} Lanczos steps{}, {}/{} converged at relative tolerance {:e}):",
        s.top.eigenvalues.len(),
        s.steps,
        if s.breakdown {
            ", invariant subspace"
        } else {
            ""
        },
        s.top.n_converged(),
        s.top.eigenvalues.len(),
        s.tol
    );
    for (i, ((v, r), c)) in s
        .top
        .eigenvalues
        .iter()
        .zip(&s.top.residuals)
        .zip(&s.top.converged)
        .enumerate()
    {
        let flag = if *c { "" } else { "  (not converged)" };
        println!("  {:>4}  {v:>14.6}  residual {r:.1e}{flag}", i + 1);
    }
    println!(
        "log product of the {} positive eigenvalues among the top {}: {:.6}",
        s.n_positive_top_k,
        s.top.eigenvalues.len(),
        s.log_product_top_k
    );
    if let Some(t) = &out.trace {
        println!(
            "trace {:.6} ± {:.6} (Hutchinson, {} probes)",
            t.trace, t.std_err, t.probes
        );
    }
    if let (Some(path), Some(m)) = (&out.density_csv, out.density_mean) {
        println!(
            "spectral density written to {} (mean eigenvalue {m:.6e})",
            path.display()
        );
    }
    println!("{:.2} s", out.wall_s);
    Ok(())
}
