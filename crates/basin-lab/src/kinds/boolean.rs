//! The Boolean system (the paper's figure 2 and figure S3): the prior P(f) of the functions on
//! {0,1}^7 measured directly by sampling random networks, then flatness against that prior.
//!
//! 1. Draw `samples` random networks of the spec's architecture and count the functions they
//!    compute on the 128 inputs ([`basin_boolean::BooleanSampler`]); keep the `top_k`
//!    most frequent. The table is stored as `functions.json` and reused by a rerun with the same
//!    settings.
//! 2. For each kept function f, train a network from a fresh initialisation with the spec's
//!    optimizer to zero error on all 128 inputs labelled by f, and measure it as any run is
//!    measured (Keskar sharpness, the Hessian's λmax and spectral norm, and log P(f) by EP on
//!    the NNGP kernel of the 128 inputs).
//! 3. Report each measure against the sampled log P(f): correlations, the figure 2 layout
//!    (sharpness and the spectral norm against log10 P(f)) and, beyond the paper, EP's log P(f)
//!    against the sampled one, with its typical error in nats.
//!
//! A function's record has `attack_size` 0, `replicate` = its rank (from 1) and the extra
//! measures `log_prior_sampled` (ln of its frequency), `sampled_count`, `ones` and
//! `lz_complexity`. There is no test set: `test_error` is null.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use basin_boolean::{BooleanSampler, FunctionCounts, function_hex};
use basin_data::boolean::{BoolTarget, cube};
use basin_data::{Split, SplitIndices, TestSource};
use basin_nn::{FcnSpec, derive_seed};
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::exec::jobs::Job;
use crate::experiment::Experiment;
use crate::net::Net;
use crate::plot::{ScatterPlot, Series};
use crate::prepare::Prepared;
use crate::record::RunRecord;
use crate::report::{
    RESAMPLES, ReportError, Summary, heading, spec_section, write_figure, write_markdown,
};
use crate::spec::{BooleanSpec, ExperimentSpec, Kind, RunKey};
use crate::stats::{Correlations, correlations};
use crate::train::train_and_measure;

/// The Boolean experiment of a spec with a `[boolean]` table.
#[derive(Debug, Clone, Copy)]
pub struct Boolean<'a> {
    spec: &'a ExperimentSpec,
    b: &'a BooleanSpec,
}

impl<'a> Boolean<'a> {
    /// The experiment of `spec`, whose `[boolean]` table is `b`.
    pub fn new(spec: &'a ExperimentSpec, b: &'a BooleanSpec) -> Self {
        Self { spec, b }
    }
}

/// The sampled table and the prepared data of each kept function, by run id.
pub struct Functions {
    table: SampledFunctions,
    preps: Vec<Prepared>,
    by_id: BTreeMap<String, usize>,
}

/// The Boolean section of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanSection {
    /// The statistics against the sampled prior.
    pub boolean: BooleanSummary,
}

