//! NumPy's `.npy` format, read and write: dtypes f32, f64, u8, i8, i16, u16, i32, u32, i64,
//! u64 and bool, either
//! byte order, C order, format versions 1.0, 2.0 and 3.0. Fortran order, another dtype, or a
//! payload that does not fit the shape is a clear error.

use std::path::Path;

use crate::dataset::{Dataset, ImageShape};
use crate::error::{DataError, Result};
use crate::io::{read_maybe_gzip, write_atomic};

/// The six bytes every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The elements of an array, by dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `f4`.
    F32(Vec<f32>),
    /// `f8`.
    F64(Vec<f64>),
    /// `u1`.
    U8(Vec<u8>),
    /// `i1`.
    I8(Vec<i8>),
    /// `i4`.
    I32(Vec<i32>),
    /// `i8`.
    I64(Vec<i64>),
    /// `i2`.
    I16(Vec<i16>),
    /// `u2`.
    U16(Vec<u16>),
    /// `u4`.
    U32(Vec<u32>),
    /// `u8`.
    U64(Vec<u64>),
    /// `b1`.
    Bool(Vec<bool>),
}

/// An n-dimensional array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape; `[]` for a scalar.
    pub shape: Vec<usize>,
    /// The elements, `shape.iter().product()` of them.
    pub data: NpyData,
}

/// The dtypes this module reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    F32,
    F64,
    U8,
    I8,
    I32,
    I64,
    I16,
    U16,
    U32,
    U64,
    Bool,
}

impl Kind {
    fn from_code(code: &str) -> Option<(Kind, usize)> {
        Some(match code {
            "f4" => (Kind::F32, 4),
            "f8" => (Kind::F64, 8),
            "u1" => (Kind::U8, 1),
            "i1" => (Kind::I8, 1),
            "i4" => (Kind::I32, 4),
            "i8" => (Kind::I64, 8),
            "i2" => (Kind::I16, 2),
            "u2" => (Kind::U16, 2),
            "u4" => (Kind::U32, 4),
            "u8" => (Kind::U64, 8),
            "b1" => (Kind::Bool, 1),
            _ => return None,
        })
    }
}

impl NpyData {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::I16(v) => v.len(),
            NpyData::U16(v) => v.len(),
            NpyData::U32(v) => v.len(),
            NpyData::U64(v) => v.len(),
            NpyData::Bool(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The little-endian dtype string numpy writes, e.g. `<f4`.
    pub fn descr(&self) -> &'static str {
        match self {
            NpyData::F32(_) => "<f4",
            NpyData::F64(_) => "<f8",
            NpyData::U8(_) => "|u1",
            NpyData::I8(_) => "|i1",
            NpyData::I32(_) => "<i4",
            NpyData::I64(_) => "<i8",
            NpyData::I16(_) => "<i2",
            NpyData::U16(_) => "<u2",
            NpyData::U32(_) => "<u4",
            NpyData::U64(_) => "<u8",
            NpyData::Bool(_) => "|b1",
        }
    }

    /// Every element as f64 (exact for all dtypes but 64-bit integers beyond 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            NpyData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::F64(v) => v.clone(),
            NpyData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::U64(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }

    /// Every element as f32 (rounded to nearest for f64 and wide integers).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            NpyData::F32(v) => v.clone(),
            other => other.to_f64().into_iter().map(|x| x as f32).collect(),
        }
    }

    fn le_bytes(&self) -> Vec<u8> {
        match self {
            NpyData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::U8(v) => v.clone(),
            NpyData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            NpyData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            NpyData::Bool(v) => v.iter().map(|&x| u8::from(x)).collect(),
        }
    }
}

/// A value in the header dictionary.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// A syntax error in the Python dictionary of a `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum HeaderSyntax {
    #[error("expected '{expected}' at byte {at}")]
    Expected { expected: char, at: usize },
    #[error("expected a quoted string at byte {0}")]
    NotAString(usize),
    #[error("unterminated string")]
    Unterminated,
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("expected a non-negative integer at byte {0}")]
    NotAnInteger(usize),
    #[error("unexpected text after the dictionary at byte {0}")]
    TrailingText(usize),
}

