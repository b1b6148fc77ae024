//! The attack-set experiment (the paper's figures 3 and 4) and its variants: networks trained
//! to zero error on S plus an attack set A of flipped labels, one group of runs per attack
//! size, optionally per optimizer compared and per overtraining checkpoint, each network
//! measured (sharpness, Hessian, log P(f), bounds). A spec without a kind table is one.
//!
//! Outputs, computed from the records alone:
//! - `summary.json`: `{"runs": n, "correlations": {"<measure>": {"n", "pearson", "spearman",
//!   "kendall", "ci95": {"pearson": {"lo", "hi"}, …}}}}`, each measure against test error over
//!   the converged runs;
//! - one scatter plot per measure against test error, coloured by attack size, as
//!   `<measure>.png` and `<measure>.svg`, and `fig3.png`/`fig3.svg`: the paper's figure 3
//!   layout, log10 P(f) (probit) and Keskar sharpness against test error side by side;
//! - `pairs.png`/`pairs.svg`: sharpness against λmax, against the top-k log-product and
//!   against log10 P(f) (the paper's figures S2, S4 and S7);
//! - `report.md`: the spec, the correlation table, the plots and run statistics.
//!
//! When the records fall into several variants (optimizers compared, or overtraining
//! checkpoints), `summary.json` also holds `by_variant`, the correlations within each, the
//! report a table of Spearman coefficients per variant, and the figures are drawn per variant:
//! `fig3-<variant>.png` (the paper's figure 4 layout) and `pairs-<variant>.png`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use basin_nn::TrainStatus;
use basin_nn::optim::OptimizerConfig;

use crate::error::LabError;
use crate::exec::jobs::Job;
use crate::experiment::{Experiment, Report};
use crate::plot::{LegendCorner, ScatterPlot, Series};
use crate::prepare::Prepared;
use crate::prior_kernel::KernelCache;
use crate::record::RunRecord;
use crate::report::{
    NoSection, RESAMPLES, ReportError, Summary, converged, heading, spec_section, write_figure,
    write_markdown,
};
use crate::spec::{ExperimentSpec, RunKey};
use crate::stats::{Correlations, correlations, pearson};

/// The attack-set experiment of a spec.
#[derive(Debug, Clone, Copy)]
pub struct AttackSet<'a> {
    spec: &'a ExperimentSpec,
}

impl<'a> AttackSet<'a> {
    /// The experiment of `spec`.
    pub fn new(spec: &'a ExperimentSpec) -> Self {
        Self { spec }
    }
}

impl Experiment for AttackSet<'_> {
    type Data = Prepared;
    type Section = NoSection;

    fn spec(&self) -> &ExperimentSpec {
        self.spec
    }

    fn quick(&self) -> ExperimentSpec {
        self.spec.quick_sizes()
    }

    fn prepare(&self, out: &Path, threads: usize) -> Result<Prepared, LabError> {
        Prepared::cached(self.spec, Some(KernelCache { out, threads }))
    }

    fn jobs(&self, _data: &Prepared) -> Vec<Job> {
        Job::group(run_keys(self.spec))
    }

    fn planned_jobs(&self) -> Option<Vec<Job>> {
        Some(Job::group(run_keys(self.spec)))
    }

    fn compute(&self, data: &Prepared, job: &Job) -> Result<Vec<RunRecord>, LabError> {
        crate::train::train_and_measure(data, job)
    }

    fn summarise(&self, records: &[RunRecord]) -> Summary<NoSection> {
        summarize(records, self.spec.seed)
    }

    fn write_report(
        &self,
        dir: &Path,
        records: &[RunRecord],
        summary: &Summary<NoSection>,
    ) -> Result<(), ReportError> {
        write_report(dir, Some(self.spec), records, summary)
    }

    fn highlights(&self, summary: &Summary<NoSection>) -> Vec<String> {
        highlights(summary)
    }
}

/// The report of records without their spec (no title, no spec section, bootstrap seed 0),
/// as an attack-set experiment's.
pub fn report_without_spec(dir: &Path, records: &[RunRecord]) -> Result<Report, ReportError> {
    let summary = summarize(records, 0);
    summary.write(dir)?;
    write_report(dir, None, records, &summary)?;
    Ok(Report {
        highlights: highlights(&summary),
        summary: summary.erase(),
    })
}

