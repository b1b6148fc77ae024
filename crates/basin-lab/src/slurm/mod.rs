//! Slurm job arrays: an experiment's shards (or a Monte Carlo kernel's) as the tasks of an
//! array, and a merge job that runs once every task has succeeded.
//!
//! - [`time`]: `--time` limits and the lead of the pre-timeout signal;
//! - [`script`]: the batch scripts of the array and of the merge job;
//! - [`sbatch`]: submitting them and reading the cluster's `MaxArraySize`;
//! - [`manifest`]: `submit.json`, what was submitted into the output folder;
//! - [`submit`]: the plan of a submission, and sending it.
//!
//! The output folder of a submission holds `slurm/` (the scripts and the tasks' logs),
//! `shards/` (shard K's folder `shards/K`, or a kernel shard's sums `shards/sums-K.safetensors`),
//! `cache/` (what every shard of an experiment needs, made once: a ResNet's empirical kernel)
//! and, once the merge job has run, the merged outputs.

pub mod manifest;
pub mod sbatch;
pub mod script;
pub mod submit;
pub mod time;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The folder of the scripts and logs inside a submission's output folder.
pub const SLURM_DIR: &str = "slurm";

/// The folder of the shards inside a submission's output folder.
pub const SHARDS_DIR: &str = "shards";

/// The folder of the cache that the shards share inside a submission's output folder.
pub const CACHE_DIR: &str = "cache";

/// The exit status with which a task asks to be requeued: `basin reproduce` stopped between
/// runs by SIGUSR1 (`EX_TEMPFAIL`).
pub const REQUEUE_EXIT: i32 = 75;

/// What the array computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// An experiment spec, sharded with `basin reproduce --shard`; the merge job runs
    /// `basin report` over the shards' folders.
    Experiment {
        /// The experiment's name.
        name: String,
        /// A built-in spec's name, or the absolute path of a spec file.
        spec: String,
        /// Whether it is the `--quick` form.
        quick: bool,
    },
    /// A Monte Carlo kernel, sharded with `basin kernel --shard`; the merge job runs
    /// `basin kernel merge` over the shards' sums.
    Kernel {
        /// `basin kernel`'s arguments, without `--shard`, `--output` and `--sums`.
        args: Vec<String>,
        /// Where the merge job writes the kernel (.npy).
        output: PathBuf,
        /// Where the merge job writes the merged sums, if anywhere.
        sums: Option<PathBuf>,
    },
}

impl Work {
    /// A short name for the jobs: `basin-<experiment>` or `basin-kernel`.
    pub fn job_name(&self) -> String {
        match self {
            Self::Experiment { name, .. } => format!("basin-{name}"),
            Self::Kernel { .. } => "basin-kernel".to_owned(),
        }
    }
}

/// What each task asks the scheduler for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time`, as sbatch takes it.
    pub time: Option<String>,
    /// `--cpus-per-task`; basin runs as many jobs (or kernel threads) in each task.
    pub cpus_per_task: usize,
    /// `--mem`, as sbatch takes it.
    pub mem: Option<String>,
    /// `--gpus`, as sbatch takes it.
    pub gpus: Option<String>,
    /// Seconds before the time limit at which the task is sent SIGUSR1.
    pub signal_lead_s: u64,
    /// At most this many tasks at once (`--array …%K`).
    pub throttle: Option<usize>,
    /// Further `#SBATCH` options, each as `--name=value` (for example `--account=abc`).
    pub extra: Vec<String>,
}

/// A job array of `shards` tasks over `work`, writing into `out`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    /// The output folder (absolute).
    pub out: PathBuf,
    /// The folder the jobs run in (absolute): relative paths in `work` are relative to it.
    pub workdir: PathBuf,
    /// The `basin` program the jobs run (absolute).
    pub basin: PathBuf,
    /// What the tasks compute.
    pub work: Work,
    /// The number of shards, one task each.
    pub shards: usize,
    /// What each task asks for.
    pub resources: Resources,
}

/// A part of the array small enough for the cluster's `MaxArraySize`: the tasks
/// `0..len` of one `sbatch --array`, running shards `offset + 1 ..= offset + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Shards before this chunk's first.
    pub offset: usize,
    /// Tasks in the chunk.
    pub len: usize,
}

/// Splits `shards` tasks into arrays of at most `max_array_size` tasks (Slurm's array
/// indices run from 0 to `MaxArraySize` − 1).
pub fn chunks(shards: usize, max_array_size: usize) -> Vec<Chunk> {
    let size = max_array_size.max(1);
    (0..shards)
        .step_by(size)
        .map(|offset| Chunk {
            offset,
            len: size.min(shards - offset),
        })
        .collect()
}

impl Submission {
    /// The folder of the scripts and logs.
    pub fn slurm_dir(&self) -> PathBuf {
        self.out.join(SLURM_DIR)
    }

    /// The folder of the shards.
    pub fn shards_dir(&self) -> PathBuf {
        self.out.join(SHARDS_DIR)
    }

    /// The cache that an experiment's shards share (`basin reproduce --cache`).
    pub fn cache_dir(&self) -> PathBuf {
        self.out.join(CACHE_DIR)
    }

    /// The folders (experiment) or sums files (kernel) of shards `1..=shards`.
    pub fn shard_paths(&self) -> Vec<PathBuf> {
        (1..=self.shards).map(|k| self.shard_path(k)).collect()
    }

    /// Shard `k`'s folder (experiment) or sums file (kernel).
    pub fn shard_path(&self, k: usize) -> PathBuf {
        shard_path(&self.shards_dir(), &self.work, k)
    }
}

/// Shard `k`'s folder (experiment) or sums file (kernel) in `shards_dir`.
fn shard_path(shards_dir: &Path, work: &Work, k: usize) -> PathBuf {
    match work {
        Work::Experiment { .. } => shards_dir.join(k.to_string()),
        Work::Kernel { .. } => shards_dir.join(format!("sums-{k}.safetensors")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_split_to_the_cluster_s_max_array_size() {
        let c = |offset, len| Chunk { offset, len };
        assert_eq!(chunks(4, 3), vec![c(0, 3), c(3, 1)]);
        assert_eq!(chunks(4, 1001), vec![c(0, 4)]);
        assert_eq!(chunks(6, 3), vec![c(0, 3), c(3, 3)]);
        assert_eq!(chunks(1, 1), vec![c(0, 1)]);
        assert_eq!(chunks(2, 0), vec![c(0, 1), c(1, 1)]);
    }
}
