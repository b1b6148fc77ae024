//! Every source gives its images their shape, through the public `--data` syntax and on real
//! files on disk, and the shape survives binarisation, the split and normalisation; flat
//! sources (the Boolean cube, 2-d `.npy`) have none.

use std::path::{Path, PathBuf};

use basin_data::augment::Draw;
use basin_data::cifar::{self, IMAGE_BYTES, TEST_FILE, TRAIN_FILES};
use basin_data::{
    Augment, ChannelNorm, ClassMap, DataSource, Dataset, ImageShape, SplitMode, SplitSpec, idx, npy,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn load(spec: &str) -> basin_data::Corpus {
    spec.parse::<DataSource>().unwrap().load().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A CIFAR-10 directory of `per_file` records per batch file, classes cycling through 0–9.
fn cifar_dir(per_file: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (f, file) in TRAIN_FILES.iter().chain([TEST_FILE].iter()).enumerate() {
        let labels: Vec<u8> = (0..per_file).map(|i| ((i + f) % 10) as u8).collect();
        let pixels: Vec<u8> = (0..per_file * IMAGE_BYTES)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(dir.path().join(file), cifar::encode_batch(&labels, &pixels)).unwrap();
    }
    dir
}

#[test]
fn embedded_mnist_is_1x28x28() {
    let c = load("mnist");
    assert_eq!(c.pool.image_shape(), Some(ImageShape::new(1, 28, 28)));
    assert_eq!(c.pool.image_shape().unwrap().to_string(), "1x28x28");
}

#[test]
fn idx_images_are_one_channel_of_rows_by_cols() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("img"), dir.path().join("lab"));
    std::fs::write(&img, idx::encode_images(4, 5, 7, &[3; 4 * 35])).unwrap();
    std::fs::write(&lab, idx::encode_labels(&[0, 1, 2, 3])).unwrap();
    let c = load(&format!("idx:{},{}", img.display(), lab.display()));
    assert_eq!(
        (c.pool.dim(), c.pool.image_shape()),
        (35, Some(ImageShape::new(1, 5, 7)))
    );
}

#[test]
fn cifar_is_3x32x32_through_binarisation_split_and_normalisation() {
    let dir = cifar_dir(10);
    let c = load(&format!("cifar10:{}", dir.path().display()));
    let shape = Some(ImageShape::new(3, 32, 32));
    let test = c.test.unwrap();
    assert_eq!((c.pool.image_shape(), test.image_shape()), (shape, shape));

    let map = ClassMap::cifar_cars_vs_cats();
    let (pool, test) = (map.apply(&c.pool).unwrap(), map.apply(&test).unwrap());
    let pool = ChannelNorm::PAPER.apply(pool).unwrap();
    let test = ChannelNorm::PAPER.apply(test).unwrap();
    let spec = SplitSpec {
        train: 4,
        attack: 2,
        test: 2,
        mode: SplitMode::Seeded { seed: 1 },
    };
    let split = spec.apply(&pool, Some(&test)).unwrap();
    for set in [&pool, &test, &split.train, &split.attack, &split.test] {
        assert_eq!(set.image_shape(), shape, "{}", set.name());
    }
    let sa = Dataset::concat("S+A", &[&split.train, &split.attack]).unwrap();
    assert_eq!(sa.image_shape(), shape);
}

#[test]
fn npy_shapes_follow_the_array_and_flat_sources_have_none() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, shape: Vec<usize>| {
        let path = dir.path().join(name);
        let len = shape.iter().product();
        npy::NpyArray::new(shape, npy::NpyData::F32(vec![0.25; len]))
            .unwrap()
            .write(&path)
            .unwrap();
        format!("npy:{}", path.display())
    };
    let nchw = load(&write("nchw.npy", vec![2, 3, 4, 5])).pool;
    assert_eq!(
        (nchw.dim(), nchw.image_shape()),
        (60, Some(ImageShape::new(3, 4, 5)))
    );
    let nhw = load(&write("nhw.npy", vec![2, 4, 5])).pool;
    assert_eq!(
        (nhw.dim(), nhw.image_shape()),
        (20, Some(ImageShape::new(1, 4, 5)))
    );
    let flat = load(&write("flat.npy", vec![2, 20])).pool;
    assert_eq!((flat.dim(), flat.image_shape()), (20, None));
    let nhwc = load(&write("nhwc.npy", vec![2, 4, 5, 3])).pool;
    assert_eq!((nhwc.dim(), nhwc.image_shape()), (60, None));

    let golden = load(&format!("npy:{}", fixture("X_64_milli_u16.npy").display())).pool;
    assert_eq!(
        (golden.len(), golden.dim(), golden.image_shape()),
        (64, 784, None)
    );
    let cube = load("boolean:5:parity").pool;
    assert_eq!((cube.dim(), cube.image_shape()), (5, None));
    assert!(cube.require_image_shape().is_err());
}

#[test]
fn cifar_batches_augment_reproducibly_with_the_normalised_padding() {
    let dir = cifar_dir(2);
    let norm = ChannelNorm::PAPER;
    let train = ChannelNorm::PAPER
        .apply(cifar::load(dir.path(), cifar::Part::Train, None).unwrap())
        .unwrap();
    let aug = Augment::normalised(&norm);
    let batch = [9, 0, 4];
    let run = |seed: u64| {
        let mut out = vec![0.0; batch.len() * train.dim()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        aug.apply_batch(&train, &batch, &mut out, &mut rng).unwrap();
        out
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
    // The window at the padded image's top-left corner shows the image moved 4 rows down and
    // 4 columns right: its first 4 rows in every channel are padding, the normalised 0 pixel.
    let shape = train.image_shape().unwrap();
    let mut out = vec![0.0; shape.len()];
    let corner = Draw {
        top: 0,
        left: 0,
        flip: false,
    };
    aug.apply_at(shape, train.row(0), &mut out, corner).unwrap();
    for c in 0..3 {
        let zero = (0.0 - norm.mean[c]) / norm.std[c];
        assert!(out[c * 1024..c * 1024 + 4 * 32].iter().all(|&v| v == zero));
        assert_eq!(out[c * 1024 + 4 * 32 + 4], train.row(0)[c * 1024]);
    }
}
