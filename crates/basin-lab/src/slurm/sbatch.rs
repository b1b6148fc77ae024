//! Talking to Slurm: `sbatch --parsable` to submit, `scontrol show config` for the largest
//! array, `squeue` for the tasks' states.

use std::path::Path;
use std::process::Command;

use super::script::OFFSET_VAR;
use super::{Chunk, Submission};

/// A Slurm command that failed: the command line and what it said.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// The command could not be started (Slurm's tools are not on the PATH).
    #[error(
        "cannot run {command}: {source} (is this a Slurm login node? `basin submit --dry-run` prints the scripts without Slurm)"
    )]
    Start {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error.
        stderr: String,
    },
    /// The command's output was not what was expected.
    #[error("{command}: unexpected output {output:?}")]
    Output {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
}

/// Slurm's default `MaxArraySize`.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// Runs `program args` and returns its standard output.
fn run(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let command = std::iter::once(program.to_owned())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| SlurmError::Start {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(SlurmError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cluster's `MaxArraySize`, from `scontrol show config`.
pub fn max_array_size() -> Result<usize, SlurmError> {
    let args = vec!["show".to_owned(), "config".to_owned()];
    let text = run("scontrol", &args)?;
    parse_max_array_size(&text).ok_or_else(|| SlurmError::Output {
        command: "scontrol show config".into(),
        output: "no MaxArraySize line".into(),
    })
}

/// The value of the `MaxArraySize = N` line of `scontrol show config`'s output.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// The `sbatch` arguments that submit `chunk` of the array script at `script`: its task
/// range with the throttle, its offset, and its dependency (`afterany` on the previous
/// chunk's array when throttled, so that the throttle holds across chunks).
pub fn array_args(
    sub: &Submission,
    chunk: Chunk,
    after: Option<&str>,
    script: &Path,
) -> Vec<String> {
    let throttle = sub
        .resources
        .throttle
        .map_or(String::new(), |k| format!("%{k}"));
    let mut args = vec![
        "--parsable".to_owned(),
        format!("--array=0-{}{throttle}", chunk.len - 1),
        format!("--export=ALL,{OFFSET_VAR}={}", chunk.offset),
    ];
    if let Some(previous) = after {
        args.push(format!("--dependency=afterany:{previous}"));
    }
    args.push(script.to_string_lossy().into_owned());
    args
}

/// The `sbatch` arguments that submit the merge script at `script` after every array in
/// `arrays` has succeeded (cancelled if one fails).
pub fn merge_args(arrays: &[String], script: &Path) -> Vec<String> {
    vec![
        "--parsable".to_owned(),
        format!("--dependency=afterok:{}", arrays.join(":")),
        "--kill-on-invalid-dep=yes".to_owned(),
        script.to_string_lossy().into_owned(),
    ]
}

/// Runs `sbatch args` and returns the job id it prints (`--parsable`: `id` or `id;cluster`).
pub fn sbatch(args: &[String]) -> Result<String, SlurmError> {
    let out = run("sbatch", args)?;
    let id = out.trim().split(';').next().unwrap_or("").to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlurmError::Output {
            command: format!("sbatch {}", args.join(" ")),
            output: out,
        });
    }
    Ok(id)
}

/// The scheduler's state of each job of `ids` and of their array tasks, as
/// `(id or id_task, state, reason)`; empty when squeue is missing or fails (the jobs may have
/// left the queue).
pub fn queue_states(ids: &[String]) -> Vec<(String, String, String)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let args = vec![
        "--noheader".to_owned(),
        "--array".to_owned(),
        format!("--jobs={}", ids.join(",")),
        "--format=%i|%T|%r".to_owned(),
    ];
    run("squeue", &args).map_or_else(
        |_| Vec::new(),
        |text| {
            text.lines()
                .filter_map(|l| {
                    let mut parts = l.trim().splitn(3, '|');
                    Some((
                        parts.next()?.to_owned(),
                        parts.next()?.to_owned(),
                        parts.next().unwrap_or("").to_owned(),
                    ))
                })
                .collect()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_array_size_is_read_from_the_config() {
        let text = "Configuration data as of 2026-12-08T01:00:00\nMaxArraySize            = 3\nMaxJobCount = 10000\n";
        assert_eq!(parse_max_array_size(text), Some(3));
        assert_eq!(parse_max_array_size("MaxJobCount = 1"), None);
    }
}
