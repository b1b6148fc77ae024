//! The `basin` command: a thin shell over basin's libraries. It parses the command line,
//! checks the flags, calls the library and prints the result. The binary's `main` is [`main`];
//! [`check_args`] parses and checks an argument vector without running anything (the fuzz
//! target of the command line calls it).

mod boolean_cmd;
mod cluster_cmd;
mod common;
mod data_cmd;
mod hessian_cmd;
mod kernel_cmd;
mod lab_cmd;
mod model_cmd;
mod prior_cmd;
mod sharpness_cmd;
mod signals;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// basin measures why deep networks generalize: test error, local flatness and the Bayesian
/// prior log P(f) of trained networks.
#[derive(Debug, Parser)]
#[command(name = "basin", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Print only results and errors: no progress bars or log messages.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(long, short, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect data sets.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Train a fully-connected network on S ∪ A to 100% accuracy on S, report its errors on
    /// S, A and T, and save it.
    Train(Box<model_cmd::TrainArgs>),
    /// Measure a saved network on a data set: mean loss and error.
    Eval(model_cmd::EvalArgs),
    /// α-scale a saved ReLU network (Dinh et al. 2017): same function, different flatness.
    Scale(model_cmd::ScaleArgs),
    /// Keskar sharpness of a saved network: the largest relative rise of the loss within a
    /// box of relative half-width ε around its parameters, by SGD ascent or L-BFGS-B.
    Sharpness(Box<sharpness_cmd::SharpnessArgs>),
    /// log P(f), the prior probability of a function (labels on an ordered input set) under
    /// a Gaussian-process prior, by EP or Laplace: from a kernel and labels, or from a model.
    Prior(Box<prior_cmd::PriorArgs>),
    /// The NNGP kernel of a network on a data set's inputs, written as an N × N float64 .npy:
    /// analytic for fully-connected nets (relu, erf, linear), or Monte Carlo over random
    /// networks of any architecture, ResNets included, with each entry's standard error;
    /// whole, or in shards that `basin kernel merge` adds up.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Kernel(Box<kernel_cmd::KernelArgs>),
    /// The Hessian spectrum of a saved network's loss: λmax, the spectral norm, the top-k
    /// eigenvalues and their log-product by Lanczos; optionally the trace and the density.
    Hessian(Box<hessian_cmd::HessianArgs>),
    /// The Boolean system {0,1}^7: sample random networks and count their functions.
    #[command(subcommand)]
    Boolean(boolean_cmd::BooleanCommand),
    /// Run an experiment spec (default: the paper's figure 3 on MNIST) and write its report:
    /// records, correlations with test error, plots.
    Reproduce(lab_cmd::ReproduceArgs),
    /// Regenerate an experiment's summary, plots and report from its stored records (merging
    /// the folders of several shards).
    Report(lab_cmd::ReportArgs),
    /// Run an experiment (or a Monte Carlo kernel) on a Slurm cluster: its shards as a job
    /// array, each task requeued and resumed when its time runs out, and a merge job that
    /// writes the report once every task has succeeded.
    Submit(Box<cluster_cmd::SubmitArgs>),
    /// Where a sharded or submitted run stands: runs stored per shard and in all, runs that
    /// did not reach zero training error, failed shards, the queue and an estimated time left.
    Status(cluster_cmd::StatusArgs),
}

fn init_logging(quiet: bool, verbose: u8) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// An error and its causes joined by ": ", leaving out each cause whose text the message so far
/// already holds (many errors quote their source in their own message).
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// Whether an error comes from writing to a pipe whose reader has gone.
fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The command-line definition: [`Cli`]'s, with every flag that takes a value accepting a
/// negative number (`--lr -0.01` is the value -0.01, not a flag `-0`).
pub fn command() -> clap::Command {
    allow_negative_numbers(Cli::command())
}

fn allow_negative_numbers(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| {
        if a.get_action().takes_values() {
            a.allow_negative_numbers(true)
        } else {
            a
        }
    })
    .mut_subcommands(allow_negative_numbers)
}

