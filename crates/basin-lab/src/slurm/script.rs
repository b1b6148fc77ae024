//! The batch scripts of a submission: the array's (one shard per task, requeued when the
//! pre-timeout signal stopped it) and the merge job's.

use std::fmt::Write;
use std::path::Path;

use super::{REQUEUE_EXIT, Submission, Work};

/// The environment variable that carries a chunk's first shard to its tasks
/// (`sbatch --export=ALL,BASIN_SHARD_OFFSET=…`).
pub const OFFSET_VAR: &str = "BASIN_SHARD_OFFSET";

/// `text` quoted for bash: as is when it is plain, otherwise in single quotes.
pub fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

/// The `#SBATCH` lines every job of the submission shares: name, working folder, partition,
/// time, memory, the extra options, and the GPUs if `gpus` (the merge job needs none).
fn common_header(sub: &Submission, name: &str, log: &str, gpus: bool) -> String {
    let r = &sub.resources;
    let gpus = if gpus { &r.gpus } else { &None };
    let mut h = String::from("#!/bin/bash\n");
    let mut line = |option: String| {
        let _ = writeln!(h, "#SBATCH {option}");
    };
    line(format!("--job-name={}", quote(name)));
    line(format!("--chdir={}", quote_path(&sub.workdir)));
    line(format!(
        "--output={}",
        quote_path(&sub.slurm_dir().join(log))
    ));
    line("--open-mode=append".to_owned());
    for (flag, value) in [
        ("partition", &r.partition),
        ("time", &r.time),
        ("mem", &r.mem),
        ("gpus", gpus),
    ] {
        if let Some(v) = value {
            line(format!("--{flag}={}", quote(v)));
        }
    }
    for extra in &r.extra {
        line(quote(extra));
    }
    h
}

/// The command a task runs for shard `$shard` (a bash variable) of `sub`.
fn task_command(sub: &Submission) -> String {
    let basin = quote_path(&sub.basin);
    let n = sub.shards;
    let cpus = sub.resources.cpus_per_task;
    let shards = quote_path(&sub.shards_dir());
    match &sub.work {
        Work::Experiment { spec, quick, .. } => format!(
            "{basin} --quiet reproduce {}{} --shard \"$shard/{n}\" --out {shards}/\"$shard\" \
             --jobs {cpus} --cache {}",
            quote(spec),
            if *quick { " --quick" } else { "" },
            quote_path(&sub.cache_dir()),
        ),
        Work::Kernel { args, .. } => {
            let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
            let threads = if args
                .iter()
                .any(|a| a == "--threads" || a.starts_with("--threads="))
            {
                String::new()
            } else {
                format!(" --threads {cpus}")
            };
            format!(
                "{basin} --quiet kernel {}{threads} --shard \"$shard/{n}\" --output \
                 {shards}/sums-\"$shard\".safetensors",
                args.join(" ")
            )
        }
    }
}

/// The array's batch script. Task `i` of a chunk runs shard `$BASIN_SHARD_OFFSET + i + 1`
/// in the background and forwards SIGUSR1 (sent `signal_lead_s` before the time limit) and
/// SIGTERM to it. A task that exits with [`REQUEUE_EXIT`] (or fails after SIGUSR1) requeues
/// itself, and its rerun resumes from the shard's stored runs.
pub fn array_script(sub: &Submission) -> String {
    let mut s = common_header(sub, &sub.work.job_name(), "logs/shard-%A_%a.out", true);
    let r = &sub.resources;
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", r.cpus_per_task);
    let _ = writeln!(s, "#SBATCH --signal=B:USR1@{}", r.signal_lead_s);
    s.push_str("#SBATCH --requeue\n");
    let _ = write!(
        s,
        r#"
# Written by `basin submit`. Task i of an array runs shard ${OFFSET_VAR} + i + 1 of {n}.
set -u
shard=$(( ${{{OFFSET_VAR}:-0}} + SLURM_ARRAY_TASK_ID + 1 ))
task="${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
echo "basin: shard $shard/{n}, task $task on $(hostname), restart ${{SLURM_RESTART_COUNT:-0}}, $(date -u +%FT%TZ)"
{command} &
pid=$!
signalled=0
trap 'signalled=1; kill -USR1 "$pid" 2>/dev/null' USR1
trap 'kill -TERM "$pid" 2>/dev/null' TERM
while :; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || break
done
if [ "$status" -eq {REQUEUE_EXIT} ] || {{ [ "$signalled" -eq 1 ] && [ "$status" -ne 0 ]; }}; then
    echo "basin: shard $shard stopped before the time limit (status $status); requeueing $task"
    scontrol requeue "$task"
    exit 0
fi
echo "basin: shard $shard ended with status $status, $(date -u +%FT%TZ)"
exit "$status"
"#,
        n = sub.shards,
        command = task_command(sub),
    );
    s
}

