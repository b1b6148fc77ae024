//! Real full-size data: Fashion-MNIST from Debian's `dataset-fashion-mnist` (installed by
//! `.ci/run`), loaded in full. Skips with a printed reason where the package is absent.

use std::path::Path;

use basin_data::{DataSource, ImageShape, idx};

const DIR: &str = "/usr/share/datasets/fashion-mnist";

fn present() -> bool {
    let ok = Path::new(DIR).join("train-images-idx3-ubyte.gz").exists();
    if !ok {
        eprintln!(
            "SKIPPED: {DIR} is absent; install Debian's dataset-fashion-mnist to run this test"
        );
    }
    ok
}

#[test]
fn train_and_test_load_in_full() {
    if !present() {
        return;
    }
    let dir = Path::new(DIR);
    let train = idx::load(
        &dir.join("train-images-idx3-ubyte.gz"),
        &dir.join("train-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    assert_eq!((train.len(), train.dim()), (60_000, 784));
    assert_eq!(train.image_shape(), Some(ImageShape::new(1, 28, 28)));
    assert!(train.class_counts().values().all(|&c| c == 6_000));
    assert_eq!(train.value_range(), Some((0.0, 1.0)));
    let src: DataSource =
        format!("idx:{DIR}/t10k-images-idx3-ubyte.gz,{DIR}/t10k-labels-idx1-ubyte.gz")
            .parse()
            .unwrap();
    let test = src.load().unwrap().pool;
    assert_eq!((test.len(), test.dim()), (10_000, 784));
    assert!(test.class_counts().values().all(|&c| c == 1_000));
}

/// `idx:<dir>` on the package's folder: the 60,000 training images as the pool and the 10,000
/// `t10k` images as the separate test set, the same data as the two-file forms give.
#[test]
fn the_folder_form_gives_the_training_pool_and_the_test_set() {
    if !present() {
        return;
    }
    let corpus = format!("idx:{DIR}")
        .parse::<DataSource>()
        .unwrap()
        .load()
        .unwrap();
    let test = corpus.test.unwrap();
    assert_eq!((corpus.pool.len(), corpus.pool.dim()), (60_000, 784));
    assert_eq!((test.len(), test.dim()), (10_000, 784));
    assert_eq!(test.image_shape(), Some(ImageShape::new(1, 28, 28)));
    assert!(test.class_counts().values().all(|&c| c == 1_000));
    let dir = Path::new(DIR);
    let pair =
        |images: &str, labels: &str| idx::load(&dir.join(images), &dir.join(labels)).unwrap();
    assert_eq!(
        test.features(),
        pair("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz").features()
    );
    assert_eq!(
        corpus.pool.class_ids(),
        pair("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz").class_ids()
    );
}
