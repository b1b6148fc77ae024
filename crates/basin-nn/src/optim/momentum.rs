//! SGD with momentum in the Keras/TensorFlow form (`tf.keras.optimizers.SGD(momentum=…)`),
//! optionally Nesterov.

use serde::{Deserialize, Serialize};

use super::config::{ConfigError, decay, positive};
use super::{Optimizer, check_lengths};
use crate::real::Real;

/// Hyper-parameters of momentum SGD in the Keras form: v ← μv − lr·g, then θ ← θ + v, or
/// with Nesterov θ ← θ + μv − lr·g (with the new v).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MomentumConfig {
    /// The learning rate. Default 0.01: the default of `tf.keras.optimizers.SGD`, and the SGD
    /// setting of Zhang et al. (ICML 2021).
    pub lr: f64,
    /// The momentum μ, in [0, 1). Default 0.9: the customary value (Sutskever et al., ICML
    /// 2013); `tf.keras.optimizers.SGD` itself defaults to 0, which is plain SGD.
    pub momentum: f64,
    /// Whether to use Nesterov momentum. Default false: the default of
    /// `tf.keras.optimizers.SGD(nesterov=False)`.
    pub nesterov: bool,
}

impl Default for MomentumConfig {
    fn default() -> Self {
        Self {
            lr: 0.01,
            momentum: 0.9,
            nesterov: false,
        }
    }
}

impl MomentumConfig {
    /// Checks `lr` > 0 finite and 0 ≤ `momentum` < 1; the error names the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("momentum.lr", self.lr)?;
        decay("momentum.momentum", self.momentum)
    }
}

/// Momentum SGD (Keras form); its state is the velocity v, zero at the start.
#[derive(Clone, Debug)]
pub struct Momentum<T: Real> {
    lr: T,
    mu: T,
    nesterov: bool,
    velocity: Vec<T>,
}

impl<T: Real> Momentum<T> {
    /// Momentum SGD over `n_params` parameters, with v = 0.
    pub fn new(cfg: &MomentumConfig, n_params: usize) -> Self {
        Self {
            lr: T::from_f64(cfg.lr),
            mu: T::from_f64(cfg.momentum),
            nesterov: cfg.nesterov,
            velocity: vec![T::ZERO; n_params],
        }
    }

    /// The velocity v after the updates so far.
    pub fn velocity(&self) -> &[T] {
        &self.velocity
    }
}

impl<T: Real> Optimizer<T> for Momentum<T> {
    fn name(&self) -> &'static str {
        "momentum"
    }

    fn update(&mut self, theta: &mut [T], grad: &[T]) {
        check_lengths(self.velocity.len(), theta, grad);
        let (lr, mu) = (self.lr, self.mu);
        for ((th, &g), v) in theta.iter_mut().zip(grad).zip(&mut self.velocity) {
            *v = mu * *v - lr * g;
            *th += if self.nesterov { mu * *v - lr * g } else { *v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{GRADS, THETA0, check_hand_values};

    /// θ after each of three updates with lr 0.01, μ 0.9, by hand.
    const PLAIN: [[f64; 3]; 3] = [
        [0.999, -1.997, 0.48],
        [1.0001, -1.9983, 0.452],
        [1.00059, -2.00447, 0.4418],
    ];

    /// The same with Nesterov.
    const NESTEROV: [[f64; 3]; 3] = [
        [0.9981, -1.9943, 0.462],
        [1.00109, -1.99947, 0.4268],
        [1.001031, -2.010023, 0.43262],
    ];

    fn config(nesterov: bool) -> MomentumConfig {
        MomentumConfig {
            nesterov,
            ..MomentumConfig::default()
        }
    }

    #[test]
    fn plain_matches_hand_values() {
        let cfg = config(false);
        check_hand_values(
            &mut Momentum::new(&cfg, 3),
            &mut Momentum::new(&cfg, 3),
            &PLAIN,
        );
    }

    #[test]
    fn nesterov_matches_hand_values() {
        let cfg = config(true);
        check_hand_values(
            &mut Momentum::new(&cfg, 3),
            &mut Momentum::new(&cfg, 3),
            &NESTEROV,
        );
    }

    /// With the same history (the velocity does not depend on θ), one update from the same θ
    /// moves plain momentum by the new velocity v' = μv − lr·g and Nesterov by μv' − lr·g, so
    /// Nesterov − plain = μ(v' − v). To 1e-15 absolute (θ is of order 1: a few ulps).
    #[test]
    fn nesterov_differs_from_plain_as_the_formulas_say() {
        let mut plain = Momentum::<f64>::new(&config(false), 3);
        let mut nest = Momentum::<f64>::new(&config(true), 3);
        for g in &GRADS {
            let v_old = nest.velocity().to_vec();
            let (mut a, mut b) = (THETA0, THETA0);
            plain.update(&mut a, g);
            nest.update(&mut b, g);
            assert_eq!(plain.velocity(), nest.velocity());
            let v = nest.velocity();
            for i in 0..3 {
                let close = |x: f64, y: f64| assert!((x - y).abs() <= 1e-15, "[{i}]: {x} vs {y}");
                close(a[i] - THETA0[i], v[i]);
                close(b[i] - THETA0[i], 0.9 * v[i] - 0.01 * g[i]);
                close(b[i] - a[i], 0.9 * (v[i] - v_old[i]));
            }
        }
    }

    #[test]
    fn velocity_buffer_is_not_reallocated() {
        let mut opt = Momentum::<f64>::new(&config(true), 3);
        let ptr = opt.velocity().as_ptr();
        let mut theta = THETA0;
        for g in &GRADS {
            opt.update(&mut theta, g);
        }
        assert_eq!(opt.velocity().as_ptr(), ptr);
    }
}
