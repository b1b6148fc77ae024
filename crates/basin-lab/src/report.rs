//! What every experiment's outputs share, computed from its records alone (so `basin report`
//! regenerates them without recomputing anything):
//! - `summary.json`: a [`Summary`], the part every kind has (`runs`, `converged`,
//!   `correlations`, `by_variant`) followed by the kind's own section;
//! - `report.md`: a heading, the kind's sections, and the spec as TOML;
//! - figures written as PNG and SVG side by side.
//!
//! Each experiment kind writes its own sections with these parts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use basin_nn::TrainStatus;
use serde::{Deserialize, Serialize};

use crate::error::FolderError;
use crate::exec::folder::file_in;
use crate::plot::{PlotError, ScatterPlot, write_png_panels, write_svg_panels};
use crate::record::RunRecord;
use crate::spec::ExperimentSpec;
use crate::stats::Correlations;

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
    /// A figure's name would leave the output folder.
    #[error(transparent)]
    Folder(#[from] FolderError),
}

/// What `summary.json` holds: the part every experiment has, then the kind's own section `S`
/// (its keys follow `by_variant` in the file; [`Summary::erase`] turns it into JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary<S = serde_json::Value> {
    /// Records read.
    pub runs: usize,
    /// Runs that reached 100% on S (the correlations use only these).
    pub converged: usize,
    /// Each measured quantity against test error, over all converged runs (empty for the
    /// kinds that correlate against something else).
    pub correlations: BTreeMap<String, Correlations>,
    /// The same within each variant (optimizer or checkpoint), when there are several.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_variant: BTreeMap<String, BTreeMap<String, Correlations>>,
    /// The kind's own statistics.
    #[serde(flatten)]
    pub section: S,
}

/// The section of a kind that has none of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NoSection {}

impl<S> Summary<S> {
    /// A summary of `runs` records, `converged` of them converged, with no correlations and
    /// the kind's section.
    pub fn of_section(runs: usize, converged: usize, section: S) -> Self {
        Self {
            runs,
            converged,
            correlations: BTreeMap::new(),
            by_variant: BTreeMap::new(),
            section,
        }
    }
}

impl<S: Serialize> Summary<S> {
    /// The summary with its section as JSON (an object of the section's keys).
    pub fn erase(self) -> Summary {
        Summary {
            runs: self.runs,
            converged: self.converged,
            correlations: self.correlations,
            by_variant: self.by_variant,
            section: serde_json::to_value(&self.section).expect("a summary serialises"),
        }
    }

    /// Writes the summary as `<dir>/summary.json` (pretty JSON, written atomically).
    pub fn write(&self, dir: &Path) -> Result<(), ReportError> {
        let json = serde_json::to_string_pretty(self).expect("a summary serialises");
        basin_data::io::write_atomic(&dir.join("summary.json"), json.as_bytes())?;
        Ok(())
    }
}

/// The records whose training reached zero error on S.
pub fn converged(records: &[RunRecord]) -> impl Iterator<Item = &RunRecord> {
    records
        .iter()
        .filter(|r| r.status == TrainStatus::Converged)
}

/// Writes `panels` in `rows` rows as `<dir>/<stem>.png` and `<dir>/<stem>.svg`, `size` pixels
/// for the whole figure.
pub fn write_figure(
    dir: &Path,
    stem: &str,
    panels: &[ScatterPlot],
    rows: usize,
    size: (u32, u32),
) -> Result<(), ReportError> {
    write_png_panels(panels, rows, &file_in(dir, &format!("{stem}.png"))?, size)?;
    write_svg_panels(panels, rows, &file_in(dir, &format!("{stem}.svg"))?, size)?;
    Ok(())
}

/// The report's title (the spec's name, or `untitled` without a spec) and the spec's
/// description.
pub fn heading(spec: Option<&ExperimentSpec>, untitled: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", spec.map_or(untitled, |s| s.name.as_str()));
    if let Some(s) = spec.filter(|s| !s.description.is_empty()) {
        let _ = writeln!(md, "{}\n", s.description);
    }
    md
}

/// The report's closing section: the spec as TOML (empty without a spec).
pub fn spec_section(spec: Option<&ExperimentSpec>) -> String {
    spec.map_or(String::new(), |s| {
        let toml = toml::to_string(s).unwrap_or_default();
        format!("\n## Spec\n\n```toml\n{toml}```\n")
    })
}

/// Writes `report.md` into `dir`.
pub fn write_markdown(dir: &Path, md: &str) -> Result<(), ReportError> {
    basin_data::io::write_atomic(&dir.join("report.md"), md.as_bytes())?;
    Ok(())
}
