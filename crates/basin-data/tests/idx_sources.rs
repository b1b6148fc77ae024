//! The IDX sources with a separate test set, `idx:<images>,<labels>,<test-images>,<test-labels>`
//! and `idx:<dir>`, on tiny files written here: both load the training files as the pool and
//! the test files as the test set, which a split then draws T from, as for CIFAR-10; a folder
//! that lacks a file is refused with the file and the expected names.

use std::io::Write;
use std::path::PathBuf;

use basin_data::source::{IDX_DIR_FILES, idx_dir_files};
use basin_data::{ClassMap, Corpus, DataError, DataSource, SplitMode, SplitSpec, TestSource, idx};
use flate2::{Compression, write::GzEncoder};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Training example `i` has every pixel `i` and class `TRAIN_CLASSES[i]`; test example `i`
/// every pixel `100 + i` and class `TEST_CLASSES[i]`.
const TRAIN_CLASSES: [u8; 6] = [0, 5, 1, 6, 2, 7];
const TEST_CLASSES: [u8; 4] = [3, 8, 4, 9];

/// The four files' bytes, in the order of [`IDX_DIR_FILES`].
fn files() -> [Vec<u8>; 4] {
    let pixels =
        |offset: u8, n: usize| -> Vec<u8> { (0..n as u8).flat_map(|i| [offset + i; 4]).collect() };
    [
        idx::encode_images(6, 2, 2, &pixels(0, 6)),
        idx::encode_labels(&TRAIN_CLASSES),
        idx::encode_images(4, 2, 2, &pixels(100, 4)),
        idx::encode_labels(&TEST_CLASSES),
    ]
}

/// A folder of the four files under their standard names, those at the indices in `gzipped`
/// compressed under the name with `.gz`.
fn idx_dir(gzipped: &[usize]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, bytes)) in IDX_DIR_FILES.iter().zip(files()).enumerate() {
        let (name, bytes) = match gzipped.contains(&i) {
            true => (format!("{name}.gz"), gzip(&bytes)),
            false => (name.to_string(), bytes),
        };
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

fn load(spec: &str) -> Corpus {
    spec.parse::<DataSource>().unwrap().load().unwrap()
}

fn first_pixels(c: &Corpus) -> (Vec<f32>, Vec<f32>) {
    let firsts = |d: &basin_data::Dataset| (0..d.len()).map(|i| d.row(i)[0] * 255.0).collect();
    (firsts(&c.pool), firsts(c.test.as_ref().unwrap()))
}

fn check_corpus(c: &Corpus) {
    let test = c.test.as_ref().expect("a separate test set");
    assert_eq!((c.pool.len(), test.len()), (6, 4));
    assert_eq!(c.pool.class_ids(), Some(&TRAIN_CLASSES[..]));
    assert_eq!(test.class_ids(), Some(&TEST_CLASSES[..]));
    let (pool, test) = first_pixels(c);
    assert_eq!(pool, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(test, [100.0, 101.0, 102.0, 103.0]);
}

#[test]
fn four_files_and_a_folder_give_the_pool_and_the_test_set() {
    for gzipped in [&[][..], &[0, 1, 2, 3], &[1, 2]] {
        let dir = idx_dir(gzipped);
        let c = load(&format!("idx:{}", dir.path().display()));
        check_corpus(&c);
        let paths = idx_dir_files(dir.path()).unwrap();
        let four = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(load(&format!("idx:{four}")), c, "gzipped {gzipped:?}");
        let two = load(&format!(
            "idx:{},{}",
            paths[0].display(),
            paths[1].display()
        ));
        assert_eq!((two.pool, two.test), (c.pool, None));
    }
}

#[test]
fn a_folder_prefers_the_uncompressed_file_where_both_are_present() {
    let dir = idx_dir(&[]);
    let name = IDX_DIR_FILES[3];
    std::fs::write(dir.path().join(format!("{name}.gz")), gzip(b"not idx")).unwrap();
    assert_eq!(idx_dir_files(dir.path()).unwrap()[3], dir.path().join(name));
    check_corpus(&load(&format!("idx:{}", dir.path().display())));
}

#[test]
fn a_folder_missing_files_names_them_and_the_expected_names() {
    let dir = idx_dir(&[0]);
    std::fs::remove_file(dir.path().join(IDX_DIR_FILES[1])).unwrap();
    std::fs::remove_file(dir.path().join(IDX_DIR_FILES[3])).unwrap();
    let src: DataSource = format!("idx:{}", dir.path().display()).parse().unwrap();
    let err = src.load().unwrap_err();
    let DataError::MissingFiles { missing, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        missing,
        &[
            "train-labels-idx1-ubyte[.gz]",
            "t10k-labels-idx1-ubyte[.gz]"
        ]
    );
    let msg = err.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    for name in IDX_DIR_FILES {
        assert!(msg.contains(name), "{msg}");
    }

    for (path, what) in [
        (dir.path().join("absent"), "does not exist"),
        (dir.path().join(IDX_DIR_FILES[2]), "is not a folder"),
    ] {
        let err = format!("idx:{}", path.display())
            .parse::<DataSource>()
            .unwrap()
            .load()
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Invalid { .. }), "{msg}");
        assert!(
            msg.contains(what) && msg.contains(IDX_DIR_FILES[2]),
            "{msg}"
        );
        assert!(msg.contains("idx:<images>,<labels>"), "{msg}");
    }
}

