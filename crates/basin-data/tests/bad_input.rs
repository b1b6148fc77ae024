//! Every kind of bad file gives a typed error that names the file, through the public loaders
//! and on real files on disk. None panics.

use std::io::Write;
use std::path::{Path, PathBuf};

use basin_data::{DataError, DataSource, cifar, idx, npy};
use flate2::{Compression, write::GzEncoder};

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn images(n: usize) -> Vec<u8> {
    idx::encode_images(n, 4, 4, &vec![9; n * 16])
}

/// Loads an IDX pair and checks the error's variant and that it names `culprit`.
fn idx_error(img: &Path, lab: &Path, culprit: &Path) -> DataError {
    let err = idx::load(img, lab).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&culprit.display().to_string()), "{msg}");
    err
}

#[test]
fn idx_truncated_wrong_magic_mismatch_corrupt_empty_absurd() {
    let d = Dir::new();
    let good_lab = d.file("labels", &idx::encode_labels(&[1, 2, 3]));
    let good_img = d.file("images", &images(3));
    assert!(idx::load(&good_img, &good_lab).is_ok());

    let full = images(3);
    let cut = d.file("cut", &full[..full.len() - 5]);
    assert!(matches!(
        idx_error(&cut, &good_lab, &cut),
        DataError::Truncated { .. }
    ));
    let cut_gz = d.file("cut.gz", &gzip(&full[..30]));
    assert!(matches!(
        idx_error(&cut_gz, &good_lab, &cut_gz),
        DataError::Truncated { .. }
    ));

    let swapped = idx_error(&good_lab, &good_img, &good_lab);
    assert!(matches!(swapped, DataError::BadMagic { .. }));

    let two = d.file("two", &idx::encode_labels(&[1, 2]));
    let mismatch = idx_error(&good_img, &two, &two);
    assert!(matches!(
        mismatch,
        DataError::CountMismatch {
            n_images: 3,
            n_labels: 2,
            ..
        }
    ));

    let mut corrupt = gzip(&full);
    let n = corrupt.len();
    corrupt[n / 2] ^= 0x55;
    corrupt.truncate(n - 3);
    let corrupt = d.file("corrupt.gz", &corrupt);
    assert!(matches!(
        idx_error(&corrupt, &good_lab, &corrupt),
        DataError::Gzip { .. }
    ));

    let empty = d.file("empty", &[]);
    assert!(matches!(
        idx_error(&empty, &good_lab, &empty),
        DataError::Empty { .. }
    ));
    let empty_gz = d.file("empty.gz", &gzip(&[]));
    assert!(matches!(
        idx_error(&empty_gz, &good_lab, &empty_gz),
        DataError::Empty { .. }
    ));

    let mut absurd = idx::encode_images(0, 0, 0, &[]);
    absurd[4..16].copy_from_slice(&[0xff; 12]);
    let absurd = d.file("absurd", &absurd);
    assert!(matches!(
        idx_error(&absurd, &good_lab, &absurd),
        DataError::DimensionOverflow { .. }
    ));
    let mut huge = idx::encode_images(0, 0, 0, &[]);
    huge[4..16].copy_from_slice(&[0, 0x10, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0]);
    let huge = d.file("huge", &huge);
    assert!(matches!(
        idx_error(&huge, &good_lab, &huge),
        DataError::Truncated { .. }
    ));

    let missing = d.0.path().join("nope");
    assert!(matches!(
        idx_error(&missing, &good_lab, &missing),
        DataError::Io { .. }
    ));
}

#[test]
fn npy_bad_files() {
    let d = Dir::new();
    let good = npy::NpyArray::new(vec![2, 2], npy::NpyData::F32(vec![1.0; 4]))
        .unwrap()
        .to_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.npy", vec![]),
        ("magic.npy", b"not numpy at all".to_vec()),
        ("truncated.npy", good[..good.len() - 1].to_vec()),
        ("header.npy", good[..40].to_vec()),
        ("corrupt.npy", gzip(&good)[..20].to_vec()),
    ];
    for (name, bytes) in cases {
        let p = d.file(name, &bytes);
        let msg = npy::read(&p).unwrap_err().to_string();
        assert!(msg.contains(name), "{name}: {msg}");
    }
    let gz = d.file("ok.npy.gz", &gzip(&good));
    assert_eq!(npy::read(&gz).unwrap().shape, [2, 2]);
}

#[test]
fn cifar_bad_files() {
    let d = Dir::new();
    let record = cifar::encode_batch(&[3], &[0; cifar::IMAGE_BYTES]);
    for f in cifar::TRAIN_FILES {
        d.file(f, &record);
    }
    let test = d.file(cifar::TEST_FILE, &record[..100]);
    let err = cifar::load(d.0.path(), cifar::Part::Test, None).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { .. })
            && err.to_string().contains(&test.display().to_string())
    );
    d.file(cifar::TEST_FILE, &[]);
    assert!(matches!(
        cifar::load(d.0.path(), cifar::Part::Test, None),
        Err(DataError::Empty { .. })
    ));
    std::fs::remove_file(d.0.path().join(cifar::TRAIN_FILES[4])).unwrap();
    let src: DataSource = format!("cifar10:{}", d.0.path().display()).parse().unwrap();
    let msg = src.load().unwrap_err().to_string();
    assert!(
        msg.contains("[\"data_batch_5.bin\"]") && msg.contains("CIFAR-10 binary"),
        "{msg}"
    );
}
