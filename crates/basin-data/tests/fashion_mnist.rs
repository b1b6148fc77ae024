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
