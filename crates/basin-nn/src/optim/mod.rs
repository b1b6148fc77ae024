//! Optimizers: one implementation per algorithm behind the [`Optimizer`] trait, each with a
//! serde struct of hyper-parameters whose defaults and their sources are documented.

use crate::objective::Objective;
use crate::real::Real;

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
