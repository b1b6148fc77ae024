//! RMSProp in the `tf.keras.optimizers.RMSprop` form, without momentum and not centered.

use serde::{Deserialize, Serialize};

use super::config::{ConfigError, decay, positive};
use super::{Optimizer, check_lengths};
use crate::real::Real;

/// Hyper-parameters of RMSProp (tf.keras, no momentum, not centered): ms ← ρ·ms + (1−ρ)g²
/// with ms starting at 0, θ ← θ − lr·g/(√ms + ε).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmsPropConfig {
    /// The learning rate. Default 0.001: `tf.keras.optimizers.RMSprop`.
    pub lr: f64,
    /// The decay ρ of the mean square, in [0, 1). Default 0.9: `tf.keras.optimizers.RMSprop`.
    pub rho: f64,
    /// ε > 0, added to √ms. Default 1e-7: `tf.keras.optimizers.RMSprop`.
    pub epsilon: f64,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            rho: 0.9,
            epsilon: 1e-7,
        }
    }
}

impl RmsPropConfig {
    /// Checks `lr` > 0, 0 ≤ `rho` < 1 and `epsilon` > 0 (all finite); the error names the bad
    /// field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("rmsprop.lr", self.lr)?;
        decay("rmsprop.rho", self.rho)?;
        positive("rmsprop.epsilon", self.epsilon)
    }
}

/// RMSProp (tf.keras form); its state is the running mean square ms, zero at the start.
#[derive(Clone, Debug)]
pub struct RmsProp<T: Real> {
    lr: T,
    rho: T,
    one_minus_rho: T,
    epsilon: T,
    ms: Vec<T>,
}

impl<T: Real> RmsProp<T> {
    /// RMSProp over `n_params` parameters, with ms = 0.
    pub fn new(cfg: &RmsPropConfig, n_params: usize) -> Self {
        Self {
            lr: T::from_f64(cfg.lr),
            rho: T::from_f64(cfg.rho),
            one_minus_rho: T::from_f64(1.0 - cfg.rho),
            epsilon: T::from_f64(cfg.epsilon),
            ms: vec![T::ZERO; n_params],
        }
    }

    /// The running mean square after the updates so far.
    pub fn mean_square(&self) -> &[T] {
        &self.ms
    }
}

impl<T: Real> Optimizer<T> for RmsProp<T> {
    fn name(&self) -> &'static str {
        "rmsprop"
    }

    fn update(&mut self, theta: &mut [T], grad: &[T]) {
        check_lengths(self.ms.len(), theta, grad);
        for ((th, &g), ms) in theta.iter_mut().zip(grad).zip(&mut self.ms) {
            *ms = self.rho * *ms + self.one_minus_rho * g * g;
            *th -= self.lr * g / (ms.sqrt() + self.epsilon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check_hand_values;

    /// θ after each of three updates with the defaults, evaluated at 40 digits
    /// (mpmath) and rounded to the nearest f64.
    const EXPECTED: [[f64; 3]; 3] = [
        [0.9968377323398, -1.9968377256731615, 0.4968377228398315],
        [0.9996948711153161, -1.9994143505190147, 0.49536330349567387],
        [0.9989624237691396, -2.00172832127689, 0.4972397698235341],
    ];

    #[test]
    fn three_updates_match_hand_values() {
        let cfg = RmsPropConfig::default();
        check_hand_values(
            &mut RmsProp::new(&cfg, 3),
            &mut RmsProp::new(&cfg, 3),
            &EXPECTED,
        );
        let opt = RmsProp::<f64>::new(&cfg, 3);
        assert_eq!(opt.mean_square(), &[0.0; 3]);
    }
}