impl Experiment for Boolean<'_> {
    type Data = Functions;
    type Section = BooleanSection;

    fn spec(&self) -> &ExperimentSpec {
        self.spec
    }

    /// At most 10^6 samples and the top 100 functions.
    fn quick(&self) -> ExperimentSpec {
        let mut spec = self.spec.quick_sizes();
        spec.kind = Kind::Boolean(BooleanSpec {
            samples: self.b.samples.min(1_000_000),
            top_k: self.b.top_k.min(100),
        });
        spec
    }

    fn preparing(&self) -> String {
        "sampling random networks (or reading functions.json)".into()
    }

    /// Samples (or reads) the table, then prepares the data of each kept function.
    fn prepare(&self, out: &Path, threads: usize) -> Result<Functions, LabError> {
        let spec = self.spec;
        let n = spec.boolean_bits().map_err(|e| spec_err(spec, e))?;
        let fcn = cube_fcn(spec, n)?;
        let table = sampled(spec, self.b, &fcn, out, threads)?;
        let base = base_prepared(spec, n)?;
        let preps: Vec<Prepared> = table
            .top
            .iter()
            .map(|f| prepared_for(&base, n, &f.function))
            .collect::<Result<_, LabError>>()?;
        let by_id = function_keys(spec, &table)
            .iter()
            .enumerate()
            .map(|(i, k)| (k.id.clone(), i))
            .collect();
        Ok(Functions {
            table,
            preps,
            by_id,
        })
    }

    fn jobs(&self, data: &Functions) -> Vec<Job> {
        Job::group(function_keys(self.spec, &data.table))
    }

    /// Trains and measures one kept function, with its sampled prior.
    fn compute(&self, data: &Functions, job: &Job) -> Result<Vec<RunRecord>, LabError> {
        let i = data.by_id[&job.first().id];
        let mut records = train_and_measure(&data.preps[i], job)?;
        for r in &mut records {
            annotate_record(r, &data.table.top[i], data.table.samples);
        }
        Ok(records)
    }

    fn summarise(&self, records: &[RunRecord]) -> Summary<BooleanSection> {
        let good = converged_by_rank(records);
        Summary::of_section(
            records.len(),
            good.len(),
            BooleanSection {
                boolean: BooleanSummary {
                    against_sampled: against_sampled(&good, self.spec.seed),
                    ep_error: ep_errors(&good),
                },
            },
        )
    }

    /// Writes `fig2.png`/`.svg`, `ep_vs_sampled.png`/`.svg`, `complexity.png`/`.svg` and
    /// `report.md`.
    fn write_report(
        &self,
        dir: &Path,
        records: &[RunRecord],
        summary: &Summary<BooleanSection>,
    ) -> Result<(), ReportError> {
        let good = converged_by_rank(records);
        let mut figures = Vec::new();
        for (stem, keys) in [
            ("fig2", &["sharpness", "spectral_norm"][..]),
            ("ep_vs_sampled", &["log_prior_step", "log_prior_probit"][..]),
            ("complexity", &["lz_complexity"][..]),
        ] {
            let plots: Vec<ScatterPlot> =
                keys.iter().filter_map(|k| against_plot(&good, k)).collect();
            if !plots.is_empty() {
                write_figure(dir, stem, &plots, 1, (800 * plots.len() as u32, 650))?;
                figures.push(stem);
            }
        }
        write_markdown(dir, &markdown(self.spec, summary, &figures))
    }

    fn highlights(&self, summary: &Summary<BooleanSection>) -> Vec<String> {
        let b = &summary.section.boolean;
        let mut lines = Vec::new();
        for (name, c) in &b.against_sampled {
            let rho = c.spearman.map_or("–".into(), |v| format!("{v:+.3}"));
            lines.push(format!(
                "  {name:<20} Spearman with the sampled log P(f): {rho}"
            ));
        }
        for (lik, e) in &b.ep_error {
            lines.push(format!(
                "  EP ({lik}) − sampled log P(f): mean {:+.3}, median |·| {:.3} nats",
                e.mean, e.median_abs
            ));
        }
        lines
    }
}

/// A setup error of the experiment `spec`.
fn spec_err(spec: &ExperimentSpec, message: impl ToString) -> LabError {
    LabError::setup(&spec.name, message)
}

/// The sampled table kept for the experiment, as stored in `functions.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledFunctions {
    /// The spec's settings hash (a rerun with other settings samples afresh).
    pub settings: String,
    /// Networks drawn.
    pub samples: u64,
    /// Distinct functions seen.
    pub distinct: usize,
    /// Seconds the sampling took.
    pub wall_s: f64,
    /// The kept functions, most frequent first.
    pub top: Vec<SampledFunction>,
}

/// One kept function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledFunction {
    /// Rank by count, from 1.
    pub rank: u64,
    /// The function as 32 hex digits (bit i = f(x_i)).
    pub function: String,
    /// Times sampled.
    pub count: u64,
    /// Inputs mapped to 1.
    pub ones: u32,
    /// Lempel–Ziv complexity (see `basin_boolean::lz`).
    pub lz_complexity: f64,
}

const TABLE: &str = "functions.json";

/// The network on {0,1}^n of the spec: a fully-connected net (the spec's checks refuse a
/// ResNet).
fn cube_fcn(spec: &ExperimentSpec, n: u32) -> Result<FcnSpec, LabError> {
    match Net::fcn(spec, n as usize)? {
        Net::Fcn(fcn) => Ok(fcn),
        other => Err(spec_err(
            spec,
            format!(
                "the Boolean sampler draws fully-connected nets, not {}",
                other.describe()
            ),
        )),
    }
}

