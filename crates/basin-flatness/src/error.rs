//! The errors of `basin-flatness`. Each message names what was wrong and how to fix it.

/// An error from a flatness measure.
#[derive(Debug, thiserror::Error)]
pub enum FlatnessError {
    /// A parameter outside its valid range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// A NaN or infinite value where a finite one is needed.
    #[error("non-finite value: {0} (is the model diverged, or the data not normalised?)")]
    NonFinite(String),
    /// A problem too large for the method asked for (a dense Hessian of a big net).
    #[error("too large: {0}")]
    TooLarge(String),
}
