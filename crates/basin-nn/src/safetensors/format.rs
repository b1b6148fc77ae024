//! The model file format: the metadata keys, the tensor names and the stored dtypes (see
//! [the module docs](super)).

use std::fmt;

use crate::real::Real;
use crate::spec::FcnSpec;

/// The value of the `"basin.format"` metadata key this version writes and reads.
pub const FORMAT: &str = "basin-fcn/1";
/// The metadata key naming the file's format version.
pub const META_FORMAT: &str = "basin.format";
/// The metadata key holding the [`FcnSpec`] as JSON.
pub const META_SPEC: &str = "basin.spec";

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

    pub(super) fn from_safetensors(dtype: ::safetensors::Dtype) -> Option<Self> {
        match dtype {
            ::safetensors::Dtype::F32 => Some(Self::F32),
            ::safetensors::Dtype::F64 => Some(Self::F64),
            _ => None,
        }
    }

    pub(super) fn push_le(self, x: f64, out: &mut Vec<u8>) {
        match self {
            Self::F32 => out.extend_from_slice(&(x as f32).to_le_bytes()),
            Self::F64 => out.extend_from_slice(&x.to_le_bytes()),
        }
    }

    pub(super) fn decode_into(self, bytes: &[u8], out: &mut Vec<f64>) {
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

pub(super) fn weight_name(i: usize) -> String {
    format!("layers.{i}.weight")
}

pub(super) fn bias_name(i: usize) -> String {
    format!("layers.{i}.bias")
}

/// Parses `layers.{i}.weight` / `layers.{i}.bias` (canonical decimal `i`) into `i`.
pub(super) fn layer_index(name: &str) -> Option<usize> {
    let (idx, part) = name.strip_prefix("layers.")?.split_once('.')?;
    let i: usize = idx.parse().ok()?;
    (matches!(part, "weight" | "bias") && i.to_string() == idx).then_some(i)
}

/// The name and index within its tensor of the `k`-th flat parameter of `spec`.
pub(crate) fn locate(spec: &FcnSpec, k: usize) -> (String, Vec<usize>) {
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
