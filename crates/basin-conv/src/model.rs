//! Conv-net model files: a PyTorch `state_dict` of the pytorch-cifar ResNet layout, as
//! safetensors.
//!
//! # The format
//!
//! The tensors are named as PyTorch names them: `conv1.weight`; `bn1.{weight, bias,
//! running_mean, running_var, num_batches_tracked}`; `layer{i}.{j}.conv{1,2,3}.weight` and
//! `layer{i}.{j}.bn{1,2,3}.*`; `layer{i}.{j}.shortcut.0.weight` and `layer{i}.{j}.shortcut.1.*`;
//! `linear.{weight, bias}`. Weights, biases and running statistics are all F32 or all F64;
//! `num_batches_tracked` is an I64 scalar. A file from
//! `safetensors.torch.save_file(model.state_dict(), path)` loads with no other information:
//! the block kind comes from the presence of `conv3`, the stages and blocks from the
//! `layer{i}.{j}` indices, the base width and the input channels from `conv1.weight`'s shape.
//! basin writes the same names (so `model.load_state_dict(safetensors.torch.load_file(path))`
//! loads a basin-trained net into pytorch-cifar's `ResNet`), plus the metadata
//! `"basin.format"` = `"basin-resnet/1"` and `"basin.spec"` = the [`ResNetSpec`] as JSON
//! (its activation and init scales).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ::safetensors::{Dtype, SafeTensors};
use basin_nn::Real;
use serde_json::{Map, Value, json};

use crate::graph::Graph;
use crate::spec::{BlockKind, ResNetSpec};
use crate::state::{BnState, RunningStats};

/// The value of the `"basin.format"` metadata key of conv-net model files.
pub const FORMAT: &str = "basin-resnet/1";
/// The metadata key naming the format.
pub const META_FORMAT: &str = "basin.format";
/// The metadata key holding the [`ResNetSpec`] as JSON.
pub const META_SPEC: &str = "basin.spec";
/// The tensor whose presence marks a file as a conv net.
pub const STEM: &str = "conv1.weight";

/// A conv net read from a model file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvModel {
    /// The architecture.
    pub spec: ResNetSpec,
    /// θ in the graph's layout, widened to f64 (exactly).
    pub theta: Vec<f64>,
    /// The BatchNorm running statistics.
    pub state: BnState,
    /// Whether the file stores F32 (else F64).
    pub f32: bool,
}

impl ConvModel {
    /// θ as `T`.
    pub fn theta_as<T: Real>(&self) -> Vec<T> {
        self.theta.iter().map(|&x| T::from_f64(x)).collect()
    }
}

/// Everything that can go wrong reading or writing a conv-net model file. Every message names
/// the file, the tensor and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConvModelError {
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
    /// Not a safetensors file.
    #[error(
        "{path}: not a safetensors file, or its header is corrupt or the file truncated \
         ({problem}); save the state_dict with safetensors.torch.save_file"
    )]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        problem: String,
    },
    /// The architecture cannot be read off the tensors.
    #[error("{path}: {problem}")]
    Architecture {
        /// The file.
        path: PathBuf,
        /// What is missing or inconsistent.
        problem: String,
    },
    /// A tensor the architecture needs is absent.
    #[error(
        "{path}: tensor {name} (shape {shape:?}) is missing; a pytorch-cifar ResNet state_dict \
         has it"
    )]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its expected shape.
        shape: Vec<usize>,
    },
    /// A tensor has the wrong shape.
    #[error("{path}: tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has an unsupported dtype, or the dtypes are mixed.
    #[error(
        "{path}: tensor {name} has dtype {found}, expected {expected}; convert the model \
         (.float() or .double()) before saving"
    )]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// Tensors that are not part of the architecture.
    #[error(
        "{path}: unexpected tensors {names:?}: they are not part of the {arch} read off the \
         other tensors; save only the model's state_dict"
    )]
    Unexpected {
        /// The file.
        path: PathBuf,
        /// The tensors.
        names: Vec<String>,
        /// The architecture inferred.
        arch: String,
    },
    /// A value is NaN or infinite, or a running variance negative.
    #[error("{path}: tensor {name}, entry {index}: {value} is {problem}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The flat index.
        index: usize,
        /// The value.
        value: f64,
        /// What is wrong.
        problem: &'static str,
    },
    /// The basin metadata is malformed.
    #[error("{path}: metadata {key}: {problem}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// θ or the state does not fit the spec when saving.
    #[error("{path}: {problem}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        problem: String,
    },
}

