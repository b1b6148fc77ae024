//! `basin data …`: inspect data sets.

use anyhow::{Context, Result};
use basin_data::{ClassMap, DataSource, DataSummary, Dataset};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::common::{class_map_arg, parse_source};

/// The `data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Print the number of examples, the dimension, the class counts and the value range of a
    /// data source (and of its separate test set, for CIFAR-10).
    Info(InfoArgs),
}

/// Arguments of `basin data info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The data source: mnist (the embedded 10,000-digit MNIST subset), idx:<images>,<labels>
    /// (IDX files, gzipped or not), idx:<images>,<labels>,<test-images>,<test-labels> (with a
    /// separate test set), idx:<dir> (a folder of MNIST's or Fashion-MNIST's four files, its
    /// t10k files the test set), cifar10:<dir> (the CIFAR-10 binary batches),
    /// npy:<x.npy>[,<y.npy>] (features (n, …) and labels (n,)), or boolean:<n>[:<target>]
    /// (all 2^n inputs of {0,1}^n; target majority, parity, constant0, constant1, 0x<hex> or
    /// bits:<0/1 string>).
    #[arg(value_name = "SOURCE", value_parser = parse_source)]
    source: DataSource,
    /// Binarise first with a class map: comma-separated <classes>:<label> entries, classes one
    /// id or a range a-b, unlisted classes dropped (e.g. 0-4:0,5-9:1). `mnist` and
    /// `cifar-cars-cats` name the paper's two maps; `default` takes the source's own and
    /// `none` applies none.
    #[arg(long, value_name = "MAP")]
    class_map: Option<String>,
    /// Print one JSON object instead of a table. Keys: n, dim, class_counts (label → count,
    /// null when unlabelled), min, max, image_shape ([channels, height, width], null for flat
    /// features), and test (the same keys) where the source has a separate test set.
    #[arg(long)]
    json: bool,
}

/// What `basin data info --json` prints: the summary of the pool and, where the source has
/// one, of its separate test set.
#[derive(Debug, Serialize)]
struct Summary {
    #[serde(flatten)]
    pool: DataSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<DataSummary>,
}

/// Prints a summary as an aligned table under `title`.
fn print_table(s: &DataSummary, title: &str) {
    println!("{title}");
    println!("  examples     {}", s.n);
    println!("  dimension    {}", s.dim);
    match &s.class_counts {
        Some(counts) => {
            let list: Vec<String> = counts.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            println!("  classes      {}", list.join(", "));
        }
        None => println!("  classes      (unlabelled)"),
    }
    if let (Some(lo), Some(hi)) = (s.min, s.max) {
        println!("  value range  [{lo}, {hi}]");
    }
    if let Some([c, h, w]) = s.image_shape {
        println!("  images       {c}x{h}x{w} (channels x height x width)");
    }
}

/// The map of `--class-map`: as for the other commands, except that `default` on a source
/// with no map of its own is an error rather than no map.
fn class_map(arg: &str, source: &DataSource) -> Result<Option<ClassMap>> {
    if arg == "default" && source.default_class_map().is_none() {
        anyhow::bail!(
            "{source} has no default class map; give one, e.g. --class-map 0-4:0,5-9:1, or \
             --class-map none"
        );
    }
    class_map_arg(arg, source)
}

/// Runs a `data` subcommand.
pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Info(args) => info(args),
    }
}

fn info(args: InfoArgs) -> Result<()> {
    let corpus = args
        .source
        .load()
        .with_context(|| format!("loading {}", args.source))?;
    let map = args
        .class_map
        .as_deref()
        .map(|m| class_map(m, &args.source))
        .transpose()?
        .flatten();
    let prepare = |d: Dataset| -> Result<Dataset> {
        Ok(match &map {
            Some(m) => m.apply(&d)?,
            None => d,
        })
    };
    let summary = Summary {
        pool: prepare(corpus.pool)?.summary(),
        test: corpus.test.map(prepare).transpose()?.map(|t| t.summary()),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_table(&summary.pool, &args.source.to_string());
        if let Some(test) = &summary.test {
            print_table(test, "separate test set");
        }
    }
    Ok(())
}
