//! Where a run stands, from its folders alone: each shard's runs stored and planned, its
//! runs that did not reach zero training error, its state and attempts, the scheduler's view
//! of its task, and an estimate of the time left (`basin status`).

use std::path::{Path, PathBuf};

use basin_nn::TrainStatus;
use serde::Serialize;

use crate::exec::progress::{self, Progress, RunState, now_unix_s};
use crate::exec::records::load_folder;
use crate::exec::resume::of_shard;
use crate::exec::shards::Shard;
use crate::kinds::experiment;
use crate::slurm::manifest::{self, Manifest};
use crate::slurm::{SHARDS_DIR, Work, sbatch};
use crate::spec::ExperimentSpec;

/// One shard (or the whole run, unsharded).
#[derive(Debug, Clone, Serialize)]
pub struct ShardStatus {
    /// The shard, 1-based; null for an unsharded folder.
    pub shard: Option<usize>,
    /// Its folder (or, for a kernel, its sums file).
    pub path: PathBuf,
    /// Its runs, where known (from its progress file or the spec).
    pub runs: Option<usize>,
    /// Runs stored (a kernel shard: 1 once its sums are written).
    pub stored: usize,
    /// Stored runs whose training did not reach zero error (or diverged).
    pub not_converged: usize,
    /// Its progress file: state, attempts, times.
    pub progress: Option<Progress>,
    /// Its task's state in the scheduler's queue (`PENDING`, `RUNNING`, …), if queued.
    pub queue: Option<String>,
}

/// Where a run stands.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The experiment (or `kernel`).
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// The submission, if the folder is one of `basin submit`'s.
    pub manifest: Option<Manifest>,
    /// The shards.
    pub shards: Vec<ShardStatus>,
    /// Runs in all, where every shard's is known.
    pub runs: Option<usize>,
    /// Runs stored in all.
    pub stored: usize,
    /// Stored runs that did not reach zero training error.
    pub not_converged: usize,
    /// Shards whose last attempt failed.
    pub failed: usize,
    /// The merge job's state in the queue, if queued.
    pub merge_queue: Option<String>,
    /// Whether the merged outputs exist (`summary.json`, or the kernel).
    pub merged: bool,
    /// Seconds left, estimated from the seconds per run so far and the shards running now.
    pub eta_s: Option<f64>,
}

/// Why a status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The folder does not exist.
    #[error("{0}: no such folder; give the --out of `basin reproduce` or `basin submit`")]
    Missing(String),
    /// The manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
}

/// The status of `dir`: a submission's folder (with `submit.json`), a folder of shard
/// folders (`shards/1`, `shards/2`, …), or one run's folder.
pub fn status(dir: &Path) -> Result<Status, StatusError> {
    if !dir.is_dir() {
        return Err(StatusError::Missing(dir.display().to_string()));
    }
    let manifest = manifest::read(dir)?;
    let mut shards = match &manifest {
        Some(m) => submitted_shards(m),
        None => found_shards(dir),
    };
    let queue = manifest
        .as_ref()
        .map(|m| sbatch::queue_states(&m.job_ids()))
        .unwrap_or_default();
    let mut merge_queue = None;
    for (id, state, reason) in queue {
        let state = with_reason(state, &reason);
        match manifest.as_ref().and_then(|m| m.shard_of_task(&id)) {
            Some(k) => shards[k - 1].queue = Some(state),
            None if manifest.as_ref().is_some_and(|m| m.merge_job_id == id) => {
                merge_queue = Some(state);
            }
            None => {}
        }
    }
    Ok(summarise(dir, manifest, shards, merge_queue))
}

fn with_reason(state: String, reason: &str) -> String {
    if reason.is_empty() || reason == "None" {
        state
    } else {
        format!("{state} ({reason})")
    }
}

/// Adds up the shards.
fn summarise(
    dir: &Path,
    manifest: Option<Manifest>,
    shards: Vec<ShardStatus>,
    merge_queue: Option<String>,
) -> Status {
    let name = match manifest.as_ref().map(|m| &m.submission.work) {
        Some(Work::Experiment { name, .. }) => name.clone(),
        Some(Work::Kernel { .. }) => "kernel".to_owned(),
        None => shards
            .iter()
            .find_map(|s| Some(s.progress.as_ref()?.experiment.clone()))
            .unwrap_or_default(),
    };
    let merged = match manifest.as_ref().map(|m| &m.submission.work) {
        Some(Work::Kernel { output, .. }) => output.is_file(),
        _ => dir.join("summary.json").is_file() && !shards.iter().any(|s| s.path == dir),
    };
    let runs = shards.iter().map(|s| s.runs).sum::<Option<usize>>();
    Status {
        name,
        dir: dir.to_owned(),
        runs,
        stored: shards.iter().map(|s| s.stored).sum(),
        not_converged: shards.iter().map(|s| s.not_converged).sum(),
        failed: shards.iter().filter(|s| is_failed(s)).count(),
        eta_s: eta_s(&shards),
        merge_queue,
        merged,
        manifest,
        shards,
    }
}

fn is_failed(s: &ShardStatus) -> bool {
    s.progress
        .as_ref()
        .is_some_and(|p| p.state == RunState::Failed)
}

