//! The training loop: minibatch training to zero training error, with optional overtraining
//! and a hook after every epoch. It sees only the [`Objective`] and [`Optimizer`] traits.

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::objective::Objective;
use crate::optim::Optimizer;
use crate::real::Real;

/// The seed of an independent random stream of a run: `stream` 0 is the init, 1 the batch
/// order, 2 an optimizer's own noise. SplitMix64 of the pair, so nearby seeds and streams give
/// unrelated values.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The order of the minibatches within an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BatchOrder {
    /// A fresh permutation every epoch, from the run's seed (the default).
    #[default]
    Shuffled,
    /// The examples in their stored order every epoch: what the paper's code effectively did,
    /// since its shuffle had no effect.
    Fixed,
}

/// Which examples must all be classified correctly for training to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum StopOn {
    /// 100% accuracy on the training set S (the default, as in the paper).
    #[default]
    Train,
    /// 100% accuracy on S ∪ A (the attack set's flipped labels fitted too).
    TrainAndAttack,
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Examples per minibatch (default 32). The last partial batch is kept, averaged over its
    /// own size. Ignored by full-batch optimizers.
    pub batch_size: usize,
    /// Minibatch order (default shuffled).
    pub order: BatchOrder,
    /// Stopping criterion (default: 100% on S).
    pub stop_on: StopOn,
    /// Epochs after which an unconverged run stops with status `not_converged` (default 50,000).
    pub max_epochs: usize,
    /// Further epochs after convergence (default 0).
    pub overtrain_epochs: usize,
    /// Seed of the batch order.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            order: BatchOrder::Shuffled,
            stop_on: StopOn::Train,
            max_epochs: 50_000,
            overtrain_epochs: 0,
            seed: 0,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainStatus {
    /// The stopping criterion was met.
    Converged,
    /// `max_epochs` passed without meeting it.
    NotConverged,
    /// The epoch hook asked to stop.
    Stopped,
    /// The loss became NaN or infinite (diverged); the parameters are those of the last
    /// finite epoch's end.
    Diverged,
}

/// What the hook sees after each epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochInfo {
    /// Epochs completed, from 1.
    pub epoch: usize,
    /// The mean minibatch loss over the epoch (f64).
    pub mean_batch_loss: f64,
    /// Misclassified examples of the stopping set at the end of the epoch.
    pub stop_set_errors: usize,
    /// The epoch at whose end the criterion was first met, if it has been.
    pub converged_at: Option<usize>,
}

/// What the hook asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    /// Go on.
    Continue,
    /// Stop now (status [`TrainStatus::Stopped`]).
    Stop,
}

/// The outcome of [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// How the run ended.
    pub status: TrainStatus,
    /// Epochs to zero error (the first epoch at whose end the criterion held), or the epochs
    /// run if it never held.
    pub epochs: usize,
    /// All epochs run, overtraining included.
    pub total_epochs: usize,
    /// Wall time of the whole loop, seconds.
    pub wall_s: f64,
    /// `wall_s / total_epochs`.
    pub seconds_per_epoch: f64,
}

/// Trains `theta` in place on all of `obj`'s examples, which hold S (the first `n_train`)
/// then A.
///
/// Training stops at the end of the first epoch where every example of the stopping set
/// (`cfg.stop_on`: S, or S ∪ A) is classified correctly, then runs `overtrain_epochs` more.
/// `full_batch` makes every step use all examples (gradient descent). `hook` runs after
/// every epoch with the parameters.
pub fn train<T: Real>(
    obj: &mut dyn Objective<T>,
    opt: &mut dyn Optimizer<T>,
    theta: &mut [T],
    cfg: &TrainConfig,
    full_batch: bool,
    n_train: usize,
    hook: &mut dyn FnMut(&EpochInfo, &[T]) -> HookAction,
) -> TrainReport {
    let start = Instant::now();
    let n = obj.n_examples();
    let stop_set: Vec<usize> = match cfg.stop_on {
        StopOn::Train => (0..n_train.min(n)).collect(),
        StopOn::TrainAndAttack => (0..n).collect(),
    };
    let batch_size = if full_batch { n } else { cfg.batch_size.max(1) };
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut grad = vec![T::ZERO; obj.n_params()];
    let mut last_good = theta.to_vec();
    let mut converged_at = None;
    let mut status = TrainStatus::NotConverged;
    let mut epoch = 0;
    while epoch < limit(cfg, converged_at) {
        if cfg.order == BatchOrder::Shuffled && !full_batch {
            order.shuffle(&mut rng);
        }
        let loss = run_epoch(obj, opt, theta, &order, batch_size, &mut grad);
        epoch += 1;
        if !loss.is_finite() || theta.iter().any(|t| !t.is_finite()) {
            theta.copy_from_slice(&last_good);
            status = TrainStatus::Diverged;
            break;
        }
        last_good.copy_from_slice(theta);
        let errors = obj.count_errors(theta, &stop_set);
        if errors == 0 && converged_at.is_none() {
            converged_at = Some(epoch);
            status = TrainStatus::Converged;
        }
        let info = EpochInfo {
            epoch,
            mean_batch_loss: loss,
            stop_set_errors: errors,
            converged_at,
        };
        if hook(&info, theta) == HookAction::Stop {
            status = TrainStatus::Stopped;
            break;
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    TrainReport {
        status,
        epochs: converged_at.unwrap_or(epoch),
        total_epochs: epoch,
        wall_s,
        seconds_per_epoch: wall_s / epoch.max(1) as f64,
    }
}

/// The epoch count at which the loop stops: `max_epochs` before convergence, then the
/// convergence epoch plus the overtraining epochs.
fn limit(cfg: &TrainConfig, converged_at: Option<usize>) -> usize {
    match converged_at {
        Some(e) => e + cfg.overtrain_epochs,
        None => cfg.max_epochs,
    }
}

/// One epoch: the optimizer steps through `order` in batches of `batch_size` (the last partial
/// batch kept). Returns the mean of the batch losses (each at the parameters before its step).
pub fn run_epoch<T: Real>(
    obj: &mut dyn Objective<T>,
    opt: &mut dyn Optimizer<T>,
    theta: &mut [T],
    order: &[usize],
    batch_size: usize,
    grad: &mut [T],
) -> f64 {
    let mut total = 0.0;
    let mut batches = 0;
    for batch in order.chunks(batch_size) {
        total += opt.step(obj, theta, batch, grad).to_f64();
        batches += 1;
    }
    total / batches.max(1) as f64
}
