//! `basin-prior` owns the Bayesian prior log P(f) of the function a network expresses: NNGP
//! kernels (analytic for FCNs, Monte Carlo empirical), the step and probit likelihoods, the
//! estimators of log P(f) (Expectation Propagation, Laplace, Botev's minimax-tilted importance
//! sampler and annealed sequential Monte Carlo, both with error bars), exact references (the
//! equicorrelated closed form) and generalization bounds (see `ARCHITECTURE.md`). The
//! direct-sampling prior of the Boolean system {0,1}^7 is the crate `basin-boolean`.
//!
//! Every estimator implements [`estimator::Estimator`]: (kernel, labels, likelihood) in, an
//! [`estimate::Outcome`] out (the estimate, the method's diagnostics and its
//! [`estimate::Issue`]s). [`dispatch::Estimators`] runs the one a [`estimate::Method`] names.
//! The modules depend downward only: `estimate` (result types) and `kernel_check` at the
//! bottom, then `estimator`, the estimators (`ep`, `laplace`, `tilting`, `smc`), and
//! `dispatch` and `ep_accuracy` on top.

pub mod bounds;
pub mod dispatch;
pub mod ep;
pub mod ep_accuracy;
pub mod equicorr;
pub mod error;
pub mod estimate;
pub mod estimator;
pub mod kernel;
pub mod kernel_check;
pub mod laplace;
pub mod likelihood;
pub mod mc_error;
pub mod mc_file;
pub mod mc_kernel;
pub mod normal;
pub mod scale;
pub mod smc;
pub mod tilting;
pub mod truncnorm;

pub use error::PriorError;
/// faer, re-exported so that callers can build kernel matrices without their own dependency.
pub use faer;

/// The examples of the crate's README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
