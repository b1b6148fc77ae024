//! The output folder of a run: created if needed, locked for the run, swept of stale
//! temporaries, and removed again if the run fails before storing anything.
//!
//! - One writer at a time: [`RunFolder::open`] takes an exclusive lock ([`File::try_lock`])
//!   on [`LOCK_FILE`] and writes its process id into it, so a second process is refused with
//!   the holder's id. The system releases the lock when the process ends, however it ends.
//!   Shards run into separate folders, each with its own lock.
//! - A folder the run created that holds nothing but the spec, the lock file, the progress
//!   file and an empty store when the run fails ([`RunFolder::abandon`]) or is interrupted is
//!   removed.
//! - Temporaries that dead processes left in the folder are swept on open.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use basin_data::cleanup::{self, Registered};

use crate::error::FolderError;
use crate::exec::progress::PROGRESS_FILE;
use crate::exec::store::RESULTS_FILE;

/// The lock file inside an output folder.
pub const LOCK_FILE: &str = ".basin.lock";

/// The file in an output folder that records the spec it was run with.
pub const SPEC_FILE: &str = "spec.toml";

/// An output folder locked by this process for as long as the value lives.
#[derive(Debug)]
pub struct RunFolder {
    dir: PathBuf,
    created: bool,
    _lock: File,
    _cleanup: Option<Registered>,
}

impl RunFolder {
    /// Creates `dir` if needed, locks it (refusing if another process holds it) and sweeps
    /// the temporaries of dead processes from it.
    pub fn open(dir: &Path) -> Result<Self, FolderError> {
        let created = !dir.exists();
        basin_data::atomic::create_dir(dir)?;
        let lock = lock(dir)?;
        basin_data::atomic::sweep_stale(dir);
        let cleanup = created.then(|| {
            let dir = dir.to_owned();
            cleanup::on_interrupt(move || remove_if_unused(&dir))
        });
        Ok(Self {
            dir: dir.to_owned(),
            created,
            _lock: lock,
            _cleanup: cleanup,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Ends a failed run: a folder this run created is removed if it holds nothing but the
    /// spec, the lock file, the progress file and an empty store.
    pub fn abandon(self) {
        if self.created {
            remove_if_unused(&self.dir);
        }
    }
}

/// The lock file of a shared cache folder.
pub const CACHE_LOCK_FILE: &str = ".basin-cache.lock";

/// A cache folder that several processes share (the shards of one run), held by this
/// process for as long as the value lives: the others wait for it in [`SharedCache::lock`],
/// so that one makes what the cache lacks and the rest read it.
#[derive(Debug)]
pub struct SharedCache {
    _lock: File,
}

impl SharedCache {
    /// Creates `dir` if needed and waits until this process holds its lock.
    pub fn lock(dir: &Path) -> Result<Self, FolderError> {
        basin_data::atomic::create_dir(dir)?;
        let path = dir.join(CACHE_LOCK_FILE);
        let io = |source| FolderError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(Self { _lock: file })
    }
}

/// The path of the file `name` in `dir`, refusing a name that is not one plain component (so
/// that no derived name leaves the folder).
pub fn file_in(dir: &Path, name: &str) -> Result<PathBuf, FolderError> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !name.contains(['/', '\\']) => Ok(dir.join(name)),
        _ => Err(FolderError::Escapes {
            dir: dir.to_owned(),
            name: name.to_owned(),
        }),
    }
}

/// Locks `<dir>/LOCK_FILE` and writes this process's id into it.
fn lock(dir: &Path) -> Result<File, FolderError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| FolderError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(FolderError::Busy {
                dir: dir.to_owned(),
                holder: holder(&path),
                lock: path,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

/// `PID <n>` of the process named in a lock file, or `PID unknown`.
fn holder(lock: &Path) -> String {
    std::fs::read_to_string(lock)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .map_or_else(|| "PID unknown".to_owned(), |pid| format!("PID {pid}"))
}

/// True for what a run writes into its folder before its first record.
fn is_scaffolding(entry: &std::fs::DirEntry) -> bool {
    let name = entry.file_name();
    match name.to_str() {
        Some(SPEC_FILE | LOCK_FILE | PROGRESS_FILE) => true,
        Some(RESULTS_FILE) => entry.metadata().is_ok_and(|m| m.len() == 0),
        _ => false,
    }
}

/// Removes `dir` if it holds nothing but a run's scaffolding (spec, lock file, progress file, empty store).
fn remove_if_unused(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let entries: Vec<_> = entries.flatten().collect();
    if entries.iter().all(is_scaffolding) {
        for entry in &entries {
            let _ = std::fs::remove_file(entry.path());
        }
        let _ = std::fs::remove_dir(dir);
    }
}
