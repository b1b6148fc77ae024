//! The architecture spec of a fully-connected network and its flat parameter layout.
//!
//! One `FcnSpec` value builds the network (its layout and random init here, the engine in
//! [`crate::fcn`]) and, in `basin-prior`, its NNGP kernel.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::real::Real;

/// What is wrong with an [`FcnSpec`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The input or a hidden layer has no units.
    #[error(
        "widths must be positive: input {input_dim} hidden {hidden:?}; give every layer at least \
         one unit"
    )]
    ZeroWidth {
        /// The input dimension.
        input_dim: usize,
        /// The hidden widths.
        hidden: Vec<usize>,
    },
    /// σ_w or σ_b is negative or not finite.
    #[error("{field} = {value}; it must be finite and >= 0")]
    BadScale {
        /// `sigma_w` or `sigma_b`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The network has more parameters than a machine word can count.
    #[error(
        "widths input {input_dim} hidden {hidden:?} give more parameters than can be counted \
         (more than {}); give narrower or fewer hidden layers",
        usize::MAX
    )]
    TooLarge {
        /// The input dimension.
        input_dim: usize,
        /// The hidden widths.
        hidden: Vec<usize>,
    },
}

/// Where one layer's parameters sit in the flat vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// Inputs to the layer.
    pub fan_in: usize,
    /// Outputs of the layer.
    pub fan_out: usize,
    /// Offset of the weight `[fan_out, fan_in]`, row-major (as `torch.nn.Linear`).
    pub w: usize,
    /// Offset of the bias `[fan_out]`, right after the weight.
    pub b: usize,
}

impl Layer {
    /// The weight's range in the flat vector.
    pub fn w_range(&self) -> std::ops::Range<usize> {
        self.w..self.w + self.fan_in * self.fan_out
    }

    /// The bias's range in the flat vector.
    pub fn b_range(&self) -> std::ops::Range<usize> {
        self.b..self.b + self.fan_out
    }
}

/// A fully-connected network with one output logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcnSpec {
    /// Input dimension.
    pub input_dim: usize,
    /// Hidden widths, input to output (default `[40, 40]`, the paper's).
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity (default ReLU).
    #[serde(default)]
    pub activation: Activation,
    /// Weight scale: W ~ N(0, σ_w²/fan_in). Default √2 (the paper's code, He init).
    #[serde(default = "default_sigma_w")]
    pub sigma_w: f64,
    /// Bias scale: b ~ N(0, σ_b²). Default 1 (the paper's code).
    #[serde(default = "default_sigma_b")]
    pub sigma_b: f64,
}

fn default_hidden() -> Vec<usize> {
    vec![40, 40]
}

fn default_sigma_w() -> f64 {
    std::f64::consts::SQRT_2
}

fn default_sigma_b() -> f64 {
    1.0
}

impl FcnSpec {
    /// The paper's network for `input_dim` inputs: two hidden ReLU layers of 40, σ_w = √2, σ_b = 1.
    pub fn paper(input_dim: usize) -> Self {
        Self {
            input_dim,
            hidden: default_hidden(),
            activation: Activation::Relu,
            sigma_w: default_sigma_w(),
            sigma_b: default_sigma_b(),
        }
    }

    /// Checks that every width is positive and the scales are finite and non-negative.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.input_dim == 0 || self.hidden.contains(&0) {
            return Err(SpecError::ZeroWidth {
                input_dim: self.input_dim,
                hidden: self.hidden.clone(),
            });
        }
        for (field, value) in [("sigma_w", self.sigma_w), ("sigma_b", self.sigma_b)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(SpecError::BadScale { field, value });
            }
        }
        if self.checked_n_params().is_none() {
            return Err(SpecError::TooLarge {
                input_dim: self.input_dim,
                hidden: self.hidden.clone(),
            });
        }
        Ok(())
    }

    /// The number of parameters, or `None` where it overflows `usize` (a valid spec never
    /// does: [`FcnSpec::validate`] refuses it).
    pub fn checked_n_params(&self) -> Option<usize> {
        self.widths().windows(2).try_fold(0usize, |total, pair| {
            let layer = pair[0].checked_mul(pair[1])?.checked_add(pair[1])?;
            total.checked_add(layer)
        })
    }

    /// All widths, input to output: `[input_dim, hidden…, 1]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = Vec::with_capacity(self.hidden.len() + 2);
        w.push(self.input_dim);
        w.extend_from_slice(&self.hidden);
        w.push(1);
        w
    }

    /// The layers with their offsets in the flat parameter vector.
    pub fn layers(&self) -> Vec<Layer> {
        let widths = self.widths();
        let mut offset = 0;
        widths
            .windows(2)
            .map(|pair| {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let layer = Layer {
                    fan_in,
                    fan_out,
                    w: offset,
                    b: offset + fan_in * fan_out,
                };
                offset = layer.b + fan_out;
                layer
            })
            .collect()
    }

    /// The number of parameters.
    pub fn n_params(&self) -> usize {
        self.layers().last().map_or(0, |l| l.b + l.fan_out)
    }

    /// The widest layer (the size of per-example activation buffers).
    pub fn max_width(&self) -> usize {
        self.widths().into_iter().max().unwrap_or(1)
    }

    /// Random parameters: W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²), drawn in f64 from ChaCha8
    /// seeded with `seed`, layer by layer (weight row-major, then bias), then rounded to `T`.
    /// The same seed gives the same network in f32 and f64, up to rounding.
    pub fn init<T: Real>(&self, seed: u64) -> Vec<T> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut theta = Vec::with_capacity(self.n_params());
        for layer in self.layers() {
            let w_std = self.sigma_w / (layer.fan_in as f64).sqrt();
            for _ in 0..layer.fan_in * layer.fan_out {
                let z: f64 = StandardNormal.sample(&mut rng);
                theta.push(T::from_f64(w_std * z));
            }
            for _ in 0..layer.fan_out {
                let z: f64 = StandardNormal.sample(&mut rng);
                theta.push(T::from_f64(self.sigma_b * z));
            }
        }
        theta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_the_papers_mnist_net() {
        let spec = FcnSpec::paper(784);
        assert_eq!(spec.n_params(), 33_081);
        let l = spec.layers();
        assert_eq!(
            (l[0].w, l[0].b, l[1].w, l[2].w, l[2].b),
            (0, 31_360, 31_400, 33_040, 33_080)
        );
        assert_eq!(FcnSpec::paper(7).n_params(), 2_001);
    }

    #[test]
    fn a_spec_whose_parameter_count_overflows_is_invalid() {
        let huge = FcnSpec {
            hidden: vec![usize::MAX / 2, 4],
            ..FcnSpec::paper(784)
        };
        assert!(matches!(huge.validate(), Err(SpecError::TooLarge { .. })));
        assert_eq!(huge.checked_n_params(), None);
        assert_eq!(FcnSpec::paper(784).checked_n_params(), Some(33_081));
    }

    #[test]
    fn init_has_the_right_scales_and_is_reproducible() {
        let spec = FcnSpec::paper(784);
        let a: Vec<f64> = spec.init(3);
        assert_eq!(a, spec.init::<f64>(3));
        let b32: Vec<f32> = spec.init(3);
        assert!(a.iter().zip(&b32).all(|(x, y)| (*x as f32) == *y));
        let w1 = &a[spec.layers()[0].w_range()];
        let var = w1.iter().map(|x| x * x).sum::<f64>() / w1.len() as f64;
        // 31,360 draws: the sample variance of N(0, 2/784) is within 2% at 5 sigma.
        assert!((var / (2.0 / 784.0) - 1.0).abs() < 0.04, "{var}");
    }
}