#[test]
fn a_bad_test_file_is_named() {
    let dir = idx_dir(&[]);
    let p = |i: usize| dir.path().join(IDX_DIR_FILES[i]);
    let err = load_err(&[p(0), p(1), p(2), p(1)]);
    assert!(matches!(err, DataError::CountMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&p(2).display().to_string()));
    let absent = dir.path().join("absent");
    let err = load_err(&[p(0), p(1), p(2), absent.clone()]);
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    assert!(err.to_string().contains(&absent.display().to_string()));
}

fn load_err(paths: &[PathBuf]) -> DataError {
    let joined: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!("idx:{}", joined.join(","))
        .parse::<DataSource>()
        .unwrap()
        .load()
        .unwrap_err()
}

/// As for CIFAR-10: S and A come from the pool, T from the test set, in order from its start
/// (no `test_offset` needed) or by its own seeded permutation; the source's default class map
/// is MNIST's 0–4 against 5–9.
#[test]
fn a_split_takes_t_from_the_test_set() {
    let dir = idx_dir(&[0, 2]);
    let src: DataSource = format!("idx:{}", dir.path().display()).parse().unwrap();
    assert_eq!(src.default_test_offset(), None);
    assert_eq!(src.default_class_map(), Some(ClassMap::mnist_low_high()));
    let map = src.default_class_map().unwrap();
    let c = src.load().unwrap();
    let (pool, test) = (
        map.apply(&c.pool).unwrap(),
        map.apply(c.test.as_ref().unwrap()).unwrap(),
    );
    assert_eq!(pool.labels(), Some(&[0, 1, 0, 1, 0, 1][..]));
    assert_eq!(test.labels(), Some(&[0, 1, 0, 1][..]));

    let ordered = SplitSpec {
        train: 3,
        attack: 3,
        test: 3,
        mode: SplitMode::Ordered { test_offset: None },
    };
    let split = ordered.apply(&pool, Some(&test)).unwrap();
    assert_eq!(split.indices.test_source, TestSource::Separate);
    let pixel = |d: &basin_data::Dataset| -> Vec<f32> {
        (0..d.len()).map(|i| d.row(i)[0] * 255.0).collect()
    };
    assert_eq!(pixel(&split.train), [0.0, 1.0, 2.0]);
    assert_eq!(pixel(&split.attack), [3.0, 4.0, 5.0]);
    assert_eq!(split.attack.labels(), Some(&[0, 1, 0][..]), "flipped");
    assert_eq!(pixel(&split.test), [100.0, 101.0, 102.0]);
    assert_eq!(split.test.labels(), Some(&[0, 1, 0][..]));

    let seeded = SplitSpec {
        mode: SplitMode::Seeded { seed: 3 },
        ..ordered
    };
    let split = seeded.apply(&pool, Some(&test)).unwrap();
    assert!(pixel(&split.test).iter().all(|&p| p >= 100.0));
    assert!(
        pixel(&split.train)
            .iter()
            .chain(&pixel(&split.attack))
            .all(|&p| p < 100.0)
    );
    let too_many = SplitSpec { test: 5, ..ordered };
    assert!(matches!(
        too_many.apply(&pool, Some(&test)),
        Err(DataError::Split { .. })
    ));
}
