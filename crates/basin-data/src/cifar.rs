//! CIFAR-10 in its binary distribution: `data_batch_1.bin` … `data_batch_5.bin` (training) and
//! `test_batch.bin`. Each record is one label byte (0–9) then 3,072 pixel bytes, channel-major
//! (1,024 red, 1,024 green, 1,024 blue, each 32×32 row-major). Features keep that CHW order,
//! scaled by 1/255 and optionally normalised per channel; the image shape is `3 × 32 × 32`.
//!
//! One normalisation serves both parts. The paper's code normalises training images with mean
//! (0.4914, 0.4822, 0.4465) and std (0.247, 0.243, 0.261) but test images with the same mean
//! and std (0.2023, 0.1994, 0.2010). basin applies [`ChannelNorm::PAPER`], the training std,
//! to both: it is the standard deviation of the training pixels, and a net (or the NNGP
//! kernel on S ∪ T) must see test inputs through the same map as training inputs, or the test
//! error measures the change of scale as well as generalisation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, ImageShape};
use crate::error::{DataError, Result};
use crate::idx::scale_pixels;
use crate::io::read_maybe_gzip;

/// The shape of a CIFAR-10 image.
pub const IMAGE_SHAPE: ImageShape = ImageShape::new(3, 32, 32);
/// Pixel bytes per image (3 × 32 × 32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes per record: the label, then the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// The training files, in the order they are concatenated.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";
/// The ten class names, by class id.
pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Per-channel normalisation `x ← (x − mean[c]) / std[c]`, applied after scaling by 1/255.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelNorm {
    /// Mean of each channel (R, G, B).
    pub mean: [f32; 3],
    /// Standard deviation of each channel (R, G, B); must be positive.
    pub std: [f32; 3],
}

impl ChannelNorm {
    /// The values the paper's code uses for training images: mean (0.4914, 0.4822, 0.4465),
    /// std (0.247, 0.243, 0.261). basin uses them for test images too (see the module doc).
    pub const PAPER: ChannelNorm = ChannelNorm {
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.247, 0.243, 0.261],
    };

    /// Normalises a data set of CHW images in place of a copy (the image shape kept).
    ///
    /// The feature dimension must be a multiple of 3 (three equal channel planes), and a set
    /// with an image shape must have 3 channels.
    pub fn apply(&self, data: Dataset) -> Result<Dataset> {
        let mut data = data;
        let shape_err = |problem: String| DataError::Shape {
            name: data.name().to_owned(),
            problem,
        };
        if let Some(c) = (0..3).find(|&c| !(self.std[c] > 0.0 && self.std[c].is_finite())) {
            return Err(shape_err(format!(
                "channel {c} has std {}; normalisation needs a positive std",
                self.std[c]
            )));
        }
        if let Some(shape) = data.image_shape()
            && shape.channels != 3
        {
            return Err(shape_err(format!(
                "images of shape {shape} are not RGB; the per-channel normalisation needs 3 \
                 channels"
            )));
        }
        if !data.dim().is_multiple_of(3) {
            return Err(shape_err(format!(
                "dimension {} is not three channel planes",
                data.dim()
            )));
        }
        let plane = data.dim() / 3;
        let dim = data.dim();
        for row in data.features_mut().chunks_exact_mut(dim) {
            for (c, chan) in row.chunks_exact_mut(plane).enumerate() {
                let (m, s) = (self.mean[c], self.std[c]);
                chan.iter_mut().for_each(|x| *x = (*x - m) / s);
            }
        }
        Ok(data)
    }
}

/// Which part of CIFAR-10 to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The 50,000 training images, `data_batch_1..5.bin` in order.
    Train,
    /// The 10,000 test images, `test_batch.bin`.
    Test,
}

/// Parses the (decompressed) bytes of one CIFAR-10 batch file into labels and pixel bytes.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
        });
    }
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        let whole = bytes.len() / RECORD_BYTES;
        return Err(DataError::Truncated {
            path: path.to_owned(),
            what: format!(
                "record {} (records are {RECORD_BYTES} bytes: 1 label + 3072 pixels)",
                whole + 1
            ),
            expected: ((whole + 1) * RECORD_BYTES) as u64,
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / RECORD_BYTES;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    for (i, rec) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::Invalid {
                path: path.to_owned(),
                problem: format!(
                    "record {i} has label {}; CIFAR-10 labels are 0..9 (is this CIFAR-100 or another file?)",
                    rec[0]
                ),
            });
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((labels, pixels))
}

fn part_files(part: Part) -> &'static [&'static str] {
    match part {
        Part::Train => &TRAIN_FILES,
        Part::Test => std::slice::from_ref(&TEST_FILE),
    }
}

