//! α-scaling for nets with BatchNorm (the BatchNorm form of Dinh et al. 2017).
//!
//! The FCN's α-scaling (a layer's weight and bias times α, the next layer's weight times 1/α)
//! changes the function of a BatchNorm net: in eval mode BatchNorm is affine,
//! `γ·(x − μ)/σ + β`, and does not commute with the scale. The invariant form multiplies a
//! BatchNorm layer's γ and β by α and the weight of the one conv that reads it (through the
//! activation) by 1/α:
//!
//! `W/α · φ(α·(γ x̂ + β)) = W · φ(γ x̂ + β)` for α > 0,
//!
//! since φ is positively homogeneous (`φ(αx) = αφ(x)`: ReLU and the identity, not tanh or
//! erf). The conv's bias, if any, and the running statistics stay as they are. The function
//! is unchanged in eval mode and in training mode alike (the scaled layer's input and every
//! other layer's activation are unchanged), while flatness measures change: the Hessian with
//! respect to the conv's weight scales by α², with respect to γ and β by 1/α².
//!
//! A BatchNorm layer is scalable only where its output feeds exactly one node, an activation
//! that is positively homogeneous, and that activation feeds exactly one node, a conv: in the
//! ResNets, `layer{i}.{j}.bn1` of Basic blocks and `bn1`, `bn2` of Bottleneck blocks. The
//! stem's `bn1` and every BatchNorm that reaches a residual add are not: their activation (or
//! output) also feeds the add, whose other branch keeps its scale.

use std::ops::Range;

use basin_nn::{Activation, Real};

use crate::graph::{BatchNorm, Conv, Graph, Node, Op};

/// Why α-scaling of a BatchNorm layer was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BnScaleError {
    /// α is not finite and positive.
    #[error("alpha = {0}; it must be finite and positive")]
    BadAlpha(f64),
    /// The network has no BatchNorm layer of that name.
    #[error("no BatchNorm layer is named {name:?}; {}", scalable_hint(.scalable))]
    UnknownBn {
        /// The name asked for.
        name: String,
        /// The scalable BatchNorm layers of the network ([`scalable_bns`]).
        scalable: Vec<String>,
    },
    /// The BatchNorm layer's output does not reach exactly one conv through exactly one
    /// activation, so no single conv can absorb 1/α.
    #[error("BatchNorm {name} cannot be alpha-scaled: {reason}; {}", scalable_hint(.scalable))]
    NotScalable {
        /// The BatchNorm layer asked for.
        name: String,
        /// What in the graph prevents it.
        reason: String,
        /// The scalable BatchNorm layers of the network ([`scalable_bns`]).
        scalable: Vec<String>,
    },
    /// The activation after the BatchNorm layer is not positively homogeneous, so scaling
    /// its input by α does not scale its output by α.
    #[error(
        "BatchNorm {name} feeds {activation}, which is not positively homogeneous: \
         alpha-scaling preserves the function only through relu or linear; {}",
        scalable_hint(.scalable)
    )]
    NotHomogeneous {
        /// The BatchNorm layer asked for.
        name: String,
        /// Its activation.
        activation: Activation,
        /// The scalable BatchNorm layers of the network ([`scalable_bns`]).
        scalable: Vec<String>,
    },
    /// α or 1/α takes a parameter out of the range of its floating-point type.
    #[error(
        "alpha = {alpha:e} over/underflows the parameters: {name}{index:?} = {value:.4e} times \
         {factor:e} is {result:e} in {precision}; choose an α nearer 1"
    )]
    OutOfRange {
        /// The factor asked for.
        alpha: f64,
        /// The tensor of the first parameter out of range (`{bn}.weight`, `{bn}.bias` or the
        /// conv's `.weight`).
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
    /// θ does not fit the graph.
    #[error("{given} parameters for a network of {expected}: give the graph's parameters")]
    ParamCount {
        /// The length of θ.
        given: usize,
        /// The graph's number of parameters ([`Graph::n_params`]).
        expected: usize,
    },
}

/// The sentence listing the scalable BatchNorm layers, for the errors.
fn scalable_hint(scalable: &[String]) -> String {
    if scalable.is_empty() {
        "this network has no scalable BatchNorm layer (one must feed a relu or linear activation \
         that feeds exactly one conv)"
            .into()
    } else {
        format!(
            "the scalable ones in this network are {}",
            scalable.join(", ")
        )
    }
}

/// What α-scaling BatchNorm layer `bn` touches: its γ and β (times α) and the weight of the
/// conv that reads it through the activation (times 1/α).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BnScaling {
    /// The BatchNorm layer's name prefix (`layer1.0.bn1`).
    pub bn: String,
    /// γ's range in θ (`{bn}.weight`).
    pub gamma: Range<usize>,
    /// β's range in θ (`{bn}.bias`).
    pub beta: Range<usize>,
    /// The conv weight's name (`layer1.0.conv2.weight`).
    pub conv_weight: String,
    /// The conv weight's range in θ.
    pub conv_range: Range<usize>,
}

