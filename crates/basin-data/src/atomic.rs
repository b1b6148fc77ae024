//! Replacing files safely. Every writer of basin that replaces a file goes through
//! [`AtomicPath`] (a temporary name, renamed into place) or [`AtomicFile`] (the same, with the
//! file open for writing), so that all of them:
//!
//! - refuse a target that exists and is not a regular file (a device such as `/dev/full`, a
//!   FIFO, a folder), which a rename would silently replace ([`check_replaceable`]);
//! - name the temporary `.<name>.tmp<pid>` (with the target's extension appended where an
//!   encoder picks the format by it), so a stale one can be traced to its process;
//! - remove the temporary on error, on drop and on interruption ([`crate::cleanup`]);
//! - sweep the temporaries that dead processes left for the same target ([`sweep_stale`]).
//!
//! [`create_dir`] makes an output folder, refusing a path that is a file.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::cleanup::{self, Registered};
use crate::error::{DataError, Result};

/// The words for a file type that is not a regular file.
fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` may be replaced by a new regular file: it does not exist, or it is a
/// regular file (a symbolic link is followed). A device, a FIFO, a socket or a folder is
/// [`DataError::NotAFile`].
pub fn check_replaceable(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) => Err(DataError::NotAFile {
            path: path.to_owned(),
            kind: kind_of(&meta.file_type()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DataError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Checks that `path` is a folder or does not exist; a path that exists and is something
/// else is [`DataError::NotAFolder`].
pub fn check_folder(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(DataError::NotAFolder {
            path: path.to_owned(),
            kind: if meta.is_file() {
                "a file"
            } else {
                kind_of(&meta.file_type())
            },
        }),
        _ => Ok(()),
    }
}

/// Creates the folder `path` and its parents if needed; a path that exists and is not a
/// folder is [`DataError::NotAFolder`].
pub fn create_dir(path: &Path) -> Result<()> {
    check_folder(path)?;
    std::fs::create_dir_all(path).map_err(|source| DataError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The temporary name of `file_name` for process `pid`: `.<file_name>.tmp<pid>`, then
/// `.<ext>` if `ext` is given.
fn temporary_name(file_name: &str, pid: u32, ext: Option<&str>) -> String {
    match ext {
        Some(ext) => format!(".{file_name}.tmp{pid}.{ext}"),
        None => format!(".{file_name}.tmp{pid}"),
    }
}

/// The target's file name and the process id of a temporary name made by
/// [`temporary_name`], or `None` if `name` is not one.
fn parse_temporary(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(".tmp")?;
    let (target, tail) = (&rest[..at], &rest[at + 4..]);
    let digits = tail.split_once('.').map_or(tail, |(d, ext)| {
        if ext.is_empty() || ext.contains('.') {
            ""
        } else {
            d
        }
    });
    if target.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((target, digits.parse().ok()?))
}

/// True if no process has id `pid` (`kill(pid, 0)` fails with `ESRCH`). Unknown is alive.
#[cfg(unix)]
fn is_dead(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
    let status = unsafe { libc::kill(pid, 0) };
    status == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Without `kill`, no process is known to be dead.
#[cfg(not(unix))]
fn is_dead(_pid: u32) -> bool {
    false
}

/// Removes the temporaries in `dir` left by processes that no longer exist (for the target
/// named `only`, or for every target); returns how many it removed. A folder that cannot be
/// read holds none.
fn sweep(dir: &Path, only: Option<&str>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((target, pid)) = name.to_str().and_then(parse_temporary) else {
            continue;
        };
        let ours = pid == std::process::id();
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if only.is_none_or(|o| o == target)
            && !ours
            && regular
            && is_dead(pid)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Removes the temporaries that processes which no longer exist left in `dir` (for example
/// after a kill -9 or a full disk); returns how many it removed.
pub fn sweep_stale(dir: &Path) -> usize {
    sweep(dir, None)
}

/// `path`, or where it leads when it is a symbolic link (to the end of a chain of links, the
/// last of which may point to a file that does not exist yet).
fn resolve_link(path: &Path) -> Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&path).map_err(|source| DataError::Write {
                    path: path.clone(),
                    source,
                })?;
                path = match path.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(DataError::Write {
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "too many levels of symbolic links",
        ),
    })
}

/// A temporary path for a file that replaces `target` when committed. The temporary lives in
/// the target's folder (so the rename is atomic), is registered for removal on interruption,
/// and is removed on drop unless committed.
#[derive(Debug)]
pub struct AtomicPath {
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
    _cleanup: Registered,
}

impl AtomicPath {
    /// A temporary path for `target`; with `keep_extension`, it ends in the target's extension
    /// (for encoders that pick the format by it). Refuses a target that exists and is not a
    /// regular file, and sweeps the stale temporaries of the same target.
    /// A symbolic link is followed: the file it points to is replaced and the link kept.
    pub fn new(target: &Path, keep_extension: bool) -> Result<Self> {
        check_replaceable(target)?;
        let resolved = resolve_link(target)?;
        let target = resolved.as_path();
        let file_name =
            target
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| DataError::Write {
                    path: target.to_owned(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not the path of a file with a UTF-8 name",
                    ),
                })?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sweep(dir, Some(file_name));
        let ext = keep_extension
            .then(|| target.extension().and_then(|e| e.to_str()))
            .flatten();
        let tmp = dir.join(temporary_name(file_name, std::process::id(), ext));
        let removable = tmp.clone();
        let cleanup = cleanup::on_interrupt(move || {
            let _ = std::fs::remove_file(removable);
        });
        Ok(Self {
            target: target.to_owned(),
            tmp,
            committed: false,
            _cleanup: cleanup,
        })
    }

    /// The temporary path, to write to.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// The path the temporary replaces.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the temporary over the target (checked again: it must still not be a special
    /// file).
    pub fn commit(mut self) -> Result<()> {
        check_replaceable(&self.target)?;
        std::fs::rename(&self.tmp, &self.target).map_err(|source| DataError::Write {
            path: self.target.clone(),
            source,
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicPath {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A file written to a temporary name and renamed over its target by
/// [`AtomicFile::commit`]: a reader never sees it half-written, and a failed or interrupted
/// write leaves the old file intact and no temporary behind.
#[derive(Debug)]
pub struct AtomicFile {
    path: AtomicPath,
    file: BufWriter<File>,
}

impl AtomicFile {
    /// Opens a temporary file that will replace `target` (see [`AtomicPath::new`]).
    pub fn create(target: &Path) -> Result<Self> {
        let path = AtomicPath::new(target, false)?;
        let err = |source| DataError::Write {
            path: path.tmp().to_owned(),
            source,
        };
        match std::fs::remove_file(path.tmp()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path.tmp())
            .map_err(err)?;
        Ok(Self {
            file: BufWriter::with_capacity(1 << 16, file),
            path,
        })
    }

    /// The temporary path being written.
    pub fn tmp(&self) -> &Path {
        self.path.tmp()
    }

    /// Flushes and syncs the file, then renames it over the target.
    pub fn commit(mut self) -> Result<()> {
        let err = |path: &AtomicPath, source| DataError::Write {
            path: path.tmp().to_owned(),
            source,
        };
        if let Err(e) = self.file.flush() {
            return Err(err(&self.path, e));
        }
        if let Err(e) = self.file.get_ref().sync_all() {
            return Err(err(&self.path, e));
        }
        self.path.commit()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_parse_back() {
        assert_eq!(
            parse_temporary(&temporary_name("fig3.png", 42, Some("png"))),
            Some(("fig3.png", 42))
        );
        assert_eq!(
            parse_temporary(&temporary_name("sharpness.svg", 7, None)),
            Some(("sharpness.svg", 7))
        );
        for not in [
            ".x.tmp",
            "x.tmp3",
            ".tmp3",
            ".x.tmp3.a.b",
            ".x.tmpz",
            ".x.tmp3.",
        ] {
            assert_eq!(parse_temporary(not), None, "{not}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn special_files_are_refused_and_kept() {
        let err = check_replaceable(Path::new("/dev/null")).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        assert!(
            check_replaceable(dir.path())
                .unwrap_err()
                .to_string()
                .contains("folder")
        );
    }
}
