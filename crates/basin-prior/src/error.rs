//! The errors of `basin-prior`. Each message names what was wrong and how to fix it.

/// An error from a kernel or an estimator of log P(f).
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    /// Inputs whose shapes do not agree.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A label vector, likelihood name or option that is not valid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A kernel matrix with NaN or infinite entries, an asymmetry, or a non-positive diagonal.
    #[error("invalid kernel: {0}")]
    InvalidKernel(String),
    /// A kernel that is not positive semi-definite even after the largest allowed jitter.
    #[error(
        "the kernel is not positive semi-definite (Cholesky failed even with jitter {jitter:e}          on the diagonal): check that it is a covariance matrix of the inputs"
    )]
    NotPsd {
        /// The largest jitter tried.
        jitter: f64,
    },
    /// A method that is not defined for the chosen likelihood.
    #[error("{0}")]
    Unsupported(String),
}
