//! The errors of `basin-flatness`. Each message names what was wrong and how to fix it.

/// An error from a flatness measure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlatnessError {
    /// A setting outside its valid range.
    #[error("invalid setting: {setting} is {value}: {fix}")]
    Setting {
        /// The setting, as the configuration names it.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What the setting must be.
        fix: &'static str,
    },
    /// θ has another length than the objective's parameter vector.
    #[error(
        "{given} parameters given for a network with {expected}: measure the network the \
         objective was built for"
    )]
    ParamCount {
        /// The length of θ.
        given: usize,
        /// The objective's number of parameters.
        expected: usize,
    },
    /// The objective holds no examples.
    #[error("the measured set is empty: measure on a set with at least one example")]
    EmptySet,
    /// The given ascent orders are not one permutation of the examples per epoch.
    #[error("{given} given permutations for {epochs} epochs: give one per epoch")]
    PermutationCount {
        /// The number of permutations given.
        given: usize,
        /// The number of epochs.
        epochs: usize,
    },
    /// The ascent order of an epoch is not a permutation of the examples.
    #[error(
        "the permutation of epoch {epoch} is not a permutation of 0..{n}: give each index once"
    )]
    NotAPermutation {
        /// The epoch (from 0).
        epoch: usize,
        /// The number of examples.
        n: usize,
    },
    /// The bounds of a box-constrained problem do not match its start or each other.
    #[error(
        "L-BFGS-B: {n} variables but {lo} lower and {hi} upper bounds: give one bound of each \
         kind per variable"
    )]
    BoundCount {
        /// The number of variables.
        n: usize,
        /// The number of lower bounds.
        lo: usize,
        /// The number of upper bounds.
        hi: usize,
    },
    /// A variable of a box-constrained problem has no finite start or an empty box.
    #[error(
        "L-BFGS-B variable {index}: start {start} with bounds [{lo}, {hi}]: give a finite start \
         and lo ≤ hi"
    )]
    BadVariable {
        /// The variable.
        index: usize,
        /// Its start.
        start: f64,
        /// Its lower bound.
        lo: f64,
        /// Its upper bound.
        hi: f64,
    },
    /// A NaN or infinite value where a finite one is needed.
    #[error("non-finite value: {what} (is the model diverged, or the data not normalised?)")]
    NonFinite {
        /// Where the value appeared.
        what: NonFiniteAt,
    },
    /// An eigensolver failed on a matrix of this order.
    #[error(
        "the eigensolver of the {n}×{n} {matrix} failed ({detail}): check the objective for \
         non-finite curvature"
    )]
    Eigensolver {
        /// The matrix: "Hessian" or "Lanczos tridiagonal".
        matrix: &'static str,
        /// Its order.
        n: usize,
        /// The solver's own message.
        detail: String,
    },
    /// A dense Hessian of a net too big for it.
    #[error(
        "too large: a dense Hessian of {n_params} parameters takes about {gb:.1} GB (limit \
         {limit} parameters); use Lanczos for the extreme eigenvalues instead"
    )]
    TooLarge {
        /// The number of parameters.
        n_params: usize,
        /// The largest number the dense method accepts.
        limit: usize,
        /// The memory it would take, in GB.
        gb: f64,
    },
}

/// Where a non-finite value appeared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NonFiniteAt {
    /// A parameter of θ.
    #[error("parameter {0} of θ")]
    Parameter(usize),
    /// The loss after a sharpness ascent step.
    #[error("the loss after ascent step {step} is {loss}")]
    AscentLoss {
        /// The step (from 0).
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// The Hessian-vector product of a Lanczos step.
    #[error("the Hessian-vector product of Lanczos step {0} has non-finite entries")]
    LanczosStep(usize),
    /// zᵀHz of a Hutchinson probe.
    #[error("zᵀHz of Hutchinson probe {probe} is {value}")]
    Probe {
        /// The probe (from 1).
        probe: usize,
        /// Its value.
        value: f64,
    },
    /// An entry of the dense Hessian.
    #[error("Hessian entry ({row}, {col})")]
    HessianEntry {
        /// Its row.
        row: usize,
        /// Its column.
        col: usize,
    },
    /// An evaluation of an L-BFGS-B objective.
    #[error("L-BFGS-B evaluation {eval}: f = {f} or a non-finite gradient entry")]
    Evaluation {
        /// The evaluation (from 0).
        eval: usize,
        /// The objective's value.
        f: f64,
    },
}

impl FlatnessError {
    /// A [`FlatnessError::NonFinite`] at `what`.
    pub fn non_finite(what: NonFiniteAt) -> Self {
        Self::NonFinite { what }
    }

    /// A [`FlatnessError::Setting`].
    pub(crate) fn setting(setting: &'static str, value: impl ToString, fix: &'static str) -> Self {
        Self::Setting {
            setting,
            value: value.to_string(),
            fix,
        }
    }
}
