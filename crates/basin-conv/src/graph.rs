//! The network as a graph of operations in topological order, and its flat parameter layout.
//!
//! A [`Graph`] is a list of [`Node`]s; each reads earlier nodes and produces one activation of
//! shape `(C, H, W)` per example. The parameters are named tensors ([`ParamTensor`]) packed
//! into one flat vector in the order of PyTorch's `model.parameters()`: for the ResNets,
//! `conv1.weight`, `bn1.weight`, `bn1.bias`, then per block its convs and BatchNorms, the
//! shortcut, and `linear.weight`, `linear.bias`. BatchNorm's running statistics are state, not
//! parameters ([`crate::BnState`]).

use basin_nn::{Activation, FcnSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::spec::{BlockKind, ResNetSpec};

/// The shape of one example's activation: channels, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Shape {
    /// `C·H·W`.
    pub fn len(self) -> usize {
        self.c * self.h * self.w
    }

    /// True when the shape holds nothing.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// `H·W`.
    pub fn spatial(self) -> usize {
        self.h * self.w
    }
}

/// A 2-d convolution (cross-correlation, as PyTorch's `Conv2d`): weight `[out, in, k, k]` at
/// `w`, an optional bias `[out]` at `b`. A linear layer is a 1×1 conv on a 1×1 input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size (square).
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Offset of the weight in θ.
    pub w: usize,
    /// Offset of the bias in θ, if there is one.
    pub b: Option<usize>,
}

impl Conv {
    /// `cin · k · k`: the weight's fan-in and the rows of the unfolded input.
    pub fn fan_in(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// The output shape for input `s`.
    pub fn out_shape(&self, s: Shape) -> Shape {
        Shape {
            c: self.cout,
            h: (s.h + 2 * self.pad - self.k) / self.stride + 1,
            w: (s.w + 2 * self.pad - self.k) / self.stride + 1,
        }
    }

    /// True when the conv reads its input as it is (1×1, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }
}

/// BatchNorm over the channels: scale γ at `gamma`, shift β at `beta` (both `[c]`), and the
/// running statistics in slot `state` of the [`crate::BnState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchNorm {
    /// Channels.
    pub c: usize,
    /// Offset of γ in θ.
    pub gamma: usize,
    /// Offset of β in θ.
    pub beta: usize,
    /// The index of its running statistics.
    pub state: usize,
}

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// The input image (node 0).
    Input,
    /// A convolution or linear layer.
    Conv(Conv),
    /// BatchNorm.
    BatchNorm(BatchNorm),
    /// The elementwise nonlinearity.
    Act(Activation),
    /// The sum of two nodes of the same shape (the residual connection).
    Add,
    /// The mean over the spatial positions: `(C, H, W)` to `(C, 1, 1)`.
    Pool,
}

/// A node: its operation, the nodes it reads, and its output shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// The nodes read (the second only for [`Op::Add`]).
    pub inputs: [usize; 2],
    /// The output shape per example.
    pub shape: Shape,
}

/// What a parameter tensor is, which sets its init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A conv or linear weight with this fan-in: N(0, σ_w²/fan_in).
    Weight {
        /// `in · k · k`.
        fan_in: usize,
    },
    /// A conv or linear bias: N(0, σ_b²).
    Bias,
    /// BatchNorm's γ: 1.
    BnScale,
    /// BatchNorm's β: 0.
    BnShift,
}

/// A named tensor of θ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamTensor {
    /// The PyTorch `state_dict` name.
    pub name: String,
    /// The PyTorch shape.
    pub shape: Vec<usize>,
    /// The offset in θ.
    pub offset: usize,
    /// What it is.
    pub kind: ParamKind,
}

impl ParamTensor {
    /// The number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its range in θ.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// A BatchNorm layer's place in the `state_dict`: its name prefix (`bn1`, `layer1.0.bn2`,
/// `layer2.0.shortcut.1`) and channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BnSlot {
    /// The name prefix.
    pub name: String,
    /// Channels.
    pub c: usize,
}

