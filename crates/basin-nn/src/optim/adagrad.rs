//! Adagrad in the `tf.keras.optimizers.Adagrad` form (a nonzero initial accumulator, ε added
//! to the root).

use serde::{Deserialize, Serialize};

use super::config::{ConfigError, non_negative, positive};
use super::{Optimizer, check_lengths};
use crate::real::Real;

/// Hyper-parameters of Adagrad (tf.keras): acc ← acc + g², θ ← θ − lr·g/(√acc + ε).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdagradConfig {
    /// The learning rate. Default 0.01, as specified for basin (the default of
    /// `torch.optim.Adagrad`). Note that `tf.keras.optimizers.Adagrad` defaults to 0.001: set
    /// `lr = 0.001` to match TensorFlow exactly.
    pub lr: f64,
    /// The starting value of every accumulator, ≥ 0. Default 0.1:
    /// `tf.keras.optimizers.Adagrad(initial_accumulator_value=0.1)`.
    pub initial_accumulator: f64,
    /// ε > 0, added to √acc. Default 1e-7: `tf.keras.optimizers.Adagrad`.
    pub epsilon: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self {
            lr: 0.01,
            initial_accumulator: 0.1,
            epsilon: 1e-7,
        }
    }
}

impl AdagradConfig {
    /// Checks `lr` > 0, `initial_accumulator` ≥ 0 and `epsilon` > 0 (all finite); the error
    /// names the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("adagrad.lr", self.lr)?;
        non_negative("adagrad.initial_accumulator", self.initial_accumulator)?;
        positive("adagrad.epsilon", self.epsilon)
    }
}

/// Adagrad (tf.keras form); its state is the accumulated squared gradients.
#[derive(Clone, Debug)]
pub struct Adagrad<T: Real> {
    lr: T,
    epsilon: T,
    acc: Vec<T>,
}

impl<T: Real> Adagrad<T> {
    /// Adagrad over `n_params` parameters, each accumulator at `initial_accumulator`.
    pub fn new(cfg: &AdagradConfig, n_params: usize) -> Self {
        Self {
            lr: T::from_f64(cfg.lr),
            epsilon: T::from_f64(cfg.epsilon),
            acc: vec![T::from_f64(cfg.initial_accumulator); n_params],
        }
    }

    /// The accumulators after the updates so far.
    pub fn accumulator(&self) -> &[T] {
        &self.acc
    }
}

impl<T: Real> Optimizer<T> for Adagrad<T> {
    fn name(&self) -> &'static str {
        "adagrad"
    }

    fn update(&mut self, theta: &mut [T], grad: &[T]) {
        check_lengths(self.acc.len(), theta, grad);
        for ((th, &g), acc) in theta.iter_mut().zip(grad).zip(&mut self.acc) {
            *acc += g * g;
            *th -= self.lr * g / (acc.sqrt() + self.epsilon);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{THETA0, check_hand_values};

    /// θ after each of three updates with the defaults, evaluated at 40 digits
    /// (mpmath) and rounded to the nearest f64.
    const EXPECTED: [[f64; 3]; 3] = [
        [0.996984887463313, -1.99311752956283, 0.49012270452130896],
        [1.0021488639249232, -1.9998787624578014, 0.4856946302896869],
        [1.000868495453463, -2.0063337338681473, 0.49122746343733015],
    ];

    #[test]
    fn three_updates_match_hand_values() {
        let cfg = AdagradConfig::default();
        check_hand_values(
            &mut Adagrad::new(&cfg, 3),
            &mut Adagrad::new(&cfg, 3),
            &EXPECTED,
        );
    }

    /// The accumulator starts at 0.1, so the first step is lr·g/(√(0.1 + g²) + ε), not
    /// lr·sign(g) as it would be from 0: checked to 1e-12 relative (a difference near θ).
    #[test]
    fn initial_accumulator_is_used() {
        let mut opt = Adagrad::<f64>::new(&AdagradConfig::default(), 3);
        assert_eq!(opt.accumulator(), &[0.1; 3]);
        let g = [0.1, -0.3, 2.0];
        let mut theta = THETA0;
        opt.update(&mut theta, &g);
        for i in 0..3 {
            let want = 0.01 * g[i] / ((0.1 + g[i] * g[i]).sqrt() + 1e-7);
            let got = THETA0[i] - theta[i];
            assert!(
                ((got - want) / want).abs() <= 1e-12,
                "[{i}]: {got} vs {want}"
            );
            assert_eq!(opt.accumulator()[i], 0.1 + g[i] * g[i]);
        }
    }
}
