//! Monte Carlo kernel sums on disk: a safetensors file (readable by `safetensors.numpy`) with
//! one float64 `n × n` tensor per block sum (`block.0`, `block.1`, …) and the sum of squares
//! (`sum_sq`), each symmetric, and the metadata `format` (`basin-mc-sums/1`), `meta` (the
//! [`McMeta`] as JSON) and `block_counts` (samples per block, JSON). A shard's partial sums
//! and a whole estimate share the format. Files are written atomically and read tensor by
//! tensor, so that memory holds the sums once.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::PriorError;
use crate::mc_kernel::{McMeta, McSums};

/// The format tag in the metadata.
pub const FORMAT: &str = "basin-mc-sums/1";

fn file_err(path: &Path, problem: impl Into<String>) -> PriorError {
    PriorError::McFile {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Writes `sums` to `path` atomically.
pub fn write(sums: &McSums, path: &Path) -> Result<(), PriorError> {
    let io = |e: std::io::Error| file_err(path, format!("cannot write: {e}"));
    let n = sums.meta.n;
    let names: Vec<String> = (0..sums.meta.blocks)
        .map(|b| format!("block.{b}"))
        .chain(["sum_sq".to_owned()])
        .collect();
    let header = header_json(sums, &names)?;
    let mut file =
        basin_data::atomic::AtomicFile::create(path).map_err(|e| file_err(path, e.to_string()))?;
    file.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    file.write_all(header.as_bytes()).map_err(io)?;
    let mut row = Vec::with_capacity(n * 8);
    for b in 0..=sums.meta.blocks {
        let lower = if b < sums.meta.blocks {
            sums.block_sum(b)
        } else {
            sums.sum_sq()
        };
        for i in 0..n {
            row.clear();
            for j in 0..n {
                let at = if i >= j { j * n + i } else { i * n + j };
                row.extend_from_slice(&lower[at].to_le_bytes());
            }
            file.write_all(&row).map_err(io)?;
        }
    }
    file.commit().map_err(|e| file_err(path, e.to_string()))
}

/// The safetensors header: the tensors in `names`' order, back to back, then the metadata;
/// padded with spaces to a multiple of 8 bytes.
fn header_json(sums: &McSums, names: &[String]) -> Result<String, PriorError> {
    let n = sums.meta.n;
    let bytes = (n * n * 8) as u64;
    let mut map = serde_json::Map::new();
    for (k, name) in names.iter().enumerate() {
        map.insert(
            name.clone(),
            serde_json::json!({
                "dtype": "F64",
                "shape": [n, n],
                "data_offsets": [bytes * k as u64, bytes * (k as u64 + 1)],
            }),
        );
    }
    let meta =
        serde_json::to_string(&sums.meta).map_err(|e| PriorError::McSettings(e.to_string()))?;
    let counts = serde_json::to_string(sums.block_counts())
        .map_err(|e| PriorError::McSettings(e.to_string()))?;
    map.insert(
        "__metadata__".into(),
        serde_json::json!({"format": FORMAT, "meta": meta, "block_counts": counts}),
    );
    let mut header = serde_json::Value::Object(map).to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    Ok(header)
}

/// One tensor's entry in the header.
#[derive(serde::Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// Reads the sums written by [`write`].
pub fn read(path: &Path) -> Result<McSums, PriorError> {
    let file = File::open(path).map_err(|e| file_err(path, format!("cannot open: {e}")))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::with_capacity(1 << 20, file);
    let (header, data_start) = read_header(&mut r, size, path)?;
    let (meta, counts, tensors) = parse_header(&header, path)?;
    meta.check().map_err(|e| file_err(path, e.to_string()))?;
    let n = meta.n;
    let bytes = (n as u64)
        .checked_mul(n as u64)
        .and_then(|v| v.checked_mul(8))
        .filter(|&b| b.saturating_mul(meta.blocks as u64 + 1) <= size)
        .ok_or_else(|| file_err(path, "is truncated or corrupt: its sizes do not add up"))?;
    basin_data::memory::check(
        crate::mc_kernel::sums_bytes(n, meta.blocks),
        || format!("the Monte Carlo sums in {}", path.display()),
        "use a machine with more memory",
    )
    .map_err(PriorError::Memory)?;
    let mut read_tensor = |name: &str| -> Result<Vec<f64>, PriorError> {
        let t = tensors.get(name).ok_or_else(|| {
            file_err(path, format!("has no tensor {name}: not a whole sums file"))
        })?;
        let [begin, end] = t.data_offsets;
        if t.dtype != "F64" || t.shape != [n, n] || end - begin != bytes {
            return Err(file_err(
                path,
                format!("tensor {name} is not a float64 {n} × {n} matrix"),
            ));
        }
        if data_start + end > size {
            return Err(file_err(path, "is truncated: compute or copy it again"));
        }
        r.seek(SeekFrom::Start(data_start + begin))
            .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
        read_lower(&mut r, n).map_err(|e| file_err(path, format!("cannot read {name}: {e}")))
    };
    let blocks = (0..meta.blocks)
        .map(|b| read_tensor(&format!("block.{b}")))
        .collect::<Result<Vec<_>, _>>()?;
    let sum_sq = read_tensor("sum_sq")?;
    McSums::from_parts(meta, blocks, counts, sum_sq).map_err(|e| file_err(path, e.to_string()))
}

/// The header's text and the offset of the data.
fn read_header(r: &mut impl Read, size: u64, path: &Path) -> Result<(String, u64), PriorError> {
    let not_sums = || {
        file_err(
            path,
            "is not a Monte Carlo sums file (written by basin kernel)",
        )
    };
    let mut len = [0u8; 8];
    r.read_exact(&mut len).map_err(|_| not_sums())?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 || 8 + len > size {
        return Err(not_sums());
    }
    let mut header = vec![0u8; len as usize];
    r.read_exact(&mut header).map_err(|_| not_sums())?;
    let header = String::from_utf8(header).map_err(|_| not_sums())?;
    Ok((header, 8 + len))
}

type Parsed = (McMeta, Vec<usize>, HashMap<String, TensorEntry>);

/// The metadata and the tensors' entries of a header.
fn parse_header(header: &str, path: &Path) -> Result<Parsed, PriorError> {
    let not_sums = |why: &str| {
        file_err(
            path,
            format!("is not a Monte Carlo sums file (written by basin kernel): {why}"),
        )
    };
    let mut map: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(header).map_err(|e| not_sums(&e.to_string()))?;
    let info: HashMap<String, String> = map
        .remove("__metadata__")
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| not_sums("no metadata"))?;
    if info.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(not_sums(&format!("its format is not {FORMAT}")));
    }
    let field = |key: &str| info.get(key).ok_or_else(|| not_sums(&format!("no {key}")));
    let meta: McMeta =
        serde_json::from_str(field("meta")?).map_err(|e| not_sums(&format!("meta: {e}")))?;
    let counts: Vec<usize> = serde_json::from_str(field("block_counts")?)
        .map_err(|e| not_sums(&format!("block_counts: {e}")))?;
    let tensors = map
        .into_iter()
        .map(|(k, v)| serde_json::from_value(v).map(|t| (k, t)))
        .collect::<Result<HashMap<_, _>, _>>()
        .map_err(|e| not_sums(&e.to_string()))?;
    Ok((meta, counts, tensors))
}

/// An `n × n` row-major float64 matrix, kept as its lower triangle, column-major.
fn read_lower(r: &mut impl Read, n: usize) -> std::io::Result<Vec<f64>> {
    let mut out = vec![0.0; n * n];
    let mut row = vec![0u8; n * 8];
    for i in 0..n {
        r.read_exact(&mut row)?;
        for (j, b) in row.chunks_exact(8).enumerate().take(i + 1) {
            out[j * n + i] = f64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
    }
    Ok(out)
}
