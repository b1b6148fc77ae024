//! Outputs of an experiment, computed from its records alone (so `basin report` regenerates
//! them without recomputing anything):
//! - `summary.json`: `{"runs": n, "correlations": {"<measure>": {"n", "pearson", "spearman",
//!   "kendall", "ci95": {"pearson": {"lo", "hi"}, …}}}}`, each measure against test error over
//!   the converged runs;
//! - one scatter plot per measure against test error, coloured by attack size, as
//!   `<measure>.png` and `<measure>.svg`, and `fig3.png`/`fig3.svg`: the paper's figure 3
//!   layout, log10 P(f) (probit) and Keskar sharpness against test error side by side;
//! - `report.md`: the spec, the correlation table, the plots and run statistics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use basin_nn::TrainStatus;
use serde::{Deserialize, Serialize};

use crate::plot::{
    LegendCorner, PlotError, ScatterPlot, Series, write_png_panels, write_svg_panels,
};
use crate::record::RunRecord;
use crate::spec::ExperimentSpec;
use crate::stats::{Correlations, correlations, pearson};

/// The measures correlated with test error: (key, axis label, plotted as log10 of the key).
pub const MEASURES: [(&str, &str, bool); 7] = [
    ("log_prior_probit", "log10 P(f), probit likelihood", true),
    ("log_prior_step", "log10 P(f), step likelihood", true),
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

/// Bootstrap resamples for the confidence intervals.
pub const RESAMPLES: usize = 2000;

/// An error writing the outputs.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A plot failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] basin_data::DataError),
}

/// What `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Records read.
    pub runs: usize,
    /// Runs that reached 100% on S (the correlations use only these).
    pub converged: usize,
    /// Each measured quantity against test error.
    pub correlations: BTreeMap<String, Correlations>,
}

/// The correlations of every measure present in the converged records with test error. The
/// records are taken in order of attack size, replicate and id, so the result does not depend
/// on the order the runs finished or the shards were merged in.
pub fn summarize(records: &[RunRecord], seed: u64) -> Summary {
    let mut good: Vec<&RunRecord> = converged(records).collect();
    good.sort_by(|a, b| {
        (a.attack_size, a.replicate, &a.id).cmp(&(b.attack_size, b.replicate, &b.id))
    });
    let mut out = BTreeMap::new();
    for (name, _, _) in MEASURES {
        let pairs: Vec<(f64, f64)> = good
            .iter()
            .filter_map(|r| r.measure(name).map(|m| (m, r.test_error)))
            .collect();
        if pairs.len() >= 2 {
            let (m, e): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            out.insert(name.to_owned(), correlations(&m, &e, RESAMPLES, seed));
        }
    }
    Summary {
        runs: records.len(),
        converged: good.len(),
        correlations: out,
    }
}

fn converged(records: &[RunRecord]) -> impl Iterator<Item = &RunRecord> {
    records
        .iter()
        .filter(|r| r.status == TrainStatus::Converged)
}

/// The scatter plot of measure `name` against test error, one series per attack size.
pub fn measure_plot(records: &[RunRecord], name: &str) -> Option<ScatterPlot> {
    let (_, label, log10) = MEASURES.iter().find(|m| m.0 == name)?;
    let mut by_size: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for r in converged(records) {
        if let Some(m) = r.measure(name) {
            let y = if *log10 {
                m / std::f64::consts::LN_10
            } else {
                m
            };
            by_size
                .entry(r.attack_size)
                .or_default()
                .push((r.test_error, y));
        }
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = by_size.values().flatten().copied().unzip();
    let legend = match pearson(&xs, &ys) {
        Some(r) if r > 0.0 => LegendCorner::UpperLeft,
        _ => LegendCorner::UpperRight,
    };
    (!by_size.is_empty()).then(|| ScatterPlot {
        legend,
        title: format!("{label} against test error"),
        x_label: "test error".into(),
        y_label: (*label).to_owned(),
        series: by_size
            .into_iter()
            .map(|(a, points)| Series {
                label: format!("|A| = {a}"),
                points,
            })
            .collect(),
    })
}

/// Writes `summary.json`, the plots and `report.md` into `dir`.
pub fn write_outputs(
    dir: &Path,
    spec: Option<&ExperimentSpec>,
    records: &[RunRecord],
) -> Result<Summary, ReportError> {
    let summary = summarize(records, spec.map_or(0, |s| s.seed));
    let json = serde_json::to_string_pretty(&summary).expect("a summary serialises");
    basin_data::io::write_atomic(&dir.join("summary.json"), json.as_bytes())?;
    let mut plots = Vec::new();
    for (name, _, _) in MEASURES {
        if let Some(plot) = measure_plot(records, name) {
            plot.write_png(&dir.join(format!("{name}.png")), (900, 650))?;
            plot.write_svg(&dir.join(format!("{name}.svg")), (900, 650))?;
            plots.push(name);
        }
    }
    let fig3: Vec<ScatterPlot> = ["log_prior_probit", "sharpness"]
        .iter()
        .filter_map(|m| measure_plot(records, m))
        .collect();
    if fig3.len() == 2 {
        write_png_panels(&fig3, &dir.join("fig3.png"), (1600, 650))?;
        write_svg_panels(&fig3, &dir.join("fig3.svg"), (1600, 650))?;
        plots.insert(0, "fig3");
    }
    let md = markdown(spec, records, &summary, &plots);
    basin_data::io::write_atomic(&dir.join("report.md"), md.as_bytes())?;
    Ok(summary)
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
    summary: &Summary,
    plots: &[&str],
) -> String {
    let mut md = String::new();
    let title = spec.map_or("basin experiment", |s| s.name.as_str());
    let _ = writeln!(md, "# {title}\n");
    if let Some(s) = spec.filter(|s| !s.description.is_empty()) {
        let _ = writeln!(md, "{}\n", s.description);
    }
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
    md.push_str("\n## Plots\n\n");
    for name in plots {
        let alt = if *name == "fig3" {
            "log10 P(f) and sharpness against test error".to_owned()
        } else {
            format!("{name} against test error")
        };
        let _ = writeln!(md, "![{alt}]({name}.png)\n");
    }
    md.push_str(&run_statistics(records));
    if let Some(s) = spec {
        let toml = toml::to_string(s).unwrap_or_default();
        let _ = writeln!(md, "\n## Spec\n\n```toml\n{toml}```");
    }
    md
}

/// Per attack size: runs, converged, mean epochs and test error; then mean stage times.
fn run_statistics(records: &[RunRecord]) -> String {
    let mut md = String::from("## Runs\n\n");
    md.push_str("| \\|A\\| | runs | converged | mean epochs | mean test error |\n");
    md.push_str("|---|---|---|---|---|\n");
    let mut by_size: BTreeMap<usize, Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        by_size.entry(r.attack_size).or_default().push(r);
    }
    for (a, rs) in &by_size {
        let n = rs.len() as f64;
        let conv = rs
            .iter()
            .filter(|r| r.status == TrainStatus::Converged)
            .count();
        let epochs = rs.iter().map(|r| r.epochs as f64).sum::<f64>() / n;
        let err = rs.iter().map(|r| r.test_error).sum::<f64>() / n;
        let _ = writeln!(
            md,
            "| {a} | {} | {conv} | {epochs:.0} | {err:.3} |",
            rs.len()
        );
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