/// Checks that `dir` holds all six CIFAR-10 files, naming every missing one.
pub fn check_dir(dir: &Path) -> Result<()> {
    let missing: Vec<String> = TRAIN_FILES
        .iter()
        .chain([TEST_FILE].iter())
        .filter(|f| !dir.join(f).is_file())
        .map(|f| f.to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(DataError::MissingFiles {
        dir: dir.to_owned(),
        missing,
        expected: "the CIFAR-10 binary version (cifar-10-binary.tar.gz, unpacked: data_batch_1.bin … data_batch_5.bin and test_batch.bin)".into(),
    })
}

/// Loads one part of CIFAR-10 from `dir`, scaled to [0, 1], with an optional normalisation.
///
/// Labels and class ids are the CIFAR-10 classes 0–9 (see [`CLASS_NAMES`]); the image shape
/// is [`IMAGE_SHAPE`].
pub fn load(dir: &Path, part: Part, norm: Option<&ChannelNorm>) -> Result<Dataset> {
    check_dir(dir)?;
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    for file in part_files(part) {
        let path: PathBuf = dir.join(file);
        let bytes = read_maybe_gzip(&path)?;
        let (l, p) = parse_batch(&bytes, &path)?;
        labels.extend(l);
        pixels.extend(p);
    }
    let tag = match part {
        Part::Train => "train",
        Part::Test => "test",
    };
    let data = Dataset::new(
        format!("cifar10:{}[{tag}]", dir.display()),
        IMAGE_BYTES,
        scale_pixels(&pixels),
        Some(labels.clone()),
        Some(labels),
    )?
    .with_image_shape(IMAGE_SHAPE)?;
    match norm {
        Some(n) => n.apply(data),
        None => Ok(data),
    }
}

/// Encodes labels and CHW pixel bytes as a CIFAR-10 batch file (for tests and synthetic data).
pub fn encode_batch(labels: &[u8], pixels: &[u8]) -> Vec<u8> {
    assert_eq!(pixels.len(), labels.len() * IMAGE_BYTES, "pixel count");
    let mut out = Vec::with_capacity(labels.len() * RECORD_BYTES);
    for (l, img) in labels.iter().zip(pixels.chunks_exact(IMAGE_BYTES)) {
        out.push(*l);
        out.extend_from_slice(img);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_dir(records_per_file: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (f, file) in TRAIN_FILES.iter().chain([TEST_FILE].iter()).enumerate() {
            let labels: Vec<u8> = (0..records_per_file)
                .map(|i| ((i + f) % 10) as u8)
                .collect();
            let pixels: Vec<u8> = (0..records_per_file * IMAGE_BYTES)
                .map(|i| ((i / 1024) % 3 * 100 + f) as u8)
                .collect();
            std::fs::write(dir.path().join(file), encode_batch(&labels, &pixels)).unwrap();
        }
        dir
    }

    #[test]
    fn loads_train_and_test_in_chw_order() {
        let dir = write_dir(3);
        let train = load(dir.path(), Part::Train, None).unwrap();
        assert_eq!((train.len(), train.dim()), (15, 3072));
        assert_eq!(train.image_shape(), Some(ImageShape::new(3, 32, 32)));
        assert_eq!(train.labels().unwrap()[..4], [0, 1, 2, 1]);
        let row = train.row(0);
        assert_eq!(
            (row[0], row[1024], row[2048]),
            (0.0, 100.0 / 255.0, 200.0 / 255.0)
        );
        let test = load(dir.path(), Part::Test, None).unwrap();
        assert_eq!(test.len(), 3);
        assert_eq!(test.row(0)[0], 5.0 / 255.0);
    }

    #[test]
    fn normalisation_is_per_channel() {
        let dir = write_dir(1);
        let n = ChannelNorm::PAPER;
        let t = load(dir.path(), Part::Test, Some(&n)).unwrap();
        let expect = |c: usize, b: f32| (b / 255.0 - n.mean[c]) / n.std[c];
        assert_eq!(t.row(0)[5], expect(0, 5.0));
        assert_eq!(t.row(0)[1024 + 7], expect(1, 105.0));
        assert_eq!(t.row(0)[3071], expect(2, 205.0));
        assert_eq!(t.image_shape(), Some(IMAGE_SHAPE));
        let grey = Dataset::new("grey", 3, vec![0.5; 3], None, None)
            .unwrap()
            .with_image_shape(ImageShape::new(1, 1, 3))
            .unwrap();
        let msg = n.apply(grey).unwrap_err().to_string();
        assert!(msg.contains("grey") && msg.contains("1x1x3"), "{msg}");
        let bad = ChannelNorm {
            std: [1.0, 0.0, 1.0],
            ..n
        };
        assert!(load(dir.path(), Part::Test, Some(&bad)).is_err());
    }

    #[test]
    fn missing_files_are_named() {
        let dir = write_dir(1);
        std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
        let msg = load(dir.path(), Part::Test, None).unwrap_err().to_string();
        assert!(msg.contains("data_batch_3.bin"), "{msg}");
    }

    #[test]
    fn truncated_records_and_bad_labels_are_errors() {
        let p = Path::new("b.bin");
        let good = encode_batch(&[1, 2], &[0; 2 * IMAGE_BYTES]);
        assert!(matches!(
            parse_batch(&good[..RECORD_BYTES + 5], p),
            Err(DataError::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad[RECORD_BYTES] = 42;
        let msg = parse_batch(&bad, p).unwrap_err().to_string();
        assert!(msg.contains("record 1") && msg.contains("42"), "{msg}");
        assert!(matches!(parse_batch(&[], p), Err(DataError::Empty { .. })));
    }
}
