//! How much memory this process may use, and the one check every large allocation passes
//! before it happens: [`check`] compares the bytes a step needs with [`available_bytes`] and
//! returns a [`MemoryError`] that gives the GiB needed and the flag that reduces it.
//!
//! The memory available is the smallest of the host's `MemAvailable` (`/proc/meminfo`) and
//! the room left under the process's cgroup limit (v2 `memory.max` − `memory.current`, or
//! v1 `memory.limit_in_bytes` − `memory.usage_in_bytes`), so that a container's limit counts
//! rather than the host's free memory. Where none of these can be read (not Linux), the
//! check passes and the allocation itself is the last line of defence.

use std::path::{Path, PathBuf};

/// A step that would need more memory than the process has.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{what} needs about {need_gib:.1} GiB of memory but {available_gib:.1} GiB is available \
     to this process ({source_name}): {remedy}",
    need_gib = gib(*.need),
    available_gib = gib(*.available),
)]
pub struct MemoryError {
    /// What would have been allocated, e.g. "a kernel of 25000 points".
    pub what: String,
    /// Bytes needed.
    pub need: u64,
    /// Bytes available.
    pub available: u64,
    /// Where the limit comes from: "cgroup memory.max", "MemAvailable", ….
    pub source_name: &'static str,
    /// How to ask for less, naming the flag.
    pub remedy: String,
}

/// Bytes as GiB.
pub fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

/// The bytes of `count` values of `bytes_each` bytes, saturating at `u64::MAX`.
pub fn bytes_of(count: u64, bytes_each: u64) -> u64 {
    count.saturating_mul(bytes_each)
}

/// The memory this process may still allocate, in bytes, with the name of the limit that
/// binds; `None` where nothing can be read.
pub fn available_bytes() -> Option<(u64, &'static str)> {
    let host = proc_kb("/proc/meminfo", "MemAvailable:").map(|b| (b, "MemAvailable"));
    tighter(host, cgroup_room())
}

/// An error when `need` bytes (for `what`) exceed the memory available to the process; `remedy`
/// says which flag asks for less. Passes where the available memory cannot be read.
pub fn check(need: u64, what: impl FnOnce() -> String, remedy: &str) -> Result<(), MemoryError> {
    check_against(available_bytes(), need, what, remedy)
}

/// [`check`] of `count` values of `bytes_each` bytes (the product saturates, so an absurd
/// count is refused rather than wrapped).
pub fn check_count(
    count: u64,
    bytes_each: u64,
    what: impl FnOnce() -> String,
    remedy: &str,
) -> Result<(), MemoryError> {
    check(bytes_of(count, bytes_each), what, remedy)
}

/// A vector of `count` copies of `value`, checked against the memory available and then
/// allocated fallibly (`try_reserve_exact`), so that neither an absurd count nor a refusal by
/// the allocator aborts the process.
pub fn try_filled<T: Clone>(
    count: usize,
    value: T,
    what: impl FnOnce() -> String,
    remedy: &str,
) -> Result<Vec<T>, MemoryError> {
    let each = std::mem::size_of::<T>() as u64;
    let need = bytes_of(count as u64, each);
    let mut what = Some(what);
    let mut describe = || what.take().map_or_else(String::new, |f| f());
    check(need, &mut describe, remedy)?;
    let mut v = Vec::new();
    if v.try_reserve_exact(count).is_err() {
        let available = available_bytes();
        return Err(MemoryError {
            what: describe(),
            need,
            available: available.map_or(0, |a| a.0),
            source_name: "refused by the allocator",
            remedy: remedy.to_string(),
        });
    }
    v.resize(count, value);
    Ok(v)
}

/// [`check`] against a given `available` (bytes and the name of the limit).
fn check_against(
    available: Option<(u64, &'static str)>,
    need: u64,
    what: impl FnOnce() -> String,
    remedy: &str,
) -> Result<(), MemoryError> {
    match available {
        Some((available, source_name)) if need > available => Err(MemoryError {
            what: what(),
            need,
            available,
            source_name,
            remedy: remedy.to_string(),
        }),
        _ => Ok(()),
    }
}

/// A `kB` line of a `/proc` file such as `/proc/meminfo`, in bytes.
pub fn proc_kb(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.saturating_mul(1024))
}

/// The room left under the cgroup memory limit of this process, if it has one.
fn cgroup_room() -> Option<(u64, &'static str)> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    cgroup_room_in(Path::new("/sys/fs/cgroup"), &membership)
}

/// [`cgroup_room`] with the cgroup file system mounted at `root` and `/proc/self/cgroup`'s
/// text `membership`: the tightest limit along the path from the process's cgroup to the root
/// (v2), or the v1 memory controller's limit.
fn cgroup_room_in(root: &Path, membership: &str) -> Option<(u64, &'static str)> {
    let mut best: Option<(u64, &'static str)> = None;
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        let room = if controllers.is_empty() {
            v2_room(root, rel)
        } else if controllers.split(',').any(|c| c == "memory") {
            v1_room(&root.join("memory"), rel)
        } else {
            None
        };
        best = tighter(best, room);
    }
    best
}

