//! The errors of `basin-boolean`. Each message names what was wrong and how to fix it.

/// An error from the Boolean sampler's set-up.
#[derive(Debug, thiserror::Error)]
pub enum BooleanError {
    /// The network spec is not valid (the reason is `basin-nn`'s).
    #[error("invalid network spec: {0}")]
    InvalidNetwork(basin_nn::SpecError),
    /// The network does not have the cube's 7 inputs.
    #[error(
        "the Boolean sampler works on {{0,1}}^7: the network has {input_dim} inputs; set \
         input_dim to 7"
    )]
    InputDim {
        /// The network's number of inputs.
        input_dim: usize,
    },
    /// The network has no hidden layer.
    #[error("the Boolean sampler needs at least one hidden layer (give --hidden such as 40,40)")]
    NoHiddenLayer,
    /// The network's activation is not ReLU.
    #[error("the Boolean sampler's kernels are for ReLU networks, not {activation}")]
    NotRelu {
        /// The activation the network has.
        activation: basin_nn::Activation,
    },
    /// Zero networks were asked for.
    #[error("the sampler needs at least one sample: set samples (--samples) >= 1")]
    NoSamples,
}
