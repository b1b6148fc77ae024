//! basin's experiments from Python: `reproduce` runs a spec as `basin reproduce` does, and
//! `load_results` reads the stored runs of output folders.

use std::path::PathBuf;

use basin_lab::exec::RunOptions;
use basin_lab::exec::records;
use basin_lab::exec::shards::Shard;
use basin_lab::kinds::experiment;
use basin_lab::reproduce::reproduce;
use basin_lab::spec::ExperimentSpec;
use pyo3::prelude::*;
use serde::Serialize;

use crate::errors::{basin_error, to_json, value_error};
use crate::interrupt::interruptible;

/// What `reproduce` returns: the summary and how many runs were computed and reused.
#[derive(Serialize)]
struct Reproduced {
    summary: basin_lab::report::Summary,
    highlights: Vec<String>,
    computed: usize,
    skipped: usize,
    out: PathBuf,
}

/// Runs the spec `spec` (a built-in name or a TOML path) into `out` (default:
/// `results/<name>`), `jobs` runs at a time, and writes its report; returns the summary as
/// JSON. Ctrl-C lets the runs in progress finish and be stored, then raises
/// `KeyboardInterrupt`; rerunning into the same folder resumes.
///
/// `progress(done, total)`, when given, is called after each job (from a worker thread, with
/// the GIL); an exception it raises is printed as unraisable and the run goes on.
#[pyfunction]
#[pyo3(signature = (spec, out, quick, jobs, shard, progress))]
pub fn reproduce_json(
    py: Python<'_>,
    spec: &str,
    out: Option<PathBuf>,
    quick: bool,
    jobs: Option<usize>,
    shard: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let loaded = ExperimentSpec::load(spec).map_err(|e| value_error("spec", e))?;
    let spec = if quick {
        experiment(&loaded).quick()
    } else {
        loaded
    };
    let shard: Option<Shard> = shard
        .map(|s| s.parse().map_err(|e| value_error("shard", e)))
        .transpose()?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err(value_error("jobs", "must be at least 1"));
    }
    let out = out.unwrap_or_else(|| spec.default_out());
    let result = interruptible(py, |stop| {
        let mut opts = RunOptions::new(jobs, shard);
        opts.stop = stop.clone();
        let report = |done: usize, total: usize| report_progress(progress.as_ref(), done, total);
        reproduce(&spec, &out, opts, &|_| {}, &report)
    })?;
    // A stop comes only from Ctrl-C, which `interruptible` has already raised.
    let done = result.map_err(basin_error)?;
    to_json(&Reproduced {
        summary: done.report.summary,
        highlights: done.report.highlights,
        computed: done.outcome.computed,
        skipped: done.outcome.skipped,
        out,
    })
}

/// Calls the user's `progress(done, total)`, if any; its exception is reported as
/// unraisable (printed), not raised, so that a faulty progress display stops no run.
fn report_progress(progress: Option<&Py<PyAny>>, done: usize, total: usize) {
    let Some(progress) = progress else {
        return;
    };
    Python::attach(|py| {
        if let Err(e) = progress.call1(py, (done, total)) {
            e.write_unraisable(py, Some(progress.bind(py)));
        }
    });
}

/// The run records stored in the output folders `dirs` (each id once), as a JSON list.
#[pyfunction]
pub fn load_results_json(dirs: Vec<PathBuf>) -> PyResult<String> {
    if dirs.is_empty() {
        return Err(value_error("dirs", "give at least one output folder"));
    }
    if let Some(missing) = dirs.iter().find(|d| !d.is_dir()) {
        return Err(value_error(
            "dirs",
            format!(
                "{} is not a folder: give an output folder of `reproduce`",
                missing.display()
            ),
        ));
    }
    let runs = records::load(&dirs).map_err(basin_error)?;
    to_json(&runs)
}