/// The sampled table: read from `out` if it was sampled with these settings, else sampled
/// (on `jobs` threads) and stored.
fn sampled(
    spec: &ExperimentSpec,
    b: &BooleanSpec,
    fcn: &FcnSpec,
    out: &Path,
    jobs: usize,
) -> Result<SampledFunctions, LabError> {
    let settings = spec.settings_hash(&spec.training.optimizer_list()[0], 0);
    let path = out.join(TABLE);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(table) = serde_json::from_str::<SampledFunctions>(&text)
        && table.settings == settings
    {
        return Ok(table);
    }
    let sampler = BooleanSampler::new(fcn).map_err(|e| spec_err(spec, e))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .map_err(|e| spec_err(spec, e))?;
    let start = std::time::Instant::now();
    let counts: FunctionCounts = pool
        .install(|| sampler.sample(b.samples, derive_seed(spec.seed, 7)))
        .map_err(|e| spec_err(spec, e))?;
    let top = counts
        .rows(&counts.top(b.top_k), 1)
        .into_iter()
        .map(|r| SampledFunction {
            rank: r.rank,
            function: function_hex(r.function),
            count: r.count,
            ones: r.ones,
            lz_complexity: r.lz_complexity,
        })
        .collect();
    let table = SampledFunctions {
        settings,
        samples: counts.total(),
        distinct: counts.distinct(),
        wall_s: start.elapsed().as_secs_f64(),
        top,
    };
    let json = serde_json::to_string_pretty(&table).expect("a table serialises");
    basin_data::atomic::create_dir(out).map_err(|e| spec_err(spec, e))?;
    basin_data::io::write_atomic(&path, json.as_bytes()).map_err(|e| spec_err(spec, e))?;
    Ok(table)
}

/// The prepared data of one function: S = the whole cube labelled by it, no A, no T, and the
/// kernel of the cube shared by all functions.
fn prepared_for(base: &Prepared, n: u32, function: &str) -> Result<Prepared, LabError> {
    let target = BoolTarget::parse(&format!("0x{function}"), n).map_err(|e| base.setup_err(e))?;
    let data = cube(n, Some(&target)).map_err(|e| base.setup_err(e))?;
    let mut prep = base.clone();
    prep.split.train = data.clone();
    prep.s_and_t = data;
    Ok(prep)
}

/// The shared part: the cube, the network, the NNGP kernel of the 128 inputs. (Its labels, a
/// constant, are replaced by each function's; they make the empty A and T labelled sets.)
fn base_prepared(spec: &ExperimentSpec, n: u32) -> Result<Prepared, LabError> {
    let data = cube(n, Some(&BoolTarget::Constant(false))).map_err(|e| spec_err(spec, e))?;
    let empty = data.subset("empty", &[]).map_err(|e| spec_err(spec, e))?;
    let net = Net::Fcn(cube_fcn(spec, n)?);
    let split = Split {
        train: data.clone(),
        attack: empty.clone(),
        test: empty,
        indices: SplitIndices {
            train: (0..data.len()).collect(),
            attack: Vec::new(),
            test: Vec::new(),
            test_source: TestSource::Pool,
        },
    };
    Prepared::from_parts(spec, net, split)
}

/// One run per kept function, with a seed from its rank.
fn function_keys(spec: &ExperimentSpec, table: &SampledFunctions) -> Vec<RunKey> {
    let opt = &spec.training.optimizer_list()[0];
    let hash = spec.settings_hash(opt, spec.training.overtrain_epochs);
    table
        .top
        .iter()
        .map(|f| RunKey {
            id: format!("{}-{hash}-f{}", spec.name, f.function),
            variant: String::new(),
            optimizer: opt.clone(),
            overtrain_epochs: spec.training.overtrain_epochs,
            alpha: None,
            attack_size: 0,
            replicate: f.rank as usize,
            seed: derive_seed(derive_seed(spec.seed, 8), f.rank),
        })
        .collect()
}