/// The runs, in order of optimizer, attack size, replicate and checkpoint. A run's seed
/// depends only on the master seed and its (attack size, replicate), so it survives edits
/// to the lists, and the optimizers compared start from the same initialisation.
pub fn run_keys(spec: &ExperimentSpec) -> Vec<RunKey> {
    let optimizers = spec.training.optimizer_list();
    let checkpoints = spec.training.checkpoints();
    let mut runs = Vec::new();
    for opt in &optimizers {
        for &a in &spec.data.attack_sizes {
            for r in 0..spec.data.networks_per_size {
                let seed =
                    basin_nn::derive_seed(basin_nn::derive_seed(spec.seed, a as u64), r as u64 + 1);
                for &e in &checkpoints {
                    let hash = spec.settings_hash(opt, e);
                    runs.push(RunKey {
                        id: format!("{}-{hash}-a{a}-r{r}", spec.name),
                        variant: variant_label(opt, optimizers.len(), e, checkpoints.len()),
                        optimizer: opt.clone(),
                        overtrain_epochs: e,
                        alpha: None,
                        attack_size: a,
                        replicate: r,
                        seed,
                    });
                }
            }
        }
    }
    runs
}

/// A run's report group: the optimizer kind if several are compared, then `+<epochs>` if
/// several checkpoints are measured.
fn variant_label(opt: &OptimizerConfig, n_opt: usize, epochs: usize, n_ckpt: usize) -> String {
    match (n_opt > 1, n_ckpt > 1) {
        (false, false) => String::new(),
        (true, false) => opt.name().to_owned(),
        (false, true) => format!("+{epochs}"),
        (true, true) => format!("{} +{epochs}", opt.name()),
    }
}

/// The Spearman coefficients per variant, then per measure with its interval.
fn highlights(summary: &Summary<NoSection>) -> Vec<String> {
    let mut lines = Vec::new();
    for (variant, cs) in &summary.by_variant {
        let rho = |m: &str| {
            cs.get(m)
                .and_then(|c| c.spearman)
                .map_or("–".into(), |v| format!("{v:+.3}"))
        };
        lines.push(format!(
            "  {variant:<16} Spearman: log P(f) {}  sharpness {}  λmax {}",
            rho("log_prior_probit"),
            rho("sharpness"),
            rho("lambda_max")
        ));
    }
    lines.push(format!(
        "{} runs, {} converged; correlation with test error (Spearman, 95% CI):",
        summary.runs, summary.converged
    ));
    for (name, c) in &summary.correlations {
        let ci = c
            .ci95
            .get("spearman")
            .map_or(String::new(), |i| format!(" [{:.3}, {:.3}]", i.lo, i.hi));
        let rho = c.spearman.map_or("–".into(), |v| format!("{v:+.3}"));
        lines.push(format!("  {name:<20} {rho}{ci}"));
    }
    lines
}

/// The measures correlated with test error: (key, axis label, plotted as log10 of the key).
pub const MEASURES: [(&str, &str, bool); 8] = [
    ("log_prior_probit", "log10 P(f), probit likelihood", true),
    ("log_prior_step", "log10 P(f), step likelihood", true),
    (
        "log_prior_step_smc",
        "log10 P(f), step likelihood, SMC reference",
        true,
    ),
    ("sharpness", "Keskar sharpness", false),
    ("lambda_max", "Hessian λmax", false),
    (
        "log_product_top50",
        "log Π of the top-50 Hessian eigenvalues",
        false,
    ),
    ("bound_occam", "Occam bound on the test error", false),
    (
        "bound_pac_bayes",
        "PAC-Bayes bound on the test error",
        false,
    ),
];

/// The correlations of every measure present in the converged records with test error,
/// pooled and (with several variants) within each variant. The records are taken in order of
/// attack size, replicate and id, so the result does not depend on the order the runs finished
/// or the shards were merged in.
pub fn summarize(records: &[RunRecord], seed: u64) -> Summary<NoSection> {
    let variants = variants(records);
    let by_variant = if variants.len() > 1 {
        variants
            .iter()
            .map(|v| (v.clone(), correlate(&of_variant(records, v), seed)))
            .collect()
    } else {
        BTreeMap::new()
    };
    Summary {
        runs: records.len(),
        converged: converged(records).count(),
        correlations: correlate(records, seed),
        by_variant,
        section: NoSection {},
    }
}