/// A network: nodes in topological order (the last one is the `(1, 1, 1)` logit), the named
/// parameter tensors in θ's order, and the BatchNorm layers' slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// The nodes; node 0 is the input.
    pub nodes: Vec<Node>,
    /// The parameter tensors, in θ's order.
    pub params: Vec<ParamTensor>,
    /// The BatchNorm layers, by state index.
    pub bns: Vec<BnSlot>,
    /// σ_w of the init.
    pub sigma_w: f64,
    /// σ_b of the init.
    pub sigma_b: f64,
}

impl Graph {
    /// The length of θ.
    pub fn n_params(&self) -> usize {
        self.params.last().map_or(0, |p| p.offset + p.len())
    }

    /// The input shape per example.
    pub fn input_shape(&self) -> Shape {
        self.nodes[0].shape
    }

    /// The parameter tensor named `name`.
    pub fn param(&self, name: &str) -> Option<&ParamTensor> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Random parameters as the paper's `he_init`: weights N(0, σ_w²/fan_in), biases
    /// N(0, σ_b²), BatchNorm γ = 1 and β = 0; drawn in f64 from ChaCha8 seeded with `seed`,
    /// tensor by tensor in θ's order, then rounded to `T`.
    pub fn init<T: basin_nn::Real>(&self, seed: u64) -> Vec<T> {
        let mut theta = vec![T::ZERO; self.n_params()];
        self.init_into(seed, &mut theta);
        theta
    }

    /// [`Self::init`] into `theta` (of length [`Self::n_params`]), without allocating.
    pub fn init_into<T: basin_nn::Real>(&self, seed: u64, theta: &mut [T]) {
        assert_eq!(theta.len(), self.n_params(), "θ of the wrong length");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for p in &self.params {
            let values = &mut theta[p.range()];
            let std = match p.kind {
                ParamKind::Weight { fan_in } => self.sigma_w / (fan_in as f64).sqrt(),
                ParamKind::Bias => self.sigma_b,
                ParamKind::BnScale => {
                    values.fill(T::ONE);
                    continue;
                }
                ParamKind::BnShift => {
                    values.fill(T::ZERO);
                    continue;
                }
            };
            for v in values {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v = T::from_f64(std * z);
            }
        }
    }

    /// The node the readout (the last node, a linear layer) reads: the penultimate features,
    /// whose Monte Carlo average over random inits gives the empirical NNGP kernel.
    pub fn feature_node(&self) -> usize {
        self.nodes.last().map_or(0, |n| n.inputs[0])
    }

    /// The graph of a ResNet on inputs of shape `(in_channels, h, w)`.
    pub fn resnet(spec: &ResNetSpec, h: usize, w: usize) -> Self {
        let mut b = Builder::new(
            Shape {
                c: spec.in_channels,
                h,
                w,
            },
            spec.sigma_w,
            spec.sigma_b,
        );
        let act = spec.activation;
        let x = b.conv("conv1", 0, spec.base_width, 3, 1, false);
        let x = b.bn("bn1", x);
        let mut x = b.act(act, x);
        for (stage, &count) in spec.blocks.iter().enumerate() {
            for j in 0..count {
                let stride = if stage > 0 && j == 0 { 2 } else { 1 };
                let prefix = format!("layer{}.{j}", stage + 1);
                x = b.block(spec, &prefix, x, spec.planes(stage), stride);
            }
        }
        let x = b.pool(x);
        b.linear("linear", x, 1);
        b.finish()
    }

    /// The graph of a fully-connected net as 1×1 convs with biases on a `(dim, 1, 1)` input,
    /// with the FCN's parameter layout (`layers.{i}.weight` `[out, in]`, `layers.{i}.bias`).
    pub fn fcn(spec: &FcnSpec) -> Self {
        let mut b = Builder::new(
            Shape {
                c: spec.input_dim,
                h: 1,
                w: 1,
            },
            spec.sigma_w,
            spec.sigma_b,
        );
        let widths = spec.widths();
        let mut x = 0;
        for (i, &out) in widths[1..].iter().enumerate() {
            x = b.linear(&format!("layers.{i}"), x, out);
            if i + 2 < widths.len() {
                x = b.act(spec.activation, x);
            }
        }
        b.finish()
    }
}

