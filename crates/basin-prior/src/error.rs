//! The errors of `basin-prior`. Each variant carries what was wrong; each message names it and
//! how to fix it.

/// An error from a kernel or an estimator of log P(f).
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    /// A matrix or buffer that would not fit in the memory available.
    #[error(transparent)]
    Memory(basin_data::MemoryError),
    /// A kernel whose shape does not match the number of labels.
    #[error(
        "shape mismatch: the kernel is {rows}×{cols} but there are {labels} labels: give an n×n \
         kernel for n labels"
    )]
    KernelShape {
        /// The kernel's rows.
        rows: usize,
        /// The kernel's columns.
        cols: usize,
        /// The number of labels.
        labels: usize,
    },
    /// A kernel entry that is NaN or infinite.
    #[error(
        "invalid kernel: entry ({row}, {col}) is not finite: the kernel must have no NaN or infinity"
    )]
    KernelNotFinite {
        /// The entry's row.
        row: usize,
        /// The entry's column.
        col: usize,
    },
    /// A kernel that is not symmetric.
    #[error(
        "invalid kernel: entries ({row}, {col}) = {value} and ({col}, {row}) = {mirror} differ: \
         the kernel must be symmetric"
    )]
    KernelAsymmetric {
        /// The row of the first entry.
        row: usize,
        /// The column of the first entry.
        col: usize,
        /// Entry (row, col).
        value: f64,
        /// Entry (col, row).
        mirror: f64,
    },
    /// A kernel diagonal entry that is not finite and positive.
    #[error(
        "invalid kernel: diagonal entry {index} is {value}: a kernel's diagonal must be finite \
         and positive"
    )]
    KernelDiagonal {
        /// The entry's index.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A kernel that is not positive semi-definite even after the largest allowed jitter.
    #[error(
        "the kernel is not positive semi-definite (Cholesky failed even with jitter {jitter:e} \
         on the diagonal): check that it is a covariance matrix of the inputs"
    )]
    NotPsd {
        /// The largest jitter tried.
        jitter: f64,
    },
    /// A kernel whose symmetric eigendecomposition failed.
    #[error(
        "invalid kernel: the eigendecomposition of the {n}×{n} kernel failed ({reason}): check it \
         for extreme entries"
    )]
    Eigendecomposition {
        /// The kernel's size.
        n: usize,
        /// faer's reason.
        reason: String,
    },
    /// A kernel whose scale is below the range where f64 keeps full relative precision.
    #[error(
        "the kernel's largest diagonal entry {max_diag:e} is below f64's normal range \
         ({min:e}), where its entries lose relative precision: multiply the kernel by a large \
         constant (log P(f) under the step likelihood does not depend on the kernel's scale; \
         under probit, scale the kernel and the noise together)",
        min = f64::MIN_POSITIVE
    )]
    KernelScale {
        /// The largest diagonal entry.
        max_diag: f64,
    },
    /// An empty label vector.
    #[error("invalid input: the label vector is empty")]
    NoLabels,
    /// Labels that mix −1 and 0.
    #[error("invalid input: labels mix −1 and 0: give ±1 or 0/1 labels, not both")]
    MixedLabels,
    /// A label that is neither ±1 nor 0/1.
    #[error("invalid input: label {index} is {value}: labels must be ±1 or 0/1")]
    BadLabel {
        /// The label's index.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A setting of an estimator or a bound outside its range.
    #[error("invalid input: {owner} needs {setting} {need} (got {value})")]
    Setting {
        /// The estimator or bound (`EP`, `tilting`, `smc`, ...).
        owner: &'static str,
        /// The setting's name.
        setting: &'static str,
        /// The range it must be in.
        need: &'static str,
        /// The value given.
        value: f64,
    },
    /// EP warm-start sites of the wrong length or with invalid values.
    #[error("invalid input: warm-start sites must be {n} finite values each, with precisions ≥ 0")]
    WarmSites {
        /// The number of labels.
        n: usize,
    },
    /// Tilting bounds whose counts differ or are zero.
    #[error(
        "shape mismatch: {lower} lower and {upper} upper bounds: give one of each per variable \
         (at least one)"
    )]
    BoundCount {
        /// Lower bounds given.
        lower: usize,
        /// Upper bounds given.
        upper: usize,
    },
    /// A lower bound not below its upper bound.
    #[error(
        "invalid input: bounds of variable {index} are ({lower}, {upper}): each lower bound must \
         be below its upper bound"
    )]
    BoundOrder {
        /// The variable.
        index: usize,
        /// Its lower bound.
        lower: f64,
        /// Its upper bound.
        upper: f64,
    },
    /// A log-probability that is not a number ≤ 0.
    #[error(
        "invalid input: log-probability {log_p} must be a number ≤ 0 (natural log of a probability)"
    )]
    LogProbability {
        /// The value given.
        log_p: f64,
    },
    /// Too few training examples for a bound.
    #[error("invalid input: the bound needs at least {min} training examples, got {m}")]
    TooFewExamples {
        /// Examples given.
        m: usize,
        /// The fewest allowed.
        min: usize,
    },
    /// The Laplace approximation asked for the step likelihood.
    #[error(
        "the Laplace approximation is not defined for the step likelihood (its log-likelihood is \
         0 or −∞, with no mode or curvature): use --likelihood probit or --method ep"
    )]
    LaplaceStep,
    /// `Method::Exact` asked for a general kernel.
    #[error("no exact method for a general kernel: use ep, ep-sequential, laplace, tilting or smc")]
    NoExactMethod,
    /// A network spec that `basin-nn` rejects.
    #[error("invalid input: invalid network spec: {0}")]
    InvalidNetwork(basin_nn::SpecError),
    /// A kernel spec with input dimension 0.
    #[error("invalid input: the input dimension is 0: give inputs with at least one feature")]
    NoInputDim,
    /// A kernel spec with no layer.
    #[error(
        "invalid input: a kernel spec needs at least one layer (the readout): use depth 0 for \
         the linear kernel of the inputs"
    )]
    NoLayers,
    /// A layer's σ_w that is not finite and positive.
    #[error(
        "invalid input: sigma_w of layer {layer} is {value}: it must be finite and > 0 (the paper \
         uses √2)"
    )]
    SigmaW {
        /// The layer.
        layer: usize,
        /// Its σ_w.
        value: f64,
    },
    /// A layer's σ_b that is not finite and ≥ 0.
    #[error(
        "invalid input: sigma_b of layer {layer} is {value}: it must be finite and >= 0 (0 means \
         no bias; the paper uses 1)"
    )]
    SigmaB {
        /// The layer.
        layer: usize,
        /// Its σ_b.
        value: f64,
    },
    /// The closed-form kernel asked for an activation whose NNGP map has none (tanh).
    #[error(
        "the {activation} NNGP kernel has no closed form: use the Monte Carlo kernel \
         (basin_prior::mc_kernel, or `basin kernel --method mc`), or relu, erf or linear"
    )]
    NoClosedForm {
        /// The activation.
        activation: basin_nn::Activation,
    },
    /// An input set with no points.
    #[error("invalid input: {name} has no points: give at least one row")]
    NoPoints {
        /// The input set's name.
        name: String,
    },
    /// An input set whose length is not points × features.
    #[error(
        "shape mismatch: {name} has {values} values but {n} points × {d} features need {need}: \
         give the points row-major, {d} values each (input_dim = {d})"
    )]
    InputShape {
        /// The input set's name.
        name: String,
        /// Values given.
        values: usize,
        /// Points.
        n: usize,
        /// Features per point.
        d: usize,
        /// Values needed (n·d, saturated).
        need: usize,
    },
    /// An input feature that is NaN or infinite.
    #[error(
        "invalid input: {name}: feature {feature} of point {point} is {value}: the kernel needs \
         finite inputs; remove or impute NaN and infinite values"
    )]
    InputNotFinite {
        /// The input set's name.
        name: String,
        /// The point.
        point: usize,
        /// The feature.
        feature: usize,
        /// Its value.
        value: f64,
    },
    /// A point whose squared norm overflows.
    #[error(
        "invalid input: {name}: σ_w,0²/d times the squared norm of point {point} overflows \
         f64: rescale the inputs or lower the first layer's σ_w (--sigma-w)"
    )]
    NormOverflow {
        /// The input set's name.
        name: String,
        /// The point.
        point: usize,
    },
    /// A point whose variance leaves f64's normal range in some layer.
    #[error(
        "the NNGP variance of point {point} of {name} is {value:e} {at}, outside \
         f64's normal range: bring σ_w and σ_b (--sigma-w, --sigma-b) nearer 1 (log P(f) under \
         the step likelihood does not depend on the kernel's scale)"
    )]
    VarianceRange {
        /// The input set's name.
        name: String,
        /// The point.
        point: usize,
        /// Where: "after layer 2" (1 = the first hidden layer's pre-activations) or "at the
        /// readout".
        at: String,
        /// The variance.
        value: f64,
    },
    /// The Monte Carlo kernel asked for zero samples.
    #[error(
        "invalid input: the Monte Carlo kernel needs at least one sample: set samples (--samples) >= 1"
    )]
    NoKernelSamples,
    /// A feature map with no points or zero width.
    #[error(
        "invalid input: the feature map has {n} points and width {width}: both must be positive"
    )]
    EmptyFeatures {
        /// Points.
        n: usize,
        /// Width.
        width: usize,
    },
    /// A random feature that is NaN or infinite.
    #[error(
        "invalid input: feature {feature} of point {point} is not finite under network \
         {network}: rescale the inputs or the weight scale"
    )]
    FeatureNotFinite {
        /// The point.
        point: usize,
        /// The feature.
        feature: usize,
        /// The sampled network.
        network: usize,
    },
    /// Monte Carlo kernel settings that cannot work (blocks, shards).
    #[error("invalid input: Monte Carlo kernel: {0}")]
    McSettings(String),
    /// Monte Carlo sums that cannot be merged or are incomplete.
    #[error("Monte Carlo kernel sums: {0}")]
    McMerge(String),
    /// A Monte Carlo sums file that cannot be read or written.
    #[error("{path}: {problem}")]
    McFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, and the fix.
        problem: String,
    },
    /// The conv net's feature map could not be built.
    #[error(transparent)]
    ConvFeatures(#[from] basin_conv::ConvError),
    /// A feature buffer of the wrong shape.
    #[error("shape mismatch: the feature buffer is {rows}×{cols} but the features are {n}×{width}")]
    FeatureBuffer {
        /// The buffer's rows.
        rows: usize,
        /// The buffer's columns.
        cols: usize,
        /// Points.
        n: usize,
        /// Width.
        width: usize,
    },
}

/// `Ok` when `ok`, else [`PriorError::Setting`] naming `owner`'s `setting`, the range it must
/// be in and the `value` given.
pub(crate) fn require(
    ok: bool,
    owner: &'static str,
    setting: &'static str,
    need: &'static str,
    value: f64,
) -> Result<(), PriorError> {
    if ok {
        return Ok(());
    }
    Err(PriorError::Setting {
        owner,
        setting,
        need,
        value,
    })
}
