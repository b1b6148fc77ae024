//! `basin-nn` owns basin's networks: the architecture specs ([`FcnSpec`]), the flat parameter
//! layout (per layer, the weight `[out, in]` row-major then the bias; `layers.{i}.weight` and
//! `layers.{i}.bias` in safetensors), the FCN engine with exact gradients and Hessian-vector
//! products behind the [`Objective`] trait, the losses, the optimizers behind the
//! [`Optimizer`] trait, the training loop to zero training error, α-scaling, and safetensors
//! I/O. The hidden nonlinearity is one [`Activation`]: its value, its derivatives and its
//! NNGP map. The engine is generic over `f32` (training) and `f64` (analysis): [`Real`] is
//! the scalar, [`Kernels`] adds the AVX-512 forms of the engine's products, and
//! [`simd::Isa`] is the one run-time CPU-feature check that every crate of basin uses.

pub mod activation;
pub mod csr;
pub mod fcn;
pub mod gemm;
pub mod loss;
pub mod objective;
pub mod optim;
pub mod real;
pub mod safetensors;
pub mod scaling;
pub mod simd;
pub mod sparse;
pub mod spec;
pub mod train;

pub use activation::Activation;
pub use fcn::{FcnError, FcnObjective};
pub use objective::{FiniteDifferenceHvp, Objective, all_examples, dense_hessian};
pub use optim::Optimizer;
pub use real::{Precision, Real};
pub use scaling::{ScaleError, alpha_scale, alpha_scaled_as};
pub use simd::Kernels;
pub use spec::{FcnSpec, Layer, SpecError};
pub use train::{
    BatchOrder, EpochInfo, HookAction, StopOn, TrainConfig, TrainReport, TrainStatus, derive_seed,
    train,
};

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
