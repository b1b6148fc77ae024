//! Helpers shared by the conv engine's tests: reproducible values, small ResNets with
//! non-trivial BatchNorm state, and vector arithmetic.
#![allow(dead_code)]

use basin_conv::{BlockKind, BnState, Graph, ResNetSpec};
use basin_nn::Activation;

/// Reproducible values in [−½, ½).
pub fn pseudo(n: usize, salt: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * 0.754_877_666_2 + salt).fract() - 0.5)
        .collect()
}

/// A small ResNet on 8×8 images, base width 4, with `act`, and running statistics away from
/// 0/1 so that eval-mode BatchNorm is not the identity.
pub fn tiny(
    block: BlockKind,
    blocks: Vec<usize>,
    act: Activation,
    channels: usize,
) -> (Graph, BnState) {
    let mut spec = ResNetSpec::general(block, blocks, 4, channels);
    spec.activation = act;
    let graph = Graph::resnet(&spec, 8, 8);
    let mut state = BnState::fresh(&graph);
    for (k, layer) in state.layers.iter_mut().enumerate() {
        let m = pseudo(layer.mean.len(), k as f64 * 0.37);
        let v = pseudo(layer.var.len(), k as f64 * 0.11 + 0.5);
        layer.mean = m.iter().map(|x| 0.2 * x).collect();
        layer.var = v.iter().map(|x| 1.0 + x).collect();
    }
    (graph, state)
}

/// θ from the init, with BatchNorm's γ and β moved off 1 and 0.
pub fn theta_of(graph: &Graph, seed: u64) -> Vec<f64> {
    let mut theta: Vec<f64> = graph.init(seed);
    let jitter = pseudo(theta.len(), 0.29);
    for p in &graph.params {
        if p.name.contains("bn") || p.name.contains("shortcut.1") {
            for i in p.range() {
                theta[i] += 0.3 * jitter[i];
            }
        }
    }
    theta
}

/// The inner product.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
