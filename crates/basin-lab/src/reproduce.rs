//! Running an experiment spec into its output folder and writing its report: what
//! `basin reproduce` does, for every caller (the command line and the Python module).

use std::path::Path;

use crate::error::LabError;
use crate::exec::folder::{RunFolder, SPEC_FILE};
use crate::exec::{RunOptions, RunOutcome};
use crate::experiment::Report;
use crate::kinds::experiment;
use crate::merge::MergeError;
use crate::merge::check_folder_settings;
use crate::report::ReportError;
use crate::spec::ExperimentSpec;

/// Why [`reproduce`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReproduceError {
    /// The run failed (or was stopped: [`LabError::Stopped`]).
    #[error(transparent)]
    Run(#[from] LabError),
    /// The folder holds a run of other settings.
    #[error(transparent)]
    Folder(#[from] MergeError),
    /// The spec could not be written into the folder.
    #[error("{path}: cannot write the spec: {message}")]
    Spec {
        /// The spec file.
        path: String,
        /// Why.
        message: String,
    },
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// What [`reproduce`] did: the runs, and the report written from them.
#[derive(Debug, Clone)]
pub struct Reproduced {
    /// The runs computed now and the ones the store held.
    pub outcome: RunOutcome,
    /// The report written into the folder.
    pub report: Report,
}

/// Runs `spec` into the folder `out` (created and locked for the run) and writes its report.
///
/// The folder's `spec.toml` must agree with `spec` when it exists (a rerun into the same
/// folder resumes; other settings are refused). `preparing(message)` is called once before
/// the data and kernel are made, and `progress(done, total)` after each job. On an error a
/// folder this call created, and into which nothing was stored, is removed again.
pub fn reproduce(
    spec: &ExperimentSpec,
    out: &Path,
    opts: RunOptions,
    preparing: &dyn Fn(&str),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Reproduced, ReproduceError> {
    let folder = RunFolder::open(out).map_err(LabError::from)?;
    let result = reproduce_into(&folder, spec, opts, preparing, progress);
    if result.is_err() {
        folder.abandon();
    }
    result
}

/// Runs `spec` into the locked `folder` and writes its report.
fn reproduce_into(
    folder: &RunFolder,
    spec: &ExperimentSpec,
    opts: RunOptions,
    preparing: &dyn Fn(&str),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Reproduced, ReproduceError> {
    let exp = experiment(spec);
    let out = folder.path();
    check_folder_settings(out, spec)?;
    let path = out.join(SPEC_FILE);
    let spec_error = |message: String| ReproduceError::Spec {
        path: path.display().to_string(),
        message,
    };
    let toml = toml::to_string(spec).map_err(|e| spec_error(e.to_string()))?;
    basin_data::io::write_atomic(&path, toml.as_bytes()).map_err(|e| spec_error(e.to_string()))?;
    preparing(&exp.preparing());
    let outcome = exp.run(folder, opts, progress)?;
    let report = exp.report(out, &outcome.records)?;
    Ok(Reproduced { outcome, report })
}
