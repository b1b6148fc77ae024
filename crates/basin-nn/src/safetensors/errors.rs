//! The errors of reading and writing model files.

use std::path::{Path, PathBuf};

use crate::spec::{FcnSpec, SpecError};

use super::format::{StoredDtype, locate};

/// Everything that can go wrong reading or writing a model file.
///
/// Every message starts with the file it concerns and says what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read or written.
    #[error("{path}: cannot {action} the model file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// `"read"` or `"write"`.
        action: &'static str,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// The file has no bytes.
    #[error("{path}: the file is empty (an interrupted copy or download?); save the model again")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not a safetensors file, or its header is corrupt or truncated.
    #[error(
        "{path}: not a safetensors file, or its header is corrupt or the file truncated \
         ({problem}); model files are written by basin or by safetensors.torch.save_file"
    )]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// The safetensors parser's complaint.
        problem: String,
    },
    /// A tensor's shape, dtype and data offsets in the header do not agree with each other or
    /// with the file's size.
    #[error(
        "{path}: tensor {name}: {problem}; the header is corrupt or the file was cut short or \
         edited: save the model again"
    )]
    BadTensorData {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its shape, dtype and offsets, and what does not fit.
        problem: String,
    },
    /// A tensor the network needs is absent.
    #[error("{path}: tensor {name} is missing: {why}")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The missing tensor, `layers.{i}.weight` or `layers.{i}.bias`.
        name: String,
        /// Why it is needed.
        why: String,
    },
    /// The file holds tensors that are not part of the network.
    #[error("{path}: unexpected tensors {names:?}: {why}")]
    UnexpectedTensors {
        /// The file.
        path: PathBuf,
        /// The unexpected tensors, sorted.
        names: Vec<String>,
        /// Why they are unexpected and what to do.
        why: String,
    },
    /// A tensor's dtype is neither F32 nor F64.
    #[error(
        "{path}: tensor {name} has dtype {dtype}, but only F32 and F64 are read; convert the \
         tensors (in PyTorch, .float() or .double()) before saving"
    )]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype as safetensors names it.
        dtype: String,
    },
    /// The tensors mix F32 and F64.
    #[error(
        "{path}: tensor {first} is {first_dtype} but {other} is {other_dtype}; a model file holds \
         one dtype, so convert all tensors to F32 or all to F64"
    )]
    MixedDtypes {
        /// The file.
        path: PathBuf,
        /// The first tensor (in layer order).
        first: String,
        /// Its dtype.
        first_dtype: StoredDtype,
        /// The first tensor whose dtype differs.
        other: String,
        /// That dtype.
        other_dtype: StoredDtype,
    },
    /// A weight is not a matrix or a bias not a vector.
    #[error(
        "{path}: tensor {name} has shape {shape:?} (rank {}) but must have rank {expected} \
         (weights are [out, in], biases [out])",
        shape.len()
    )]
    BadRank {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The rank it must have: 2 for a weight, 1 for a bias.
        expected: usize,
    },
    /// The shapes do not chain into a network with one output (files without basin metadata).
    #[error("{path}: {problem}")]
    InconsistentShapes {
        /// The file.
        path: PathBuf,
        /// The first offending tensor.
        name: String,
        /// What does not fit, and how to fix it.
        problem: String,
    },
    /// The basin metadata does not parse or names an unknown format version.
    #[error("{path}: metadata {key} is invalid: {problem}")]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A tensor's shape disagrees with the spec in the basin metadata.
    #[error(
        "{path}: tensor {name} is {found:?} but the basin.spec metadata (widths {widths:?}) needs \
         {expected:?}; the file was edited after basin wrote it: save it again, or remove the \
         basin.* metadata to infer the widths from the shapes"
    )]
    MetadataMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its shape in the file.
        found: Vec<usize>,
        /// The shape the metadata implies.
        expected: Vec<usize>,
        /// The widths in the metadata, input to output.
        widths: Vec<usize>,
    },
    /// A parameter is NaN or infinite.
    #[error(
        "{path}: {name}{index:?} = {value} is not finite (did training diverge?); use an earlier \
         checkpoint or retrain"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The value's index in the tensor (`[row, column]` in a weight, `[i]` in a bias).
        index: Vec<usize>,
        /// The value.
        value: f64,
    },
    /// The parameter vector given to [`save`](super::save) does not have the spec's length.
    #[error(
        "{path}: theta has {len} values but the spec (widths {widths:?}) has {n_params} \
         parameters; pass the parameter vector of this spec"
    )]
    ParamCount {
        /// The file to be written.
        path: PathBuf,
        /// The length of theta.
        len: usize,
        /// The spec's parameter count.
        n_params: usize,
        /// The spec's widths, input to output.
        widths: Vec<usize>,
    },
    /// The spec given to [`save`](super::save) is invalid.
    #[error("{path}: invalid network spec: {problem}")]
    InvalidSpec {
        /// The file to be written.
        path: PathBuf,
        /// What is wrong with the spec.
        problem: SpecError,
    },
}

impl ModelError {
    /// The error for the non-finite `value` of the `k`-th flat parameter of `spec`.
    pub(super) fn non_finite(spec: &FcnSpec, k: usize, value: f64, path: &Path) -> ModelError {
        let (name, index) = locate(spec, k);
        ModelError::NonFinite {
            path: path.to_owned(),
            name,
            index,
            value,
        }
    }
}
