//! Writing model files: the header, then θ itself as the data section.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::errors::ModelError;
use super::format::{FORMAT, META_FORMAT, META_SPEC, StoredDtype, bias_name, weight_name};
use crate::real::Real;
use crate::spec::FcnSpec;

/// The name errors give to bytes that come from no file ([`to_bytes`]).
pub(super) const IN_MEMORY: &str = "<in-memory model>";

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
        Some(k) => Err(ModelError::non_finite(spec, k, theta[k].to_f64(), path)),
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