/// Parses an argument vector (the program name first).
pub fn parse_from<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(argv)?;
    Cli::from_arg_matches(&matches)
}

/// Parses an argument vector and checks its flags as the command would before it reads any
/// input or starts any work: sizes, counts and the memory they need. Loads nothing, runs
/// nothing.
pub fn check_args<I, T>(argv: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    parse_from(argv)?.command.check()
}

impl Command {
    /// The checks of the flags that need no input: see [`check_args`].
    fn check(&self) -> anyhow::Result<()> {
        match self {
            Command::Train(args) => args.check(),
            Command::Prior(args) => args.check(),
            Command::Kernel(args) => args.check(),
            Command::Hessian(args) => args.check(),
            Command::Boolean(cmd) => cmd.check(),
            Command::Reproduce(args) => args.check(),
            Command::Eval(args) => args.check(),
            Command::Sharpness(args) => args.check(),
            Command::Submit(args) => args.check(),
            Command::Data(_) | Command::Scale(_) | Command::Report(_) | Command::Status(_) => {
                Ok(())
            }
        }
    }

    /// Checks the flags, then runs the command.
    fn run(self, quiet: bool) -> anyhow::Result<()> {
        self.check()?;
        match self {
            Command::Data(cmd) => data_cmd::run(cmd),
            Command::Train(args) => model_cmd::run_train(*args, quiet),
            Command::Eval(args) => model_cmd::run_eval(args),
            Command::Scale(args) => model_cmd::run_scale(args),
            Command::Sharpness(args) => sharpness_cmd::run_sharpness(*args, quiet),
            Command::Prior(args) => prior_cmd::run_prior(*args, quiet),
            Command::Kernel(args) => kernel_cmd::run_kernel(*args, quiet),
            Command::Hessian(args) => hessian_cmd::run_hessian(*args, quiet),
            Command::Boolean(cmd) => boolean_cmd::run(cmd, quiet),
            Command::Reproduce(args) => lab_cmd::run_reproduce(args, quiet),
            Command::Report(args) => lab_cmd::run_report(args),
            Command::Submit(args) => cluster_cmd::run_submit(*args),
            Command::Status(args) => cluster_cmd::run_status(args),
        }
    }
}

/// The `basin` program: parses the command line, runs the command, and reports an error on
/// stderr with a failing exit status.
pub fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    signals::die_quietly_on_closed_pipe();
    #[cfg(target_os = "linux")]
    signals::clean_up_on_signals();
    let cli = parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit());
    init_logging(cli.quiet, cli.verbose);
    match cli.command.run(cli.quiet) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<signals::StoppedEarly>().is_some() => {
            eprintln!("{}", error_text(&err));
            ExitCode::from(signals::STOPPED_EXIT)
        }
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn an_error_that_quotes_its_source_prints_it_once() {
        let io = std::io::Error::other("disk on fire");
        let err = anyhow::Error::new(io).context("writing m.safetensors: disk on fire");
        assert_eq!(error_text(&err), "writing m.safetensors: disk on fire");
        let err = anyhow::Error::new(std::io::Error::other("no space")).context("writing x");
        assert_eq!(error_text(&err), "writing x: no space");
    }

    #[test]
    fn the_cli_fuzz_seeds_are_checked_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/cli");
        let seeds = std::fs::read_dir(&dir).unwrap();
        for seed in seeds {
            let bytes = std::fs::read(seed.unwrap().path()).unwrap();
            let text = String::from_utf8(bytes).unwrap();
            let argv = std::iter::once("basin").chain(text.split('\0'));
            let _ = check_args(argv);
        }
    }

    #[test]
    fn negative_numbers_are_values_not_flags() {
        let cli = parse_from(["basin", "train", "--lr", "-0.01", "--out", "m"]).unwrap();
        assert!(matches!(cli.command, Command::Train(_)));
        let err = parse_from(["basin", "train", "--lr", "-0.01"]).unwrap_err();
        assert!(!err.to_string().contains("'-0'"), "{err}");
    }
}