fn annotate_record(record: &mut RunRecord, f: &SampledFunction, samples: u64) {
    let m = &mut record.measures;
    m.insert(
        "log_prior_sampled".into(),
        Some((f.count as f64 / samples as f64).ln()),
    );
    m.insert("sampled_count".into(), Some(f.count as f64));
    m.insert("ones".into(), Some(f.ones as f64));
    m.insert("lz_complexity".into(), Some(f.lz_complexity));
}

/// How a measure is drawn on a plot axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// As it is.
    Linear,
    /// A natural log drawn as log10.
    NatToLog10,
    /// A positive quantity drawn as its log10 (sharpness spans orders of magnitude).
    Log10,
}

impl Axis {
    fn apply(self, v: f64) -> f64 {
        match self {
            Self::Linear => v,
            Self::NatToLog10 => v / std::f64::consts::LN_10,
            Self::Log10 => v.log10(),
        }
    }
}

/// The measures reported against the sampled log P(f): (key, axis label, axis).
pub const AGAINST_SAMPLED: [(&str, &str, Axis); 6] = [
    ("sharpness", "log10 Keskar sharpness", Axis::Log10),
    ("spectral_norm", "log10 Hessian spectral norm", Axis::Log10),
    ("lambda_max", "Hessian λmax", Axis::Linear),
    (
        "log_prior_step",
        "log10 P(f), EP, step likelihood",
        Axis::NatToLog10,
    ),
    (
        "log_prior_probit",
        "log10 P(f), EP, probit likelihood",
        Axis::NatToLog10,
    ),
    ("lz_complexity", "LZ complexity", Axis::Linear),
];

/// EP's error against the sampled prior, in nats, over the kept functions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpError {
    /// Functions compared.
    pub n: usize,
    /// Mean of EP − sampled.
    pub mean: f64,
    /// Median of |EP − sampled|.
    pub median_abs: f64,
    /// Root mean square of EP − sampled.
    pub rms: f64,
}

fn ep_error(records: &[&RunRecord], key: &str) -> Option<EpError> {
    let d: Vec<f64> = records
        .iter()
        .filter_map(|r| Some(r.measure(key)? - r.measure("log_prior_sampled")?))
        .collect();
    if d.is_empty() {
        return None;
    }
    let n = d.len() as f64;
    let mut abs: Vec<f64> = d.iter().map(|x| x.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let mid = abs.len() / 2;
    let median_abs = if abs.len() % 2 == 1 {
        abs[mid]
    } else {
        0.5 * (abs[mid - 1] + abs[mid])
    };
    Some(EpError {
        n: d.len(),
        mean: d.iter().sum::<f64>() / n,
        median_abs,
        rms: (d.iter().map(|x| x * x).sum::<f64>() / n).sqrt(),
    })
}

/// What `summary.json` holds for a Boolean experiment (inside [`BooleanSection`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BooleanSummary {
    /// Each measure against the sampled log P(f), over the converged runs.
    pub against_sampled: BTreeMap<String, Correlations>,
    /// EP's error against the sampled log P(f), by likelihood (`step`, `probit`).
    pub ep_error: BTreeMap<String, EpError>,
}

/// The converged records, in order of rank.
fn converged_by_rank(records: &[RunRecord]) -> Vec<&RunRecord> {
    let mut good: Vec<&RunRecord> = crate::report::converged(records).collect();
    good.sort_by_key(|r| r.replicate);
    good
}

/// Each measure of [`AGAINST_SAMPLED`] against the sampled log P(f).
fn against_sampled(good: &[&RunRecord], seed: u64) -> BTreeMap<String, Correlations> {
    let mut against = BTreeMap::new();
    for (key, _, _) in AGAINST_SAMPLED {
        let pairs: Vec<(f64, f64)> = good
            .iter()
            .filter_map(|r| Some((r.measure(key)?, r.measure("log_prior_sampled")?)))
            .collect();
        if pairs.len() >= 2 {
            let (m, p): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            against.insert(key.to_owned(), correlations(&m, &p, RESAMPLES, seed));
        }
    }
    against
}

