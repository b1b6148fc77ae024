//! Resuming: the jobs of this shard, and those of them whose runs the store lacks.

use crate::exec::jobs::Job;
use crate::exec::shards::Shard;
use crate::exec::store::Store;

/// This shard's jobs (all of them without a shard).
pub fn of_shard(jobs: Vec<Job>, shard: Option<Shard>) -> Vec<Job> {
    jobs.into_iter()
        .filter(|j| shard.is_none_or(|s| s.holds(&j.first().id)))
        .collect()
}

/// The jobs with at least one run that the store lacks.
pub fn pending<'a>(jobs: &'a [Job], store: &Store) -> Vec<&'a Job> {
    jobs.iter()
        .filter(|j| j.keys.iter().any(|k| !store.contains(&k.id)))
        .collect()
}