/// An array whose data do not fill its shape ([`NpyArray::new`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{len} elements do not fill shape {shape:?}: give as many values as the shape's product")]
pub struct ShapeMismatch {
    /// The number of values given.
    pub len: usize,
    /// The shape asked for.
    pub shape: Vec<usize>,
}

/// A parser for the Python dict literal in a `.npy` header.
struct HeaderParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> HeaderParser<'a> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), HeaderSyntax> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(HeaderSyntax::Expected {
                expected: c as char,
                at: self.pos,
            })
        }
    }

    fn string(&mut self) -> std::result::Result<String, HeaderSyntax> {
        self.skip_ws();
        let quote = match self.s.get(self.pos) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(HeaderSyntax::NotAString(self.pos)),
        };
        let start = self.pos + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == quote)
            .ok_or(HeaderSyntax::Unterminated)?;
        self.pos = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec()).map_err(|_| HeaderSyntax::NotUtf8)
    }

    fn integer(&mut self) -> std::result::Result<u64, HeaderSyntax> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        let digits = digits.trim();
        // numpy may write 'L' suffixes (Python 2 longs).
        if self.s.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        digits
            .parse()
            .map_err(|_| HeaderSyntax::NotAnInteger(start))
    }

    fn value(&mut self) -> std::result::Result<Value, HeaderSyntax> {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        if rest.starts_with(b"True") {
            self.pos += 4;
            return Ok(Value::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.pos += 5;
            return Ok(Value::Bool(false));
        }
        if self.eat(b'(') {
            let mut dims = Vec::new();
            while !self.eat(b')') {
                dims.push(self.integer()?);
                if !self.eat(b',') {
                    self.expect(b')')?;
                    break;
                }
            }
            return Ok(Value::Tuple(dims));
        }
        self.string().map(Value::Str)
    }

    fn dict(&mut self) -> std::result::Result<Vec<(String, Value)>, HeaderSyntax> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        while !self.eat(b'}') {
            let key = self.string()?;
            self.expect(b':')?;
            entries.push((key, self.value()?));
            if !self.eat(b',') {
                self.expect(b'}')?;
                break;
            }
        }
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(HeaderSyntax::TrailingText(self.pos));
        }
        Ok(entries)
    }
}

/// The three fields of a `.npy` header.
struct Header {
    kind: Kind,
    item: usize,
    big_endian: bool,
    shape: Vec<usize>,
}

fn parse_header(text: &[u8], path: &Path) -> Result<Header> {
    let invalid = |problem: String| DataError::Invalid {
        path: path.to_owned(),
        problem,
    };
    let entries = HeaderParser { s: text, pos: 0 }
        .dict()
        .map_err(|e| invalid(format!("malformed .npy header: {e}")))?;
    let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let (Some(Value::Str(descr)), Some(Value::Bool(fortran)), Some(Value::Tuple(dims))) =
        (get("descr"), get("fortran_order"), get("shape"))
    else {
        return Err(invalid(
            "the .npy header lacks 'descr', 'fortran_order' or 'shape' (or has them with wrong types)"
                .into(),
        ));
    };
    if *fortran {
        return Err(invalid(
            "Fortran-order arrays are not supported; save with numpy.ascontiguousarray(a)".into(),
        ));
    }
    let mut chars = descr.chars();
    let order = chars.next();
    let (kind, item) = Kind::from_code(chars.as_str())
        .filter(|_| matches!(order, Some('<' | '>' | '|' | '=')))
        .ok_or_else(|| {
            invalid(format!(
                "unsupported dtype {descr:?}; supported: f4, f8, u1, i1, i2, u2, i4, u4, i8, u8, b1 (convert with a.astype('<f4'))"
            ))
        })?;
    let big_endian = order == Some('>') && item > 1;
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| DataError::DimensionOverflow {
            path: path.to_owned(),
            dims: dims.clone(),
        })?;
    Ok(Header {
        kind,
        item,
        big_endian,
        shape,
    })
}

