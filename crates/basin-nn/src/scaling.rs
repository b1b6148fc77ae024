//! α-scaling (Dinh et al. 2017): multiply layer `l`'s weight and bias by α and layer `l+1`'s
//! weight by 1/α. For a ReLU network and α > 0 the function is unchanged (ReLU is positively
//! homogeneous), while flatness measures change.

use crate::activation::Activation;
use crate::real::Real;
use crate::spec::FcnSpec;

/// Why α-scaling refused a network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScaleError {
    /// α is not finite and positive.
    #[error("alpha = {0}; it must be finite and positive")]
    BadAlpha(f64),
    /// The network's activation is not positively homogeneous.
    #[error("alpha-scaling preserves the function only for ReLU networks; this one uses {0}")]
    NotRelu(Activation),
    /// The layer is the readout, which has no next layer to divide.
    #[error(
        "layer {layer} has no next layer; choose 0..={} (the network has {n_layers} layers)",
        n_layers.saturating_sub(2)
    )]
    LastLayer {
        /// The layer asked for.
        layer: usize,
        /// The number of linear layers.
        n_layers: usize,
    },
    /// θ does not fit the spec.
    #[error("{given} parameters for a network of {expected}: give the spec's parameters")]
    ParamCount {
        /// The length of θ.
        given: usize,
        /// The spec's number of parameters.
        expected: usize,
    },
}

/// Rescales `theta` in place at hidden layer `layer` (0-based; the last layer has no next one).
///
/// Fails, leaving `theta` untouched, if α is not finite and positive, if `layer` has no next
/// layer, or if the activation is not ReLU (the only one for which the function is preserved).
pub fn alpha_scale<T: Real>(
    spec: &FcnSpec,
    theta: &mut [T],
    layer: usize,
    alpha: f64,
) -> Result<(), ScaleError> {
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(ScaleError::BadAlpha(alpha));
    }
    if spec.activation != Activation::Relu {
        return Err(ScaleError::NotRelu(spec.activation));
    }
    let layers = spec.layers();
    if layer + 1 >= layers.len() {
        return Err(ScaleError::LastLayer {
            layer,
            n_layers: layers.len(),
        });
    }
    if theta.len() != spec.n_params() {
        return Err(ScaleError::ParamCount {
            given: theta.len(),
            expected: spec.n_params(),
        });
    }
    let (a, inv) = (T::from_f64(alpha), T::from_f64(1.0 / alpha));
    let l = layers[layer];
    theta[l.w..l.b + l.fan_out].iter_mut().for_each(|t| *t *= a);
    theta[layers[layer + 1].w_range()]
        .iter_mut()
        .for_each(|t| *t *= inv);
    Ok(())
}
