//! `basin reproduce` (run an experiment spec and write its report) and `basin report`
//! (regenerate the outputs from stored records).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use basin_lab::boolean::run_boolean;
use basin_lab::record::RunRecord;
use basin_lab::report::{Summary, write_outputs};
use basin_lab::runner::{Prepared, RunOptions, run};
use basin_lab::spec::{ExperimentSpec, Shard};
use basin_lab::store::load_merged;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The file in an output folder that records the spec it was run with.
const SPEC_FILE: &str = "spec.toml";

/// Arguments of `basin reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// A built-in spec (fig3-mnist, fig3-cifar-fcn, fig4-optimizers, overtrain-mnist,
    /// fig5-temporal, fig2-boolean, ep-accuracy) or the path of a spec file (experiments/README.md
    /// documents the fields).
    #[arg(default_value = "fig3-mnist", value_name = "SPEC")]
    spec: String,
    /// The shape of the experiment at a fraction of the cost: the smallest, a middle and the
    /// largest attack size, two networks each. Its runs have the same ids as the full run's,
    /// so a later full run into the same folder reuses them. For a temporal spec: a fifth of
    /// the overtraining and of the epochs before the scaling (different runs from the full
    /// one's). For a Boolean spec: at most 10^6 samples and the top 100 functions.
    #[arg(long)]
    quick: bool,
    /// The output folder: results.jsonl, summary.json, the plots, report.md and spec.toml
    /// (default: results/<spec name>). Rerunning into it skips the stored runs.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Runs trained and measured at once, one thread each (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Run only the K-th of N disjoint subsets of the runs (for a job array; merge the
    /// folders with `basin report`).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
}

/// Arguments of `basin report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Output folders of one experiment (for example its shards); their records are merged.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Where to write the outputs (default: the first folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The spec with `--quick` applied: three attack sizes (first, middle, last), two networks;
/// a temporal spec overtrains a fifth as long.
fn quick(mut spec: ExperimentSpec) -> ExperimentSpec {
    if let Some(t) = &mut spec.temporal {
        t.overtrain_epochs /= 5;
        t.scale_after /= 5;
    }
    if let Some(b) = &mut spec.boolean {
        b.samples = b.samples.min(1_000_000);
        b.top_k = b.top_k.min(100);
    }
    let sizes = &spec.data.attack_sizes;
    let mut keep = vec![sizes[0], sizes[sizes.len() / 2], sizes[sizes.len() - 1]];
    keep.dedup();
    spec.data.attack_sizes = keep;
    spec.data.networks_per_size = spec.data.networks_per_size.min(2);
    spec
}

fn progress_bar(quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs · {elapsed} · ETA {eta} {msg}")
            .expect("valid template"),
    );
    bar
}

/// Runs `basin reproduce`.
pub fn run_reproduce(args: ReproduceArgs, quiet: bool) -> Result<()> {
    let mut spec = ExperimentSpec::load(&args.spec)?;
    if args.quick {
        spec = quick(spec);
    }
    let out = args
        .out
        .unwrap_or_else(|| Path::new("results").join(&spec.name));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = progress_bar(quiet);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let toml = toml::to_string(&spec).context("writing the spec")?;
    basin_data::io::write_atomic(&out.join(SPEC_FILE), toml.as_bytes())?;
    let opts = RunOptions {
        jobs,
        shard: args.shard,
    };
    let show = |done: usize, total: usize| {
        bar.set_message(String::new());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let outcome = if spec.boolean.is_some() {
        bar.set_message("sampling random networks (or reading functions.json)");
        run_boolean(&spec, &out, opts, &show)?
    } else {
        bar.set_message(format!("loading {}", spec.data.source));
        let prep = Prepared::new(&spec)?;
        run(&prep, &out, opts, &show)?
    };
    bar.finish_and_clear();
    let summary = write_outputs(&out, Some(&spec), &outcome.records)?;
    println!(
        "{}: {} runs computed, {} already stored, {} in all",
        spec.name,
        outcome.computed,
        outcome.skipped,
        outcome.records.len()
    );
    print_summary(&summary);
    println!("report: {}", out.join("report.md").display());
    Ok(())
}

/// Runs `basin report`.
pub fn run_report(args: ReportArgs) -> Result<()> {
    let records: Vec<RunRecord> = load_merged(&args.dirs)?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .context("a stored record does not have the fields of a run")?;
    anyhow::ensure!(
        !records.is_empty(),
        "no records in {}: run `basin reproduce` first",
        args.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = args.out.unwrap_or_else(|| args.dirs[0].clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let spec = args
        .dirs
        .iter()
        .map(|d| d.join(SPEC_FILE))
        .find(|p| p.is_file())
        .map(|p| ExperimentSpec::load(&p.to_string_lossy()))
        .transpose()?;
    let summary = write_outputs(&out, spec.as_ref(), &records)?;
    print_summary(&summary);
    println!("report: {}", out.join("report.md").display());
    Ok(())
}

fn print_summary(summary: &Summary) {
    for r in &summary.ep_accuracy {
        let bias = match (r.mean_bias, r.std_err) {
            (Some(b), Some(s)) => format!("{b:+.3} ± {s:.3} nats"),
            _ => format!("not measurable ({}'s error bar untrustworthy)", r.reference),
        };
        println!(
            "  N = {:<5} flipped {:.2} {:<7} vs {:<7} EP bias {bias}",
            r.n, r.flip_fraction, r.likelihood, r.reference
        );
    }
    if !summary.ep_accuracy.is_empty() {
        return;
    }
    if let Some(b) = &summary.boolean {
        for (name, c) in &b.against_sampled {
            let rho = c.spearman.map_or("–".into(), |v| format!("{v:+.3}"));
            println!("  {name:<20} Spearman with the sampled log P(f): {rho}");
        }
        for (lik, e) in &b.ep_error {
            println!(
                "  EP ({lik}) − sampled log P(f): mean {:+.3}, median |·| {:.3} nats",
                e.mean, e.median_abs
            );
        }
        return;
    }
    for t in &summary.temporal {
        let zero = t.zero_error_epoch.map_or("never".into(), |e| e.to_string());
        let scaling = match (t.scaled_at_epoch, t.sharpness_around_scaling) {
            (Some(e), Some((a, b))) => format!(
                "; scaled at epoch {e}: sharpness {a:.3} → {b:.3}, left zero error: {}",
                t.left_zero_error.unwrap_or(false)
            ),
            _ => String::new(),
        };
        println!(
            "  {} #{}: zero error at epoch {zero}{scaling}",
            t.variant, t.replicate
        );
    }
    if !summary.temporal.is_empty() {
        return;
    }
    for (variant, cs) in &summary.by_variant {
        let rho = |m: &str| {
            cs.get(m)
                .and_then(|c| c.spearman)
                .map_or("–".into(), |v| format!("{v:+.3}"))
        };
        println!(
            "  {variant:<16} Spearman: log P(f) {}  sharpness {}  λmax {}",
            rho("log_prior_probit"),
            rho("sharpness"),
            rho("lambda_max")
        );
    }
    println!(
        "{} runs, {} converged; correlation with test error (Spearman, 95% CI):",
        summary.runs, summary.converged
    );
    for (name, c) in &summary.correlations {
        let ci = c
            .ci95
            .get("spearman")
            .map_or(String::new(), |i| format!(" [{:.3}, {:.3}]", i.lo, i.hi));
        let rho = c.spearman.map_or("–".into(), |v| format!("{v:+.3}"));
        println!("  {name:<20} {rho}{ci}");
    }
}
