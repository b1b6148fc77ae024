//! Keskar sharpness (Keskar et al. 2017; Definition 2.1 of Zhang et al. 2021).
//!
//! Sharpness is the largest relative rise of the loss within a small box around the trained
//! parameters θ:
//!
//! ```text
//! sharpness = 100 · (max_{θ' ∈ C_ε} L(θ') − L(θ)) / (1 + L(θ)),
//! C_ε = { θ' : |θ'_i − θ_i| ≤ ε (|θ_i| + 1) for every i }.
//! ```
//!
//! The maximum is approximated from below. [`sharpness_sgd`] runs gradient *ascent* with
//! minibatch SGD as the paper's code does; the L-BFGS-B variant of Keskar's original code is
//! [`crate::lbfgsb::sharpness_lbfgsb`]. Both return a [`Sharpness`].

use std::time::Instant;

use basin_nn::{Objective, Real, all_examples};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::checks::check_theta;
use crate::error::{FlatnessError, NonFiniteAt};

/// The order in which an ascent epoch visits the examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AscentOrder {
    /// Sequential batches in stored order every epoch: the effective behaviour of the paper's
    /// code, whose shuffle had no effect.
    Fixed,
    /// A fresh ChaCha8 permutation every epoch, from `seed`.
    Shuffled {
        /// The seed of the permutations.
        seed: u64,
    },
    /// One given permutation of `0..n` per epoch (to reproduce another implementation's run).
    Given(Vec<Vec<usize>>),
}

/// The settings of the SGD ascent. [`KeskarConfig::paper`] gives the paper's values.
#[derive(Debug, Clone, PartialEq)]
pub struct KeskarConfig {
    /// The half-width of the box, relative: |θ'_i − θ_i| ≤ ε (|θ_i| + 1). Paper: 1e-4.
    pub epsilon: f64,
    /// The ascent learning rate. Paper: 1e-3.
    pub lr: f64,
    /// The number of ascent epochs. Paper: 100 (10 for the Boolean system).
    pub epochs: usize,
    /// The minibatch size; the last partial batch is kept. Paper: 32.
    pub batch_size: usize,
    /// The batch order.
    pub order: AscentOrder,
}

impl KeskarConfig {
    /// The paper's settings for MNIST and CIFAR-10: ε = 1e-4, lr 1e-3, 100 epochs, batch 32,
    /// fixed order.
    pub fn paper() -> Self {
        Self {
            epsilon: 1e-4,
            lr: 1e-3,
            epochs: 100,
            batch_size: 32,
            order: AscentOrder::Fixed,
        }
    }

    /// The paper's settings for the Boolean system: as [`KeskarConfig::paper`] with 10 epochs.
    pub fn boolean() -> Self {
        Self {
            epochs: 10,
            ..Self::paper()
        }
    }

    /// Checks the settings against a set of `n` examples.
    pub fn validate(&self, n: usize) -> Result<(), FlatnessError> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(FlatnessError::setting(
                "epsilon",
                self.epsilon,
                "epsilon must be > 0 (the paper uses 1e-4)",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(FlatnessError::setting(
                "lr",
                self.lr,
                "the learning rate must be > 0",
            ));
        }
        if self.batch_size == 0 {
            return Err(FlatnessError::setting(
                "batch_size",
                self.batch_size,
                "the batch size must be at least 1",
            ));
        }
        if n == 0 {
            return Err(FlatnessError::EmptySet);
        }
        if let AscentOrder::Given(perms) = &self.order {
            check_permutations(perms, self.epochs, n)?;
        }
        Ok(())
    }
}

fn check_permutations(perms: &[Vec<usize>], epochs: usize, n: usize) -> Result<(), FlatnessError> {
    if perms.len() != epochs {
        return Err(FlatnessError::PermutationCount {
            given: perms.len(),
            epochs,
        });
    }
    for (e, p) in perms.iter().enumerate() {
        let mut seen = vec![false; n];
        let ok = p.len() == n
            && p.iter()
                .all(|&i| i < n && !std::mem::replace(&mut seen[i], true));
        if !ok {
            return Err(FlatnessError::NotAPermutation { epoch: e, n });
        }
    }
    Ok(())
}

/// A Keskar sharpness measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sharpness {
    /// 100 · (max_loss − loss) / (1 + loss). Never negative: the maximum includes L(θ).
    pub sharpness: f64,
    /// log10 of `sharpness`; `None` when the sharpness is exactly 0.
    pub log10_sharpness: Option<f64>,
    /// L(θ), the mean loss over the measured set at the trained parameters.
    pub loss: f64,
    /// The largest full-set loss seen in the box (L(θ) included).
    pub max_loss: f64,
    /// Optimizer steps taken (SGD steps, or L-BFGS-B iterations).
    pub steps: usize,
    /// Full-set loss evaluations made after θ.
    pub evaluations: usize,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

