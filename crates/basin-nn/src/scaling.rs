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
    /// α or 1/α takes a parameter out of the range of its floating-point type.
    #[error(
        "alpha = {alpha:e} over/underflows the weights: {name}{index:?} = {value:.4e} times \
         {factor:e} is {result:e} in {precision}; choose an α nearer 1"
    )]
    OutOfRange {
        /// The factor asked for.
        alpha: f64,
        /// The tensor of the first parameter out of range (`layers.{i}.weight` or `.bias`).
        name: String,
        /// Its index in the tensor.
        index: Vec<usize>,
        /// The parameter before scaling.
        value: f64,
        /// What it is multiplied by: α or 1/α.
        factor: f64,
        /// The result: infinite, or zero from a nonzero value.
        result: f64,
        /// The floating-point type, `f32` or `f64`.
        precision: &'static str,
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
/// layer, if the activation is not ReLU (the only one for which the function is preserved), or
/// if α or 1/α would take a parameter to infinity or a nonzero one to zero in `T`.
pub fn alpha_scale<T: Real>(
    spec: &FcnSpec,
    theta: &mut [T],
    layer: usize,
    alpha: f64,
) -> Result<(), ScaleError> {
    let (up, down) = scaled_ranges(spec, theta.len(), layer, alpha)?;
    let (a, inv) = (T::from_f64(alpha), T::from_f64(1.0 / alpha));
    let factor = |k: usize| {
        if up.contains(&k) {
            (a, alpha)
        } else {
            (inv, 1.0 / alpha)
        }
    };
    for k in up.clone().chain(down.clone()) {
        let (f, f64_factor) = factor(k);
        check_scaled(spec, alpha, k, theta[k].to_f64(), f64_factor, theta[k] * f)?;
    }
    theta[up].iter_mut().for_each(|t| *t *= a);
    theta[down].iter_mut().for_each(|t| *t *= inv);
    Ok(())
}

/// `theta` (f64) α-scaled in f64, as [`alpha_scale`] does, then rounded to `T` (the dtype a
/// model file stores): fails where the rounding takes a scaled parameter to infinity or a
/// nonzero one to zero.
pub fn alpha_scaled_as<T: Real>(
    spec: &FcnSpec,
    theta: &[f64],
    layer: usize,
    alpha: f64,
) -> Result<Vec<T>, ScaleError> {
    let mut wide = theta.to_vec();
    alpha_scale(spec, &mut wide, layer, alpha)?;
    let narrow: Vec<T> = wide.iter().map(|&x| T::from_f64(x)).collect();
    let (up, down) = scaled_ranges(spec, theta.len(), layer, alpha)?;
    for k in up.clone().chain(down) {
        let factor = if up.contains(&k) { alpha } else { 1.0 / alpha };
        let before = T::from_f64(theta[k]).to_f64();
        check_scaled(spec, alpha, k, before, factor, narrow[k])?;
    }
    Ok(narrow)
}

/// The checks of [`alpha_scale`]'s arguments, then the parameter ranges multiplied by α (the
/// layer's weight and bias) and by 1/α (the next layer's weight).
fn scaled_ranges(
    spec: &FcnSpec,
    n_params: usize,
    layer: usize,
    alpha: f64,
) -> Result<(std::ops::Range<usize>, std::ops::Range<usize>), ScaleError> {
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
    if n_params != spec.n_params() {
        return Err(ScaleError::ParamCount {
            given: n_params,
            expected: spec.n_params(),
        });
    }
    let l = layers[layer];
    Ok((l.w..l.b + l.fan_out, layers[layer + 1].w_range()))
}

/// An error where parameter `k`, `value` before scaling, became infinite or (from nonzero)
/// zero as `result` after multiplying by `factor`.
fn check_scaled<T: Real>(
    spec: &FcnSpec,
    alpha: f64,
    k: usize,
    value: f64,
    factor: f64,
    result: T,
) -> Result<(), ScaleError> {
    let r = result.to_f64();
    if r.is_finite() && (r != 0.0 || value == 0.0) {
        return Ok(());
    }
    let (name, index) = crate::safetensors::locate(spec, k);
    Err(ScaleError::OutOfRange {
        alpha,
        name,
        index,
        value,
        factor,
        result: r,
        precision: T::NAME,
    })
}