/// True when the safetensors header of `bytes` names the conv stem ([`STEM`]): the file is a
/// conv net, not a fully-connected one.
pub fn is_conv_model(bytes: &[u8]) -> bool {
    SafeTensors::read_metadata(bytes).is_ok_and(|(_, meta)| meta.tensors().contains_key(STEM))
}

/// Reads the model file `path`; see [`from_bytes`].
pub fn load(path: &Path) -> Result<ConvModel, ConvModelError> {
    let bytes = std::fs::read(path).map_err(|source| ConvModelError::Io {
        path: path.to_owned(),
        action: "read",
        source,
    })?;
    from_bytes(&bytes, path)
}

/// Reads a conv net from the bytes of a safetensors state_dict; `origin` names them in
/// errors. The architecture is inferred from the names and shapes; the basin metadata, when
/// present, adds the activation and init scales and must agree with the tensors.
pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<ConvModel, ConvModelError> {
    let path = || origin.to_owned();
    let st = SafeTensors::deserialize(bytes).map_err(|e| ConvModelError::NotSafetensors {
        path: path(),
        problem: e.to_string(),
    })?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| ConvModelError::NotSafetensors {
            path: path(),
            problem: e.to_string(),
        })?;
    let names: BTreeSet<String> = st.names().into_iter().map(str::to_string).collect();
    let (mut spec, stem_dtype) = infer(&st, &names, origin)?;
    if let Some(stored) = stored_spec(header.metadata().as_ref(), origin)? {
        if (
            stored.block,
            &stored.blocks,
            stored.base_width,
            stored.in_channels,
        ) != (spec.block, &spec.blocks, spec.base_width, spec.in_channels)
        {
            return Err(ConvModelError::Metadata {
                path: path(),
                key: META_SPEC,
                problem: format!("it says {stored}, but the tensors are a {spec}"),
            });
        }
        spec = stored;
    }
    let graph = Graph::resnet(&spec, 32, 32);
    let f32 = match stem_dtype {
        Dtype::F32 => true,
        Dtype::F64 => false,
        other => return Err(dtype_error(origin, STEM, other, "F32 or F64")),
    };
    let reader = Reader {
        st: &st,
        path: origin,
        f32,
    };
    let mut theta = Vec::with_capacity(graph.n_params());
    let mut expected = BTreeSet::new();
    for p in &graph.params {
        expected.insert(p.name.clone());
        theta.extend(reader.floats(&p.name, &p.shape)?);
    }
    let mut state = BnState::default();
    for slot in &graph.bns {
        let mean = reader.floats(&format!("{}.running_mean", slot.name), &[slot.c])?;
        let var_name = format!("{}.running_var", slot.name);
        let var = reader.floats(&var_name, &[slot.c])?;
        if let Some((index, &value)) = var.iter().enumerate().find(|(_, v)| **v < 0.0) {
            return Err(ConvModelError::BadValue {
                path: path(),
                name: var_name,
                index,
                value,
                problem: "negative (a variance)",
            });
        }
        let batches = reader.batches(&format!("{}.num_batches_tracked", slot.name))?;
        for suffix in ["running_mean", "running_var", "num_batches_tracked"] {
            expected.insert(format!("{}.{suffix}", slot.name));
        }
        state.layers.push(RunningStats { mean, var, batches });
    }
    let extra: Vec<String> = names.difference(&expected).cloned().collect();
    if !extra.is_empty() {
        return Err(ConvModelError::Unexpected {
            path: path(),
            names: extra,
            arch: spec.to_string(),
        });
    }
    Ok(ConvModel {
        spec,
        theta,
        state,
        f32,
    })
}

fn dtype_error(origin: &Path, name: &str, found: Dtype, expected: &str) -> ConvModelError {
    ConvModelError::Dtype {
        path: origin.to_owned(),
        name: name.to_string(),
        found: format!("{found:?}"),
        expected: expected.to_string(),
    }
}

/// Reads tensors of one float dtype.
struct Reader<'a> {
    st: &'a SafeTensors<'a>,
    path: &'a Path,
    f32: bool,
}