impl Sharpness {
    /// Builds the measurement from L(θ) and the largest loss found.
    pub fn new(loss: f64, max_loss: f64, steps: usize, evaluations: usize, wall_s: f64) -> Self {
        let max_loss = max_loss.max(loss);
        let sharpness = 100.0 * (max_loss - loss) / (1.0 + loss);
        Self {
            sharpness,
            log10_sharpness: (sharpness > 0.0).then(|| sharpness.log10()),
            loss,
            max_loss,
            steps,
            evaluations,
            wall_s,
        }
    }
}

/// The result of [`sharpness_sgd`]: the measurement, the full-set loss after every step and
/// the parameters at the end of the ascent.
#[derive(Debug, Clone)]
pub struct SgdAscent<T> {
    /// The sharpness.
    pub sharpness: Sharpness,
    /// The full-set loss after each step, in order.
    pub loss_trace: Vec<f64>,
    /// The parameters after the last step.
    pub final_theta: Vec<T>,
}

/// The box `[θ − d, θ + d]` with `d = ε (|θ| + 1)`, computed in `T` as the reference code does.
pub fn keskar_box<T: Real>(theta: &[T], epsilon: f64) -> (Vec<T>, Vec<T>) {
    let eps = T::from_f64(epsilon);
    let half = |w: T| eps * (w.abs() + T::ONE);
    let lo = theta.iter().map(|&w| w - half(w)).collect();
    let hi = theta.iter().map(|&w| w + half(w)).collect();
    (lo, hi)
}

/// Keskar sharpness by SGD ascent, exactly as the paper's code computes it.
///
/// From θ, every epoch visits the examples in batches of `batch_size` (the last partial batch
/// kept); each step moves θ' ← θ' + lr · ∇L_batch(θ') and clips every parameter back into the
/// box, then evaluates the loss over the whole set. The largest of those losses and L(θ) is
/// `max_loss`. All arithmetic is in `T`; the losses are reported in f64.
///
/// Errors: invalid settings, or a non-finite loss or gradient (named with its step).
pub fn sharpness_sgd<T: Real>(
    obj: &mut dyn Objective<T>,
    theta: &[T],
    cfg: &KeskarConfig,
) -> Result<SgdAscent<T>, FlatnessError> {
    let n = obj.n_examples();
    cfg.validate(n)?;
    check_theta(obj, theta)?;
    let start = Instant::now();
    let all = all_examples(n);
    let loss0 = finite_loss(obj.loss(theta, &all).to_f64(), 0)?;
    let (lo, hi) = keskar_box(theta, cfg.epsilon);
    let mut w = theta.to_vec();
    let mut grad = vec![T::ZERO; theta.len()];
    let mut order = all.clone();
    let mut rng = match cfg.order {
        AscentOrder::Shuffled { seed } => Some(ChaCha8Rng::seed_from_u64(seed)),
        _ => None,
    };
    let lr = T::from_f64(cfg.lr);
    let mut trace = Vec::with_capacity(cfg.epochs * n.div_ceil(cfg.batch_size));
    for epoch in 0..cfg.epochs {
        match (&cfg.order, rng.as_mut()) {
            (AscentOrder::Given(perms), _) => order.copy_from_slice(&perms[epoch]),
            (_, Some(rng)) => order.shuffle(rng),
            _ => {}
        }
        for batch in order.chunks(cfg.batch_size) {
            obj.loss_grad(&w, batch, &mut grad);
            ascend_and_clip(&mut w, &grad, lr, &lo, &hi);
            let loss = obj.loss(&w, &all).to_f64();
            trace.push(finite_loss(loss, trace.len() + 1)?);
        }
    }
    let max_loss = trace.iter().copied().fold(loss0, f64::max);
    let steps = trace.len();
    let wall_s = start.elapsed().as_secs_f64();
    Ok(SgdAscent {
        sharpness: Sharpness::new(loss0, max_loss, steps, steps, wall_s),
        loss_trace: trace,
        final_theta: w,
    })
}

/// θ' ← clip(θ' + lr · g, lo, hi), element-wise.
fn ascend_and_clip<T: Real>(w: &mut [T], grad: &[T], lr: T, lo: &[T], hi: &[T]) {
    for (((w, &g), &l), &h) in w.iter_mut().zip(grad).zip(lo).zip(hi) {
        *w = (*w + lr * g).max(l).min(h);
    }
}

/// Passes a finite loss through; a NaN or infinite one is an error naming the step.
pub(crate) fn finite_loss(loss: f64, step: usize) -> Result<f64, FlatnessError> {
    if loss.is_finite() {
        Ok(loss)
    } else {
        Err(FlatnessError::non_finite(NonFiniteAt::AscentLoss {
            step,
            loss,
        }))
    }
}
