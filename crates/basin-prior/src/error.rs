//! The errors of `basin-prior`. Each message names what was wrong and how to fix it.

/// An error from a kernel or an estimator of log P(f).
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    /// Inputs whose shapes do not agree.
    #[error("shape mismatch: {0}")]
    Shape(String),
}
