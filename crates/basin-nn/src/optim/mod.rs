//! Optimizers: one implementation per algorithm behind the [`Optimizer`] trait, each with a
//! serde struct of hyper-parameters whose defaults and their sources are documented, and
//! [`OptimizerConfig`], the choice among them as one serde value.
//!
//! The update rules follow `tf.keras` (the reference code of Zhang et al., ICML 2021, trained
//! with TensorFlow's defaults), except Entropy-SGD, which follows its authors' code. Every
//! optimizer allocates its state when it is built, for a given number of parameters;
//! [`Optimizer::update`] and [`Optimizer::step`] do no heap allocation (Entropy-SGD's index
//! pool, sized by the number of examples, is allocated on its first step).

use crate::objective::Objective;
use crate::real::Real;

mod adagrad;
mod adam;
mod config;
mod entropy_sgd;
mod momentum;
mod rmsprop;
mod sgd;
#[cfg(test)]
mod testing;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use config::{ConfigError, OptimizerConfig};
pub use entropy_sgd::{EntropySgd, EntropySgdConfig};
pub use momentum::{Momentum, MomentumConfig};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{GdConfig, Sgd, SgdConfig};

/// An optimizer: it updates flat parameters in place and keeps its own state.
pub trait Optimizer<T: Real>: Send {
    /// A short name for reports (`sgd`, `adam`, …).
    fn name(&self) -> &'static str;

    /// One update from the minibatch gradient `grad` at `theta`.
    fn update(&mut self, theta: &mut [T], grad: &[T]);

    /// One training step on the examples `batch`: by default the gradient (into the scratch
    /// buffer `grad`) then [`Optimizer::update`]. Returns the batch loss at `theta` before the
    /// step. Optimizers that need the objective itself (Entropy-SGD) override it.
    fn step(
        &mut self,
        obj: &mut dyn Objective<T>,
        theta: &mut [T],
        batch: &[usize],
        grad: &mut [T],
    ) -> T {
        let loss = obj.loss_grad(theta, batch, grad);
        self.update(theta, grad);
        loss
    }
}

/// Panics unless `theta` and `grad` both have the `n_params` the optimizer was built for.
fn check_lengths<T>(n_params: usize, theta: &[T], grad: &[T]) {
    assert_eq!(theta.len(), n_params, "theta has the wrong length");
    assert_eq!(grad.len(), n_params, "grad has the wrong length");
}