fn decode_payload(h: &Header, payload: &[u8]) -> NpyData {
    fn words<const N: usize, T>(
        p: &[u8],
        be: bool,
        f: fn([u8; N]) -> T,
        g: fn([u8; N]) -> T,
    ) -> Vec<T> {
        p.chunks_exact(N)
            .map(|c| {
                let a: [u8; N] = c.try_into().expect("chunk of N bytes");
                if be { g(a) } else { f(a) }
            })
            .collect()
    }
    let be = h.big_endian;
    match h.kind {
        Kind::F32 => NpyData::F32(words(payload, be, f32::from_le_bytes, f32::from_be_bytes)),
        Kind::F64 => NpyData::F64(words(payload, be, f64::from_le_bytes, f64::from_be_bytes)),
        Kind::I32 => NpyData::I32(words(payload, be, i32::from_le_bytes, i32::from_be_bytes)),
        Kind::I64 => NpyData::I64(words(payload, be, i64::from_le_bytes, i64::from_be_bytes)),
        Kind::I16 => NpyData::I16(words(payload, be, i16::from_le_bytes, i16::from_be_bytes)),
        Kind::U16 => NpyData::U16(words(payload, be, u16::from_le_bytes, u16::from_be_bytes)),
        Kind::U32 => NpyData::U32(words(payload, be, u32::from_le_bytes, u32::from_be_bytes)),
        Kind::U64 => NpyData::U64(words(payload, be, u64::from_le_bytes, u64::from_be_bytes)),
        Kind::U8 => NpyData::U8(payload.to_vec()),
        Kind::I8 => NpyData::I8(payload.iter().map(|&b| b as i8).collect()),
        Kind::Bool => NpyData::Bool(payload.iter().map(|&b| b != 0).collect()),
    }
}

/// Parses the bytes of a `.npy` file. `path` names the origin in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let truncated = |what: &str, expected: usize| DataError::Truncated {
        path: path.to_owned(),
        what: what.to_owned(),
        expected: expected as u64,
        found: bytes.len() as u64,
    };
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    if !bytes.starts_with(MAGIC) {
        let n = bytes.len().min(6);
        return Err(DataError::BadMagic {
            path: path.to_owned(),
            found: format!("{:02x?}", &bytes[..n]),
            expected: "\\x93NUMPY (a .npy file)".into(),
        });
    }
    if bytes.len() < 8 {
        return Err(truncated("the format version", 8));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_bytes, start) = match major {
        1 => (2, 10),
        2 | 3 => (4, 12),
        _ => {
            return Err(DataError::Invalid {
                path: path.to_owned(),
                problem: format!(
                    "unsupported .npy format version {major}.{minor}; versions 1.0 to 3.0 are read"
                ),
            });
        }
    };
    if bytes.len() < start {
        return Err(truncated("the header length", start));
    }
    let mut len = [0u8; 4];
    len[..len_bytes].copy_from_slice(&bytes[8..8 + len_bytes]);
    let header_len = u32::from_le_bytes(len) as usize;
    let data_start = start + header_len;
    if bytes.len() < data_start {
        return Err(truncated("the header", data_start));
    }
    let header = parse_header(&bytes[start..data_start], path)?;
    let payload_len = header
        .shape
        .iter()
        .try_fold(header.item, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::DimensionOverflow {
            path: path.to_owned(),
            dims: header.shape.iter().map(|&d| d as u64).collect(),
        })?;
    let payload = &bytes[data_start..];
    if payload.len() < payload_len {
        return Err(truncated(
            &format!("the payload of shape {:?}", header.shape),
            data_start.saturating_add(payload_len),
        ));
    }
    if payload.len() > payload_len {
        return Err(DataError::TrailingBytes {
            path: path.to_owned(),
            expected: (data_start + payload_len) as u64,
            extra: (payload.len() - payload_len) as u64,
        });
    }
    Ok(NpyArray {
        data: decode_payload(&header, payload),
        shape: header.shape,
    })
}

/// Reads a `.npy` file (a gzipped one too).
pub fn read(path: &Path) -> Result<NpyArray> {
    parse(&read_maybe_gzip(path)?, path)
}

