//! `basin-conv` owns basin's conv nets: the pytorch-cifar ResNet family ([`ResNetSpec`],
//! presets `resnet18` … `resnet152` and general `KIND:BLOCKS:WIDTH` specs), the network as a
//! graph of operations with PyTorch's parameter names and order ([`Graph`]), BatchNorm's
//! running statistics as state ([`BnState`]), and the engine: forward pass, exact gradient by
//! backpropagation and exact Hessian-vector product by Pearlmutter's R-operator through conv,
//! BatchNorm, the activation, residual adds and average pooling. [`ConvObjective`] puts it
//! behind basin's `Objective` trait, so that training, the optimizers and every flatness
//! measure run on conv nets unchanged. The engine is generic over `f32` and `f64` and runs on
//! the CPU, its matrix products in faer.

pub mod conv;
pub mod engine;
pub mod features;
pub mod graph;
pub mod model;
pub mod network;
pub mod objective;
pub mod scaling;
pub mod spec;
pub mod state;

pub use features::FeatureMap;
pub use graph::{Graph, Shape};
pub use model::{ConvModel, ConvModelError};
pub use network::{ConvRun, Network, NetworkError};
pub use objective::{ConvError, ConvObjective};
pub use scaling::{
    BnScaleError, BnScaling, alpha_scale_bn, alpha_scaled_bn_as, bn_scaling, scalable_bns,
};
pub use spec::{ArchError, ArchName, BlockKind, ResNetSpec};
pub use state::{BnMode, BnState};

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
