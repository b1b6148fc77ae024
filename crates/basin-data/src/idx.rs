//! The IDX format of MNIST and Fashion-MNIST: u8 images (magic `0x00000803`) and u8 labels
//! (magic `0x00000801`), big-endian dimensions, optionally gzip-compressed (detected by the
//! magic bytes, not the file name). Pixels are scaled by 1/255, and a data set of `rows × cols`
//! images has the image shape `1 × rows × cols`.

use std::path::Path;

use crate::dataset::{Dataset, ImageShape};
use crate::error::{DataError, Result};
use crate::io::read_maybe_gzip;

/// Magic number of an IDX file of u8 images: type 0x08 (unsigned byte), 3 dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels: type 0x08 (unsigned byte), 1 dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// A parsed IDX image file, borrowing its pixels from the input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxImages<'a> {
    /// Number of images.
    pub n: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `n · rows · cols` pixel bytes, image after image, row-major.
    pub pixels: &'a [u8],
}

/// Parses the header and payload of an IDX file with `ndims` dimensions.
///
/// Returns the dimensions and the payload. `path` names the file in errors.
fn parse_idx<'a>(
    bytes: &'a [u8],
    path: &Path,
    magic: u32,
    what: &str,
) -> Result<(Vec<usize>, &'a [u8])> {
    let ndims = (magic & 0xff) as usize;
    let truncated = |part: &str, expected: usize| DataError::Truncated {
        path: path.to_owned(),
        what: part.to_owned(),
        expected: expected as u64,
        found: bytes.len() as u64,
    };
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    if bytes.len() < 4 {
        return Err(truncated("the magic number", 4));
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_owned(),
            found: format!("{found:#010x}"),
            expected: format!("{magic:#010x} (IDX {what})"),
        });
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(truncated("the header", header));
    }
    let dims: Vec<u64> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    let payload_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
        .and_then(|p| p.checked_add(header).map(|_| p))
        .ok_or_else(|| DataError::DimensionOverflow {
            path: path.to_owned(),
            dims: dims.clone(),
        })?;
    let payload = &bytes[header..];
    if payload.len() < payload_len {
        return Err(truncated(
            &format!("the {what} payload of dimensions {dims:?}"),
            header + payload_len,
        ));
    }
    if payload.len() > payload_len {
        return Err(DataError::TrailingBytes {
            path: path.to_owned(),
            expected: (header + payload_len) as u64,
            extra: (payload.len() - payload_len) as u64,
        });
    }
    Ok((dims.iter().map(|&d| d as usize).collect(), payload))
}

/// Parses an (already decompressed) IDX image file.
pub fn parse_images<'a>(bytes: &'a [u8], path: &Path) -> Result<IdxImages<'a>> {
    let (dims, pixels) = parse_idx(bytes, path, IMAGES_MAGIC, "images")?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(DataError::Invalid {
            path: path.to_owned(),
            problem: format!("images of {}×{} pixels hold nothing", dims[1], dims[2]),
        });
    }
    Ok(IdxImages {
        n: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Parses an (already decompressed) IDX label file.
pub fn parse_labels<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a [u8]> {
    Ok(parse_idx(bytes, path, LABELS_MAGIC, "labels")?.1)
}

/// Converts u8 pixels to f32 in [0, 1], exactly `p / 255` rounded to nearest.
pub fn scale_pixels(pixels: &[u8]) -> Vec<f32> {
    let table: [f32; 256] = std::array::from_fn(|b| b as f32 / 255.0);
    pixels.iter().map(|&p| table[p as usize]).collect()
}

/// Builds a data set from the decompressed bytes of an image file and a label file.
///
/// The labels become both the class labels and the original class ids; the image shape is
/// `1 × rows × cols`.
pub fn decode_pair(
    images: &[u8],
    images_path: &Path,
    labels: &[u8],
    labels_path: &Path,
    name: &str,
) -> Result<Dataset> {
    let img = parse_images(images, images_path)?;
    let lab = parse_labels(labels, labels_path)?;
    if img.n != lab.len() {
        return Err(DataError::CountMismatch {
            images: images_path.to_owned(),
            labels: labels_path.to_owned(),
            n_images: img.n,
            n_labels: lab.len(),
        });
    }
    Dataset::new(
        name,
        img.rows * img.cols,
        scale_pixels(img.pixels),
        Some(lab.to_vec()),
        Some(lab.to_vec()),
    )?
    .with_image_shape(ImageShape::new(1, img.rows, img.cols))
}

/// Loads an IDX image file and its label file (each gzipped or not) as one data set.
pub fn load(images_path: &Path, labels_path: &Path) -> Result<Dataset> {
    let images = read_maybe_gzip(images_path)?;
    let labels = read_maybe_gzip(labels_path)?;
    let name = format!("idx:{},{}", images_path.display(), labels_path.display());
    decode_pair(&images, images_path, &labels, labels_path, &name)
}

/// Encodes u8 images as an (uncompressed) IDX image file.
pub fn encode_images(n: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    assert_eq!(pixels.len(), n * rows * cols, "pixel count");
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC, n as u32, rows as u32, cols as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes u8 labels as an (uncompressed) IDX label file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("f.idx")
    }

    #[test]
    fn round_trip() {
        let pixels: Vec<u8> = (0..24).map(|i| (i * 11) as u8).collect();
        let ds = decode_pair(
            &encode_images(2, 3, 4, &pixels),
            p(),
            &encode_labels(&[3, 9]),
            p(),
            "t",
        )
        .unwrap();
        assert_eq!((ds.len(), ds.dim()), (2, 12));
        assert_eq!(ds.image_shape(), Some(ImageShape::new(1, 3, 4)));
        assert_eq!(ds.row(1)[0], 132.0 / 255.0);
        assert_eq!(ds.labels(), Some(&[3u8, 9][..]));
        assert_eq!(ds.class_ids(), Some(&[3u8, 9][..]));
    }

    #[test]
    fn scaling_is_exact_division() {
        let all: Vec<u8> = (0..=255).collect();
        for (b, x) in all.iter().zip(scale_pixels(&all)) {
            assert_eq!(x, *b as f32 / 255.0);
        }
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let good = encode_images(2, 2, 2, &[0; 8]);
        assert!(matches!(
            parse_images(&good[..2], p()),
            Err(DataError::Truncated { .. })
        ));
        assert!(matches!(
            parse_images(&good[..10], p()),
            Err(DataError::Truncated { .. })
        ));
        assert!(matches!(
            parse_images(&good[..20], p()),
            Err(DataError::Truncated { .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            parse_images(&long, p()),
            Err(DataError::TrailingBytes { .. })
        ));
        assert!(matches!(
            parse_labels(&good, p()),
            Err(DataError::BadMagic { .. })
        ));
        assert!(matches!(
            parse_images(&[], p()),
            Err(DataError::Empty { .. })
        ));
        let mut huge = encode_images(0, 0, 0, &[]);
        huge[4..16].copy_from_slice(&[0xff; 12]);
        let err = parse_images(&huge, p()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::DimensionOverflow { .. } | DataError::Truncated { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let err = decode_pair(
            &encode_images(2, 1, 1, &[0, 0]),
            Path::new("imgs"),
            &encode_labels(&[1]),
            Path::new("labs"),
            "t",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("imgs") && msg.contains("labs"), "{msg}");
    }
}