impl NpyArray {
    /// Builds an array, checking that the data fill the shape.
    pub fn new(shape: Vec<usize>, data: NpyData) -> std::result::Result<Self, ShapeMismatch> {
        let n: Option<usize> = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(ShapeMismatch {
                len: data.len(),
                shape,
            });
        }
        Ok(Self { shape, data })
    }

    /// Encodes the array as `.npy` bytes: version 1.0 (2.0 if the header needs it),
    /// little-endian, C order, header padded so the data start on a 64-byte boundary.
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = match self.shape.as_slice() {
            [d] => format!("({d},)"),
            dims => format!(
                "({})",
                dims.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut dict = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.data.descr()
        );
        let padded = |prefix: usize| dict.len() + 1 + (64 - (prefix + dict.len() + 1) % 64) % 64;
        let v1 = padded(10) <= usize::from(u16::MAX);
        let prefix = if v1 { 10 } else { 12 };
        let pad = padded(prefix) - dict.len() - 1;
        dict.push_str(&" ".repeat(pad));
        dict.push('\n');
        let mut out = Vec::with_capacity(prefix + dict.len() + self.data.len() * 8);
        out.extend_from_slice(MAGIC);
        if v1 {
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&[2, 0]);
            out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(&self.data.le_bytes());
        out
    }

    /// Writes the array to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes())
    }
}

/// The image shape of the examples of an array of `shape`, where it holds images.
///
/// `(n, C, H, W)` (PyTorch's NCHW order) gives `C × H × W` and `(n, H, W)` gives `1 × H × W`.
/// `(n,)`, `(n, d)` and arrays of five or more axes have none, and so has a 4-d array that
/// looks channels-last, `(n, H, W, C)` with `C` 1 or 3 and `H` neither, since reading it as
/// CHW would scramble its pixels.
fn image_shape_of(shape: &[usize]) -> Option<ImageShape> {
    match *shape {
        [_, h, w] => Some(ImageShape::new(1, h, w)),
        [_, c, h, w] => {
            let channels_last = matches!(w, 1 | 3) && !matches!(c, 1 | 3);
            (!channels_last).then_some(ImageShape::new(c, h, w))
        }
        _ => None,
    }
}

/// Loads `x.npy` (shape `(n, …)`, any supported dtype, flattened to `n × d` f32) and optionally
/// `y.npy` (shape `(n,)` or `(n, 1)`, integer, bool or integral float labels in 0..=255).
///
/// The labels become both the class labels and the class ids. An `x` of shape `(n, C, H, W)`
/// is a set of `C × H × W` images and one of shape `(n, H, W)` a set of `1 × H × W` images
/// (each row in CHW order, as numpy stores them); `(n, d)` stays flat. A channels-last
/// `(n, H, W, C)` array (`C` 1 or 3) loads flat, without an image shape: transpose it with
/// `numpy.transpose(x, (0, 3, 1, 2))` to load it as images.
pub fn load_dataset(x_path: &Path, y_path: Option<&Path>) -> Result<Dataset> {
    let x = read(x_path)?;
    let invalid = |path: &Path, problem: String| DataError::Invalid {
        path: path.to_owned(),
        problem,
    };
    let (n, dim) = match x.shape.as_slice() {
        [] => {
            return Err(invalid(
                x_path,
                "a scalar is not a data set; x must have shape (n, d)".into(),
            ));
        }
        [n] => (*n, 1),
        [n, rest @ ..] => (*n, rest.iter().product()),
    };
    if n == 0 || dim == 0 {
        return Err(invalid(
            x_path,
            format!("shape {:?} holds no examples", x.shape),
        ));
    }
    let labels = y_path.map(|p| read_labels(p, n)).transpose()?;
    let name = match y_path {
        Some(y) => format!("npy:{},{}", x_path.display(), y.display()),
        None => format!("npy:{}", x_path.display()),
    };
    let data = Dataset::new(name, dim, x.data.to_f32(), labels.clone(), labels)?;
    match image_shape_of(&x.shape) {
        Some(shape) => data.with_image_shape(shape),
        None => Ok(data),
    }
}

