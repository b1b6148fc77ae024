//! Model files: safetensors with `layers.{i}.weight` `[out, in]` and `layers.{i}.bias` `[out]`.
//!
//! # The format
//!
//! A basin model file is an ordinary [safetensors](https://github.com/huggingface/safetensors)
//! file holding a fully-connected network ([`FcnSpec`]) with one output logit:
//!
//! * for each layer `i = 0, 1, …, k` (numbered from 0 without gaps, input to output), the
//!   tensor `layers.{i}.weight` of shape `[out, in]`, row-major (the layout of
//!   `torch.nn.Linear.weight`, *not* transposed), and the tensor `layers.{i}.bias` of shape
//!   `[out]`. Layer `i`'s `in` is layer `i − 1`'s `out`; the last layer's `out` is 1;
//! * every tensor in one dtype, `F32` or `F64`, little-endian (files with other dtypes, or a mix
//!   of the two, are rejected with a message saying how to convert them);
//! * no other tensors;
//! * in the header's `__metadata__`, when basin wrote the file, `"basin.format"` =
//!   `"basin-fcn/1"` ([`FORMAT`]) and `"basin.spec"` = the [`FcnSpec`] as JSON (widths,
//!   activation, σ_w, σ_b). Other metadata keys (PyTorch's `"format": "pt"`, say) are ignored.
//!
//! Basin writes the tensors' data in the order of its flat parameter vector (per layer, the
//! weight then the bias), so the data section of the file is θ itself, and the header's JSON
//! keys sorted, so the same network always gives the same bytes.
//!
//! # Files from PyTorch
//!
//! A network trained elsewhere loads once its `nn.Linear` layers are saved under these names:
//! collect the linear layers in order, input to output, and save the dictionary that maps
//! `layers.{i}.weight` to the i-th layer's `weight` and `layers.{i}.bias` to its `bias`, as in
//! `{f"layers.{i}.weight": lin.weight for i, lin in enumerate(linears)}` plus the same for the
//! biases, with `safetensors.torch.save_file` (after `.float()` or `.double()`, `.contiguous()`
//! and `.detach()`). Such a file has no basin metadata: the widths come from the shapes, the
//! activation is ReLU unless the loader is told otherwise, and σ_w = √2, σ_b = 1 (the σ only
//! matter to re-initialise the network or to build its NNGP kernel, not to evaluate it).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use safetensors::tensor::TensorInfo;
use serde_json::{Map, Value, json};

use crate::activation::Activation;
use crate::real::Real;
use crate::spec::FcnSpec;

/// The value of the `"basin.format"` metadata key this version writes and reads.
pub const FORMAT: &str = "basin-fcn/1";
/// The metadata key naming the file's format version.
pub const META_FORMAT: &str = "basin.format";
/// The metadata key holding the [`FcnSpec`] as JSON.
pub const META_SPEC: &str = "basin.spec";
/// The name errors give to bytes that come from no file ([`to_bytes`]).
const IN_MEMORY: &str = "<in-memory model>";

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
    /// The parameter vector given to [`save`] does not have the spec's length.
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
    /// The spec given to [`save`] is invalid.
    #[error("{path}: invalid network spec: {problem}")]
    InvalidSpec {
        /// The file to be written.
        path: PathBuf,
        /// What is wrong with the spec.
        problem: String,
    },
}

/// The dtype of the tensors in a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDtype {
    /// IEEE single precision (safetensors `F32`).
    F32,
    /// IEEE double precision (safetensors `F64`).
    F64,
}

impl StoredDtype {
    /// The dtype files of `T` are written in: F32 for `f32`, F64 for `f64`.
    pub fn of<T: Real>() -> Self {
        if T::NAME == "f32" {
            Self::F32
        } else {
            Self::F64
        }
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    fn from_safetensors(dtype: safetensors::Dtype) -> Option<Self> {
        match dtype {
            safetensors::Dtype::F32 => Some(Self::F32),
            safetensors::Dtype::F64 => Some(Self::F64),
            _ => None,
        }
    }

    fn push_le(self, x: f64, out: &mut Vec<u8>) {
        match self {
            Self::F32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
            Self::F64 => out.extend_from_slice(&x.to_le_bytes()),
        }
    }

    fn decode_into(self, bytes: &[u8], out: &mut Vec<f64>) {
        match self {
            Self::F32 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
            ),
            Self::F64 => out.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
            ),
        }
    }
}

impl fmt::Display for StoredDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "F32",
            Self::F64 => "F64",
        })
    }
}

/// A network read from a model file.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The architecture: from the basin metadata, or inferred from the shapes (see [`load`]).
    pub spec: FcnSpec,
    /// The flat parameters in basin's layout, widened to f64 (exactly, from either dtype).
    pub theta: Vec<f64>,
    /// The dtype the file stores.
    pub dtype: StoredDtype,
    /// Whether the file carries basin metadata (`basin.format` and `basin.spec`).
    pub has_basin_metadata: bool,
}

impl Model {
    /// The parameters as `T`: exact for `f64`, and for `f32` when the file is F32.
    pub fn theta_as<T: Real>(&self) -> Vec<T> {
        self.theta.iter().map(|&x| T::from_f64(x)).collect()
    }
}

