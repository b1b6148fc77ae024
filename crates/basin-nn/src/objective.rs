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

/// Any objective with its Hessian-vector product replaced by the central finite difference
/// of its exact gradient, `(∇L(θ + εv) − ∇L(θ − εv)) / 2ε`: an approximation, kept as an
/// independent check of the exact products (its error is O(ε²) plus round-off O(u/ε)).
///
/// `ε = step · max(1, ‖θ‖∞) / ‖v‖∞`, so that the largest coordinate moves by `step` relative
/// to the parameters' scale; `step` = 1e-5 (about the cube root of f64's unit round-off)
/// suits f64. Every other method is the inner objective's own.
pub struct FiniteDifferenceHvp<'a, T> {
    inner: &'a mut dyn Objective<T>,
    step: f64,
    shifted: Vec<T>,
    grad_plus: Vec<T>,
    grad_minus: Vec<T>,
}

impl<'a, T: Real> FiniteDifferenceHvp<'a, T> {
    /// Wraps `inner` with relative step `step`.
    pub fn new(inner: &'a mut dyn Objective<T>, step: f64) -> Self {
        let n = inner.n_params();
        Self {
            inner,
            step,
            shifted: vec![T::ZERO; n],
            grad_plus: vec![T::ZERO; n],
            grad_minus: vec![T::ZERO; n],
        }
    }
}

impl<T: Real> Objective<T> for FiniteDifferenceHvp<'_, T> {
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }

    fn n_examples(&self) -> usize {
        self.inner.n_examples()
    }

    fn loss(&mut self, theta: &[T], batch: &[usize]) -> T {
        self.inner.loss(theta, batch)
    }

    fn loss_grad(&mut self, theta: &[T], batch: &[usize], grad: &mut [T]) -> T {
        self.inner.loss_grad(theta, batch, grad)
    }

    fn hvp(&mut self, theta: &[T], batch: &[usize], v: &[T], out: &mut [T]) {
        let max_abs = |xs: &[T]| xs.iter().fold(0.0f64, |m, x| m.max(x.to_f64().abs()));
        let v_max = max_abs(v);
        if v_max == 0.0 {
            out.fill(T::ZERO);
            return;
        }
        let eps = self.step * max_abs(theta).max(1.0) / v_max;
        for sign in [1.0, -1.0] {
            for ((s, t), d) in self.shifted.iter_mut().zip(theta).zip(v) {
                *s = T::from_f64(t.to_f64() + sign * eps * d.to_f64());
            }
            let grad = if sign > 0.0 {
                &mut self.grad_plus
            } else {
                &mut self.grad_minus
            };
            self.inner.loss_grad(&self.shifted, batch, grad);
        }
        for ((o, p), m) in out.iter_mut().zip(&self.grad_plus).zip(&self.grad_minus) {
            *o = T::from_f64((p.to_f64() - m.to_f64()) / (2.0 * eps));
        }
    }

    fn count_errors(&mut self, theta: &[T], batch: &[usize]) -> usize {
        self.inner.count_errors(theta, batch)
    }
}
