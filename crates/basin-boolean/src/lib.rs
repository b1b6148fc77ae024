//! `basin-boolean` owns the direct-sampling prior of a Boolean system (section 5.1 of the
//! paper): draw random ReLU networks on all 128 inputs of {0,1}^7, compute the function each
//! one expresses and count the functions. The frequency of a function estimates P(f) under the
//! network's parameter prior. It needs no Gaussian-process code: it has its own vectorised
//! ChaCha8 stream ([`chacha`]), ziggurat normals ([`ziggurat`]) and AVX-512 forward pass
//! ([`forward`]), each with portable code that gives the same bits (see `ARCHITECTURE.md`).
//!
//! * [`BooleanSampler`] draws and counts; [`sampler`] says exactly how each network is drawn
//!   (ChaCha8 words per block of networks, ziggurat normals, the `basin-nn` init scales).
//! * [`CubeNet`] evaluates one network on the cube (AVX-512 kernels, or portable code with
//!   the same bits).
//! * [`FunctionCounts`] is the frequency table; [`lz`] the Lempel–Ziv complexity of
//!   Valle-Pérez et al. (2018).

pub mod chacha;
pub mod counts;
pub mod error;
pub mod forward;
pub mod lz;
pub mod sampler;
pub mod ziggurat;

pub use counts::{FunctionCounts, FunctionRow, Z95, function_hex, wilson_interval};
pub use error::BooleanError;
pub use forward::{CubeNet, N_INPUTS, Scratch};
pub use lz::lz_complexity;
pub use sampler::{BooleanSampler, NETS_PER_BLOCK};

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
