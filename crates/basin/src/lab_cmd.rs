//! `basin reproduce` (run an experiment spec and write its report) and `basin report`
//! (regenerate the outputs from stored records).

use std::path::{Path, PathBuf};

use anyhow::Result;
use basin_lab::error::LabError;
use basin_lab::exec::RunOptions;
use basin_lab::exec::folder::RunFolder;
use basin_lab::exec::shards::Shard;
use basin_lab::experiment::Report;
use basin_lab::kinds::{experiment, report};
use basin_lab::merge::merge;
use basin_lab::reproduce::{ReproduceError, reproduce};
use basin_lab::spec::ExperimentSpec;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::common::check_thread_count;
use crate::signals::{self, StoppedEarly};

/// Arguments of `basin reproduce`.
#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// A built-in spec (fig3-mnist, fig3-mnist-exact, fig3-cifar-fcn, fig3-resnet-mnist,
    /// fig3-resnet50-cifar, figS17-resnet50-adam, figS19-fashion-10k, fig4-optimizers,
    /// overtrain-mnist, fig5-temporal, fig2-boolean, ep-accuracy) or the path of a spec file
    /// (crates/basin-lab/experiments/README.md documents the fields).
    #[arg(default_value = "fig3-mnist", value_name = "SPEC")]
    spec: String,
    /// The shape of the experiment at a fraction of the cost: the smallest, a middle and the
    /// largest attack size, two networks each. Its runs have the same ids as the full run's,
    /// so a later full run into the same folder reuses them. For a temporal spec: a fifth of
    /// the overtraining and of the epochs before the scaling (different runs from the full
    /// one's). For a Boolean spec: at most 10^6 samples and the top 100 functions. A spec's
    /// `[quick]` table gives other sizes (figS19-fashion-10k: |S| = 1,000), with runs of
    /// their own.
    #[arg(long)]
    quick: bool,
    /// The output folder: results.jsonl, summary.json, the plots, report.md and spec.toml
    /// (default: results/<spec name>). Rerunning into it skips the stored runs. One process
    /// at a time writes into a folder: a second one is refused with the first one's PID.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Runs trained and measured at once, one thread each (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Run only the K-th of N disjoint subsets of the runs (for a job array; merge the
    /// folders with `basin report`).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// A folder for what every shard needs and is costly to make (a ResNet's empirical
    /// kernel, the Boolean sample table), shared by the shards that name it: the first
    /// makes it while the others wait, then they read it (default: the output folder).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
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
    /// Merge folders run with different settings (spec.toml) and records of another
    /// experiment or other settings, which are refused otherwise.
    #[arg(long)]
    allow_mixed: bool,
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

impl ReproduceArgs {
    /// The checks that need no spec: between 1 and [`crate::common::MAX_THREADS`] jobs.
    pub fn check(&self) -> Result<()> {
        if let Some(jobs) = self.jobs {
            check_thread_count("--jobs", jobs)?;
        }
        Ok(())
    }
}

/// Runs `basin reproduce`.
pub fn run_reproduce(args: ReproduceArgs, quiet: bool) -> Result<()> {
    let loaded = ExperimentSpec::load(&args.spec)?;
    let spec = if args.quick {
        experiment(&loaded).quick()
    } else {
        loaded
    };
    let out = args.out.clone().unwrap_or_else(|| spec.default_out());
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = progress_bar(quiet);
    let show = |done: usize, total: usize| {
        bar.set_message(String::new());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let preparing = |message: &str| bar.set_message(message.to_owned());
    let mut opts = RunOptions::new(jobs, args.shard);
    opts.cache = args.cache.clone();
    let _graceful = signals::stop_on_usr1(&opts.stop);
    let done = match reproduce(&spec, &out, opts, &preparing, &show) {
        Err(ReproduceError::Run(stopped @ LabError::Stopped { .. })) => {
            bar.finish_and_clear();
            return Err(StoppedEarly(stopped.to_string()).into());
        }
        done => done?,
    };
    bar.finish_and_clear();
    let outcome = &done.outcome;
    println!(
        "{}: {} runs computed, {} already stored, {} in all",
        spec.name,
        outcome.computed,
        outcome.skipped,
        outcome.records.len()
    );
    print_report(&done.report, &out);
    Ok(())
}

/// Runs `basin report`.
pub fn run_report(args: ReportArgs) -> Result<()> {
    let merged = merge(&args.dirs, args.allow_mixed)?;
    anyhow::ensure!(
        !merged.records.is_empty(),
        "no records in {}: run `basin reproduce` first",
        args.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = args.out.unwrap_or_else(|| args.dirs[0].clone());
    let folder = RunFolder::open(&out)?;
    let result = report(merged.spec.as_ref(), folder.path(), &merged.records);
    match result {
        Ok(written) => {
            print_report(&written, &out);
            Ok(())
        }
        Err(e) => {
            folder.abandon();
            Err(e.into())
        }
    }
}

fn print_report(written: &Report, out: &Path) {
    for line in &written.highlights {
        println!("{line}");
    }
    println!("report: {}", out.join("report.md").display());
}