/// The variant labels present, sorted.
pub fn variants(records: &[RunRecord]) -> Vec<String> {
    let set: std::collections::BTreeSet<&String> = records.iter().map(|r| &r.variant).collect();
    set.into_iter().cloned().collect()
}

fn of_variant(records: &[RunRecord], variant: &str) -> Vec<RunRecord> {
    records
        .iter()
        .filter(|r| r.variant == variant)
        .cloned()
        .collect()
}

fn correlate(records: &[RunRecord], seed: u64) -> BTreeMap<String, Correlations> {
    let mut good: Vec<&RunRecord> = converged(records).collect();
    good.sort_by(|a, b| {
        (a.attack_size, a.replicate, &a.id).cmp(&(b.attack_size, b.replicate, &b.id))
    });
    let mut out = BTreeMap::new();
    for name in measure_names(records) {
        let pairs: Vec<(f64, f64)> = good
            .iter()
            .filter_map(|r| Some((r.measure(&name)?, r.test_error?)))
            .collect();
        if pairs.len() >= 2 {
            let (m, e): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            out.insert(name, correlations(&m, &e, RESAMPLES, seed));
        }
    }
    out
}

/// The key prefix of the Hessian's top-k log-product (`log_product_top{k}`, k from the spec).
const LOG_PRODUCT: &str = "log_product_top";

/// The k of a `log_product_top{k}` key.
fn top_k_of(name: &str) -> Option<usize> {
    name.strip_prefix(LOG_PRODUCT)?.parse().ok()
}

/// The `log_product_top{k}` keys the records carry, by k (the spec's `top_k` sets k; the
/// default top 50 when none).
fn log_product_keys(records: &[RunRecord]) -> Vec<String> {
    let mut ks: Vec<usize> = records
        .iter()
        .flat_map(|r| r.measures.keys().filter_map(|k| top_k_of(k)))
        .collect();
    ks.sort_unstable();
    ks.dedup();
    if ks.is_empty() {
        ks.push(50);
    }
    ks.iter().map(|k| format!("{LOG_PRODUCT}{k}")).collect()
}

/// The measures correlated with test error, in the order of [`MEASURES`], with the top-k
/// log-product under the k that the records carry.
fn measure_names(records: &[RunRecord]) -> Vec<String> {
    MEASURES
        .iter()
        .flat_map(|&(name, _, _)| match top_k_of(name) {
            Some(_) => log_product_keys(records),
            None => vec![name.to_owned()],
        })
        .collect()
}

/// The position of a measure in [`MEASURES`] (every top-k log-product at the top-50 one's).
fn measure_rank(name: &str) -> usize {
    let is_log_product = top_k_of(name).is_some();
    MEASURES
        .iter()
        .position(|m| m.0 == name || (is_log_product && top_k_of(m.0).is_some()))
        .unwrap_or(MEASURES.len())
}

/// The axis label of a measure and whether it is plotted as log10 of its stored (natural-log)
/// value; `test_error` is plotted as it is.
fn axis(name: &str) -> Option<(String, bool)> {
    if name == "test_error" {
        return Some(("test error".into(), false));
    }
    if let Some(k) = top_k_of(name) {
        return Some((format!("log Π of the top-{k} Hessian eigenvalues"), false));
    }
    MEASURES
        .iter()
        .find(|m| m.0 == name)
        .map(|&(_, label, log10)| (label.to_owned(), log10))
}

/// A record's value of `name` on its plot axis (log10 where the axis says so).
fn plotted(r: &RunRecord, name: &str, log10: bool) -> Option<f64> {
    let v = if name == "test_error" {
        r.test_error
    } else {
        r.measure(name)
    }?;
    Some(if log10 {
        v / std::f64::consts::LN_10
    } else {
        v
    })
}

