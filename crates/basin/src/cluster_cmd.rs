//! `basin submit` (an experiment's shards, or a Monte Carlo kernel's, as a Slurm job array
//! with a merge job) and `basin status` (where a sharded run stands).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use basin_lab::exec::progress::now_unix_s;
use basin_lab::slurm::sbatch::DEFAULT_MAX_ARRAY_SIZE;
use basin_lab::slurm::submit::{Plan, command_lines, describe, plan, submit};
use basin_lab::slurm::{Resources, Submission, Work, time};
use basin_lab::spec::ExperimentSpec;
use basin_lab::status::{Status, status};
use clap::Args;

use crate::common::check_thread_count;

/// Arguments of `basin submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The scheduler to submit to. Slurm is the one basin knows; the flag is required so that
    /// a command line says where its jobs go.
    #[arg(long, required = true)]
    slurm: bool,
    /// The experiment: a built-in spec's name or a spec file's path (as `basin reproduce`
    /// takes it). Leave it out with --kernel.
    #[arg(value_name = "SPEC", required_unless_present = "kernel")]
    spec: Option<String>,
    /// The experiment's --quick form (as `basin reproduce --quick`).
    #[arg(long, conflicts_with = "kernel")]
    quick: bool,
    /// Submit a Monte Carlo kernel instead: the arguments after `--` are `basin kernel`'s,
    /// with its --output (where the merge job writes the kernel) and optionally --sums; each
    /// task computes one --shard of the networks.
    #[arg(long, requires = "kernel_args", conflicts_with = "spec")]
    kernel: bool,
    /// `basin kernel`'s arguments, after `--` (with --kernel).
    #[arg(last = true, value_name = "KERNEL ARGS")]
    kernel_args: Vec<String>,
    /// The output folder: the scripts and logs go to <DIR>/slurm, shard K to
    /// <DIR>/shards/K, and the merge job's report into <DIR> (default: results/<spec name>,
    /// or <kernel output stem>.slurm next to a kernel's --output). Submitting the same work
    /// into it again resumes: the tasks skip the stored runs.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The number of shards, one array task each.
    #[arg(long, value_name = "N", default_value_t = 8)]
    array: usize,
    /// At most K tasks of the array at once (sbatch --array=…%K); kept across arrays when the
    /// cluster's MaxArraySize splits the array.
    #[arg(long, value_name = "K")]
    throttle: Option<usize>,
    /// The partition (sbatch --partition).
    #[arg(long, value_name = "P")]
    partition: Option<String>,
    /// Each task's time limit, as sbatch --time takes it (minutes, HH:MM:SS, D-HH:MM, …).
    #[arg(long, value_name = "T")]
    time: Option<String>,
    /// CPUs per task; basin runs as many experiment jobs (or kernel threads) in each.
    #[arg(long, value_name = "C", default_value_t = 1)]
    cpus_per_task: usize,
    /// Memory per task, as sbatch --mem takes it (for example 8G).
    #[arg(long, value_name = "M")]
    mem: Option<String>,
    /// GPUs per task, as sbatch --gpus takes it (for example 1 or a100:1).
    #[arg(long, value_name = "G")]
    gpus: Option<String>,
    /// Seconds before the time limit at which Slurm sends a task SIGUSR1: basin then
    /// finishes the runs in progress, stores them and requeues the task, whose rerun
    /// resumes (default: a tenth of --time, between 60 and 600 s, at most half of it; 300
    /// without --time). Make it longer than one run.
    #[arg(long, value_name = "S")]
    signal_lead: Option<u64>,
    /// A further #SBATCH option for every job, as --name=value (for example
    /// --sbatch=--account=abc); repeat for more.
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    sbatch: Vec<String>,
    /// Print the scripts and the sbatch commands instead of submitting; writes nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Arguments of `basin status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The output folder of `basin submit`, of a sharded run (shards/1, shards/2, …) or of
    /// one `basin reproduce`.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

impl SubmitArgs {
    /// The checks that need no spec: counts, the time limit, the signal's lead.
    pub fn check(&self) -> Result<()> {
        ensure!(
            (1..=100_000).contains(&self.array),
            "--array {}: give between 1 and 100000 shards",
            self.array
        );
        check_thread_count("--cpus-per-task", self.cpus_per_task)?;
        if let Some(k) = self.throttle {
            ensure!(k >= 1, "--throttle 0: give at least 1 task at once");
        }
        self.signal_lead_s().map(|_| ())?;
        for option in &self.sbatch {
            ensure!(
                option.starts_with("--") && !option.contains('\n'),
                "--sbatch {option:?}: give one sbatch option as --name=value"
            );
        }
        Ok(())
    }

