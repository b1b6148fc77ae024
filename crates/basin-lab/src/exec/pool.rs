//! The worker pool: jobs computed in parallel, one thread each, each job's new records
//! appended to the store as it finishes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::LabError;
use crate::exec::jobs::{Compute, Job};
use crate::exec::records::to_value;
use crate::exec::store::Store;
use crate::record::RunRecord;

/// A pool of `threads` worker threads; `experiment` names the experiment in the error.
pub fn pool(experiment: &str, threads: usize) -> Result<rayon::ThreadPool, LabError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| {
            LabError::setup(
                experiment,
                format!("cannot start {threads} worker threads: {e}"),
            )
        })
}

/// Computes `todo` on `pool`, appending each job's records that `store` lacks as the job
/// finishes; `progress(done, total)` is called after each job. Returns the records appended,
/// job by job in the order of `todo`.
pub fn compute_all(
    pool: &rayon::ThreadPool,
    todo: &[&Job],
    store: Store,
    compute: &Compute<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Result<Vec<RunRecord>, LabError>> {
    let store = Mutex::new(store);
    let done = AtomicUsize::new(0);
    pool.install(|| {
        todo.par_iter()
            .map(|job| {
                let records = compute(job)?;
                let mut store = store.lock().expect("no panics hold the lock");
                let fresh: Vec<RunRecord> = records
                    .into_iter()
                    .filter(|r| !store.contains(&r.id))
                    .collect();
                for record in &fresh {
                    store.append(&to_value(record))?;
                }
                drop(store);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(n, todo.len());
                Ok(fresh)
            })
            .collect()
    })
}
