//! The activation itself: its value φ and its derivatives φ′ and φ″, its name in specs and flags.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::real::Real;

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