/// Builds a graph node by node, laying out the parameters as it goes.
struct Builder {
    graph: Graph,
}

impl Builder {
    fn new(input: Shape, sigma_w: f64, sigma_b: f64) -> Self {
        Self {
            graph: Graph {
                nodes: vec![Node {
                    op: Op::Input,
                    inputs: [0, 0],
                    shape: input,
                }],
                params: Vec::new(),
                bns: Vec::new(),
                sigma_w,
                sigma_b,
            },
        }
    }

    fn shape(&self, node: usize) -> Shape {
        self.graph.nodes[node].shape
    }

    fn push(&mut self, op: Op, inputs: [usize; 2], shape: Shape) -> usize {
        self.graph.nodes.push(Node { op, inputs, shape });
        self.graph.nodes.len() - 1
    }

    fn param(&mut self, name: String, shape: Vec<usize>, kind: ParamKind) -> usize {
        let offset = self.graph.n_params();
        self.graph.params.push(ParamTensor {
            name,
            shape,
            offset,
            kind,
        });
        offset
    }

    /// A conv `k×k` with padding `k/2` and no bias, as every ResNet conv.
    fn conv(
        &mut self,
        name: &str,
        x: usize,
        cout: usize,
        k: usize,
        stride: usize,
        bias: bool,
    ) -> usize {
        let cin = self.shape(x).c;
        let w = self.param(
            format!("{name}.weight"),
            vec![cout, cin, k, k],
            ParamKind::Weight {
                fan_in: cin * k * k,
            },
        );
        let b = bias.then(|| self.param(format!("{name}.bias"), vec![cout], ParamKind::Bias));
        let conv = Conv {
            cin,
            cout,
            k,
            stride,
            pad: k / 2,
            w,
            b,
        };
        let shape = conv.out_shape(self.shape(x));
        self.push(Op::Conv(conv), [x, x], shape)
    }

    /// A linear layer `[out, in]` with bias on a `(in, 1, 1)` node.
    fn linear(&mut self, name: &str, x: usize, out: usize) -> usize {
        let cin = self.shape(x).c;
        let w = self.param(
            format!("{name}.weight"),
            vec![out, cin],
            ParamKind::Weight { fan_in: cin },
        );
        let b = Some(self.param(format!("{name}.bias"), vec![out], ParamKind::Bias));
        let conv = Conv {
            cin,
            cout: out,
            k: 1,
            stride: 1,
            pad: 0,
            w,
            b,
        };
        let shape = conv.out_shape(self.shape(x));
        self.push(Op::Conv(conv), [x, x], shape)
    }

    fn bn(&mut self, name: &str, x: usize) -> usize {
        let c = self.shape(x).c;
        let gamma = self.param(format!("{name}.weight"), vec![c], ParamKind::BnScale);
        let beta = self.param(format!("{name}.bias"), vec![c], ParamKind::BnShift);
        let state = self.graph.bns.len();
        self.graph.bns.push(BnSlot {
            name: name.to_string(),
            c,
        });
        let op = Op::BatchNorm(BatchNorm {
            c,
            gamma,
            beta,
            state,
        });
        let shape = self.shape(x);
        self.push(op, [x, x], shape)
    }

    fn act(&mut self, act: Activation, x: usize) -> usize {
        let shape = self.shape(x);
        self.push(Op::Act(act), [x, x], shape)
    }

    fn add(&mut self, a: usize, b: usize) -> usize {
        let shape = self.shape(a);
        self.push(Op::Add, [a, b], shape)
    }

    fn pool(&mut self, x: usize) -> usize {
        let shape = Shape {
            c: self.shape(x).c,
            h: 1,
            w: 1,
        };
        self.push(Op::Pool, [x, x], shape)
    }

