//! Adam in the `tf.keras.optimizers.Adam` form (ε added to √v after the bias correction is
//! folded into the step size).

use serde::{Deserialize, Serialize};

use super::config::{ConfigError, decay, positive};
use super::{Optimizer, check_lengths};
use crate::real::Real;

/// Hyper-parameters of Adam (tf.keras): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², t ← t+1,
/// lr_t = lr·√(1−β₂ᵗ)/(1−β₁ᵗ), θ ← θ − lr_t·m/(√v + ε).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// The learning rate. Default 0.001: `tf.keras.optimizers.Adam` (and Kingma & Ba 2015).
    pub lr: f64,
    /// The first-moment decay β₁, in [0, 1). Default 0.9: `tf.keras.optimizers.Adam`.
    pub beta1: f64,
    /// The second-moment decay β₂, in [0, 1). Default 0.999: `tf.keras.optimizers.Adam`.
    pub beta2: f64,
    /// ε > 0, added to √v. Default 1e-7: `tf.keras.optimizers.Adam` (Kingma & Ba use 1e-8,
    /// added to the bias-corrected √v̂, which is a different quantity).
    pub epsilon: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl AdamConfig {
    /// Checks `lr` > 0, 0 ≤ `beta1`, `beta2` < 1 and `epsilon` > 0 (all finite); the error
    /// names the bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("adam.lr", self.lr)?;
        decay("adam.beta1", self.beta1)?;
        decay("adam.beta2", self.beta2)?;
        positive("adam.epsilon", self.epsilon)
    }
}

/// Adam (tf.keras form); its state is the moments m and v (zero at the start) and the step
/// count t.
#[derive(Clone, Debug)]
pub struct Adam<T: Real> {
    cfg: AdamConfig,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    epsilon: T,
    m: Vec<T>,
    v: Vec<T>,
    t: u64,
}

impl<T: Real> Adam<T> {
    /// Adam over `n_params` parameters, with m = v = 0 and t = 0.
    pub fn new(cfg: &AdamConfig, n_params: usize) -> Self {
        Self {
            cfg: cfg.clone(),
            beta1: T::from_f64(cfg.beta1),
            one_minus_beta1: T::from_f64(1.0 - cfg.beta1),
            beta2: T::from_f64(cfg.beta2),
            one_minus_beta2: T::from_f64(1.0 - cfg.beta2),
            epsilon: T::from_f64(cfg.epsilon),
            m: vec![T::ZERO; n_params],
            v: vec![T::ZERO; n_params],
            t: 0,
        }
    }

    /// The number of updates so far.
    pub fn t(&self) -> u64 {
        self.t
    }

    /// The bias-corrected step size lr·√(1−β₂ᵗ)/(1−β₁ᵗ) of update number `t` (from 1),
    /// computed in f64.
    pub fn step_size(&self, t: u64) -> f64 {
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        self.cfg.lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))
    }

    /// The first moment m.
    pub fn m(&self) -> &[T] {
        &self.m
    }

    /// The second moment v.
    pub fn v(&self) -> &[T] {
        &self.v
    }
}

impl<T: Real> Optimizer<T> for Adam<T> {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn update(&mut self, theta: &mut [T], grad: &[T]) {
        check_lengths(self.m.len(), theta, grad);
        self.t += 1;
        let lr_t = T::from_f64(self.step_size(self.t));
        let (b1, c1, b2, c2) = (
            self.beta1,
            self.one_minus_beta1,
            self.beta2,
            self.one_minus_beta2,
        );
        let moments = self.m.iter_mut().zip(&mut self.v);
        for ((th, &g), (m, v)) in theta.iter_mut().zip(grad).zip(moments) {
            *m = b1 * *m + c1 * g;
            *v = b2 * *v + c2 * g * g;
            *th -= lr_t * *m / (v.sqrt() + self.epsilon);
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
        [0.9990000316217766, -1.9990000105408143, 0.49900000158113633],
        [0.9993661299708821, -1.999193519725871, 0.4980678232611518],
        [0.9995028187463699, -1.999751116231287, 0.49782567886614243],
    ];

    #[test]
    fn three_updates_match_hand_values() {
        let cfg = AdamConfig::default();
        check_hand_values(&mut Adam::new(&cfg, 3), &mut Adam::new(&cfg, 3), &EXPECTED);
    }

    /// With a constant gradient g, m = (1−β₁ᵗ)g and v = (1−β₂ᵗ)g², so the bias correction
    /// makes update t move θ by exactly lr·g/(|g| + ε/√(1−β₂ᵗ)), close to lr·sign(g); without
    /// it the first step would be √(1−β₂)/(1−β₁) ≈ 0.32 times that. Checked at t = 1 and
    /// t = 2 to 1e-12 relative (the move is a difference of two numbers near θ).
    #[test]
    fn bias_correction_at_t1_and_t2() {
        let cfg = AdamConfig::default();
        let mut opt = Adam::<f64>::new(&cfg, 3);
        let g = [0.1, -0.3, 2.0];
        let mut theta = THETA0;
        for t in 1..=2 {
            let before = theta;
            opt.update(&mut theta, &g);
            assert_eq!(opt.t(), t);
            let shrink = cfg.epsilon / (1.0 - cfg.beta2.powi(t as i32)).sqrt();
            for i in 0..3 {
                let want = cfg.lr * g[i] / (g[i].abs() + shrink);
                let got = before[i] - theta[i];
                assert!(
                    ((got - want) / want).abs() <= 1e-12,
                    "t={t} [{i}]: {got} vs {want}"
                );
            }
        }
        let s1 = 1e-3 * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
        assert!((opt.step_size(1) - s1).abs() <= 1e-18);
        let s2 = 1e-3 * (1.0f64 - 0.999 * 0.999).sqrt() / (1.0 - 0.9 * 0.9);
        assert!((opt.step_size(2) - s2).abs() <= 1e-18);
    }

    #[test]
    fn moment_buffers_are_not_reallocated() {
        let mut opt = Adam::<f32>::new(&AdamConfig::default(), 3);
        let (pm, pv) = (opt.m().as_ptr(), opt.v().as_ptr());
        let mut theta = [1.0f32, 2.0, 3.0];
        for _ in 0..5 {
            opt.update(&mut theta, &[0.5, -0.5, 1.0]);
        }
        assert_eq!((opt.m().as_ptr(), opt.v().as_ptr()), (pm, pv));
    }
}
