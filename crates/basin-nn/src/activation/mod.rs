//! The hidden nonlinearity, defined once: its value φ, its derivatives φ′ and φ″ (for the
//! engine's gradient and Hessian-vector product), and its NNGP map (the step of the kernel
//! recursion through one hidden layer, [`NngpMap`]), as neural-tangents' `stax` gives a
//! layer's `apply_fn` and `kernel_fn` from one definition.

mod nngp;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::real::Real;

pub use nngp::NngpMap;

/// The nonlinearity of the hidden layers (the output layer is linear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x), the paper's choice. Its derivative at 0 is taken as 0 (JAX and PyTorch). Its
    /// NNGP map is the arc-cosine kernel (Cho & Saul 2009).
    #[default]
    Relu,
    /// tanh x: smooth, for derivative checks. Its NNGP map has no closed form (the Monte
    /// Carlo kernel computes it).
    Tanh,
    /// erf x: smooth, with Williams' (1997) arcsine NNGP map.
    Erf,
    /// The identity: a deep linear network (its NNGP map is affine).
    Linear,
}

/// Every activation, in the order of the enum.
pub const ALL: [Activation; 4] = [
    Activation::Relu,
    Activation::Tanh,
    Activation::Erf,
    Activation::Linear,
];

impl Activation {
    /// φ(x).
    #[inline(always)]
    pub fn apply<T: Real>(self, x: T) -> T {
        match self {
            Self::Relu => x.max(T::ZERO),
            Self::Tanh => x.tanh(),
            Self::Erf => x.erf(),
            Self::Linear => x,
        }
    }

    /// φ'(x).
    #[inline(always)]
    pub fn derivative<T: Real>(self, x: T) -> T {
        match self {
            Self::Relu => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Self::Tanh => {
                let t = x.tanh();
                T::ONE - t * t
            }
            Self::Erf => T::from_f64(std::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp(),
            Self::Linear => T::ONE,
        }
    }

    /// φ''(x) (0 for ReLU away from its kink, where it is taken as 0 too).
    #[inline(always)]
    pub fn second_derivative<T: Real>(self, x: T) -> T {
        match self {
            Self::Relu | Self::Linear => T::ZERO,
            Self::Tanh => {
                let t = x.tanh();
                -(t + t) * (T::ONE - t * t)
            }
            Self::Erf => {
                -(x + x) * T::from_f64(std::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp()
            }
        }
    }

    /// True when φ'' is zero everywhere it is defined (the Hessian pass can skip that term).
    pub fn is_piecewise_linear(self) -> bool {
        matches!(self, Self::Relu | Self::Linear)
    }

    /// True when the NNGP map has a closed form (all but tanh).
    pub fn has_closed_form_kernel(self) -> bool {
        self != Self::Tanh
    }

    /// The NNGP map of a hidden layer of this activation followed by a linear layer of scales
    /// σ_w, σ_b; `None` where it has no closed form (tanh).
    pub fn nngp(self, sigma_w: f64, sigma_b: f64) -> Option<NngpMap> {
        self.has_closed_form_kernel()
            .then(|| NngpMap::new(self, sigma_w, sigma_b))
    }

    /// The name used in specs, flags and safetensors metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::Tanh => "tanh",
            Self::Erf => "erf",
            Self::Linear => "linear",
        }
    }
}

/// Runs `$body` with `$act` rebound to the constant of its variant, so that each elementwise
/// loop over a layer is compiled once per activation with the `match` outside it (a match
/// inside the loop keeps it scalar).
macro_rules! per_activation {
    ($act:ident, $body:block) => {
        match $act {
            $crate::activation::Activation::Relu => {
                let $act = $crate::activation::Activation::Relu;
                $body
            }
            $crate::activation::Activation::Tanh => {
                let $act = $crate::activation::Activation::Tanh;
                $body
            }
            $crate::activation::Activation::Erf => {
                let $act = $crate::activation::Activation::Erf;
                $body
            }
            $crate::activation::Activation::Linear => {
                let $act = $crate::activation::Activation::Linear;
                $body
            }
        }
    };
}
pub(crate) use per_activation;

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an activation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown activation {0:?}; expected relu, tanh, erf or linear")]
pub struct UnknownActivation(pub String);

impl FromStr for Activation {
    type Err = UnknownActivation;

    fn from_str(s: &str) -> Result<Self, UnknownActivation> {
        ALL.into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownActivation(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_derivatives_match_closed_forms() {
        let x = 0.3f64;
        assert_eq!(Activation::Relu.derivative(-1.0f64), 0.0);
        assert_eq!(Activation::Relu.derivative(0.0f64), 0.0);
        let t = x.tanh();
        assert!((Activation::Tanh.second_derivative(x) + 2.0 * t * (1.0 - t * t)).abs() < 1e-15);
        let h = 1e-6;
        let fd = (Activation::Erf.apply(x + h) - Activation::Erf.apply(x - h)) / (2.0 * h);
        assert!((fd - Activation::Erf.derivative(x)).abs() < 1e-9);
        assert_eq!(
            (
                Activation::Linear.apply(x),
                Activation::Linear.derivative(x)
            ),
            (x, 1.0)
        );
    }

    #[test]
    fn names_round_trip() {
        for a in ALL {
            assert_eq!(a.to_string().parse::<Activation>(), Ok(a));
        }
        let err = "sigmoid".parse::<Activation>().unwrap_err().to_string();
        assert!(err.contains("expected"), "{err}");
    }
}
