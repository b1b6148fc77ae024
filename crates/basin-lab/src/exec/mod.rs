//! The executor: runs an experiment's jobs into its output folder, whatever the experiment.
//! It knows jobs (groups of run keys), a function that computes one job's records, and the
//! store; it knows no experiment kind.
//!
//! - [`folder`]: the output folder, locked for the run;
//! - [`jobs`]: the runs that share one training run;
//! - [`shards`]: disjoint subsets of the jobs (`--shard K/N`);
//! - [`resume`]: the jobs whose runs the store lacks;
//! - [`pool`]: the worker threads, each job's records stored as it finishes;
//! - [`progress`]: `progress.json`, where the run stands;
//! - [`stop`]: a request to stop a run between jobs;
//! - [`store`]: `results.jsonl`, appended with flush and fsync;
//! - [`records`]: stored lines as runs.

pub mod folder;
pub mod jobs;
pub mod pool;
pub mod progress;
pub mod records;
pub mod resume;
pub mod shards;
pub mod stop;
pub mod store;

use crate::error::LabError;
use crate::record::RunRecord;
use folder::RunFolder;
use jobs::{Compute, Job};
use pool::JobDone;
use progress::{RunState, Tracker};
use shards::Shard;
pub use stop::StopFlag;
use store::Store;

/// How to run an experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Jobs computed in parallel.
    pub jobs: usize,
    /// Only this shard's jobs.
    pub shard: Option<Shard>,
    /// Asked to stop, the workers take no new job: the jobs in progress finish and are
    /// stored, and the run ends with [`LabError::Stopped`].
    pub stop: StopFlag,
    /// A folder for what is costly to make and the same for every shard (the empirical
    /// kernel, the Boolean sample table), shared by the shards that name it: one of them
    /// makes it while the others wait ([`folder::SharedCache`]). `None`: the output folder.
    pub cache: Option<std::path::PathBuf>,
}

impl RunOptions {
    /// `jobs` workers over this `shard`'s jobs, with a stop flag nobody has raised yet.
    pub fn new(jobs: usize, shard: Option<Shard>) -> Self {
        Self {
            jobs,
            shard,
            stop: StopFlag::default(),
            cache: None,
        }
    }
}

/// What [`run_jobs`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Every record in the store afterwards.
    pub records: Vec<RunRecord>,
    /// Runs computed now.
    pub computed: usize,
    /// Runs skipped because the store held them.
    pub skipped: usize,
}

/// Runs the `jobs` (this shard's only, with a shard) whose runs `out`'s store lacks with
/// `compute`, `opts.jobs` at a time, storing each record as its job finishes;
/// `progress(done, total)` is called after each job and `experiment` names the experiment in
/// errors. A shard holds whole jobs (all their checkpoints). Where the run stands is kept in
/// `out`'s [`progress::PROGRESS_FILE`] throughout.
pub fn run_jobs(
    experiment: &str,
    out: &RunFolder,
    opts: RunOptions,
    jobs: Vec<Job>,
    compute: &Compute<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RunOutcome, LabError> {
    let (store, stored) = Store::open(out.path())?;
    let jobs = resume::of_shard(jobs, opts.shard);
    let n_keys: usize = jobs.iter().map(|j| j.keys.len()).sum();
    let todo = resume::pending(&jobs, &store);
    let tracker = Tracker::start(
        out.path(),
        experiment,
        opts.shard.map(|s| format!("{}/{}", s.index, s.count)),
        n_keys,
        stored_of(&jobs, &store),
    );
    let pool = pool::pool(experiment, opts.jobs)?;
    let observe = |job: JobDone| {
        tracker.stored(job.stored);
        progress(job.done, job.total);
    };
    let results = pool::compute_all(&pool, &todo, store, compute, &observe, &opts.stop);
    let outcome = collect(experiment, results, records::runs_of(stored), n_keys);
    match &outcome {
        Ok(_) => tracker.finish(RunState::Done, None),
        Err(LabError::Stopped { .. }) => tracker.finish(RunState::Stopped, None),
        Err(e) => tracker.finish(RunState::Failed, Some(e.to_string())),
    }
    outcome
}

/// How many of the runs of `jobs` the store holds.
fn stored_of(jobs: &[Job], store: &Store) -> usize {
    jobs.iter()
        .flat_map(|j| &j.keys)
        .filter(|k| store.contains(&k.id))
        .count()
}

/// The outcome of the pool's `results` after the `records` the store held: the first
/// failed job's error, or [`LabError::Stopped`] if a job was not taken.
fn collect(
    experiment: &str,
    results: Vec<Option<pool::JobResult>>,
    mut records: Vec<RunRecord>,
    n_keys: usize,
) -> Result<RunOutcome, LabError> {
    let mut computed = 0;
    let total = results.len();
    let done = results.iter().filter(|r| r.is_some()).count();
    for r in results {
        let Some(r) = r else {
            return Err(LabError::Stopped {
                experiment: experiment.to_owned(),
                done,
                total,
            });
        };
        let fresh = r?;
        computed += fresh.len();
        records.extend(fresh);
    }
    Ok(RunOutcome {
        records,
        computed,
        skipped: n_keys - computed,
    })
}
