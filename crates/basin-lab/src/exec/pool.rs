//! The worker pool: jobs computed in parallel, one thread each, each job's new records
//! appended to the store as it finishes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::LabError;
use crate::exec::jobs::{Compute, Job};
use crate::exec::records::to_value;
use crate::exec::stop::StopFlag;
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

/// What the pool says after each job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobDone {
    /// Jobs finished so far.
    pub done: usize,
    /// Jobs to compute in all.
    pub total: usize,
    /// Records this job appended to the store (0 if it failed).
    pub stored: usize,
}

/// Computes `todo` on `pool`, appending each job's records that `store` lacks as the job
/// finishes; `progress` is called after each job. The workers take jobs from
/// one queue, the costliest first ([`Job::cost_rank`]), so that no worker is left with a
/// long job at the end while the others idle. Once `stop` is raised no worker takes a new
/// job. Returns the records appended, job by job in the order of `todo`, with `None` for
/// each job not taken.
pub fn compute_all(
    pool: &rayon::ThreadPool,
    todo: &[&Job],
    store: Store,
    compute: &Compute<'_>,
    progress: &(dyn Fn(JobDone) + Sync),
    stop: &StopFlag,
) -> Vec<Option<JobResult>> {
    let store = Mutex::new(store);
    let done = AtomicUsize::new(0);
    let queue = costliest_first(todo);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<JobResult>>> = todo.iter().map(|_| Mutex::new(None)).collect();
    pool.broadcast(|_| {
        while !stop.is_requested()
            && let Some(&i) = queue.get(next.fetch_add(1, Ordering::SeqCst))
        {
            let result = compute_one(todo[i], &store, compute);
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            progress(JobDone {
                done: n,
                total: todo.len(),
                stored: result.as_ref().map_or(0, Vec::len),
            });
            *results[i].lock().expect("no panics hold the lock") = Some(result);
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("no panics hold the lock"))
        .collect()
}

/// One job's new records, or its error.
pub type JobResult = Result<Vec<RunRecord>, LabError>;

/// The indices of `todo`, costliest job first (ties in the order of `todo`).
fn costliest_first(todo: &[&Job]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..todo.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(todo[i].cost_rank()));
    order
}

/// Computes one job and appends its records that `store` lacks.
fn compute_one(job: &Job, store: &Mutex<Store>, compute: &Compute<'_>) -> JobResult {
    let records = compute(job)?;
    let mut store = store.lock().expect("no panics hold the lock");
    let fresh: Vec<RunRecord> = records
        .into_iter()
        .filter(|r| !store.contains(&r.id))
        .collect();
    for record in &fresh {
        store.append(&to_value(record))?;
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::attack_set::run_keys;
    use crate::spec::ExperimentSpec;

    #[test]
    fn the_largest_attack_sets_are_taken_first_and_ties_keep_their_order() {
        let spec = ExperimentSpec::load("fig3-mnist").unwrap().quick_sizes();
        let jobs = Job::group(run_keys(&spec));
        let todo: Vec<&Job> = jobs.iter().collect();
        let taken: Vec<(usize, usize)> = costliest_first(&todo)
            .into_iter()
            .map(|i| (todo[i].first().attack_size, todo[i].first().replicate))
            .collect();
        let sizes = &spec.data.attack_sizes;
        let expected: Vec<(usize, usize)> =
            sizes.iter().rev().flat_map(|&a| [(a, 0), (a, 1)]).collect();
        assert_eq!(taken, expected);
    }
}