/// The scatter plot of measure `y` against measure `x` (either may be `test_error`) over the
/// converged records, one series per attack size.
pub fn pair_plot(records: &[RunRecord], x: &str, y: &str) -> Option<ScatterPlot> {
    let ((x_label, x_log), (y_label, y_log)) = (axis(x)?, axis(y)?);
    let mut by_size: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for r in converged(records) {
        if let (Some(px), Some(py)) = (plotted(r, x, x_log), plotted(r, y, y_log)) {
            by_size.entry(r.attack_size).or_default().push((px, py));
        }
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = by_size.values().flatten().copied().unzip();
    let legend = match pearson(&xs, &ys) {
        Some(r) if r > 0.0 => LegendCorner::UpperLeft,
        _ => LegendCorner::UpperRight,
    };
    (!by_size.is_empty()).then(|| ScatterPlot {
        legend,
        title: format!("{y_label} against {x_label}"),
        x_label,
        y_label,
        series: by_size
            .into_iter()
            .map(|(a, points)| Series {
                label: format!("|A| = {a}"),
                points,
            })
            .collect(),
        ..ScatterPlot::default()
    })
}

/// The scatter plot of measure `name` against test error, one series per attack size.
pub fn measure_plot(records: &[RunRecord], name: &str) -> Option<ScatterPlot> {
    pair_plot(records, "test_error", name)
}

/// The flatness-against-flatness and flatness-against-prior panels (figures S2, S4, S7):
/// sharpness on the x axis, λmax, the top-k log-product and log10 P(f) on the y axes (the
/// top-50 key stands for the records' own k, [`log_product_keys`]).
pub const PAIRS: [(&str, &str); 3] = [
    ("sharpness", "lambda_max"),
    ("sharpness", "log_product_top50"),
    ("sharpness", "log_prior_probit"),
];

/// A file-name-safe form of a variant label (`adam +100` → `adam-100`).
pub fn slug(variant: &str) -> String {
    let mut out = String::new();
    for c in variant.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Writes the panels of `plots` that exist side by side as `<stem>.png` and `<stem>.svg`,
/// `panel` pixels each; returns whether there was one.
fn write_row(
    dir: &Path,
    stem: &str,
    plots: Vec<Option<ScatterPlot>>,
    panel: (u32, u32),
) -> Result<bool, ReportError> {
    let plots: Vec<ScatterPlot> = plots.into_iter().flatten().collect();
    if plots.is_empty() {
        return Ok(false);
    }
    let size = (panel.0 * plots.len() as u32, panel.1);
    write_figure(dir, stem, &plots, 1, size)?;
    Ok(true)
}

/// The figure-3 layout (log10 P(f) and sharpness against test error) and the pairs figure of
/// one group of records, under names ending in `suffix`; returns the stems written.
fn group_figures(
    dir: &Path,
    records: &[RunRecord],
    suffix: &str,
) -> Result<Vec<String>, ReportError> {
    let mut stems = Vec::new();
    let fig3 = ["log_prior_probit", "sharpness"].map(|m| measure_plot(records, m));
    if fig3.iter().all(Option::is_some) {
        let stem = format!("fig3{suffix}");
        write_row(dir, &stem, fig3.to_vec(), (800, 650))?;
        stems.push(stem);
    }
    let log_product = log_product_keys(records).swap_remove(0);
    let pairs: Vec<Option<ScatterPlot>> = PAIRS
        .iter()
        .map(|&(x, y)| {
            let y = if top_k_of(y).is_some() {
                &log_product
            } else {
                y
            };
            pair_plot(records, x, y)
        })
        .collect();
    let stem = format!("pairs{suffix}");
    if write_row(dir, &stem, pairs, (700, 600))? {
        stems.push(stem);
    }
    Ok(stems)
}

/// Writes the plots and `report.md` of `records` into `dir`: per variant with several, else
/// pooled with one plot per measure.
pub fn write_report(
    dir: &Path,
    spec: Option<&ExperimentSpec>,
    records: &[RunRecord],
    summary: &Summary<NoSection>,
) -> Result<(), ReportError> {
    let variants = variants(records);
    let mut plots = Vec::new();
    if variants.len() > 1 {
        for v in &variants {
            let group = of_variant(records, v);
            plots.extend(group_figures(dir, &group, &format!("-{}", slug(v)))?);
        }
    } else {
        plots.extend(group_figures(dir, records, "")?);
        for name in measure_names(records) {
            if let Some(plot) = measure_plot(records, &name) {
                plot.write_png(&dir.join(format!("{name}.png")), (900, 650))?;
                plot.write_svg(&dir.join(format!("{name}.svg")), (900, 650))?;
                plots.push(name.to_owned());
            }
        }
    }
    write_markdown(dir, &markdown(spec, records, summary, &plots))
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

fn fmt_coef(c: &Correlations, key: &str, v: Option<f64>) -> String {
    match c.ci95.get(key) {
        Some(ci) => format!("{} [{:.3}, {:.3}]", fmt_opt(v), ci.lo, ci.hi),
        None => fmt_opt(v),
    }
}

/// The Markdown report.
pub fn markdown(
    spec: Option<&ExperimentSpec>,
    records: &[RunRecord],
    summary: &Summary<NoSection>,
    plots: &[String],
) -> String {
    let mut md = heading(spec, "basin experiment");
    let _ = writeln!(
        md,
        "{} runs, {} converged to 100% on S (the correlations use these).\n",
        summary.runs, summary.converged
    );
    md.push_str("## Correlation with test error\n\n");
    md.push_str("Coefficients with bootstrap 95% intervals. A good predictor of generalization ");
    md.push_str("correlates negatively for log P(f) and positively for flatness measures ");
    md.push_str("(sharper → worse) and bounds.\n\n");
    md.push_str("| measure | n | Pearson | Spearman | Kendall τ-b |\n|---|---|---|---|---|\n");
    for (name, c) in &summary.correlations {
        let _ = writeln!(
            md,
            "| `{name}` | {} | {} | {} | {} |",
            c.n,
            fmt_coef(c, "pearson", c.pearson),
            fmt_coef(c, "spearman", c.spearman),
            fmt_coef(c, "kendall", c.kendall)
        );
    }
    if !summary.by_variant.is_empty() {
        md.push_str(&variant_table(&summary.by_variant));
    }
    md.push_str(&reference_section(records, summary));
    md.push_str(&mc_error_section(records));
    md.push_str("\n## Plots\n\n");
    for name in plots {
        let _ = writeln!(md, "![{}]({name}.png)\n", plot_caption(name));
    }
    md.push_str(&run_statistics(records));
    md.push_str(&spec_section(spec));
    md
}

/// The Monte Carlo error of log P(f) on an empirical kernel (`[measures.prior.mc_kernel]`),
/// when the records have it: per likelihood, the median and the largest error over the
/// converged runs, beside the spread of log P(f) across them. Empty otherwise.
fn mc_error_section(records: &[RunRecord]) -> String {
    let mut rows = String::new();
    for lik in ["probit", "step"] {
        let key = format!("log_prior_{lik}");
        let mut pairs: Vec<(f64, f64)> = converged(records)
            .filter_map(|r| Some((r.measure(&key)?, r.measure(&format!("{key}_mc_std_err"))?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        pairs.sort_by(|a, b| a.1.total_cmp(&b.1));
        let median = pairs[pairs.len() / 2].1;
        let largest = pairs[pairs.len() - 1].1;
        let lo = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = pairs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            rows,
            "| {lik} | {} | {median:.3} | {largest:.3} | {:.1} |",
            pairs.len(),
            hi - lo
        );
    }
    if rows.is_empty() {
        return rows;
    }
    let mut md = String::from("\n## The Monte Carlo error of log P(f)\n\n");
    md.push_str(
        "log P(f) is computed on the empirical NNGP kernel, a Monte Carlo average over random \
         networks. Its error comes from the jackknife over the kernel's sample blocks; it is \
         small beside the spread of log P(f) across the runs when the networks are enough.\n\n",
    );
    md.push_str("| likelihood | runs | median error (nats) | largest error | spread of log P(f) across runs |\n|---|---|---|---|---|\n");
    md.push_str(&rows);
    md
}

/// EP against the SMC reference (`[measures.prior] reference`), when the records have it:
/// the two Spearman coefficients with test error side by side and EP's per-run bias
/// log P_EP − log P̂_SMC (mean, range, mean standard error). Empty otherwise.
fn reference_section(records: &[RunRecord], summary: &Summary<NoSection>) -> String {
    let pairs: Vec<(f64, f64)> = converged(records)
        .filter_map(|r| {
            let ep = r.measure("log_prior_step")?;
            let smc = r.measure("log_prior_step_smc")?;
            Some((ep - smc, r.measure("log_prior_step_smc_std_err")?))
        })
        .collect();
    if pairs.is_empty() {
        return String::new();
    }
    let k = pairs.len() as f64;
    let mean = pairs.iter().map(|p| p.0).sum::<f64>() / k;
    let lo = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = pairs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let se = pairs.iter().map(|p| p.1).sum::<f64>() / k;
    let coef = |name: &str| {
        summary
            .correlations
            .get(name)
            .map_or("–".into(), |c| fmt_coef(c, "spearman", c.spearman))
    };
    let mut md = String::from("\n## EP against the SMC reference (step likelihood)\n\n");
    md.push_str("| log P(f) by | Spearman with test error |\n|---|---|\n");
    let _ = writeln!(md, "| EP | {} |", coef("log_prior_step"));
    let _ = writeln!(md, "| SMC (reference) | {} |", coef("log_prior_step_smc"));
    let _ = writeln!(
        md,
        "\nEP's bias log P_EP − log P̂_SMC over {} runs: mean {mean:+.3} nats, range \
         [{lo:+.3}, {hi:+.3}]; SMC's mean standard error {se:.3} nats.",
        pairs.len()
    );
    md
}

/// The Spearman coefficient of each measure with test error (bootstrap 95% interval) within
/// each variant: one row per measure, one column per variant.
fn variant_table(by_variant: &BTreeMap<String, BTreeMap<String, Correlations>>) -> String {
    let mut md = String::from("\n## Per variant (Spearman with test error)\n\n| measure |");
    for v in by_variant.keys() {
        let _ = write!(md, " {v} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(by_variant.len()));
    md.push('\n');
    let mut names: Vec<&String> = by_variant.values().flat_map(|c| c.keys()).collect();
    names.sort_by_key(|n| (measure_rank(n), n.as_str()));
    names.dedup();
    for name in names {
        let _ = write!(md, "| `{name}` |");
        for c in by_variant.values() {
            let cell = c
                .get(name)
                .map_or("–".into(), |c| fmt_coef(c, "spearman", c.spearman));
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md
}

/// The alt text of a plot, from its file stem.
fn plot_caption(stem: &str) -> String {
    let (base, variant) = stem.split_once('-').unwrap_or((stem, ""));
    let what = match base {
        "fig3" => "log10 P(f) and sharpness against test error".to_owned(),
        "pairs" => {
            "sharpness against λmax, the Hessian's top-k log-product and log10 P(f)".to_owned()
        }
        _ => format!("{stem} against test error"),
    };
    if variant.is_empty() || !matches!(base, "fig3" | "pairs") {
        what
    } else {
        format!("{what} ({variant})")
    }
}

/// Per attack size: runs, converged, mean epochs and test error; then mean stage times.
fn run_statistics(records: &[RunRecord]) -> String {
    let mut md = String::from("## Runs\n\n");
    md.push_str("| \\|A\\| | runs | converged | mean epochs | mean test error |\n");
    md.push_str("|---|---|---|---|---|\n");
    let mut by_size: BTreeMap<(&str, usize), Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        by_size
            .entry((r.variant.as_str(), r.attack_size))
            .or_default()
            .push(r);
    }
    for ((variant, size), rs) in &by_size {
        let a = if variant.is_empty() {
            size.to_string()
        } else {
            format!("{variant}, {size}")
        };
        let n = rs.len() as f64;
        let conv = rs
            .iter()
            .filter(|r| r.status == TrainStatus::Converged)
            .count();
        let epochs = rs.iter().map(|r| r.epochs as f64).sum::<f64>() / n;
        let errs: Vec<f64> = rs.iter().filter_map(|r| r.test_error).collect();
        let err = match errs.len() {
            0 => "–".to_owned(),
            k => format!("{:.3}", errs.iter().sum::<f64>() / k as f64),
        };
        let _ = writeln!(md, "| {a} | {} | {conv} | {epochs:.0} | {err} |", rs.len());
    }
    let mut stages: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for r in records {
        for (stage, s) in &r.stage_s {
            let e = stages.entry(stage).or_default();
            (e.0, e.1) = (e.0 + s, e.1 + 1);
        }
    }
    md.push_str("\n| stage | mean s per run | total s |\n|---|---|---|\n");
    for (stage, (total, n)) in stages {
        let _ = writeln!(md, "| {stage} | {:.3} | {total:.1} |", total / n as f64);
    }
    md
}