impl Reader<'_> {
    fn view(
        &self,
        name: &str,
        shape: &[usize],
    ) -> Result<::safetensors::tensor::TensorView<'_>, ConvModelError> {
        let t = self.st.tensor(name).map_err(|_| ConvModelError::Missing {
            path: self.path.to_owned(),
            name: name.to_string(),
            shape: shape.to_vec(),
        })?;
        if t.shape() != shape {
            return Err(ConvModelError::Shape {
                path: self.path.to_owned(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: t.shape().to_vec(),
            });
        }
        Ok(t)
    }

    /// The values of float tensor `name`, which must have `shape`, all finite.
    fn floats(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>, ConvModelError> {
        let t = self.view(name, shape)?;
        let values: Vec<f64> = match (t.dtype(), self.f32) {
            (Dtype::F32, true) => t
                .data()
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            (Dtype::F64, false) => t
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect(),
            (other, _) => {
                let want = if self.f32 {
                    "F32, as conv1.weight"
                } else {
                    "F64, as conv1.weight"
                };
                return Err(dtype_error(self.path, name, other, want));
            }
        };
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ConvModelError::BadValue {
                path: self.path.to_owned(),
                name: name.to_string(),
                index,
                value,
                problem: "not finite",
            });
        }
        Ok(values)
    }

    /// `num_batches_tracked`: an I64 scalar (shape `[]`; `[1]` is accepted too).
    fn batches(&self, name: &str) -> Result<i64, ConvModelError> {
        let t = self.st.tensor(name).map_err(|_| ConvModelError::Missing {
            path: self.path.to_owned(),
            name: name.to_string(),
            shape: vec![],
        })?;
        if t.dtype() != Dtype::I64 {
            return Err(dtype_error(self.path, name, t.dtype(), "I64 (a scalar)"));
        }
        match t
            .data()
            .get(..8)
            .filter(|_| t.shape().iter().product::<usize>() == 1)
        {
            Some(b) => Ok(i64::from_le_bytes(b.try_into().unwrap_or_default())),
            None => Err(ConvModelError::Shape {
                path: self.path.to_owned(),
                name: name.to_string(),
                expected: vec![],
                found: t.shape().to_vec(),
            }),
        }
    }
}

/// The architecture read off the tensor names and shapes, and the stem's dtype.
fn infer(
    st: &SafeTensors<'_>,
    names: &BTreeSet<String>,
    origin: &Path,
) -> Result<(ResNetSpec, Dtype), ConvModelError> {
    let arch = |problem: String| ConvModelError::Architecture {
        path: origin.to_owned(),
        problem,
    };
    let stem = st.tensor(STEM).map_err(|_| {
        arch(format!(
            "no tensor {STEM}: not a pytorch-cifar ResNet state_dict (a fully-connected net's \
             file names its layers layers.{{i}}.weight)"
        ))
    })?;
    let [width, channels, 3, 3] = stem.shape()[..] else {
        return Err(arch(format!(
            "{STEM} has shape {:?}; the ResNet stem is [width, in_channels, 3, 3]",
            stem.shape()
        )));
    };
    let block = if names.contains("layer1.0.conv3.weight") {
        BlockKind::Bottleneck
    } else {
        BlockKind::Basic
    };
    let mut blocks = Vec::new();
    while names.contains(&format!("layer{}.0.conv1.weight", blocks.len() + 1)) {
        let i = blocks.len() + 1;
        let count = (0..)
            .take_while(|j| names.contains(&format!("layer{i}.{j}.conv1.weight")))
            .count();
        blocks.push(count);
    }
    if blocks.is_empty() {
        return Err(arch(
            "no tensor layer1.0.conv1.weight: the ResNet has no blocks".into(),
        ));
    }
    let spec = ResNetSpec::general(block, blocks, width, channels);
    spec.validate().map_err(|e| arch(e.to_string()))?;
    Ok((spec, stem.dtype()))
}

/// The spec in the basin metadata, if the file has basin metadata.
fn stored_spec(
    meta: Option<&HashMap<String, String>>,
    origin: &Path,
) -> Result<Option<ResNetSpec>, ConvModelError> {
    let Some(meta) = meta.filter(|m| m.contains_key(META_FORMAT)) else {
        return Ok(None);
    };
    let bad = |key, problem: String| ConvModelError::Metadata {
        path: origin.to_owned(),
        key,
        problem,
    };
    if meta[META_FORMAT] != FORMAT {
        return Err(bad(
            META_FORMAT,
            format!("{:?} is not {FORMAT:?}", meta[META_FORMAT]),
        ));
    }
    let text = meta
        .get(META_SPEC)
        .ok_or_else(|| bad(META_SPEC, "absent".into()))?;
    let spec: ResNetSpec = serde_json::from_str(text)
        .map_err(|e| bad(META_SPEC, format!("not a ResNetSpec ({e})")))?;
    spec.validate().map_err(|e| bad(META_SPEC, e.to_string()))?;
    Ok(Some(spec))
}

