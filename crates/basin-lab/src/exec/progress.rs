//! `progress.json`: where a run stands, rewritten atomically as each job finishes, so that
//! `basin status` can follow the shards of a job array from their folders alone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The progress file inside an output folder.
pub const PROGRESS_FILE: &str = "progress.json";

/// How a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Computing (or killed without a chance to say otherwise: see `updated_unix_s`).
    Running,
    /// Every run of the folder's shard is stored.
    Done,
    /// Asked to stop: the runs in progress were stored, the rest wait for a rerun.
    Stopped,
    /// A job failed with `error`.
    Failed,
}

/// The content of `progress.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The experiment.
    pub experiment: String,
    /// The shard, `K/N`, or null for the whole experiment.
    pub shard: Option<String>,
    /// The runs of this shard (or of the whole experiment).
    pub runs: usize,
    /// Of them, the runs stored now.
    pub stored: usize,
    /// Of them, the runs this attempt computed.
    pub computed: usize,
    /// How this attempt stands.
    pub state: RunState,
    /// The error of a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts so far: 1 for the first, one more for each rerun into the folder (a
    /// requeued task's included).
    pub attempt: usize,
    /// The process of this attempt.
    pub pid: u32,
    /// When this attempt started (seconds since the Unix epoch).
    pub started_unix_s: f64,
    /// When the file was last written (seconds since the Unix epoch).
    pub updated_unix_s: f64,
}

/// Reads `dir`'s progress file, if it has a readable one.
pub fn read(dir: &Path) -> Option<Progress> {
    let text = std::fs::read_to_string(dir.join(PROGRESS_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Seconds since the Unix epoch, now.
pub fn now_unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The progress file of one attempt, rewritten on each change. Writing it is best effort: a
/// failure to write is logged, never an error of the run.
#[derive(Debug)]
pub struct Tracker {
    path: PathBuf,
    progress: Mutex<Progress>,
}

impl Tracker {
    /// Starts an attempt in `dir` of `experiment`'s `shard`, with `runs` runs of which
    /// `stored` are stored, and writes the file.
    pub fn start(
        dir: &Path,
        experiment: &str,
        shard: Option<String>,
        runs: usize,
        stored: usize,
    ) -> Self {
        let attempt = read(dir).map_or(1, |p| p.attempt + 1);
        let now = now_unix_s();
        let tracker = Self {
            path: dir.join(PROGRESS_FILE),
            progress: Mutex::new(Progress {
                experiment: experiment.to_owned(),
                shard,
                runs,
                stored,
                computed: 0,
                state: RunState::Running,
                error: None,
                attempt,
                pid: std::process::id(),
                started_unix_s: now,
                updated_unix_s: now,
            }),
        };
        tracker.update(|_| {});
        tracker
    }

    /// Counts `n` runs computed and stored.
    pub fn stored(&self, n: usize) {
        self.update(|p| {
            p.stored += n;
            p.computed += n;
        });
    }

    /// Ends the attempt in `state`, with the error of a failed run.
    pub fn finish(&self, state: RunState, error: Option<String>) {
        self.update(|p| {
            p.state = state;
            p.error = error;
        });
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut progress);
        progress.updated_unix_s = now_unix_s();
        let written = serde_json::to_vec_pretty(&*progress)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                basin_data::io::write_atomic(&self.path, &json).map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_counts_its_runs_and_the_next_one_counts_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::start(dir.path(), "e", Some("2/4".into()), 5, 1);
        t.stored(2);
        let p = read(dir.path()).unwrap();
        assert_eq!((p.runs, p.stored, p.computed, p.attempt), (5, 3, 2, 1));
        assert_eq!(p.state, RunState::Running);
        t.finish(RunState::Failed, Some("boom".into()));
        let p = read(dir.path()).unwrap();
        assert_eq!(
            (p.state, p.error.as_deref()),
            (RunState::Failed, Some("boom"))
        );
        let again = Tracker::start(dir.path(), "e", Some("2/4".into()), 5, 3);
        again.finish(RunState::Done, None);
        let p = read(dir.path()).unwrap();
        assert_eq!((p.attempt, p.computed, p.state), (2, 0, RunState::Done));
        assert!(p.updated_unix_s >= p.started_unix_s);
    }
}
