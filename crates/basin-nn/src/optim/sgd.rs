//! Plain stochastic gradient descent, and full-batch gradient descent (the same update on one
//! batch of all examples).

use serde::{Deserialize, Serialize};

use super::config::{ConfigError, positive};
use super::{Optimizer, check_lengths};
use crate::real::Real;

/// Hyper-parameters of SGD: θ ← θ − lr·g.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// The learning rate. Default 0.01: the SGD setting of Zhang et al. (ICML 2021), which is
    /// also the default of `tf.keras.optimizers.SGD`.
    pub lr: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self { lr: 0.01 }
    }
}

impl SgdConfig {
    /// Checks that `lr` is finite and positive; the error names the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("sgd.lr", self.lr)
    }
}

/// Hyper-parameters of full-batch gradient descent: SGD whose every batch is all examples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GdConfig {
    /// The learning rate. Default 0.01: the same as [`SgdConfig::lr`] (Zhang et al., ICML
    /// 2021, SGD setting), so that GD and SGD differ only in the batch.
    pub lr: f64,
}

impl Default for GdConfig {
    fn default() -> Self {
        Self { lr: 0.01 }
    }
}

impl GdConfig {
    /// Checks that `lr` is finite and positive; the error names the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("gd.lr", self.lr)
    }
}

/// The SGD update θ ← θ − lr·g. It has no state; full-batch GD is this optimizer named `gd`.
#[derive(Clone, Debug)]
pub struct Sgd<T: Real> {
    lr: T,
    n_params: usize,
    name: &'static str,
}

impl<T: Real> Sgd<T> {
    /// SGD over `n_params` parameters.
    pub fn new(cfg: &SgdConfig, n_params: usize) -> Self {
        Self {
            lr: T::from_f64(cfg.lr),
            n_params,
            name: "sgd",
        }
    }

    /// Full-batch gradient descent over `n_params` parameters: the SGD update, named `gd`.
    /// The caller passes one batch of all examples (see `OptimizerConfig::full_batch`).
    pub fn full_batch(cfg: &GdConfig, n_params: usize) -> Self {
        Self {
            lr: T::from_f64(cfg.lr),
            n_params,
            name: "gd",
        }
    }
}

impl<T: Real> Optimizer<T> for Sgd<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn update(&mut self, theta: &mut [T], grad: &[T]) {
        check_lengths(self.n_params, theta, grad);
        for (th, &g) in theta.iter_mut().zip(grad) {
            *th -= self.lr * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check_hand_values;

    /// θ after each of three updates θ ← θ − 0.01·g, by hand.
    const EXPECTED: [[f64; 3]; 3] = [
        [0.999, -1.997, 0.48],
        [1.001, -2.001, 0.47],
        [1.0005, -2.006, 0.485],
    ];

    #[test]
    fn three_updates_match_hand_values() {
        let cfg = SgdConfig::default();
        check_hand_values(&mut Sgd::new(&cfg, 3), &mut Sgd::new(&cfg, 3), &EXPECTED);
    }

    #[test]
    fn gd_is_sgd_named_gd() {
        let gd = GdConfig::default();
        assert_eq!(Optimizer::<f64>::name(&Sgd::full_batch(&gd, 3)), "gd");
        assert_eq!(
            Optimizer::<f64>::name(&Sgd::new(&SgdConfig::default(), 3)),
            "sgd"
        );
        check_hand_values(
            &mut Sgd::full_batch(&gd, 3),
            &mut Sgd::full_batch(&gd, 3),
            &EXPECTED,
        );
    }

    #[test]
    #[should_panic(expected = "wrong length")]
    fn wrong_length_panics() {
        let mut opt = Sgd::<f64>::new(&SgdConfig::default(), 2);
        opt.update(&mut [0.0; 3], &[0.0; 3]);
    }
}