/// The time left: the runs left × the seconds per run of the attempts so far (each shard's
/// wall time over its runs computed), over the shards running now (at least one).
fn eta_s(shards: &[ShardStatus]) -> Option<f64> {
    let now = now_unix_s();
    let (mut seconds, mut computed) = (0.0, 0);
    for p in shards.iter().filter_map(|s| s.progress.as_ref()) {
        if p.computed > 0 {
            let end = if p.state == RunState::Running {
                now
            } else {
                p.updated_unix_s
            };
            seconds += end - p.started_unix_s;
            computed += p.computed;
        }
    }
    let left: usize = shards
        .iter()
        .map(|s| s.runs.map(|r| r.saturating_sub(s.stored)))
        .sum::<Option<usize>>()?;
    if left == 0 {
        return Some(0.0);
    }
    if computed == 0 {
        return None;
    }
    let running = shards
        .iter()
        .filter(|s| {
            s.progress
                .as_ref()
                .is_some_and(|p| p.state == RunState::Running)
        })
        .count()
        .max(1);
    Some(left as f64 * seconds / computed as f64 / running as f64)
}

/// The shards of a submission, with the runs each will hold when the spec fixes them.
fn submitted_shards(m: &Manifest) -> Vec<ShardStatus> {
    let sub = &m.submission;
    let planned = match &sub.work {
        Work::Experiment { spec, quick, .. } => planned_jobs(spec, *quick),
        Work::Kernel { .. } => None,
    };
    (1..=sub.shards)
        .map(|k| {
            let path = sub.shard_path(k);
            let mut s = match sub.work {
                Work::Experiment { .. } => folder_status(Some(k), &path),
                Work::Kernel { .. } => sums_status(k, &path),
            };
            if s.runs.is_none() {
                s.runs = planned.as_ref().map(|jobs| {
                    let shard = Shard {
                        index: k,
                        count: sub.shards,
                    };
                    of_shard(jobs.clone(), Some(shard))
                        .iter()
                        .map(|j| j.keys.len())
                        .sum()
                });
            }
            s
        })
        .collect()
}

/// The planned jobs of a spec (its `--quick` form if `quick`), where the spec fixes them.
fn planned_jobs(spec: &str, quick: bool) -> Option<Vec<crate::exec::jobs::Job>> {
    let loaded = ExperimentSpec::load(spec).ok()?;
    let spec = if quick {
        experiment(&loaded).quick()
    } else {
        loaded
    };
    experiment(&spec).planned_jobs()
}

/// The shard folders found in `dir/shards/` (named by their number), or `dir` itself.
fn found_shards(dir: &Path) -> Vec<ShardStatus> {
    let mut numbered: Vec<(usize, PathBuf)> = std::fs::read_dir(dir.join(SHARDS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .filter(|(_, p): &(usize, PathBuf)| p.is_dir())
        .collect();
    numbered.sort();
    if numbered.is_empty() {
        return vec![folder_status(None, dir)];
    }
    numbered
        .into_iter()
        .map(|(k, p)| folder_status(Some(k), &p))
        .collect()
}

/// A run folder's status: its progress file and stored records.
fn folder_status(shard: Option<usize>, dir: &Path) -> ShardStatus {
    let records = load_folder(dir).unwrap_or_default();
    let not_converged = records
        .iter()
        .filter(|r| r.record.status != TrainStatus::Converged)
        .count();
    let progress = progress::read(dir);
    ShardStatus {
        shard,
        path: dir.to_owned(),
        runs: progress.as_ref().map(|p| p.runs),
        stored: records.len(),
        not_converged,
        progress,
        queue: None,
    }
}

/// A kernel shard's status: done once its sums file exists.
fn sums_status(k: usize, path: &Path) -> ShardStatus {
    ShardStatus {
        shard: Some(k),
        path: path.to_owned(),
        runs: Some(1),
        stored: usize::from(path.is_file()),
        not_converged: 0,
        progress: None,
        queue: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(runs: usize, stored: usize, p: Option<Progress>) -> ShardStatus {
        ShardStatus {
            shard: Some(1),
            path: PathBuf::new(),
            runs: Some(runs),
            stored,
            not_converged: 0,
            progress: p,
            queue: None,
        }
    }

    fn progress(state: RunState, computed: usize, seconds: f64) -> Progress {
        Progress {
            experiment: "e".into(),
            shard: None,
            runs: 0,
            stored: 0,
            computed,
            state,
            error: None,
            attempt: 1,
            pid: 1,
            started_unix_s: 1000.0,
            updated_unix_s: 1000.0 + seconds,
        }
    }

    #[test]
    fn the_eta_is_the_runs_left_at_the_rate_so_far_over_the_shards_running() {
        // Two finished shards: 4 runs in 40 s, so 10 s per run; 6 runs left in shards not
        // started (no running shard counts as one).
        let done = || Some(progress(RunState::Done, 2, 20.0));
        let shards = vec![shard(2, 2, done()), shard(2, 2, done()), shard(6, 0, None)];
        let eta = eta_s(&shards).unwrap();
        assert!((eta - 60.0).abs() < 1e-9, "{eta}");
        assert_eq!(eta_s(&[shard(3, 0, None)]), None);
        assert_eq!(eta_s(&[shard(3, 3, done())]), Some(0.0));
        let unknown = ShardStatus {
            runs: None,
            ..shard(1, 0, None)
        };
        assert_eq!(eta_s(&[unknown]), None);
    }
}