    /// The signal's lead in seconds, checked against the time limit.
    fn signal_lead_s(&self) -> Result<u64> {
        let limit = self
            .time
            .as_deref()
            .map(time::parse_seconds)
            .transpose()?
            .flatten();
        let lead = self.signal_lead.unwrap_or(time::default_lead_s(limit));
        if let Some(limit) = limit {
            ensure!(
                lead < limit,
                "--signal-lead {lead}: it must be shorter than --time ({limit} s)"
            );
        }
        Ok(lead)
    }

    fn resources(&self) -> Result<Resources> {
        Ok(Resources {
            partition: self.partition.clone(),
            time: self.time.clone(),
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            gpus: self.gpus.clone(),
            signal_lead_s: self.signal_lead_s()?,
            throttle: self.throttle,
            extra: self.sbatch.clone(),
        })
    }
}

/// Runs `basin submit`.
pub fn run_submit(args: SubmitArgs) -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let (work, default_out) = if args.kernel {
        kernel_work(&args.kernel_args, args.array, &cwd)?
    } else {
        experiment_work(args.spec.as_deref().unwrap_or_default(), args.quick, &cwd)?
    };
    let sub = Submission {
        out: absolute(&cwd, args.out.as_deref().unwrap_or(&default_out)),
        workdir: cwd,
        basin: std::env::current_exe().context("finding the basin program")?,
        work,
        shards: args.array,
        resources: args.resources()?,
    };
    if args.dry_run {
        print_dry_run(&sub);
        return Ok(());
    }
    let manifest = submit(&sub)?;
    let arrays: Vec<&str> = manifest.arrays.iter().map(|a| a.job_id.as_str()).collect();
    println!(
        "submitted {}: array job{} {}, merge job {}",
        describe(&sub),
        if arrays.len() > 1 { "s" } else { "" },
        arrays.join(", "),
        manifest.merge_job_id
    );
    println!("follow it with: basin status {}", sub.out.display());
    Ok(())
}

/// An experiment's work and default folder; a spec file's path is made absolute.
fn experiment_work(spec: &str, quick: bool, cwd: &Path) -> Result<(Work, PathBuf)> {
    let loaded = ExperimentSpec::load(spec)?;
    let spec_arg = if Path::new(spec).is_file() {
        absolute(cwd, Path::new(spec))
            .to_string_lossy()
            .into_owned()
    } else {
        spec.to_owned()
    };
    let work = Work::Experiment {
        name: loaded.name.clone(),
        spec: spec_arg,
        quick,
    };
    Ok((work, loaded.default_out()))
}

/// A kernel's work: `basin kernel`'s arguments without --output and --sums (taken for the
/// merge), checked as `basin kernel --shard 1/N` would check them.
fn kernel_work(args: &[String], shards: usize, cwd: &Path) -> Result<(Work, PathBuf)> {
    let (rest, output, sums) = split_kernel_outputs(args)?;
    let output = absolute(
        cwd,
        &output.context(
            "--kernel: give basin kernel's --output after `--`: the path the merge job writes the \
         kernel to",
        )?,
    );
    let mut argv: Vec<String> = ["basin", "kernel"].map(String::from).to_vec();
    argv.extend(rest.iter().cloned());
    argv.extend(["--shard".into(), format!("1/{shards}"), "--output".into()]);
    argv.push("sums-1.safetensors".into());
    crate::check_args(&argv).context("checking the kernel's arguments")?;
    let stem = output.file_stem().unwrap_or_default().to_string_lossy();
    let default_out = output.with_file_name(format!("{stem}.slurm"));
    let sums = sums.map(|s| absolute(cwd, &s));
    let work = Work::Kernel {
        args: rest,
        output,
        sums,
    };
    Ok((work, default_out))
}

/// Splits `--output`/`-o` and `--sums` (with their values) from a kernel's arguments;
/// `--shard` is refused, as the tasks choose it.
fn split_kernel_outputs(
    args: &[String],
) -> Result<(Vec<String>, Option<PathBuf>, Option<PathBuf>)> {
    let (mut rest, mut output, mut sums) = (Vec::new(), None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let slot = match flag {
            "--output" | "-o" => &mut output,
            "--sums" => &mut sums,
            "--shard" => bail!("--kernel: leave out --shard; basin submit gives each task one"),
            _ => {
                rest.push(a.clone());
                continue;
            }
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .with_context(|| format!("--kernel: {flag} needs a value"))?
                .clone(),
        };
        *slot = Some(PathBuf::from(value));
    }
    Ok((rest, output, sums))
}

fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        cwd.join(path)
    }
}

/// Prints the scripts and the sbatch commands of `sub`, with the cluster's MaxArraySize
/// where scontrol answers (Slurm's default otherwise).
fn print_dry_run(sub: &Submission) {
    let (max, source) = match basin_lab::slurm::sbatch::max_array_size() {
        Ok(m) => (m, "from scontrol show config"),
        Err(_) => (
            DEFAULT_MAX_ARRAY_SIZE,
            "Slurm's default: scontrol did not answer",
        ),
    };
    let plan: Plan = plan(sub, max);
    println!("# basin submit --dry-run: {}", describe(sub));
    println!(
        "# MaxArraySize {max} ({source}): {} array(s)",
        plan.chunks.len()
    );
    println!("\n# ==> {} <==", plan.array_path.display());
    print!("{}", plan.array_script);
    println!("\n# ==> {} <==", plan.merge_path.display());
    print!("{}", plan.merge_script);
    println!("\n# the commands, each array's id taking the place of <array k>:");
    for line in command_lines(sub, &plan) {
        println!("{line}");
    }
}

/// Runs `basin status`.
pub fn run_status(args: StatusArgs) -> Result<()> {
    let st = status(&args.dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        print_status(&st);
    }
    Ok(())
}

fn print_status(st: &Status) {
    println!("{} in {}", st.name, st.dir.display());
    if let Some(m) = &st.manifest {
        let arrays: Vec<&str> = m.arrays.iter().map(|a| a.job_id.as_str()).collect();
        println!(
            "submitted as array job(s) {}, merge job {}",
            arrays.join(", "),
            m.merge_job_id
        );
    }
    println!(
        "{:>5}  {:>11}  {:>13}  {:>7}  {:<8}  {:>16}  queue",
        "shard", "runs stored", "not converged", "attempt", "state", "updated"
    );
    for s in &st.shards {
        print_shard(s);
    }
    let runs = st.runs.map_or("?".to_owned(), |r| r.to_string());
    let eta = st.eta_s.map_or("unknown".to_owned(), format_duration);
    println!(
        "all: {}/{runs} runs stored, {} did not reach zero training error, {} shard(s) failed, \
         ETA {eta}",
        st.stored, st.not_converged, st.failed
    );
    if let Some(q) = &st.merge_queue {
        println!("merge job: {q}");
    }
    println!(
        "merged outputs: {}",
        if st.merged { "written" } else { "not yet" }
    );
}

fn print_shard(s: &basin_lab::status::ShardStatus) {
    let shard = s.shard.map_or("-".to_owned(), |k| k.to_string());
    let runs = format!(
        "{}/{}",
        s.stored,
        s.runs.map_or("?".to_owned(), |r| r.to_string())
    );
    let (attempt, state, updated) = s.progress.as_ref().map_or_else(
        || ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        |p| {
            let state = format!("{:?}", p.state).to_lowercase();
            let age = (now_unix_s() - p.updated_unix_s).max(0.0);
            (
                p.attempt.to_string(),
                state,
                format!("{} ago", format_duration(age)),
            )
        },
    );
    let queue = s.queue.clone().unwrap_or_default();
    println!(
        "{shard:>5}  {runs:>11}  {:>13}  {attempt:>7}  {state:<8}  {updated:>16}  {queue}",
        s.not_converged
    );
    if let Some(error) = s.progress.as_ref().and_then(|p| p.error.as_ref()) {
        println!("       error: {error}");
    }
}

fn format_duration(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_s_outputs_are_taken_out_of_its_arguments() {
        let args: Vec<String> = [
            "--data",
            "mnist",
            "--output=k.npy",
            "--sums",
            "s.st",
            "-n",
            "5",
        ]
        .map(String::from)
        .to_vec();
        let (rest, out, sums) = split_kernel_outputs(&args).unwrap();
        assert_eq!(rest, ["--data", "mnist", "-n", "5"]);
        assert_eq!(out, Some(PathBuf::from("k.npy")));
        assert_eq!(sums, Some(PathBuf::from("s.st")));
        let shard = ["--shard", "1/2"].map(String::from);
        assert!(split_kernel_outputs(&shard).is_err());
        assert!(split_kernel_outputs(&["-o".to_owned()]).is_err());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(42.4), "42 s");
        assert_eq!(format_duration(125.0), "2 min 5 s");
        assert_eq!(format_duration(7300.0), "2 h 1 min");
    }
}
