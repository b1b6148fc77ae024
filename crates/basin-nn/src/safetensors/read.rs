//! Reading model files, with or without basin metadata, every problem named with its fix.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ::safetensors::SafeTensors;
use ::safetensors::tensor::TensorInfo;

use super::errors::ModelError;
use super::format::{
    FORMAT, META_FORMAT, META_SPEC, StoredDtype, bias_name, layer_index, weight_name,
};
use crate::activation::Activation;
use crate::real::Real;
use crate::spec::FcnSpec;

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
    let not_st = |e: ::safetensors::SafeTensorError| match bad_tensor(bytes) {
        Some((name, problem)) => ModelError::BadTensorData {
            path: origin.to_owned(),
            name,
            problem,
        },
        None => ModelError::NotSafetensors {
            path: origin.to_owned(),
            problem: e.to_string(),
        },
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
        spec.validate().map_err(|p| bad(META_SPEC, p.to_string()))?;
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
            return Err(ModelError::non_finite(spec, k, theta[k], self.path));
        }
        Ok(theta)
    }
}

/// One tensor's entry in a safetensors header.
#[derive(serde::Deserialize)]
struct HeaderEntry {
    dtype: ::safetensors::Dtype,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

/// The first tensor whose header entry the safetensors parser rejects for its shape, dtype or
/// offsets (the parser does not say which), with what is wrong: the tensors' data, in offset
/// order, must lie back to back, each `shape × dtype size` bytes long, and fill the data
/// section. `None` where the header itself does not parse.
fn bad_tensor(bytes: &[u8]) -> Option<(String, String)> {
    let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let text = std::str::from_utf8(bytes.get(8..8usize.checked_add(len)?)?).ok()?;
    let mut header: HashMap<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    header.remove("__metadata__");
    let mut entries: Vec<(String, HeaderEntry)> = header
        .into_iter()
        .map(|(name, v)| Some((name, serde_json::from_value(v).ok()?)))
        .collect::<Option<_>>()?;
    entries.sort_by_key(|(name, e)| (e.data_offsets, name.clone()));
    let mut end = 0;
    for (name, e) in &entries {
        if let Some(problem) = entry_problem(e, end) {
            return Some((name.clone(), problem));
        }
        end = e.data_offsets.1;
    }
    let data = bytes.len() - 8 - len;
    let last = entries.last()?.0.clone();
    (end != data).then(|| {
        (
            last,
            format!(
                "the tensors' data ends at byte {end} of the data section, which holds {data} \
                 bytes"
            ),
        )
    })
}

/// What is wrong with one header entry whose data should start at byte `start`.
fn entry_problem(e: &HeaderEntry, start: usize) -> Option<String> {
    let (s, end) = e.data_offsets;
    if s != start || end < s {
        return Some(format!(
            "its data_offsets [{s}, {end}] should start at byte {start}, where the previous \
             tensor's data ends, and not end before they start"
        ));
    }
    let Some(values) = e.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Some(format!(
            "shape {:?} has more values than can be counted",
            e.shape
        ));
    };
    let bits = values.checked_mul(e.dtype.bitsize());
    match bits {
        Some(bits) if bits % 8 == 0 && bits / 8 == end - s => None,
        _ => Some(format!(
            "shape {:?} of {:?} needs {} bytes but its data_offsets [{s}, {end}] hold {}",
            e.shape,
            e.dtype,
            bits.map_or_else(|| "more".to_string(), |b| b.div_ceil(8).to_string()),
            end - s
        )),
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
             nn.Linear layers under these names, in order (see basin_nn::safetensors)"
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