/// Writes θ and the BatchNorm state of `spec` to `path` as a PyTorch state_dict in `T`'s
/// dtype, atomically.
pub fn save<T: Real>(
    path: &Path,
    spec: &ResNetSpec,
    theta: &[T],
    state: &BnState,
) -> Result<(), ConvModelError> {
    let bytes = encode(spec, theta, state, path)?;
    basin_data::io::write_atomic(path, &bytes).map_err(|e| ConvModelError::Io {
        path: path.to_owned(),
        action: "write",
        source: std::io::Error::other(e.to_string()),
    })
}

/// The bytes [`save`] writes.
pub fn to_bytes<T: Real>(
    spec: &ResNetSpec,
    theta: &[T],
    state: &BnState,
) -> Result<Vec<u8>, ConvModelError> {
    encode(spec, theta, state, Path::new("<in-memory model>"))
}

/// One tensor to write: name, dtype, shape and little-endian bytes.
struct Entry {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn float_bytes<T: Real>(values: impl Iterator<Item = f64>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        if T::NAME == "f32" {
            out.extend_from_slice(&(v as f32).to_le_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

fn encode<T: Real>(
    spec: &ResNetSpec,
    theta: &[T],
    state: &BnState,
    path: &Path,
) -> Result<Vec<u8>, ConvModelError> {
    let mismatch = |problem: String| ConvModelError::Mismatch {
        path: path.to_owned(),
        problem,
    };
    spec.validate().map_err(|e| mismatch(e.to_string()))?;
    let graph = Graph::resnet(spec, 32, 32);
    if theta.len() != graph.n_params() {
        return Err(mismatch(format!(
            "θ has {} values; {spec} has {}",
            theta.len(),
            graph.n_params()
        )));
    }
    if state.layers.len() != graph.bns.len() {
        return Err(mismatch(format!(
            "{} BatchNorm states for {} layers",
            state.layers.len(),
            graph.bns.len()
        )));
    }
    if let Some(k) = theta.iter().position(|x| !x.is_finite()) {
        return Err(mismatch(format!("θ[{k}] = {} is not finite", theta[k])));
    }
    let dtype = if T::NAME == "f32" { "F32" } else { "F64" };
    let mut entries = Vec::new();
    let mut bn_of: HashMap<&str, usize> = HashMap::new();
    for (k, slot) in graph.bns.iter().enumerate() {
        bn_of.insert(slot.name.as_str(), k);
    }
    for p in &graph.params {
        entries.push(Entry {
            name: p.name.clone(),
            dtype,
            shape: p.shape.clone(),
            bytes: float_bytes::<T>(theta[p.range()].iter().map(|x| x.to_f64())),
        });
        // PyTorch's state_dict puts a BatchNorm's buffers right after its bias.
        let Some(prefix) = p.name.strip_suffix(".bias") else {
            continue;
        };
        let Some(&k) = bn_of.get(prefix) else {
            continue;
        };
        let s = &state.layers[k];
        for (suffix, values) in [("running_mean", &s.mean), ("running_var", &s.var)] {
            entries.push(Entry {
                name: format!("{prefix}.{suffix}"),
                dtype,
                shape: vec![values.len()],
                bytes: float_bytes::<T>(values.iter().copied()),
            });
        }
        entries.push(Entry {
            name: format!("{prefix}.num_batches_tracked"),
            dtype: "I64",
            shape: vec![],
            bytes: s.batches.to_le_bytes().to_vec(),
        });
    }
    let mut map = Map::new();
    let spec_json = serde_json::to_string(spec).unwrap_or_default();
    map.insert(
        "__metadata__".into(),
        json!({ META_FORMAT: FORMAT, META_SPEC: spec_json }),
    );
    let mut offset = 0;
    for e in &entries {
        let end = offset + e.bytes.len();
        map.insert(
            e.name.clone(),
            json!({ "dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut header = Value::Object(map).to_string().into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for e in entries {
        out.extend_from_slice(&e.bytes);
    }
    Ok(out)
}