/// The BatchNorm layers of `graph` that [`alpha_scale_bn`] accepts, by name, in θ's order.
pub fn scalable_bns(graph: &Graph) -> Vec<String> {
    graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, node)| match node.op {
            Op::BatchNorm(bn) if target(graph, i).is_ok() => bn_name(graph, bn).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// The parameters that α-scaling BatchNorm layer `bn_name` multiplies, or why it is refused
/// (an unknown name, a layer that does not feed one conv through one activation, or an
/// activation that is not positively homogeneous).
pub fn bn_scaling(graph: &Graph, bn_name: &str) -> Result<BnScaling, BnScaleError> {
    let found = graph
        .nodes
        .iter()
        .enumerate()
        .find_map(|(i, node)| match node.op {
            Op::BatchNorm(bn) if bn_name_is(graph, bn, bn_name) => Some((i, bn)),
            _ => None,
        });
    let Some((node, bn)) = found else {
        return Err(BnScaleError::UnknownBn {
            name: bn_name.into(),
            scalable: scalable_bns(graph),
        });
    };
    let conv = target(graph, node).map_err(|why| match why {
        Refusal::Structure(reason) => BnScaleError::NotScalable {
            name: bn_name.into(),
            reason,
            scalable: scalable_bns(graph),
        },
        Refusal::Activation(activation) => BnScaleError::NotHomogeneous {
            name: bn_name.into(),
            activation,
            scalable: scalable_bns(graph),
        },
    })?;
    Ok(BnScaling {
        bn: bn_name.into(),
        gamma: bn.gamma..bn.gamma + bn.c,
        beta: bn.beta..bn.beta + bn.c,
        conv_weight: weight_name(graph, conv),
        conv_range: conv.w..conv.w + conv.cout * conv.fan_in(),
    })
}

/// α-scales `theta` in place at BatchNorm layer `bn_name` (a name of [`scalable_bns`]): its γ
/// and β times α, the weight of the conv that reads it through the activation times 1/α. The
/// network's function is unchanged.
///
/// Fails, leaving `theta` untouched, if α is not finite and positive, if the layer is unknown
/// or not scalable (the error lists the scalable ones), if `theta` does not fit the graph, or
/// if α or 1/α would take a parameter to infinity or a nonzero one to zero in `T`.
pub fn alpha_scale_bn<T: Real>(
    graph: &Graph,
    theta: &mut [T],
    bn_name: &str,
    alpha: f64,
) -> Result<(), BnScaleError> {
    let s = checked_scaling(graph, theta.len(), bn_name, alpha)?;
    let (a, inv) = (T::from_f64(alpha), T::from_f64(1.0 / alpha));
    for (range, f, factor) in [
        (&s.gamma, a, alpha),
        (&s.beta, a, alpha),
        (&s.conv_range, inv, 1.0 / alpha),
    ] {
        for k in range.clone() {
            check_scaled(graph, alpha, k, theta[k].to_f64(), factor, theta[k] * f)?;
        }
    }
    theta[s.gamma].iter_mut().for_each(|t| *t *= a);
    theta[s.beta].iter_mut().for_each(|t| *t *= a);
    theta[s.conv_range].iter_mut().for_each(|t| *t *= inv);
    Ok(())
}

/// `theta` (f64) α-scaled in f64 at BatchNorm layer `bn_name`, as [`alpha_scale_bn`] does,
/// then rounded to `T` (the dtype a model file stores): fails as [`alpha_scale_bn`] does, and
/// where the rounding takes a scaled parameter to infinity or a nonzero one to zero.
pub fn alpha_scaled_bn_as<T: Real>(
    graph: &Graph,
    theta: &[f64],
    bn_name: &str,
    alpha: f64,
) -> Result<Vec<T>, BnScaleError> {
    let mut wide = theta.to_vec();
    alpha_scale_bn(graph, &mut wide, bn_name, alpha)?;
    let narrow: Vec<T> = wide.iter().map(|&x| T::from_f64(x)).collect();
    let s = checked_scaling(graph, theta.len(), bn_name, alpha)?;
    for (range, factor) in [
        (&s.gamma, alpha),
        (&s.beta, alpha),
        (&s.conv_range, 1.0 / alpha),
    ] {
        for k in range.clone() {
            let before = T::from_f64(theta[k]).to_f64();
            check_scaled(graph, alpha, k, before, factor, narrow[k])?;
        }
    }
    Ok(narrow)
}

/// The checks of [`alpha_scale_bn`]'s arguments, then what it scales, every range inside θ.
fn checked_scaling(
    graph: &Graph,
    n_params: usize,
    bn_name: &str,
    alpha: f64,
) -> Result<BnScaling, BnScaleError> {
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(BnScaleError::BadAlpha(alpha));
    }
    let s = bn_scaling(graph, bn_name)?;
    let expected = graph.n_params();
    if n_params != expected
        || [&s.gamma, &s.beta, &s.conv_range]
            .iter()
            .any(|r| r.end > n_params)
    {
        return Err(BnScaleError::ParamCount {
            given: n_params,
            expected,
        });
    }
    Ok(s)
}

