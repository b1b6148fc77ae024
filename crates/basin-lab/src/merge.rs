//! Merging output folders (`basin report`): the folders must hold the runs of one
//! experiment. Folders whose specs have different settings ([`ExperimentSpec::settings_id`])
//! and records of another experiment, or with settings the spec cannot give
//! ([`ExperimentSpec::settings_hashes`]), are refused unless mixing is allowed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::exec::folder::SPEC_FILE;
use crate::exec::records::{RecordsError, StoredRun, each_id_once, load_folder};
use crate::record::RunRecord;
use crate::spec::{ExperimentSpec, SpecError};

/// An error merging folders.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A store could not be read, or holds a line that is not a run.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// A folder's path is a file.
    #[error(transparent)]
    NotAFolder(#[from] basin_data::DataError),
    /// A folder's `spec.toml` could not be read.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The folders' specs differ in their settings.
    #[error(
        "the folders were run with different settings:\n{listing}refusing to merge them: give \
         the folders of one spec, or pass --allow-mixed"
    )]
    MixedSettings {
        /// One line per folder: the folder, the spec's name and its settings id.
        listing: String,
    },
    /// A run into a folder that holds the runs of other settings.
    #[error(
        "{dir} holds the runs of {held_name} (settings {held_id}), not of {name} (settings \
         {id}): give another --out, or remove the folder to start afresh"
    )]
    OtherSettings {
        /// The folder.
        dir: String,
        /// The name of the spec the folder holds.
        held_name: String,
        /// Its settings id.
        held_id: String,
        /// The name of the spec to be run.
        name: String,
        /// Its settings id.
        id: String,
    },
    /// A record is not a run of the experiment being reported.
    #[error(transparent)]
    ForeignRecord(Box<ForeignRecord>),
}

/// A record that is not a run of the experiment being reported.
#[derive(Debug, thiserror::Error)]
#[error(
    "{file}, line {line}: run {id} (experiment {experiment}, settings {hash}) is not a run of \
     {expected} (settings {allowed}); refusing to merge it: remove the line, or pass \
     --allow-mixed"
)]
pub struct ForeignRecord {
    /// The store's file.
    pub file: PathBuf,
    /// The 1-based line number.
    pub line: usize,
    /// The run's id.
    pub id: String,
    /// The record's experiment.
    pub experiment: String,
    /// The settings hash in its id (`?` where the id has none).
    pub hash: String,
    /// The experiment reported.
    pub expected: String,
    /// The settings hashes its runs can carry (`any` without a spec).
    pub allowed: String,
}

/// One output folder: its spec (if it has `spec.toml`) and its runs.
#[derive(Debug, Clone)]
struct Folder {
    dir: PathBuf,
    spec: Option<ExperimentSpec>,
    runs: Vec<StoredRun>,
}

impl Folder {
    fn read(dir: &Path) -> Result<Self, MergeError> {
        basin_data::atomic::check_folder(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            spec: Self::read_spec(dir)?,
            runs: load_folder(dir)?,
        })
    }

    /// The folder's `spec.toml`, if it has one.
    fn read_spec(dir: &Path) -> Result<Option<ExperimentSpec>, MergeError> {
        let spec_path = dir.join(SPEC_FILE);
        Ok(spec_path
            .is_file()
            .then(|| ExperimentSpec::load(&spec_path.to_string_lossy()))
            .transpose()?)
    }
}

/// The runs of several folders, merged.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The spec of the first folder that has one.
    pub spec: Option<ExperimentSpec>,
    /// The runs, each id once (the first folder's where several hold it).
    pub records: Vec<RunRecord>,
}

/// Reads and merges the runs of `dirs`; unless `allow_mixed`, refuses folders of different
/// settings and records of another experiment.
pub fn merge(dirs: &[PathBuf], allow_mixed: bool) -> Result<Merged, MergeError> {
    let folders = dirs
        .iter()
        .map(|d| Folder::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    if !allow_mixed {
        check_settings(&folders)?;
        check_records(&folders)?;
    }
    let spec = folders.iter().find_map(|f| f.spec.clone());
    Ok(Merged {
        spec,
        records: each_id_once(folders.into_iter().map(|f| f.runs).collect()),
    })
}

/// Refuses to run `spec` into `dir` when the folder's `spec.toml` is of another spec or other
/// settings (its runs would be mixed with the new ones); a folder without one is fine.
pub fn check_folder_settings(dir: &Path, spec: &ExperimentSpec) -> Result<(), MergeError> {
    let Some(held) = Folder::read_spec(dir)? else {
        return Ok(());
    };
    let (held_id, id) = (held.settings_id(), spec.settings_id());
    if held.name == spec.name && held_id == id {
        return Ok(());
    }
    Err(MergeError::OtherSettings {
        dir: dir.display().to_string(),
        held_name: held.name,
        held_id,
        name: spec.name.clone(),
        id,
    })
}

/// Refuses folders whose specs differ in name or settings.
fn check_settings(folders: &[Folder]) -> Result<(), MergeError> {
    let tagged: Vec<(&Path, &str, String)> = folders
        .iter()
        .filter_map(|f| Some((f.dir.as_path(), f.spec.as_ref()?)))
        .map(|(dir, s)| (dir, s.name.as_str(), s.settings_id()))
        .collect();
    let distinct: BTreeSet<(&str, &str)> =
        tagged.iter().map(|(_, n, id)| (*n, id.as_str())).collect();
    if distinct.len() <= 1 {
        return Ok(());
    }
    let mut listing = String::new();
    for (dir, name, id) in &tagged {
        let _ = writeln!(listing, "  {}: {name}, settings {id}", dir.display());
    }
    Err(MergeError::MixedSettings { listing })
}

/// The settings hash in a run id (`<experiment>-<hash>-…`).
fn hash_of(record: &RunRecord) -> Option<&str> {
    let rest = record.id.strip_prefix(record.experiment.as_str())?;
    rest.strip_prefix('-')?.split('-').next()
}

/// Refuses records of another experiment, or (with a spec) with settings the spec cannot
/// give.
fn check_records(folders: &[Folder]) -> Result<(), MergeError> {
    let spec = folders.iter().find_map(|f| f.spec.as_ref());
    let first_run = folders.iter().flat_map(|f| &f.runs).next();
    let Some(expected) = spec
        .map(|s| s.name.clone())
        .or_else(|| first_run.map(|r| r.record.experiment.clone()))
    else {
        return Ok(());
    };
    let allowed = spec.map(ExperimentSpec::settings_hashes);
    for run in folders.iter().flat_map(|f| &f.runs) {
        let hash = hash_of(&run.record);
        let settings_ok = match (&allowed, hash) {
            (None, _) => true,
            (Some(set), Some(h)) => set.contains(h),
            (Some(_), None) => false,
        };
        if run.record.experiment != expected || !settings_ok {
            return Err(MergeError::ForeignRecord(Box::new(ForeignRecord {
                file: run.file.clone(),
                line: run.line,
                id: run.record.id.clone(),
                experiment: run.record.experiment.clone(),
                hash: hash.unwrap_or("?").to_owned(),
                expected,
                allowed: allowed.map_or("any".to_owned(), |set| {
                    set.into_iter().collect::<Vec<_>>().join(", ")
                }),
            })));
        }
    }
    Ok(())
}
