//! Jobs: the runs that share one training run.

use crate::error::LabError;
use crate::record::RunRecord;
use crate::spec::RunKey;

/// Computes the records of one job.
pub type Compute<'a> = dyn Fn(&Job) -> Result<Vec<RunRecord>, LabError> + Sync + 'a;

/// The runs that share one training run: one optimizer, attack size and replicate (and α),
/// measured at each of its checkpoints (ascending overtraining epochs). A job is the unit the
/// executor schedules, shards and stores.
#[derive(Debug, Clone)]
pub struct Job {
    /// The runs, one per checkpoint, in order of overtraining epochs.
    pub keys: Vec<RunKey>,
}

impl Job {
    /// Groups runs (ordered so that the runs of one training run are adjacent) into jobs.
    pub fn group(keys: Vec<RunKey>) -> Vec<Self> {
        let mut jobs: Vec<Self> = Vec::new();
        for key in keys {
            match jobs.last_mut() {
                Some(job) if job.shares_training(&key) => job.keys.push(key),
                _ => jobs.push(Self { keys: vec![key] }),
            }
        }
        jobs
    }

    fn shares_training(&self, key: &RunKey) -> bool {
        let first = &self.keys[0];
        (first.optimizer.name(), first.attack_size, first.replicate)
            == (key.optimizer.name(), key.attack_size, key.replicate)
            && first.alpha == key.alpha
    }

    /// A rank of the job's expected cost, for scheduling: the overtraining epochs of its last
    /// run, then |A| (more examples, and more epochs to fit them), then its number of runs.
    pub fn cost_rank(&self) -> (usize, usize, usize) {
        let overtrain = self.keys.last().map_or(0, |k| k.overtrain_epochs);
        let attack = self.keys.first().map_or(0, |k| k.attack_size);
        (overtrain, attack, self.keys.len())
    }

    /// The first run, which names the job (its seed, optimizer and attack size are all the
    /// runs').
    pub fn first(&self) -> &RunKey {
        &self.keys[0]
    }
}
