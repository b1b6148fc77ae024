//! `basin-flatness` owns basin's measures of local flatness, written over the `Objective`
//! trait of `basin-nn` only: Keskar sharpness (by SGD ascent as in the paper's code, or by
//! L-BFGS-B), the Hessian spectrum by Lanczos with full reorthogonalisation (spectral norm,
//! top-k eigenvalues, their log-product), the Hutchinson trace, the spectral density by
//! stochastic Lanczos quadrature and the dense Hessian spectrum of small nets (see
//! `ARCHITECTURE.md`).

mod checks;
pub mod dense;
pub mod error;
mod gram;
pub mod hutchinson;
pub mod keskar;
mod krylov;
pub mod lanczos;
pub mod lbfgsb;
pub mod slq;
mod tridiagonal;

pub use dense::{DenseSpectrum, dense_spectrum};
pub use error::{FlatnessError, NonFiniteAt};
pub use hutchinson::{TraceEstimate, hutchinson};
pub use lanczos::{LanczosConfig, RitzEnd, Spectrum, lanczos};
pub use slq::{SlqConfig, SpectralDensity, spectral_density};

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