    /// One residual block, in pytorch-cifar's module order (convs and BatchNorms, then the
    /// shortcut).
    fn block(
        &mut self,
        spec: &ResNetSpec,
        prefix: &str,
        x: usize,
        planes: usize,
        stride: usize,
    ) -> usize {
        let act = spec.activation;
        let out_c = planes * spec.block.expansion();
        let y = match spec.block {
            BlockKind::Basic => {
                let y = self.conv(&format!("{prefix}.conv1"), x, planes, 3, stride, false);
                let y = self.bn(&format!("{prefix}.bn1"), y);
                let y = self.act(act, y);
                let y = self.conv(&format!("{prefix}.conv2"), y, planes, 3, 1, false);
                self.bn(&format!("{prefix}.bn2"), y)
            }
            BlockKind::Bottleneck => {
                let y = self.conv(&format!("{prefix}.conv1"), x, planes, 1, 1, false);
                let y = self.bn(&format!("{prefix}.bn1"), y);
                let y = self.act(act, y);
                let y = self.conv(&format!("{prefix}.conv2"), y, planes, 3, stride, false);
                let y = self.bn(&format!("{prefix}.bn2"), y);
                let y = self.act(act, y);
                let y = self.conv(&format!("{prefix}.conv3"), y, out_c, 1, 1, false);
                self.bn(&format!("{prefix}.bn3"), y)
            }
        };
        let short = if stride != 1 || self.shape(x).c != out_c {
            let s = self.conv(&format!("{prefix}.shortcut.0"), x, out_c, 1, stride, false);
            self.bn(&format!("{prefix}.shortcut.1"), s)
        } else {
            x
        };
        let sum = self.add(y, short);
        self.act(act, sum)
    }

    fn finish(self) -> Graph {
        self.graph
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_has_pytorchs_parameter_count_and_names() {
        let spec = ResNetSpec::preset("resnet18", 3).unwrap();
        let g = Graph::resnet(&spec, 32, 32);
        // pytorch-cifar's ResNet18() has 11,173,962 parameters, 5,130 of them in its 10-class
        // linear layer; with one logit that layer has 513.
        assert_eq!(g.n_params(), 11_173_962 - 5_130 + 513);
        assert_eq!(g.params[0].name, "conv1.weight");
        assert_eq!(g.params[0].shape, [64, 3, 3, 3]);
        assert!(g.param("layer2.0.shortcut.0.weight").is_some());
        assert!(g.param("layer1.0.shortcut.0.weight").is_none());
        assert_eq!(g.param("linear.weight").unwrap().shape, [1, 512]);
        assert_eq!(g.nodes.last().unwrap().shape, Shape { c: 1, h: 1, w: 1 });
    }

    #[test]
    fn resnet50_has_pytorchs_parameter_count() {
        let spec = ResNetSpec::preset("resnet50", 3).unwrap();
        let g = Graph::resnet(&spec, 32, 32);
        // torchvision's ResNet-50 has 23,508,032 parameters without its fc layer; the cifar
        // stem (3×3, 64) replaces the 7×7 one (9,408 → 1,728), and linear is 2048 → 1.
        assert_eq!(g.n_params(), 23_508_032 - 9_408 + 1_728 + 2_049);
        assert_eq!(g.bns.len(), 53);
    }

    #[test]
    fn every_preset_has_the_parameter_count_docs_conv_md_gives() {
        for (name, count) in [
            ("resnet34", 21_277_505),
            ("resnet101", 42_494_529),
            ("resnet152", 58_138_177),
        ] {
            let spec = ResNetSpec::preset(name, 3).unwrap();
            assert_eq!(Graph::resnet(&spec, 32, 32).n_params(), count, "{name}");
        }
        let small: crate::ArchName = "basic:1,1:8".parse().unwrap();
        assert_eq!(
            Graph::resnet(&small.with_channels(1), 28, 28).n_params(),
            4_969
        );
    }

    #[test]
    fn fcn_layout_matches_the_fcn_engines() {
        let spec = FcnSpec::paper(784);
        let g = Graph::fcn(&spec);
        assert_eq!(g.n_params(), spec.n_params());
        for (p, l) in g.params.chunks(2).zip(spec.layers()) {
            assert_eq!(p[0].range(), l.w_range());
            assert_eq!(p[1].range(), l.b_range());
        }
        let a: Vec<f64> = g.init(7);
        assert_eq!(a, spec.init::<f64>(7));
    }
}
