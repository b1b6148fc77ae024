//! Submitting a [`Submission`]: its scripts written into the output folder, its arrays and
//! merge job sent with `sbatch`, and its manifest written once they are all queued.

use std::path::{Path, PathBuf};

use super::manifest::{self, Manifest, ManifestError, SubmittedChunk};
use super::sbatch::{self, SlurmError};
use super::script::{array_script, merge_script};
use super::{Chunk, Submission, chunks};
use crate::exec::progress::now_unix_s;

/// The script file names inside the submission's `slurm/` folder.
const ARRAY_SCRIPT: &str = "array.sbatch";
const MERGE_SCRIPT: &str = "merge.sbatch";

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Slurm refused or could not be asked.
    #[error(transparent)]
    Slurm(#[from] SlurmError),
    /// The folder's manifest could not be read or written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file could not be written.
    #[error("{path}: {message}")]
    Write {
        /// The file or folder.
        path: String,
        /// Why.
        message: String,
    },
    /// The folder holds another submission.
    #[error(
        "{dir} holds a submission of other settings ({held}); give another --out, or the same \
         spec, --quick and --array to resume it"
    )]
    OtherSubmission {
        /// The folder.
        dir: String,
        /// What it holds.
        held: String,
    },
    /// The folder's earlier submission is still queued or running.
    #[error(
        "{dir}: jobs {jobs} of its earlier submission are still queued or running; wait for \
         them (`basin status {dir}`) or cancel them with scancel, then submit again"
    )]
    StillQueued {
        /// The folder.
        dir: String,
        /// The jobs.
        jobs: String,
    },
}

/// The scripts and the `sbatch` command lines of a submission, before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The array's batch script.
    pub array_script: String,
    /// The merge job's batch script.
    pub merge_script: String,
    /// Where the scripts go.
    pub array_path: PathBuf,
    /// Where the merge script goes.
    pub merge_path: PathBuf,
    /// The arrays, each within `MaxArraySize`.
    pub chunks: Vec<Chunk>,
}

/// The plan of `sub` on a cluster whose `MaxArraySize` is `max_array_size`.
pub fn plan(sub: &Submission, max_array_size: usize) -> Plan {
    Plan {
        array_script: array_script(sub),
        merge_script: merge_script(sub),
        array_path: sub.slurm_dir().join(ARRAY_SCRIPT),
        merge_path: sub.slurm_dir().join(MERGE_SCRIPT),
        chunks: chunks(sub.shards, max_array_size),
    }
}

/// The `sbatch` command lines of `plan`, with `<array k>` standing for the k-th array's job
/// id (as `--dry-run` prints them).
pub fn command_lines(sub: &Submission, plan: &Plan) -> Vec<String> {
    let names: Vec<String> = (1..=plan.chunks.len())
        .map(|k| format!("<array {k}>"))
        .collect();
    let mut lines: Vec<String> = plan
        .chunks
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let after = throttled_after(sub, &names, i);
            let args = sbatch::array_args(sub, c, after, &plan.array_path);
            format!("sbatch {}", args.join(" "))
        })
        .collect();
    let merge = sbatch::merge_args(&names, &plan.merge_path);
    lines.push(format!("sbatch {}", merge.join(" ")));
    lines
}

/// The array that array `i` waits for: the previous one when a throttle must hold across
/// arrays.
fn throttled_after<'a>(sub: &Submission, ids: &'a [String], i: usize) -> Option<&'a str> {
    (sub.resources.throttle.is_some() && i > 0).then(|| ids[i - 1].as_str())
}

/// Submits `sub`: checks that its folder holds no other submission and none still queued,
/// writes the scripts, sends the arrays and the merge job, and writes the manifest.
pub fn submit(sub: &Submission) -> Result<Manifest, SubmitError> {
    check_folder(sub)?;
    let plan = plan(sub, sbatch::max_array_size()?);
    write_scripts(sub, &plan)?;
    let mut arrays: Vec<SubmittedChunk> = Vec::new();
    for (i, &chunk) in plan.chunks.iter().enumerate() {
        let ids: Vec<String> = arrays.iter().map(|a| a.job_id.clone()).collect();
        let after = throttled_after(sub, &ids, i);
        let job_id = sbatch::sbatch(&sbatch::array_args(sub, chunk, after, &plan.array_path))?;
        arrays.push(SubmittedChunk { chunk, job_id });
    }
    let ids: Vec<String> = arrays.iter().map(|a| a.job_id.clone()).collect();
    let merge_job_id = sbatch::sbatch(&sbatch::merge_args(&ids, &plan.merge_path))?;
    let manifest = Manifest {
        submission: sub.clone(),
        arrays,
        merge_job_id,
        submitted_unix_s: now_unix_s(),
    };
    manifest::write(&sub.out, &manifest)?;
    Ok(manifest)
}

/// Refuses a folder that holds a submission of other work or shards, or one whose jobs are
/// still in the queue.
fn check_folder(sub: &Submission) -> Result<(), SubmitError> {
    let Some(held) = manifest::read(&sub.out)? else {
        return Ok(());
    };
    let dir = sub.out.display().to_string();
    let same = held.submission.work == sub.work && held.submission.shards == sub.shards;
    if !same {
        return Err(SubmitError::OtherSubmission {
            dir,
            held: describe(&held.submission),
        });
    }
    let queued: Vec<String> = sbatch::queue_states(&held.job_ids())
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    if queued.is_empty() {
        Ok(())
    } else {
        Err(SubmitError::StillQueued {
            dir,
            jobs: queued.join(", "),
        })
    }
}

/// A few words on what a submission computes.
pub fn describe(sub: &Submission) -> String {
    match &sub.work {
        super::Work::Experiment { spec, quick, .. } => format!(
            "{spec}{} in {} shards",
            if *quick { " --quick" } else { "" },
            sub.shards
        ),
        super::Work::Kernel { output, .. } => {
            format!("the kernel {} in {} shards", output.display(), sub.shards)
        }
    }
}

/// Writes the plan's scripts into the submission's `slurm/` folder and makes the folders the
/// jobs write into (Slurm does not create the log folder).
fn write_scripts(sub: &Submission, plan: &Plan) -> Result<(), SubmitError> {
    for dir in [sub.slurm_dir().join("logs"), sub.shards_dir()] {
        std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, e.to_string()))?;
    }
    for (path, text) in [
        (&plan.array_path, &plan.array_script),
        (&plan.merge_path, &plan.merge_script),
    ] {
        basin_data::io::write_atomic(path, text.as_bytes())
            .map_err(|e| write_error(path, e.to_string()))?;
    }
    Ok(())
}

fn write_error(path: &Path, message: String) -> SubmitError {
    SubmitError::Write {
        path: path.display().to_string(),
        message,
    }
}
