//! Training one network to zero error on S ∪ A, measured at each of its checkpoints: the
//! computation of an attack-set run, and of a Boolean function's run.

use std::time::Instant;

use basin_data::Dataset;
use basin_nn::{Kernels, TrainConfig, derive_seed};

use crate::error::LabError;
use crate::exec::jobs::Job;
use crate::measure::measure_run;
use crate::net::{NetState, Trainer};
use crate::prepare::Prepared;
use crate::record::RunRecord;
use crate::spec::RunKey;
use basin_nn::Precision;

/// Trains one network and measures it at each of the job's checkpoints.
pub fn train_and_measure(prep: &Prepared, job: &Job) -> Result<Vec<RunRecord>, LabError> {
    match prep.spec.training.precision {
        Precision::F32 => train_and_measure_typed::<f32>(prep, job),
        Precision::F64 => train_and_measure_typed::<f64>(prep, job),
    }
}

/// The parameters and the network's state (a ResNet's running statistics) at one
/// checkpoint, and the wall time of training up to it.
struct Snapshot<T> {
    theta: Vec<T>,
    state: NetState,
    train_s: f64,
}

fn train_and_measure_typed<T: Kernels>(
    prep: &Prepared,
    job: &Job,
) -> Result<Vec<RunRecord>, LabError> {
    let first = job.first();
    let t = &prep.spec.training;
    let start = Instant::now();
    let train_data = prep
        .training_set(first.attack_size)
        .map_err(|e| prep.setup_err(e))?;
    let trainer = trainer_of::<T>(prep, first, &train_data)?;
    let mut opt = first.optimizer.build::<T>(prep.net.n_params());
    let mut theta: Vec<T> = prep.net.init(derive_seed(first.seed, 0));
    // The state after the last epoch that the training loop kept (it restores θ, not the
    // state, when an epoch diverges).
    let mut state = trainer.state();
    let checkpoints: Vec<usize> = job.keys.iter().map(|k| k.overtrain_epochs).collect();
    let cfg = TrainConfig {
        batch_size: t.batch_size,
        order: t.order,
        max_epochs: t.max_epochs,
        overtrain_epochs: *checkpoints.last().expect("a job has a run"),
        seed: derive_seed(first.seed, 1),
        ..TrainConfig::default()
    };
    let mut snapshots: Vec<Snapshot<T>> = Vec::new();
    let report = basin_nn::train(
        &mut &trainer,
        opt.as_mut(),
        &mut theta,
        &cfg,
        first.optimizer.full_batch(),
        prep.split.train.len(),
        &mut |info, theta| {
            state = trainer.state();
            if let Some(at) = info.converged_at
                && checkpoints.get(snapshots.len()) == Some(&(info.epoch - at))
            {
                snapshots.push(Snapshot {
                    theta: theta.to_vec(),
                    state: state.clone(),
                    train_s: start.elapsed().as_secs_f64(),
                });
            }
            basin_nn::HookAction::Continue
        },
    );
    // A checkpoint at 0 overtraining epochs is the converged epoch itself, which the hook saw;
    // a run that never converged (or diverged) is measured where it stopped, at every
    // checkpoint alike.
    let train_s = start.elapsed().as_secs_f64();
    while snapshots.len() < job.keys.len() {
        snapshots.push(Snapshot {
            theta: theta.clone(),
            state: state.clone(),
            train_s,
        });
    }
    job.keys
        .iter()
        .zip(&snapshots)
        .map(|(key, snap)| measure_run(prep, key, &report, &snap.theta, &snap.state, snap.train_s))
        .collect()
}

/// The training objective of the run `key` on `data`: a ResNet's passes hold one batch (all
/// of `data` for a full-batch optimizer), its augmentation drawn from the run's seed.
fn trainer_of<T: Kernels>(
    prep: &Prepared,
    key: &RunKey,
    data: &Dataset,
) -> Result<Trainer<T>, LabError> {
    let batch = if key.optimizer.full_batch() {
        data.len()
    } else {
        prep.spec.training.batch_size
    };
    let augment = prep.augmentation().map(|a| (a, derive_seed(key.seed, 4)));
    prep.net
        .trainer::<T>(data, batch, augment)
        .map_err(|e| prep.setup_err(e))
}