/// Why a BatchNorm layer is not scalable.
enum Refusal {
    /// The graph around it: what its output or its activation feeds.
    Structure(String),
    /// Its activation is not positively homogeneous.
    Activation(Activation),
}

/// The conv that absorbs 1/α for the BatchNorm layer at node `i`.
fn target(graph: &Graph, i: usize) -> Result<Conv, Refusal> {
    let only = |node: usize, what: &str| -> Result<(usize, Node), Refusal> {
        match readers(graph, node).as_slice() {
            &[j] => Ok((j, graph.nodes[j])),
            [] => Err(Refusal::Structure(format!("{what} is read by no node"))),
            many => Err(Refusal::Structure(format!(
                "{what} is read by {} nodes ({}), so no single conv can absorb 1/α",
                many.len(),
                many.iter()
                    .map(|&j| describe(graph, j))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    };
    let (a, act_node) = only(i, "its output")?;
    let Op::Act(act) = act_node.op else {
        let why = if act_node.op == Op::Add {
            " (the add's other branch keeps its scale)"
        } else {
            ""
        };
        return Err(Refusal::Structure(format!(
            "its output feeds {}, not an activation{why}",
            describe(graph, a)
        )));
    };
    let (c, conv_node) = only(a, "its activation")?;
    let Op::Conv(conv) = conv_node.op else {
        return Err(Refusal::Structure(format!(
            "its activation feeds {}, not a conv that can absorb 1/α",
            describe(graph, c)
        )));
    };
    if !is_homogeneous(act) {
        return Err(Refusal::Activation(act));
    }
    Ok(conv)
}

/// True for the positively homogeneous activations, `φ(αx) = αφ(x)` for α > 0.
fn is_homogeneous(act: Activation) -> bool {
    matches!(act, Activation::Relu | Activation::Linear)
}

/// The nodes that read node `i`'s output, in order, each once.
fn readers(graph: &Graph, i: usize) -> Vec<usize> {
    graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| reads(n).contains(&i))
        .map(|(j, _)| j)
        .collect()
}

/// The inputs a node actually reads: none for the input, both for an add, the first for the
/// rest.
fn reads(node: &Node) -> &[usize] {
    match node.op {
        Op::Input => &[],
        Op::Add => &node.inputs,
        _ => &node.inputs[..1],
    }
}

/// Node `j` in words, for the errors.
fn describe(graph: &Graph, j: usize) -> String {
    match graph.nodes[j].op {
        Op::Input => "the input".into(),
        Op::Conv(conv) => format!("conv {}", weight_name(graph, conv)),
        Op::BatchNorm(bn) => format!("BatchNorm {}", bn_name(graph, bn).unwrap_or("?")),
        Op::Act(act) => format!("a {act} activation"),
        Op::Add => "a residual add".into(),
        Op::Pool => "the average pooling".into(),
    }
}

/// The BatchNorm layer's name prefix.
fn bn_name(graph: &Graph, bn: BatchNorm) -> Option<&str> {
    graph.bns.get(bn.state).map(|s| s.name.as_str())
}

fn bn_name_is(graph: &Graph, bn: BatchNorm, name: &str) -> bool {
    bn_name(graph, bn) == Some(name)
}

/// The name of a conv's weight tensor, or its offset where no tensor starts there.
fn weight_name(graph: &Graph, conv: Conv) -> String {
    graph
        .params
        .iter()
        .find(|p| p.offset == conv.w)
        .map_or_else(|| format!("weight at θ[{}]", conv.w), |p| p.name.clone())
}

/// An error where parameter `k`, `value` before scaling, became infinite or (from nonzero)
/// zero as `result` after multiplying by `factor`.
fn check_scaled<T: Real>(
    graph: &Graph,
    alpha: f64,
    k: usize,
    value: f64,
    factor: f64,
    result: T,
) -> Result<(), BnScaleError> {
    let r = result.to_f64();
    if r.is_finite() && (r != 0.0 || value == 0.0) {
        return Ok(());
    }
    let (name, index) = locate(graph, k);
    Err(BnScaleError::OutOfRange {
        alpha,
        name,
        index,
        value,
        factor,
        result: r,
        precision: T::NAME,
    })
}

/// The tensor holding θ[k] and the index in it (row-major).
fn locate(graph: &Graph, k: usize) -> (String, Vec<usize>) {
    let Some(p) = graph.params.iter().find(|p| p.range().contains(&k)) else {
        return (format!("θ[{k}]"), Vec::new());
    };
    let mut rest = k - p.offset;
    let mut index = vec![0; p.shape.len()];
    for (d, &n) in p.shape.iter().enumerate().rev() {
        index[d] = rest % n.max(1);
        rest /= n.max(1);
    }
    (p.name.clone(), index)
}