/// EP's error against the sampled prior, by likelihood.
fn ep_errors(good: &[&RunRecord]) -> BTreeMap<String, EpError> {
    [("step", "log_prior_step"), ("probit", "log_prior_probit")]
        .iter()
        .filter_map(|(name, key)| Some((name.to_string(), ep_error(good, key)?)))
        .collect()
}

/// Measure `key` against the sampled log10 P(f), one series of all functions.
fn against_plot(records: &[&RunRecord], key: &str) -> Option<ScatterPlot> {
    let (_, label, axis) = AGAINST_SAMPLED.iter().find(|m| m.0 == key)?;
    let points: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| {
            Some((
                Axis::NatToLog10.apply(r.measure("log_prior_sampled")?),
                axis.apply(r.measure(key)?),
            ))
        })
        .collect();
    (!points.is_empty()).then(|| ScatterPlot {
        title: format!("{label} against the sampled P(f)"),
        x_label: "log10 P(f), sampled".into(),
        y_label: (*label).into(),
        series: vec![Series {
            label: format!("top {} functions", points.len()),
            points,
        }],
        identity: *axis == Axis::NatToLog10,
        // The constant functions sit in the upper right.
        legend: crate::plot::LegendCorner::UpperLeft,
        ..ScatterPlot::default()
    })
}

fn markdown(spec: &ExperimentSpec, summary: &Summary<BooleanSection>, figures: &[&str]) -> String {
    let mut md = heading(Some(spec), "Boolean experiment");
    let _ = writeln!(
        md,
        "{} functions, {} trained to zero error on all inputs (the statistics use these).\n",
        summary.runs, summary.converged
    );
    let b = &summary.section.boolean;
    md.push_str("## Against the sampled log P(f)\n\n");
    md.push_str("| measure | n | Pearson | Spearman | Kendall τ-b |\n|---|---|---|---|---|\n");
    let cell = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
    for (name, c) in &b.against_sampled {
        let _ = writeln!(
            md,
            "| `{name}` | {} | {} | {} | {} |",
            c.n,
            cell(c.pearson),
            cell(c.spearman),
            cell(c.kendall)
        );
    }
    md.push_str("\n## EP against the sampled log P(f) (nats)\n\n");
    md.push_str("| likelihood | n | mean EP − sampled | median \\|EP − sampled\\| | rms |\n");
    md.push_str("|---|---|---|---|---|\n");
    for (lik, e) in &b.ep_error {
        let _ = writeln!(
            md,
            "| {lik} | {} | {:+.3} | {:.3} | {:.3} |",
            e.n, e.mean, e.median_abs, e.rms
        );
    }
    md.push('\n');
    for f in figures {
        let _ = writeln!(md, "![{f}]({f}.png)\n");
    }
    md.push_str("The kept functions and their sampled counts are in `functions.json`.\n");
    md.push_str(&spec_section(Some(spec)));
    md
}

#[cfg(test)]
mod tests {
    use basin_prior::kernel::nngp;

    use super::*;

    /// A function's training set follows the sampler's packing (bit i = f(x_i), x_i = i in
    /// binary, most significant bit first), and its kernel is the NNGP of the 128 inputs.
    #[test]
    fn a_function_data_set_follows_the_packing() {
        let spec = ExperimentSpec::load("fig2-boolean").unwrap();
        let base = base_prepared(&spec, 7).unwrap();
        let f = 0x96u128 | 1 << 127 | 1 << 64;
        let prep = prepared_for(&base, 7, &function_hex(f)).unwrap();
        let data = &prep.split.train;
        assert_eq!(data.len(), 128);
        let y = data.labels().unwrap();
        for (i, &label) in y.iter().enumerate() {
            assert_eq!(label == 1, (f >> i) & 1 == 1, "input {i}");
            let x = &data.features()[7 * i..7 * i + 7];
            let back = x.iter().fold(0, |acc, &b| acc << 1 | b as usize);
            assert_eq!(back, i, "input {i} is i in binary");
        }
        let fcn = prep.net.fcn_spec().expect("a fully-connected net");
        let k = nngp(fcn, prep.s_and_t.features(), 128).unwrap();
        let stored = prep
            .kernel
            .as_ref()
            .expect("fig2-boolean measures the prior");
        assert_eq!((&k - stored).norm_max(), 0.0);
    }
}