/// Writes `theta`, the flat parameters of `spec`, to `path` in `T`'s dtype (F32 or F64), with
/// the basin metadata; see the [module docs](self) for the format.
///
/// The write is atomic (a temporary file, synced, then renamed), so a reader never sees half a
/// file. Fails when `theta.len() != spec.n_params()`, the spec is invalid, or a value is not
/// finite (such a file could not be loaded).
pub fn save<T: Real>(path: &Path, spec: &FcnSpec, theta: &[T]) -> Result<(), ModelError> {
    let bytes = encode(spec, theta, path)?;
    basin_data::io::write_atomic(path, &bytes).map_err(|e| write_error(path, e))
}

/// The bytes [`save`] would write, with the same checks.
pub fn to_bytes<T: Real>(spec: &FcnSpec, theta: &[T]) -> Result<Vec<u8>, ModelError> {
    encode(spec, theta, Path::new(IN_MEMORY))
}

/// Reads the model file `path`; see [`from_bytes`].
pub fn load(path: &Path, activation: Option<Activation>) -> Result<Model, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_owned(),
        action: "read",
        source,
    })?;
    from_bytes(&bytes, path, activation)
}

/// Reads a model from the bytes of a safetensors file; `origin` names them in errors.
///
/// With basin metadata, the spec is the stored one and every tensor's shape is checked against
/// it; `activation`, when given, overrides the stored activation. Without basin metadata (a
/// PyTorch export, say), the widths come from the shapes of `layers.0` … `layers.k`, the
/// activation is `activation` or else ReLU, and σ_w = √2, σ_b = 1 (they only matter to
/// re-initialise the network or to build its kernel). Every value must be finite, and all the
/// tensors F32 or all F64 (a mix is rejected).
pub fn from_bytes(
    bytes: &[u8],
    origin: &Path,
    activation: Option<Activation>,
) -> Result<Model, ModelError> {
    if bytes.is_empty() {
        return Err(ModelError::Empty {
            path: origin.to_owned(),
        });
    }
    let not_st = |e: safetensors::SafeTensorError| ModelError::NotSafetensors {
        path: origin.to_owned(),
        problem: e.to_string(),
    };
    let (header_len, header) = SafeTensors::read_metadata(bytes).map_err(not_st)?;
    let file = File {
        path: origin,
        tensors: header.tensors().into_iter().collect(),
        data: bytes.get(8 + header_len..).unwrap_or_default(),
    };
    let stored = file.basin_spec(header.metadata().as_ref())?;
    let mut model = file.model(stored)?;
    if let Some(a) = activation {
        model.spec.activation = a;
    }
    Ok(model)
}

// ---------------------------------------------------------------------------------------------
// Writing

fn write_error(path: &Path, e: basin_data::DataError) -> ModelError {
    let source = match e {
        basin_data::DataError::Write { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    };
    ModelError::Io {
        path: path.to_owned(),
        action: "write",
        source,
    }
}

fn encode<T: Real>(spec: &FcnSpec, theta: &[T], path: &Path) -> Result<Vec<u8>, ModelError> {
    check_theta(spec, theta, path)?;
    let dtype = StoredDtype::of::<T>();
    let mut header = header_json(spec, dtype).into_bytes();
    // Pad the header with spaces to a multiple of 8 bytes, as safetensors does.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + theta.len() * dtype.size());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for &x in theta {
        dtype.push_le(x.to_f64(), &mut out);
    }
    Ok(out)
}

fn check_theta<T: Real>(spec: &FcnSpec, theta: &[T], path: &Path) -> Result<(), ModelError> {
    spec.validate().map_err(|problem| ModelError::InvalidSpec {
        path: path.to_owned(),
        problem,
    })?;
    if theta.len() != spec.n_params() {
        return Err(ModelError::ParamCount {
            path: path.to_owned(),
            len: theta.len(),
            n_params: spec.n_params(),
            widths: spec.widths(),
        });
    }
    match theta.iter().position(|x| !x.is_finite()) {
        Some(k) => Err(non_finite(spec, k, theta[k].to_f64(), path)),
        None => Ok(()),
    }
}

/// The safetensors header: the metadata, then each tensor's dtype, shape and byte range, in
/// the flat layout's order. serde_json's map is sorted, so the bytes are deterministic.
fn header_json(spec: &FcnSpec, dtype: StoredDtype) -> String {
    let mut map = Map::new();
    let spec_json = serde_json::to_string(spec).unwrap_or_default();
    map.insert(
        "__metadata__".into(),
        json!({ META_FORMAT: FORMAT, META_SPEC: spec_json }),
    );
    let size = dtype.size();
    for (i, l) in spec.layers().iter().enumerate() {
        let (w, b) = (l.w_range(), l.b_range());
        let entry = |shape: Vec<usize>, r: std::ops::Range<usize>| {
            let offsets = [r.start * size, r.end * size];
            json!({ "dtype": dtype.to_string(), "shape": shape, "data_offsets": offsets })
        };
        map.insert(weight_name(i), entry(vec![l.fan_out, l.fan_in], w));
        map.insert(bias_name(i), entry(vec![l.fan_out], b));
    }
    Value::Object(map).to_string()
}

// ---------------------------------------------------------------------------------------------
// Reading

fn weight_name(i: usize) -> String {
    format!("layers.{i}.weight")
}

fn bias_name(i: usize) -> String {
    format!("layers.{i}.bias")
}

/// Parses `layers.{i}.weight` / `layers.{i}.bias` (canonical decimal `i`) into `i`.
fn layer_index(name: &str) -> Option<usize> {
    let (idx, part) = name.strip_prefix("layers.")?.split_once('.')?;
    let i: usize = idx.parse().ok()?;
    (matches!(part, "weight" | "bias") && i.to_string() == idx).then_some(i)
}

