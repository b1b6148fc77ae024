//! The `Objective` trait: a differentiable loss over a flat parameter vector.
//!
//! Optimizers, the training loop, sharpness and Lanczos see only this trait, so the same code
//! measures any network that implements it.

use crate::real::Real;

/// A differentiable loss `L(θ; batch)` over flat parameters `θ`, averaged over a batch of
/// examples that the objective holds, named by their indices.
///
/// Methods take `&mut self` so that implementations keep preallocated buffers and do no heap
/// allocation per call (for batches no larger than they were built for).
pub trait Objective<T: Real> {
    /// The number of parameters.
    fn n_params(&self) -> usize;

    /// The number of examples the objective holds (valid indices are `0..n_examples()`).
    fn n_examples(&self) -> usize;

    /// The mean loss over the examples `batch`.
    fn loss(&mut self, theta: &[T], batch: &[usize]) -> T;

    /// The mean loss over `batch`, with its exact gradient written to `grad`.
    fn loss_grad(&mut self, theta: &[T], batch: &[usize], grad: &mut [T]) -> T;

    /// The exact Hessian-vector product `H(θ) v` of the mean loss over `batch`, written to `out`.
    fn hvp(&mut self, theta: &[T], batch: &[usize], v: &[T], out: &mut [T]);
}

/// The indices `0..n`: the whole set as one batch.
pub fn all_examples(n: usize) -> Vec<usize> {
    (0..n).collect()
}