/// The merge job's batch script: `basin report` over the shards' folders that exist (a
/// shard that holds no run leaves none), or `basin kernel merge` over the sums.
pub fn merge_script(sub: &Submission) -> String {
    let mut s = common_header(
        sub,
        &format!("{}-merge", sub.work.job_name()),
        "logs/merge-%j.out",
        false,
    );
    s.push_str("#SBATCH --cpus-per-task=1\n");
    let basin = quote_path(&sub.basin);
    let body = match &sub.work {
        Work::Experiment { .. } => {
            let dirs: Vec<String> = sub.shard_paths().iter().map(|p| quote_path(p)).collect();
            format!(
                "dirs=()\nfor d in {}; do\n    if [ -d \"$d\" ]; then dirs+=(\"$d\"); fi\ndone\n\
                 exec {basin} --quiet report \"${{dirs[@]}}\" --out {}\n",
                dirs.join(" "),
                quote_path(&sub.out)
            )
        }
        Work::Kernel { output, sums, .. } => {
            let parts: Vec<String> = sub.shard_paths().iter().map(|p| quote_path(p)).collect();
            let sums = sums
                .as_ref()
                .map_or(String::new(), |p| format!(" --sums {}", quote_path(p)));
            format!(
                "exec {basin} --quiet kernel merge {} --output {}{sums}\n",
                parts.join(" "),
                quote_path(output)
            )
        }
    };
    let _ = write!(
        s,
        "\n# Written by `basin submit`: runs once every task of the array has succeeded.\n\
         set -euo pipefail\n{body}"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::Resources;
    use std::path::PathBuf;

    fn submission(work: Work) -> Submission {
        Submission {
            out: PathBuf::from("/scratch/me/fig3 run"),
            workdir: PathBuf::from("/home/me"),
            basin: PathBuf::from("/opt/basin/bin/basin"),
            work,
            shards: 4,
            resources: Resources {
                partition: Some("cpu".into()),
                time: Some("2:00:00".into()),
                cpus_per_task: 2,
                mem: Some("8G".into()),
                gpus: None,
                signal_lead_s: 600,
                throttle: Some(2),
                extra: vec!["--account=abc".into()],
            },
        }
    }

    fn experiment() -> Work {
        Work::Experiment {
            name: "fig3-mnist".into(),
            spec: "fig3-mnist".into(),
            quick: true,
        }
    }

    #[test]
    fn quoting_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(quote("fig3-mnist"), "fig3-mnist");
        assert_eq!(quote("/a b/c"), "'/a b/c'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_array_script_runs_one_shard_per_task_and_requeues_on_the_signal() {
        let s = array_script(&submission(experiment()));
        for want in [
            "#SBATCH --job-name=basin-fig3-mnist\n",
            "#SBATCH --chdir=/home/me\n",
            "#SBATCH --output='/scratch/me/fig3 run/slurm/logs/shard-%A_%a.out'\n",
            "#SBATCH --partition=cpu\n",
            "#SBATCH --time=2:00:00\n",
            "#SBATCH --mem=8G\n",
            "#SBATCH --account=abc\n",
            "#SBATCH --cpus-per-task=2\n",
            "#SBATCH --signal=B:USR1@600\n",
            "#SBATCH --requeue\n",
            "shard=$(( ${BASIN_SHARD_OFFSET:-0} + SLURM_ARRAY_TASK_ID + 1 ))",
            "/opt/basin/bin/basin --quiet reproduce fig3-mnist --quick --shard \"$shard/4\" \
             --out '/scratch/me/fig3 run/shards'/\"$shard\" --jobs 2 --cache \
             '/scratch/me/fig3 run/cache' &",
            "scontrol requeue \"$task\"",
            "if [ \"$status\" -eq 75 ]",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        assert!(!s.contains("--gpus"), "{s}");
    }

    #[test]
    fn the_merge_script_reports_the_shards_or_merges_the_kernel_sums() {
        let s = merge_script(&submission(experiment()));
        assert!(
            s.contains("#SBATCH --job-name=basin-fig3-mnist-merge\n"),
            "{s}"
        );
        assert!(
            s.contains("for d in '/scratch/me/fig3 run/shards/1' "),
            "{s}"
        );
        assert!(
            s.contains("report \"${dirs[@]}\" --out '/scratch/me/fig3 run'\n"),
            "{s}"
        );
        let kernel = Work::Kernel {
            args: vec![
                "--data".into(),
                "mnist".into(),
                "--method".into(),
                "mc".into(),
            ],
            output: PathBuf::from("/scratch/k.npy"),
            sums: Some(PathBuf::from("/scratch/k.safetensors")),
        };
        let sub = submission(kernel);
        let s = merge_script(&sub);
        assert!(
            s.contains(
                "kernel merge '/scratch/me/fig3 run/shards/sums-1.safetensors' \
                 '/scratch/me/fig3 run/shards/sums-2.safetensors'"
            ),
            "{s}"
        );
        assert!(
            s.contains("--output /scratch/k.npy --sums /scratch/k.safetensors\n"),
            "{s}"
        );
        let a = array_script(&sub);
        assert!(
            a.contains(
                "kernel --data mnist --method mc --threads 2 --shard \"$shard/4\" --output \
                 '/scratch/me/fig3 run/shards'/sums-\"$shard\".safetensors &"
            ),
            "{a}"
        );
    }
}