/// The name and index within its tensor of the `k`-th flat parameter of `spec`.
fn locate(spec: &FcnSpec, k: usize) -> (String, Vec<usize>) {
    for (i, l) in spec.layers().iter().enumerate() {
        if l.w_range().contains(&k) {
            let j = k - l.w;
            return (weight_name(i), vec![j / l.fan_in, j % l.fan_in]);
        }
        if l.b_range().contains(&k) {
            return (bias_name(i), vec![k - l.b]);
        }
    }
    ("theta".into(), vec![k])
}

fn non_finite(spec: &FcnSpec, k: usize, value: f64, path: &Path) -> ModelError {
    let (name, index) = locate(spec, k);
    ModelError::NonFinite {
        path: path.to_owned(),
        name,
        index,
        value,
    }
}

/// The shapes of one layer's tensors, rank-checked.
#[derive(Debug, Clone, Copy)]
struct Dims {
    out: usize,
    inp: usize,
    bias: usize,
}

/// A parsed safetensors file: its tensors' headers and its data section.
struct File<'a> {
    path: &'a Path,
    tensors: BTreeMap<String, &'a TensorInfo>,
    data: &'a [u8],
}

impl File<'_> {
    fn path(&self) -> PathBuf {
        self.path.to_owned()
    }

    /// The spec in the basin metadata, if there is any basin metadata.
    fn basin_spec(
        &self,
        meta: Option<&HashMap<String, String>>,
    ) -> Result<Option<FcnSpec>, ModelError> {
        let Some(meta) = meta.filter(|m| m.keys().any(|k| k.starts_with("basin."))) else {
            return Ok(None);
        };
        let bad = |key: &str, problem: String| ModelError::BadMetadata {
            path: self.path(),
            key: key.into(),
            problem,
        };
        match meta.get(META_FORMAT).map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(bad(
                    META_FORMAT,
                    format!("{other:?} is not {FORMAT:?}, the only version this basin reads"),
                ));
            }
            None => return Err(bad(META_FORMAT, format!("absent; basin writes {FORMAT:?}"))),
        }
        let text = meta.get(META_SPEC).ok_or_else(|| {
            bad(
                META_SPEC,
                "absent; it holds the network's spec as JSON".into(),
            )
        })?;
        let mut spec: FcnSpec = serde_json::from_str(text)
            .map_err(|e| bad(META_SPEC, format!("not an FcnSpec ({e}): {text:?}")))?;
        spec.sigma_w = exact_number(text, "sigma_w").unwrap_or(spec.sigma_w);
        spec.sigma_b = exact_number(text, "sigma_b").unwrap_or(spec.sigma_b);
        spec.validate().map_err(|p| bad(META_SPEC, p))?;
        Ok(Some(spec))
    }

    /// Checks names, dtypes and shapes, then reads θ.
    fn model(&self, stored: Option<FcnSpec>) -> Result<Model, ModelError> {
        let has_basin_metadata = stored.is_some();
        let n_layers = match &stored {
            Some(spec) => spec.hidden.len() + 1,
            None => self.contiguous_layers(),
        };
        self.check_names(n_layers, has_basin_metadata)?;
        let dtype = self.dtype(n_layers)?;
        let dims = (0..n_layers)
            .map(|i| self.dims(i))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = match stored {
            Some(spec) => self.check_against(spec, &dims)?,
            None => self.infer(&dims)?,
        };
        let theta = self.theta(&spec, dtype)?;
        Ok(Model {
            spec,
            theta,
            dtype,
            has_basin_metadata,
        })
    }

    fn info(&self, name: &str) -> &TensorInfo {
        // Only called on names that check_names has found present.
        self.tensors[name]
    }

    /// The number of layers `0..k` with at least one tensor, stopping at the first gap.
    fn contiguous_layers(&self) -> usize {
        let has = |i| {
            self.tensors.contains_key(&weight_name(i)) || self.tensors.contains_key(&bias_name(i))
        };
        (0..).find(|&i| !has(i)).unwrap_or(0)
    }

    fn check_names(&self, n_layers: usize, from_metadata: bool) -> Result<(), ModelError> {
        let extra: Vec<String> = self
            .tensors
            .keys()
            .filter(|name| layer_index(name).is_none_or(|i| i >= n_layers))
            .cloned()
            .collect();
        if !extra.is_empty() {
            let why = unexpected_why(&extra, n_layers, from_metadata);
            return Err(ModelError::UnexpectedTensors {
                path: self.path(),
                names: extra,
                why,
            });
        }
        let names = (0..n_layers.max(1)).flat_map(|i| [weight_name(i), bias_name(i)]);
        match names.into_iter().find(|n| !self.tensors.contains_key(n)) {
            Some(name) => Err(ModelError::MissingTensor {
                path: self.path(),
                why: missing_why(n_layers, from_metadata),
                name,
            }),
            None => Ok(()),
        }
    }

    /// The one dtype of the tensors, in layer order.
    fn dtype(&self, n_layers: usize) -> Result<StoredDtype, ModelError> {
        let mut first: Option<(String, StoredDtype)> = None;
        for name in (0..n_layers).flat_map(|i| [weight_name(i), bias_name(i)]) {
            let raw = self.info(&name).dtype;
            let Some(dtype) = StoredDtype::from_safetensors(raw) else {
                return Err(ModelError::UnsupportedDtype {
                    path: self.path(),
                    name,
                    dtype: format!("{raw:?}"),
                });
            };
            match &first {
                None => first = Some((name, dtype)),
                Some((f, fd)) if *fd != dtype => {
                    return Err(ModelError::MixedDtypes {
                        path: self.path(),
                        first: f.clone(),
                        first_dtype: *fd,
                        other: name,
                        other_dtype: dtype,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(first.map_or(StoredDtype::F32, |(_, d)| d))
    }

    fn dims(&self, i: usize) -> Result<Dims, ModelError> {
        let (w, b) = (weight_name(i), bias_name(i));
        let (ws, bs) = (&self.info(&w).shape, &self.info(&b).shape);
        let rank_err = |name: String, shape: &Vec<usize>, expected| ModelError::BadRank {
            path: self.path(),
            name,
            shape: shape.clone(),
            expected,
        };
        match (ws.as_slice(), bs.as_slice()) {
            (&[out, inp], &[bias]) => Ok(Dims { out, inp, bias }),
            ([_, _], _) => Err(rank_err(b, bs, 1)),
            _ => Err(rank_err(w, ws, 2)),
        }
    }

    /// Checks every shape against the stored spec (from its widths: the spec's own sizes are
    /// trusted only once they match tensors the file holds).
    fn check_against(&self, spec: FcnSpec, dims: &[Dims]) -> Result<FcnSpec, ModelError> {
        let widths = spec.widths();
        for (i, (pair, d)) in widths.windows(2).zip(dims).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let pairs = [
                (weight_name(i), vec![d.out, d.inp], vec![fan_out, fan_in]),
                (bias_name(i), vec![d.bias], vec![fan_out]),
            ];
            if let Some((name, found, expected)) = pairs.into_iter().find(|(_, f, e)| f != e) {
                return Err(ModelError::MetadataMismatch {
                    path: self.path(),
                    name,
                    found,
                    expected,
                    widths,
                });
            }
        }
        Ok(spec)
    }

    /// The spec whose layers have these shapes (ReLU, σ_w = √2, σ_b = 1).
    fn infer(&self, dims: &[Dims]) -> Result<FcnSpec, ModelError> {
        for (i, d) in dims.iter().enumerate() {
            let prev = i.checked_sub(1).map(|j| dims[j].out);
            self.check_layer(i, d, prev)?;
        }
        let last = dims.len() - 1;
        if dims[last].out != 1 {
            return Err(self.inconsistent(
                weight_name(last),
                format!(
                    "the last layer's weight {} is {:?} but a basin network has one output \
                     logit, so it must be [1, {}]",
                    weight_name(last),
                    [dims[last].out, dims[last].inp],
                    dims[last].inp
                ),
            ));
        }
        Ok(FcnSpec {
            input_dim: dims[0].inp,
            hidden: dims[..last].iter().map(|d| d.out).collect(),
            ..FcnSpec::paper(dims[0].inp)
        })
    }

    fn check_layer(&self, i: usize, d: &Dims, prev: Option<usize>) -> Result<(), ModelError> {
        let (w, shape) = (weight_name(i), [d.out, d.inp]);
        if d.out == 0 || d.inp == 0 {
            let p = format!("{w} is {shape:?}: every width must be positive");
            return Err(self.inconsistent(w, p));
        }
        if let Some(p) = prev.filter(|&p| p != d.inp) {
            let hint = if d.out == p {
                " (is it transposed? weights are [out, in])"
            } else {
                ""
            };
            let msg = format!(
                "{w} is {shape:?} but layers.{} outputs {p}, so it must be [{}, {p}]{hint}",
                i - 1,
                d.out
            );
            return Err(self.inconsistent(w, msg));
        }
        if d.bias != d.out {
            let b = bias_name(i);
            let msg = format!(
                "{b} has length {} but {w} is {shape:?}: they must match",
                d.bias
            );
            return Err(self.inconsistent(b, msg));
        }
        Ok(())
    }

    fn inconsistent(&self, name: String, problem: String) -> ModelError {
        ModelError::InconsistentShapes {
            path: self.path(),
            name,
            problem,
        }
    }

    /// θ in basin's flat layout, checked finite.
    fn theta(&self, spec: &FcnSpec, dtype: StoredDtype) -> Result<Vec<f64>, ModelError> {
        let mut theta = Vec::with_capacity(spec.n_params());
        for i in 0..spec.layers().len() {
            for name in [weight_name(i), bias_name(i)] {
                let (start, end) = self.info(&name).data_offsets;
                let bytes = self.data.get(start..end).unwrap_or_default();
                dtype.decode_into(bytes, &mut theta);
            }
        }
        if let Some(k) = theta.iter().position(|x| !x.is_finite()) {
            return Err(non_finite(spec, k, theta[k], self.path));
        }
        Ok(theta)
    }
}

/// The number after `"key":` in `json` (an object serde_json has already parsed as an
/// [`FcnSpec`], so the key is a field name), parsed exactly by the standard library.
///
/// serde_json without its `float_roundtrip` feature can misround 17-digit decimals by one ulp;
/// this keeps the σ of a saved spec bit-exact. Falls back to serde_json's value (`None`) when the
/// key is absent or the two disagree by more than rounding.
fn exact_number(json: &str, key: &str) -> Option<f64> {
    let rest = json.split_once(&format!("\"{key}\""))?.1.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    let exact: f64 = rest[..end].parse().ok()?;
    let lenient: f64 = serde_json::from_str(&rest[..end]).ok()?;
    ((exact - lenient).abs() <= f64::EPSILON * lenient.abs()).then_some(exact)
}

fn unexpected_why(extra: &[String], n_layers: usize, from_metadata: bool) -> String {
    let mut why = Vec::new();
    if extra.iter().any(|n| layer_index(n).is_none()) {
        why.push(
            "only layers.{i}.weight and layers.{i}.bias are read; save a PyTorch network's \
             nn.Linear layers under these names, in order (see basin_nn::safetensors_io)"
                .to_string(),
        );
    }
    if extra.iter().any(|n| layer_index(n).is_some()) {
        why.push(if from_metadata {
            format!(
                "the basin.spec metadata describes {n_layers} layers, layers.0 to layers.{}",
                n_layers - 1
            )
        } else {
            format!(
                "layers are numbered from 0 without gaps, and there is no layers.{n_layers}, so \
                 these come after a gap"
            )
        });
    }
    why.join("; ")
}

fn missing_why(n_layers: usize, from_metadata: bool) -> String {
    let each = "each layer i needs layers.{i}.weight [out, in] and layers.{i}.bias [out]";
    match (from_metadata, n_layers) {
        (true, n) => format!("the basin.spec metadata describes {n} layers; {each}"),
        (false, 0) => format!("a model needs at least one layer; {each}"),
        (false, _) => each.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::Dtype;
    use safetensors::tensor::TensorView;

    /// The name every in-memory test file goes by; error messages must contain it.
    const NAME: &str = "net.safetensors";

    /// One tensor as a test builds it: name, dtype, shape, little-endian bytes.
    type Raw = (String, Dtype, Vec<usize>, Vec<u8>);

    fn tanh_spec() -> FcnSpec {
        FcnSpec {
            input_dim: 3,
            hidden: vec![5],
            activation: Activation::Tanh,
            sigma_w: 1.3,
            sigma_b: 0.2,
        }
    }

    fn read(bytes: &[u8]) -> Result<Model, ModelError> {
        from_bytes(bytes, Path::new(NAME), None)
    }

    fn f32_bytes(xs: &[f32]) -> Vec<u8> {
        xs.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn f32_tensor(name: &str, shape: &[usize], xs: &[f32]) -> Raw {
        assert_eq!(shape.iter().product::<usize>(), xs.len());
        (name.into(), Dtype::F32, shape.to_vec(), f32_bytes(xs))
    }

    /// Serializes with the safetensors crate itself, as a PyTorch export would be.
    fn serialize(tensors: &[Raw], meta: Option<HashMap<String, String>>) -> Vec<u8> {
        let views = tensors
            .iter()
            .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
        safetensors::serialize(views, meta).unwrap()
    }

    /// Reads a file back into raw tensors (sorted by name) and its metadata.
    fn unpack(bytes: &[u8]) -> (Vec<Raw>, Option<HashMap<String, String>>) {
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let st = SafeTensors::deserialize(bytes).unwrap();
        let mut raws: Vec<Raw> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
            .collect();
        raws.sort_by(|a, b| a.0.cmp(&b.0));
        (raws, header.metadata().clone())
    }

    /// A basin file of the tanh 3-5-1 net, edited by `edit` and re-serialized.
    fn edited(edit: impl FnOnce(&mut Vec<Raw>, &mut HashMap<String, String>)) -> Vec<u8> {
        let spec = tanh_spec();
        let (mut raws, meta) = unpack(&to_bytes(&spec, &spec.init::<f32>(1)).unwrap());
        let mut meta = meta.unwrap();
        edit(&mut raws, &mut meta);
        serialize(&raws, Some(meta))
    }

    /// The hand-made f32 tensors of a 3-4-2-1 net with no metadata (a PyTorch export).
    fn export_tensors() -> Vec<Raw> {
        let v = |n: usize, k: f32| (0..n).map(|j| k + j as f32 * 0.125).collect::<Vec<_>>();
        vec![
            f32_tensor("layers.0.weight", &[4, 3], &v(12, -0.5)),
            f32_tensor("layers.0.bias", &[4], &v(4, 0.25)),
            f32_tensor("layers.1.weight", &[2, 4], &v(8, -1.0)),
            f32_tensor("layers.1.bias", &[2], &v(2, 2.0)),
            f32_tensor("layers.2.weight", &[1, 2], &v(2, 0.75)),
            f32_tensor("layers.2.bias", &[1], &v(1, -3.0)),
        ]
    }

    fn export_with(edit: impl FnOnce(&mut Vec<Raw>)) -> Vec<u8> {
        let mut raws = export_tensors();
        edit(&mut raws);
        serialize(&raws, None)
    }

    fn replace(raws: &mut [Raw], raw: Raw) {
        let slot = raws.iter_mut().find(|r| r.0 == raw.0).unwrap();
        *slot = raw;
    }

    /// Asserts the message names the file and every needle.
    fn assert_says(e: &ModelError, needles: &[&str]) {
        let msg = e.to_string();
        assert!(msg.contains(NAME), "no file name in: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{n:?} not in: {msg}");
        }
    }

    fn bits32(xs: &[f32]) -> Vec<u32> {
        xs.iter().map(|x| x.to_bits()).collect()
    }

    fn bits64(xs: &[f64]) -> Vec<u64> {
        xs.iter().map(|x| x.to_bits()).collect()
    }

    fn temp_path(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("basin-st-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(NAME)
    }

    // -- Round trips: bit-exact spec and theta. --

    #[test]
    fn f32_paper_net_round_trips_bit_exactly_through_a_file() {
        let spec = FcnSpec::paper(784);
        let theta = spec.init::<f32>(11);
        let path = temp_path("f32");
        save(&path, &spec, &theta).unwrap();
        let m = load(&path, None).unwrap();
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        assert_eq!(m.spec, spec);
        assert_eq!((m.dtype, m.has_basin_metadata), (StoredDtype::F32, true));
        assert_eq!(bits32(&m.theta_as::<f32>()), bits32(&theta));
    }

    #[test]
    fn f64_nets_round_trip_bit_exactly() {
        for spec in [tanh_spec(), FcnSpec::paper(784)] {
            let theta = spec.init::<f64>(5);
            let m = read(&to_bytes(&spec, &theta).unwrap()).unwrap();
            assert_eq!(m.spec, spec);
            assert_eq!(m.dtype, StoredDtype::F64);
            assert_eq!(bits64(&m.theta), bits64(&theta));
        }
    }

    #[test]
    fn f32_tanh_net_round_trips_and_save_overwrites_atomically() {
        let spec = tanh_spec();
        let path = temp_path("overwrite");
        save(&path, &spec, &spec.init::<f32>(1)).unwrap();
        let theta = spec.init::<f32>(2);
        save(&path, &spec, &theta).unwrap();
        let m = load(&path, None).unwrap();
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        assert_eq!(leftovers, 1, "no temporary file may remain");
        assert_eq!(m.spec, spec);
        assert_eq!(bits32(&m.theta_as::<f32>()), bits32(&theta));
    }

    #[test]
    fn sigmas_survive_the_json_metadata_bit_exactly() {
        // serde_json writes the shortest round-tripping decimal; check awkward values read back.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let sigma_w = (x >> 11) as f64 / (1u64 << 53) as f64 * 10.0;
            let spec = FcnSpec {
                sigma_w,
                sigma_b: sigma_w / 3.0,
                ..tanh_spec()
            };
            let m = read(&to_bytes(&spec, &spec.init::<f32>(0)).unwrap()).unwrap();
            assert_eq!(m.spec.sigma_w.to_bits(), spec.sigma_w.to_bits());
            assert_eq!(m.spec.sigma_b.to_bits(), spec.sigma_b.to_bits());
        }
    }

    #[test]
    fn the_file_holds_out_in_row_major_tensors_and_the_metadata() {
        let spec = FcnSpec::paper(784);
        let theta = spec.init::<f32>(3);
        let bytes = to_bytes(&spec, &theta).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for (i, l) in spec.layers().iter().enumerate() {
            let w = st.tensor(&weight_name(i)).unwrap();
            assert_eq!(
                (w.dtype(), w.shape()),
                (Dtype::F32, &[l.fan_out, l.fan_in][..])
            );
            assert_eq!(w.data(), f32_bytes(&theta[l.w_range()]));
            let b = st.tensor(&bias_name(i)).unwrap();
            assert_eq!(b.shape(), &[l.fan_out]);
            assert_eq!(b.data(), f32_bytes(&theta[l.b_range()]));
        }
        assert_eq!(st.len(), 6);
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        assert_eq!(meta[META_FORMAT], FORMAT);
        assert_eq!(
            serde_json::from_str::<FcnSpec>(&meta[META_SPEC]).unwrap(),
            spec
        );
        // The data section is theta itself, and the bytes are deterministic.
        assert!(bytes.ends_with(&f32_bytes(&theta)));
        assert_eq!(bytes, to_bytes(&spec, &theta).unwrap());
        assert_eq!(
            bytes.len(),
            8 + (bytes.len() - 8 - 4 * theta.len()) + 4 * theta.len()
        );
        assert_eq!(
            (bytes.len() - 4 * theta.len()) % 8,
            0,
            "header padded to 8 bytes"
        );
    }

    #[test]
    fn activation_argument_overrides_the_stored_one() {
        let spec = tanh_spec();
        let bytes = to_bytes(&spec, &spec.init::<f64>(0)).unwrap();
        let m = from_bytes(&bytes, Path::new(NAME), Some(Activation::Erf)).unwrap();
        assert_eq!(
            m.spec,
            FcnSpec {
                activation: Activation::Erf,
                ..spec
            }
        );
    }

    // -- Files without basin metadata. --

    #[test]
    fn pytorch_export_loads_with_inferred_widths_and_relu_or_override() {
        let raws = export_tensors();
        let pt_meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes = serialize(&raws, Some(pt_meta));
        let m = read(&bytes).unwrap();
        assert!(!m.has_basin_metadata);
        assert_eq!(m.dtype, StoredDtype::F32);
        assert_eq!(m.spec.widths(), vec![3, 4, 2, 1]);
        assert_eq!(m.spec.activation, Activation::Relu);
        assert_eq!(
            (m.spec.sigma_w, m.spec.sigma_b),
            (std::f64::consts::SQRT_2, 1.0)
        );
        // export_tensors lists them in layer order: each weight, then its bias.
        let expected: Vec<u8> = raws.iter().flat_map(|r| r.3.clone()).collect();
        assert_eq!(f32_bytes(&m.theta_as::<f32>()), expected);
        let tanh = from_bytes(&bytes, Path::new(NAME), Some(Activation::Tanh)).unwrap();
        assert_eq!(tanh.spec.activation, Activation::Tanh);
        assert_eq!(tanh.theta, m.theta);
    }

    #[test]
    fn an_f64_export_loads_as_f64() {
        let raws: Vec<Raw> = export_tensors()
            .into_iter()
            .map(|(n, _, s, b)| {
                let xs: Vec<u8> = b
                    .chunks_exact(4)
                    .flat_map(|c| {
                        f64::from(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()
                    })
                    .collect();
                (n, Dtype::F64, s, xs)
            })
            .collect();
        let m = read(&serialize(&raws, None)).unwrap();
        assert_eq!(m.dtype, StoredDtype::F64);
        assert_eq!(
            m.theta,
            read(&serialize(&export_tensors(), None)).unwrap().theta
        );
    }

    // -- Errors: right variant, message naming the file and the tensor. --

    #[test]
    fn empty_garbage_and_missing_files_are_errors() {
        assert!(matches!(read(&[]), Err(ModelError::Empty { .. })));
        let e = read(b"this is not a safetensors file at all").unwrap_err();
        assert!(matches!(e, ModelError::NotSafetensors { .. }), "{e}");
        assert_says(&e, &["not a safetensors file"]);
        let e = load(
            &std::env::temp_dir().join("basin-st-no-such-dir/absent.safetensors"),
            None,
        )
        .unwrap_err();
        assert!(matches!(e, ModelError::Io { action: "read", .. }), "{e}");
        assert!(e.to_string().contains("absent.safetensors"));
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let spec = tanh_spec();
        let bytes = to_bytes(&spec, &spec.init::<f32>(4)).unwrap();
        for n in 0..bytes.len() {
            assert!(read(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        // Byte flips anywhere: Ok (a flipped value or padding) or Err, never a panic.
        let mut x = 7u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut b = bytes.clone();
            let k = (x >> 33) as usize % b.len();
            b[k] ^= 1 << ((x >> 29) % 8);
            let _ = read(&b);
        }
        // Random garbage, with and without a plausible header length.
        for len in [1, 7, 8, 9, 64, 1000] {
            let mut g: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            assert!(read(&g).is_err());
            if len >= 8 {
                g[..8].copy_from_slice(&((len - 8) as u64).to_le_bytes());
                assert!(read(&g).is_err());
            }
        }
    }

    #[test]
    fn missing_tensors_are_named() {
        let e = read(&export_with(|r| r.retain(|t| t.0 != "layers.1.bias"))).unwrap_err();
        assert!(matches!(e, ModelError::MissingTensor { ref name, .. } if name == "layers.1.bias"));
        assert_says(&e, &["layers.1.bias"]);
        let e = read(&edited(|r, _| r.retain(|t| t.0 != "layers.1.weight"))).unwrap_err();
        assert!(
            matches!(e, ModelError::MissingTensor { ref name, .. } if name == "layers.1.weight")
        );
        assert_says(&e, &["layers.1.weight", "basin.spec"]);
        let e = read(&serialize(&[], None)).unwrap_err();
        assert!(matches!(e, ModelError::MissingTensor { .. }), "{e}");
        assert_says(&e, &["layers.0.weight"]);
    }

    #[test]
    fn unsupported_and_mixed_dtypes_are_rejected() {
        let f16 = (
            "layers.0.bias".to_string(),
            Dtype::F16,
            vec![4],
            vec![0u8; 8],
        );
        let e = read(&export_with(|r| replace(r, f16))).unwrap_err();
        assert!(matches!(e, ModelError::UnsupportedDtype { .. }), "{e}");
        assert_says(&e, &["layers.0.bias", "F16", "F32 and F64"]);
        let f64_bias = (
            "layers.1.bias".to_string(),
            Dtype::F64,
            vec![2],
            vec![0u8; 16],
        );
        let e = read(&export_with(|r| replace(r, f64_bias))).unwrap_err();
        assert!(matches!(e, ModelError::MixedDtypes { .. }), "{e}");
        assert_says(&e, &["layers.0.weight", "layers.1.bias", "F64"]);
    }

    #[test]
    fn wrong_ranks_are_rejected() {
        let flat = f32_tensor("layers.0.weight", &[12], &[0.0; 12]);
        let e = read(&export_with(|r| replace(r, flat))).unwrap_err();
        assert!(matches!(e, ModelError::BadRank { expected: 2, .. }), "{e}");
        assert_says(&e, &["layers.0.weight", "[12]"]);
        let col = f32_tensor("layers.2.bias", &[1, 1], &[0.0]);
        let e = read(&export_with(|r| replace(r, col))).unwrap_err();
        assert!(matches!(e, ModelError::BadRank { expected: 1, .. }), "{e}");
        assert_says(&e, &["layers.2.bias"]);
    }

    #[test]
    fn shapes_that_do_not_chain_are_rejected() {
        let w = f32_tensor("layers.1.weight", &[2, 5], &[0.0; 10]);
        let e = read(&export_with(|r| replace(r, w))).unwrap_err();
        assert!(matches!(e, ModelError::InconsistentShapes { .. }), "{e}");
        assert_says(&e, &["layers.1.weight is [2, 5] but layers.0 outputs 4"]);
        let transposed = f32_tensor("layers.1.weight", &[4, 2], &[0.0; 8]);
        let e = read(&export_with(|r| replace(r, transposed))).unwrap_err();
        assert_says(&e, &["layers.1.weight", "transposed"]);
        let b = f32_tensor("layers.0.bias", &[3], &[0.0; 3]);
        let e = read(&export_with(|r| replace(r, b))).unwrap_err();
        assert!(
            matches!(e, ModelError::InconsistentShapes { ref name, .. } if name == "layers.0.bias")
        );
        assert_says(&e, &["layers.0.bias has length 3", "layers.0.weight"]);
        let e = read(&export_with(|r| {
            replace(r, f32_tensor("layers.2.weight", &[2, 2], &[0.0; 4]));
            replace(r, f32_tensor("layers.2.bias", &[2], &[0.0; 2]));
        }))
        .unwrap_err();
        assert!(matches!(e, ModelError::InconsistentShapes { .. }), "{e}");
        assert_says(&e, &["layers.2.weight", "one output"]);
        let e = read(&export_with(|r| {
            replace(r, f32_tensor("layers.0.weight", &[4, 0], &[]));
        }))
        .unwrap_err();
        assert_says(&e, &["layers.0.weight", "positive"]);
    }

    #[test]
    fn tensors_after_a_gap_or_with_unknown_names_are_listed() {
        let e = read(&export_with(|r| {
            r.push(f32_tensor("layers.5.weight", &[1, 1], &[0.0]));
            r.push(f32_tensor("layers.5.bias", &[1], &[0.0]));
        }))
        .unwrap_err();
        assert!(matches!(e, ModelError::UnexpectedTensors { ref names, .. } if names.len() == 2));
        assert_says(&e, &["layers.5.weight", "layers.5.bias", "gap"]);
        let e = read(&export_with(|r| {
            r.push(f32_tensor("fc.weight", &[1], &[0.0]))
        }))
        .unwrap_err();
        assert!(matches!(e, ModelError::UnexpectedTensors { .. }), "{e}");
        assert_says(&e, &["fc.weight", "layers.{i}.weight"]);
        let e = read(&export_with(|r| {
            for t in r.iter_mut() {
                t.0 = t.0.replace("layers.", "net.");
            }
        }))
        .unwrap_err();
        assert_says(&e, &["net.0.weight", "net.2.bias"]);
        let e = read(&edited(|r, _| {
            r.push(f32_tensor("layers.2.weight", &[1, 1], &[0.0]));
            r.push(f32_tensor("layers.02.bias", &[1], &[0.0]));
        }))
        .unwrap_err();
        assert_says(
            &e,
            &["layers.2.weight", "layers.02.bias", "describes 2 layers"],
        );
    }

    #[test]
    fn bad_or_disagreeing_metadata_is_rejected() {
        let bad = |key: &str, value: Option<&str>| {
            let e = read(&edited(|_, m| match value {
                Some(v) => drop(m.insert(key.into(), v.into())),
                None => drop(m.remove(key)),
            }))
            .unwrap_err();
            assert!(matches!(e, ModelError::BadMetadata { .. }), "{e}");
            assert_says(&e, &[key]);
        };
        bad(META_SPEC, Some("{not json"));
        bad(
            META_SPEC,
            Some(r#"{"input_dim": 3, "hidden": [5], "depth": 2}"#),
        );
        bad(META_SPEC, Some(r#"{"input_dim": 3, "hidden": [0]}"#));
        bad(META_SPEC, None);
        bad(META_FORMAT, Some("basin-fcn/9"));
        bad(META_FORMAT, None);
        let e = read(&edited(|_, m| {
            let spec = FcnSpec {
                hidden: vec![6],
                ..tanh_spec()
            };
            m.insert(META_SPEC.into(), serde_json::to_string(&spec).unwrap());
        }))
        .unwrap_err();
        assert!(matches!(e, ModelError::MetadataMismatch { .. }), "{e}");
        assert_says(&e, &["layers.0.weight", "[5, 3]", "[6, 3]"]);
    }

    #[test]
    fn non_finite_values_are_located() {
        let mut w = vec![0.5f32; 8];
        w[6] = f32::NAN;
        let e = read(&export_with(|r| {
            replace(r, f32_tensor("layers.1.weight", &[2, 4], &w))
        }))
        .unwrap_err();
        assert!(matches!(e, ModelError::NonFinite { ref index, .. } if index == &[1, 2]));
        assert_says(&e, &["layers.1.weight[1, 2]", "NaN"]);
        let e = read(&edited(|r, _| {
            replace(r, f32_tensor("layers.1.bias", &[1], &[f32::INFINITY]))
        }))
        .unwrap_err();
        assert_says(&e, &["layers.1.bias[0]", "inf"]);
    }

    #[test]
    fn save_checks_its_arguments() {
        let spec = tanh_spec();
        let path = Path::new(NAME);
        let e = save(path, &spec, &vec![0.0f32; spec.n_params() - 1]).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::ParamCount {
                    len: 25,
                    n_params: 26,
                    ..
                }
            ),
            "{e}"
        );
        assert_says(&e, &["26 parameters"]);
        let mut theta = spec.init::<f64>(0);
        theta[15] = f64::NEG_INFINITY;
        let e = save(path, &spec, &theta).unwrap_err();
        assert_says(&e, &["layers.0.bias[0]", "-inf"]);
        let bad = FcnSpec {
            hidden: vec![0],
            ..spec
        };
        let e = save(path, &bad, &[0.0f32; 1]).unwrap_err();
        assert!(matches!(e, ModelError::InvalidSpec { .. }), "{e}");
        assert!(!path.exists(), "nothing is written on error");
        let e = to_bytes(&tanh_spec(), &[0.0f32]).unwrap_err();
        assert!(e.to_string().contains(IN_MEMORY));
    }
}
