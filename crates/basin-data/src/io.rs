//! Reading whole files, with transparent gzip, and writing them atomically.

use std::io::{Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::atomic::AtomicFile;
use crate::error::{DataError, Result};

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most bytes a gzip stream may expand to (16 GiB), so that a crafted file cannot exhaust memory.
const MAX_DECOMPRESSED: u64 = 16 << 30;

/// Reads a whole file, decompressing it if it starts with gzip's magic bytes (whatever its name).
///
/// An empty file (or an empty gzip stream) is an error.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_maybe_gzip(raw, path)
}

/// Decompresses `raw` if it is gzip (detected by its magic bytes); otherwise returns it as is.
///
/// `path` names the origin of the bytes in errors.
pub fn decode_maybe_gzip(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    let empty = || DataError::Empty {
        path: path.to_owned(),
    };
    if raw.is_empty() {
        return Err(empty());
    }
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4));
    MultiGzDecoder::new(raw.as_slice())
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_owned(),
            source,
        })?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(DataError::Invalid {
            path: path.to_owned(),
            problem: format!("gzip stream expands beyond {MAX_DECOMPRESSED} bytes"),
        });
    }
    if out.is_empty() {
        return Err(empty());
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically: to a temporary file in the same directory, synced, then
/// renamed ([`AtomicFile`]).
///
/// A reader never sees a half-written file, and an interrupted write leaves the old file intact
/// and no temporary behind. A `path` that exists and is not a regular file (a device, a FIFO, a
/// folder) is refused with [`DataError::NotAFile`], not replaced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|source| DataError::Write {
        path: file.tmp().to_owned(),
        source,
    })?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_is_detected_by_magic_not_name() {
        let p = Path::new("plain-name.idx");
        assert_eq!(decode_maybe_gzip(gzip(b"hello"), p).unwrap(), b"hello");
        assert_eq!(decode_maybe_gzip(b"hello".to_vec(), p).unwrap(), b"hello");
    }

    #[test]
    fn corrupt_and_empty_streams_are_errors() {
        let p = Path::new("x.gz");
        let mut bad = gzip(&[7u8; 1000]);
        let n = bad.len();
        bad.truncate(n / 2);
        assert!(matches!(
            decode_maybe_gzip(bad, p),
            Err(DataError::Gzip { .. })
        ));
        let mut flipped = gzip(b"some payload here");
        flipped[12] ^= 0xff;
        assert!(decode_maybe_gzip(flipped, p).is_err());
        assert!(matches!(
            decode_maybe_gzip(vec![], p),
            Err(DataError::Empty { .. })
        ));
        assert!(matches!(
            decode_maybe_gzip(gzip(b""), p),
            Err(DataError::Empty { .. })
        ));
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_through_a_symlink_replaces_its_target_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("real");
        std::fs::create_dir(&sub).unwrap();
        let target = sub.join("out.bin");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink("real/out.bin", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // A dangling link gets its target created.
        let dangling = dir.path().join("dangling.bin");
        std::os::unix::fs::symlink("real/new.bin", &dangling).unwrap();
        write_atomic(&dangling, b"x").unwrap();
        assert_eq!(std::fs::read(sub.join("new.bin")).unwrap(), b"x");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_refuses_a_fifo_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = write_atomic(&fifo, b"x").unwrap_err();
        assert!(matches!(err, DataError::NotAFile { .. }), "{err}");
        assert!(err.to_string().contains("FIFO"), "{err}");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_refuses_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(dir.path(), b"x").unwrap_err();
        assert!(err.to_string().contains("a folder"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn stale_temporaries_of_dead_processes_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        // A process that has exited: its id is free (unless reused at once, which the
        // sweep then rightly leaves alone).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".out.bin.tmp{dead}"));
        let stale_png = dir.path().join(format!(".fig.png.tmp{dead}.png"));
        let alive = dir.path().join(format!(".other.tmp{}", std::process::id()));
        for p in [&stale, &stale_png, &alive] {
            std::fs::write(p, b"partial").unwrap();
        }
        write_atomic(&dir.path().join("out.bin"), b"one").unwrap();
        assert!(
            !stale.exists(),
            "the same target's stale temporary is swept"
        );
        assert!(
            stale_png.exists(),
            "another target's is left to the folder sweep"
        );
        assert_eq!(crate::atomic::sweep_stale(dir.path()), 1);
        assert!(!stale_png.exists());
        assert!(alive.exists(), "a live process's temporary stays");
    }
}