/// The smaller of two rooms.
fn tighter(
    a: Option<(u64, &'static str)>,
    b: Option<(u64, &'static str)>,
) -> Option<(u64, &'static str)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// cgroup v2: the tightest `memory.max − memory.current` from `rel` up to the root.
fn v2_room(root: &Path, rel: &str) -> Option<(u64, &'static str)> {
    let mut best = None;
    for dir in ancestors(root, rel) {
        let (Some(max), Some(current)) = (
            read_limit(&dir.join("memory.max")),
            read_limit(&dir.join("memory.current")),
        ) else {
            continue;
        };
        best = tighter(
            best,
            Some((max.saturating_sub(current), "cgroup memory.max")),
        );
    }
    best
}

/// cgroup v1: `memory.limit_in_bytes − memory.usage_in_bytes`, where the controller is
/// mounted at `mount`, in the process's cgroup or (inside a container) at the mount's root.
fn v1_room(mount: &Path, rel: &str) -> Option<(u64, &'static str)> {
    let mut best = None;
    for dir in ancestors(mount, rel) {
        let (Some(limit), Some(usage)) = (
            read_limit(&dir.join("memory.limit_in_bytes")),
            read_limit(&dir.join("memory.usage_in_bytes")),
        ) else {
            continue;
        };
        // v1 reports "no limit" as a huge page-rounded number.
        if limit < (1u64 << 60) {
            best = tighter(
                best,
                Some((limit.saturating_sub(usage), "cgroup memory.limit_in_bytes")),
            );
        }
    }
    best
}

/// `root/rel` and each of its ancestors down to `root` itself.
fn ancestors(root: &Path, rel: &str) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    let mut dir = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
        dirs.push(dir.clone());
    }
    dirs
}

/// A number of bytes from a cgroup file; `None` for "max" (no limit) or an unreadable file.
fn read_limit(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn the_tightest_v2_limit_along_the_path_binds() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("a/b");
        write(&root.path().join("a"), "memory.max", "1000000\n");
        write(&root.path().join("a"), "memory.current", "400000\n");
        write(&leaf, "memory.max", "max\n");
        write(&leaf, "memory.current", "100\n");
        let room = cgroup_room_in(root.path(), "0::/a/b\n");
        assert_eq!(room, Some((600_000, "cgroup memory.max")));
    }

    #[test]
    fn v1_limits_count_and_unlimited_v1_is_ignored() {
        let root = tempfile::tempdir().unwrap();
        let mem = root.path().join("memory");
        write(&mem, "memory.limit_in_bytes", "9223372036854771712\n");
        write(&mem, "memory.usage_in_bytes", "5\n");
        assert_eq!(cgroup_room_in(root.path(), "4:memory:/\n"), None);
        write(&mem.join("job"), "memory.limit_in_bytes", "2048\n");
        write(&mem.join("job"), "memory.usage_in_bytes", "48\n");
        assert_eq!(
            cgroup_room_in(root.path(), "4:cpu,memory:/job\n"),
            Some((2000, "cgroup memory.limit_in_bytes"))
        );
    }

    #[test]
    fn a_cgroup_limit_below_the_hosts_free_memory_refuses_what_the_host_would_allow() {
        // A container with 4 GiB left under its memory.max on a host with 20 GiB free: a
        // kernel of 25,000 points (three N × N float64 copies, 15 GB) passes the host's free
        // memory but not the cgroup's room.
        let root = tempfile::tempdir().unwrap();
        let job = root.path().join("job");
        write(&job, "memory.max", &(6u64 << 30).to_string());
        write(&job, "memory.current", &(2u64 << 30).to_string());
        let host = Some((20u64 << 30, "MemAvailable"));
        let available = tighter(host, cgroup_room_in(root.path(), "0::/job\n"));
        assert_eq!(available, Some((4u64 << 30, "cgroup memory.max")));
        let need = bytes_of(25_000 * 25_000, 8 * 3);
        assert!(check_against(host, need, String::new, "").is_ok());
        let err = check_against(available, need, || "a kernel".into(), "use --take").unwrap_err();
        assert_eq!(err.source_name, "cgroup memory.max");
        let text = err.to_string();
        assert!(
            text.contains("14.0 GiB") && text.contains("4.0 GiB"),
            "{text}"
        );
        assert!(text.contains("use --take"), "{text}");
    }

    #[test]
    fn try_filled_refuses_an_absurd_count_and_fills_a_small_one() {
        let small = try_filled(3, 1.5f64, String::new, "").unwrap();
        assert_eq!(small, vec![1.5; 3]);
        let err =
            try_filled(usize::MAX / 2, 0u64, || "a buffer".into(), "ask for less").unwrap_err();
        assert!(err.to_string().contains("ask for less"), "{err}");
        let err = check_count(u64::MAX, 8, || "x".into(), "r");
        if available_bytes().is_some() {
            assert!(err.is_err());
        }
    }

    #[test]
    fn an_absurd_need_is_refused_with_the_remedy() {
        if available_bytes().is_none() {
            return;
        }
        let err = check(u64::MAX, || "a kernel of 1e10 points".into(), "use --take").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("a kernel of 1e10 points"), "{text}");
        assert!(text.contains("use --take"), "{text}");
        assert!(check(1024, String::new, "").is_ok());
    }
}
