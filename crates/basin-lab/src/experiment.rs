//! The experiment kinds' common shape. An [`Experiment`] says what its jobs are, how to
//! compute one, how to summarise the records and what its report holds; the executor
//! ([`crate::exec`]) runs the jobs and [`crate::report`] writes the parts every report
//! shares. [`Run`] is the same, object-safe, for callers that hold an experiment of any kind
//! (the kinds' module picks it from the spec).

use std::path::Path;

use serde::Serialize;

use crate::error::LabError;
use crate::exec::folder::{RunFolder, SharedCache};
use crate::exec::jobs::Job;
use crate::exec::{RunOptions, RunOutcome, run_jobs};
use crate::record::RunRecord;
use crate::report::{ReportError, Summary};
use crate::spec::ExperimentSpec;

/// One kind of experiment, over its spec.
pub trait Experiment: Sync {
    /// What the jobs share, made once per run of the experiment (the data, the kernel, …).
    type Data: Sync;
    /// The kind's section of `summary.json`.
    type Section: Serialize;

    /// The spec.
    fn spec(&self) -> &ExperimentSpec;

    /// The spec reduced by `--quick`: the shape of the experiment at a fraction of the cost.
    fn quick(&self) -> ExperimentSpec;

    /// What the progress bar says while [`Experiment::prepare`] runs.
    fn preparing(&self) -> String {
        format!("loading {}", self.spec().data.source)
    }

    /// Makes what the jobs share; `cache` is the folder that keeps what is costly to make
    /// (the output folder, or one that the shards of a run share: [`RunOptions::cache`]) and
    /// `threads` the number of worker threads.
    fn prepare(&self, cache: &Path, threads: usize) -> Result<Self::Data, LabError>;

    /// The jobs: every run key of the experiment, grouped by training run.
    fn jobs(&self, data: &Self::Data) -> Vec<Job>;

    /// The jobs, when the spec alone fixes them (without preparing the data), for counting
    /// the runs of shards that have not started; `None` for kinds whose jobs depend on the
    /// data.
    fn planned_jobs(&self) -> Option<Vec<Job>> {
        None
    }

    /// The records of one job.
    fn compute(&self, data: &Self::Data, job: &Job) -> Result<Vec<RunRecord>, LabError>;

    /// The statistics of the records.
    fn summarise(&self, records: &[RunRecord]) -> Summary<Self::Section>;

    /// Writes the kind's figures and `report.md` into `dir` (`summary.json` is written from
    /// [`Experiment::summarise`]).
    fn write_report(
        &self,
        dir: &Path,
        records: &[RunRecord],
        summary: &Summary<Self::Section>,
    ) -> Result<(), ReportError>;

    /// The summary's headline numbers, one line each, for a terminal.
    fn highlights(&self, summary: &Summary<Self::Section>) -> Vec<String>;
}

/// What [`Run::report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The content of `summary.json`.
    pub summary: Summary,
    /// Its headline numbers, one line each.
    pub highlights: Vec<String>,
}

/// An experiment of any kind: run it, report it.
pub trait Run: Sync {
    /// The spec.
    fn spec(&self) -> &ExperimentSpec;

    /// The spec reduced by `--quick`.
    fn quick(&self) -> ExperimentSpec;

    /// What a progress bar says while the data are prepared.
    fn preparing(&self) -> String;

    /// The jobs, when the spec alone fixes them ([`Experiment::planned_jobs`]).
    fn planned_jobs(&self) -> Option<Vec<Job>>;

    /// Computes the runs that `out`'s store lacks (this shard's only, with a shard), storing
    /// each record as its job finishes; `progress(done, total)` is called after each job. The
    /// locked folder proves that no other process writes into it.
    fn run(
        &self,
        out: &RunFolder,
        opts: RunOptions,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<RunOutcome, LabError>;

    /// Writes `summary.json`, the figures and `report.md` of `records` into `dir`.
    fn report(&self, dir: &Path, records: &[RunRecord]) -> Result<Report, ReportError>;
}

impl<E: Experiment> Run for E {
    fn spec(&self) -> &ExperimentSpec {
        Experiment::spec(self)
    }

    fn quick(&self) -> ExperimentSpec {
        Experiment::quick(self)
    }

    fn preparing(&self) -> String {
        Experiment::preparing(self)
    }

    fn planned_jobs(&self) -> Option<Vec<Job>> {
        Experiment::planned_jobs(self)
    }

    fn run(
        &self,
        out: &RunFolder,
        opts: RunOptions,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<RunOutcome, LabError> {
        let data = match &opts.cache {
            None => self.prepare(out.path(), opts.jobs)?,
            Some(shared) => {
                let _one_at_a_time = SharedCache::lock(shared)?;
                self.prepare(shared, opts.jobs)?
            }
        };
        let jobs = self.jobs(&data);
        let compute = |job: &Job| self.compute(&data, job);
        run_jobs(&Run::spec(self).name, out, opts, jobs, &compute, progress)
    }

    fn report(&self, dir: &Path, records: &[RunRecord]) -> Result<Report, ReportError> {
        let summary = self.summarise(records);
        summary.write(dir)?;
        self.write_report(dir, records, &summary)?;
        Ok(Report {
            highlights: self.highlights(&summary),
            summary: summary.erase(),
        })
    }
}