fn read_labels(path: &Path, n: usize) -> Result<Vec<u8>> {
    let y = read(path)?;
    let invalid = |problem: String| DataError::Invalid {
        path: path.to_owned(),
        problem,
    };
    if !matches!(y.shape.as_slice(), [m] | [m, 1] if *m == n) {
        return Err(invalid(format!(
            "labels have shape {:?} but x has {n} examples; expected ({n},)",
            y.shape
        )));
    }
    y.data
        .to_f64()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                Ok(v as u8)
            } else {
                Err(invalid(format!(
                    "label {i} is {v}; labels must be integers in 0..=255"
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("a.npy")
    }

    fn all_dtypes() -> Vec<NpyData> {
        vec![
            NpyData::F32(vec![1.5, -2.0, f32::MAX, 0.0, 1e-30, 3.0]),
            NpyData::F64(vec![1.5, -2.0, f64::MIN_POSITIVE, 0.0, 1e300, 3.0]),
            NpyData::U8(vec![0, 1, 2, 253, 254, 255]),
            NpyData::I8(vec![-128, -1, 0, 1, 2, 127]),
            NpyData::I32(vec![i32::MIN, -1, 0, 1, 2, i32::MAX]),
            NpyData::I64(vec![i64::MIN, -1, 0, 1, 2, i64::MAX]),
            NpyData::I16(vec![i16::MIN, -1, 0, 1, 2, i16::MAX]),
            NpyData::U16(vec![0, 1, 2, 3, 4, u16::MAX]),
            NpyData::U32(vec![0, 1, 2, 3, 4, u32::MAX]),
            NpyData::U64(vec![0, 1, 2, 3, 4, u64::MAX]),
            NpyData::Bool(vec![true, false, true, true, false, false]),
        ]
    }

    #[test]
    fn round_trips_every_dtype_and_aligns_the_data() {
        for data in all_dtypes() {
            for shape in [vec![6], vec![2, 3], vec![1, 2, 3]] {
                let a = NpyArray::new(shape, data.clone()).unwrap();
                let bytes = a.to_bytes();
                let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
                assert_eq!(header_end % 64, 0);
                assert_eq!(parse(&bytes, p()).unwrap(), a);
            }
        }
    }

    #[test]
    fn reads_versions_two_and_three_and_big_endian() {
        let header = b"{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }\n";
        for major in [2u8, 3] {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&[major, 0]);
            b.extend_from_slice(&(header.len() as u32).to_le_bytes());
            b.extend_from_slice(header);
            b.extend_from_slice(&7i32.to_be_bytes());
            b.extend_from_slice(&(-9i32).to_be_bytes());
            let a = parse(&b, p()).unwrap();
            assert_eq!(a.data, NpyData::I32(vec![7, -9]));
        }
    }

    fn with_header(header: &str, payload: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn scalars_and_python2_longs_parse() {
        let a = parse(
            &with_header(
                "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                &2.5f64.to_le_bytes(),
            ),
            p(),
        )
        .unwrap();
        assert_eq!((a.shape.len(), a.data.to_f64()), (0, vec![2.5]));
        let b = parse(
            &with_header(
                "{'descr':'|u1','fortran_order':False,'shape':(1L, 2L)}",
                &[4, 5],
            ),
            p(),
        )
        .unwrap();
        assert_eq!(b.shape, vec![1, 2]);
    }

    #[test]
    fn clear_errors_for_unsupported_or_inconsistent_files() {
        let cases = [
            (
                "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
                4,
                "Fortran",
            ),
            (
                "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
                16,
                "unsupported dtype",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                8,
                "truncated",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                8,
                "unexpected bytes",
            ),
            ("{'descr': '<f4', 'shape': (1,), }", 4, "lacks"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
                4,
                "malformed",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
                0,
                "overflow",
            ),
        ];
        for (header, payload, needle) in cases {
            let msg = parse(&with_header(header, &vec![0; payload]), p())
                .unwrap_err()
                .to_string();
            assert!(msg.contains(needle), "{header}: {msg}");
        }
        assert!(
            parse(b"PK\x03\x04", p())
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        assert!(
            parse(b"\x93NUMPY\x09\x00", p())
                .unwrap_err()
                .to_string()
                .contains("version")
        );
        assert!(matches!(parse(b"", p()), Err(DataError::Empty { .. })));
    }

    #[test]
    fn image_shapes_of_array_shapes() {
        let s = ImageShape::new;
        for (shape, expect) in [
            (&[5, 3, 32, 32][..], Some(s(3, 32, 32))),
            (&[5, 1, 28, 28], Some(s(1, 28, 28))),
            (&[5, 4, 2, 6], Some(s(4, 2, 6))),
            (&[5, 3, 8, 3], Some(s(3, 8, 3))),
            (&[5, 1, 1, 1], Some(s(1, 1, 1))),
            (&[5, 28, 28], Some(s(1, 28, 28))),
            (&[5, 32, 32, 3], None),
            (&[5, 28, 28, 1], None),
            (&[5, 784], None),
            (&[5], None),
            (&[], None),
            (&[5, 2, 3, 4, 5], None),
        ] {
            assert_eq!(image_shape_of(shape), expect, "{shape:?}");
        }
    }

    /// Writes `x` of `shape` (values 0, 1, 2, …) and loads it.
    fn load_shaped(shape: &[usize]) -> Dataset {
        let dir = tempfile::tempdir().unwrap();
        let x = dir.path().join("x.npy");
        let len = shape.iter().product::<usize>();
        NpyArray::new(
            shape.to_vec(),
            NpyData::U8((0..len).map(|i| i as u8).collect()),
        )
        .unwrap()
        .write(&x)
        .unwrap();
        load_dataset(&x, None).unwrap()
    }

    #[test]
    fn loaded_image_shapes_follow_the_array() {
        let nchw = load_shaped(&[2, 3, 2, 4]);
        assert_eq!((nchw.len(), nchw.dim()), (2, 24));
        assert_eq!(nchw.image_shape(), Some(ImageShape::new(3, 2, 4)));
        // Row 1, channel 2, pixel row 1, column 3: the array's element [1, 2, 1, 3].
        assert_eq!(
            nchw.row(1)[(2 * 2 + 1) * 4 + 3],
            (24 + 2 * 8 + 4 + 3) as f32
        );
        let nhw = load_shaped(&[2, 3, 5]);
        assert_eq!(
            (nhw.dim(), nhw.image_shape()),
            (15, Some(ImageShape::new(1, 3, 5)))
        );
        let flat = load_shaped(&[2, 7]);
        assert_eq!((flat.dim(), flat.image_shape()), (7, None));
        let nhwc = load_shaped(&[2, 4, 4, 3]);
        assert_eq!((nhwc.dim(), nhwc.image_shape()), (48, None));
        let msg = nhwc.require_image_shape().unwrap_err().to_string();
        assert!(msg.contains("numpy.transpose"), "{msg}");
    }

    #[test]
    fn dataset_from_x_and_y() {
        let dir = tempfile::tempdir().unwrap();
        let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
        NpyArray::new(
            vec![3, 2, 2],
            NpyData::F64((0..12).map(f64::from).collect()),
        )
        .unwrap()
        .write(&x)
        .unwrap();
        NpyArray::new(vec![3], NpyData::I64(vec![0, 1, 1]))
            .unwrap()
            .write(&y)
            .unwrap();
        let d = load_dataset(&x, Some(&y)).unwrap();
        assert_eq!((d.len(), d.dim()), (3, 4));
        assert_eq!(d.image_shape(), Some(ImageShape::new(1, 2, 2)));
        assert_eq!(d.row(2), &[8.0, 9.0, 10.0, 11.0]);
        assert_eq!(d.labels(), Some(&[0u8, 1, 1][..]));
        assert!(load_dataset(&x, None).unwrap().labels().is_none());

        NpyArray::new(vec![2], NpyData::I64(vec![0, 1]))
            .unwrap()
            .write(&y)
            .unwrap();
        assert!(
            load_dataset(&x, Some(&y))
                .unwrap_err()
                .to_string()
                .contains("(3,)")
        );
        NpyArray::new(vec![3], NpyData::F32(vec![0.0, 0.5, 1.0]))
            .unwrap()
            .write(&y)
            .unwrap();
        assert!(
            load_dataset(&x, Some(&y))
                .unwrap_err()
                .to_string()
                .contains("label 1")
        );
        NpyArray::new(vec![3, 1], NpyData::F64(vec![0.0, f64::NAN, 1.0]))
            .unwrap()
            .write(&x)
            .unwrap();
        assert!(
            load_dataset(&x, None)
                .unwrap_err()
                .to_string()
                .contains("NaN")
        );
    }
}
