//! The `Objective` trait: a differentiable loss over a flat parameter vector.
//!
//! Optimizers, the training loop, sharpness and Lanczos see only this trait, so the same code
//! measures any network that implements it.

use crate::real::Real;

/// A differentiable loss `L(θ; batch)` over flat parameters `θ`, averaged over a non-empty
/// batch of examples that the objective holds, named by their indices.
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

    /// The number of examples in `batch` that the model at `θ` misclassifies.
    fn count_errors(&mut self, theta: &[T], batch: &[usize]) -> usize;
}

/// The indices `0..n`: the whole set as one batch.
pub fn all_examples(n: usize) -> Vec<usize> {
    (0..n).collect()
}

/// The dense Hessian of the mean loss over `batch`, built column by column from exact
/// Hessian-vector products with the unit vectors, then symmetrised as `(H + Hᵀ)/2`.
///
/// Returns the `n × n` matrix row-major in f64 and the largest asymmetry `|H_ij − H_ji|` seen
/// before symmetrising (round-off only, for an exact HVP). Meant for small nets: it takes `n`
/// HVPs and `8n²` bytes (200 MB at n = 5,000).
pub fn dense_hessian<T: Real>(
    obj: &mut dyn Objective<T>,
    theta: &[T],
    batch: &[usize],
) -> (Vec<f64>, f64) {
    let n = obj.n_params();
    let mut h = vec![0.0f64; n * n];
    let mut e = vec![T::ZERO; n];
    let mut col = vec![T::ZERO; n];
    for j in 0..n {
        e[j] = T::ONE;
        obj.hvp(theta, batch, &e, &mut col);
        e[j] = T::ZERO;
        for (i, c) in col.iter().enumerate() {
            h[i * n + j] = c.to_f64();
        }
    }
    let mut asymmetry = 0.0f64;
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (h[i * n + j], h[j * n + i]);
            asymmetry = asymmetry.max((a - b).abs());
            let m = 0.5 * (a + b);
            h[i * n + j] = m;
            h[j * n + i] = m;
        }
    }
    (h, asymmetry)
}
