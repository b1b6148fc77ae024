//! BatchNorm's running statistics: state of the network, not parameters. They are not in θ,
//! not perturbed by sharpness and not touched by optimizers; only a training step in
//! [`BnMode::Train`] updates them, with PyTorch's conventions.

use crate::graph::Graph;

/// PyTorch's BatchNorm ε.
pub const BN_EPS: f64 = 1e-5;
/// PyTorch's BatchNorm momentum: `running = (1 − m)·running + m·batch`.
pub const BN_MOMENTUM: f64 = 0.1;

/// How BatchNorm normalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// With the batch's own mean and (biased) variance, updating the running statistics
    /// (PyTorch's `model.train()`): training steps only.
    Train,
    /// With the running statistics (PyTorch's `model.eval()`): every measure.
    Eval,
}

/// The running statistics of one BatchNorm layer.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningStats {
    /// The running mean per channel.
    pub mean: Vec<f64>,
    /// The running (unbiased) variance per channel.
    pub var: Vec<f64>,
    /// The training batches seen (PyTorch's `num_batches_tracked`).
    pub batches: i64,
}

impl RunningStats {
    /// Mean 0, variance 1, no batches: PyTorch's init.
    pub fn fresh(c: usize) -> Self {
        Self {
            mean: vec![0.0; c],
            var: vec![1.0; c],
            batches: 0,
        }
    }

    /// Folds channel `ch`'s batch mean and biased variance over `m` values into the running
    /// statistics: momentum 0.1, the variance made unbiased by `m/(m − 1)`, as PyTorch does.
    /// The caller counts the batch in `batches`.
    pub fn fold(&mut self, ch: usize, mean: f64, biased_var: f64, m: usize) {
        let unbias = if m > 1 {
            m as f64 / (m - 1) as f64
        } else {
            1.0
        };
        self.mean[ch] = (1.0 - BN_MOMENTUM) * self.mean[ch] + BN_MOMENTUM * mean;
        self.var[ch] = (1.0 - BN_MOMENTUM) * self.var[ch] + BN_MOMENTUM * biased_var * unbias;
    }
}

/// The running statistics of every BatchNorm layer of a graph, by its state index.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BnState {
    /// One entry per BatchNorm layer.
    pub layers: Vec<RunningStats>,
}

impl BnState {
    /// PyTorch's init for every BatchNorm layer of `graph`.
    pub fn fresh(graph: &Graph) -> Self {
        Self {
            layers: graph.bns.iter().map(|b| RunningStats::fresh(b.c)).collect(),
        }
    }

    /// The first running variance that is negative or not finite, or running mean that is not
    /// finite, as (layer name, what).
    pub fn check(&self, graph: &Graph) -> Result<(), String> {
        for (slot, s) in graph.bns.iter().zip(&self.layers) {
            if s.mean.iter().any(|m| !m.is_finite()) {
                return Err(format!("{}.running_mean is not finite", slot.name));
            }
            if s.var.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(format!(
                    "{}.running_var is negative or not finite",
                    slot.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_a_batch_follows_pytorchs_update() {
        let mut s = RunningStats::fresh(2);
        // A batch with mean 3 and biased variance 2 over m = 5 values per channel.
        s.fold(1, 3.0, 2.0, 5);
        s.batches += 1;
        assert_eq!(s.mean, [0.0, 0.9 * 0.0 + 0.1 * 3.0]);
        // torch: running_var = (1 − 0.1)·1 + 0.1 · (2 · 5/4).
        assert!((s.var[1] - (0.9 + 0.1 * 2.5)).abs() < 1e-15);
        assert_eq!((s.var[0], s.batches), (1.0, 1));
        // One value per channel: the variance is taken as is (PyTorch refuses such a batch in
        // training; basin does not divide by zero).
        s.fold(0, 1.0, 0.0, 1);
        assert!(s.var[0].is_finite());
    }
}
