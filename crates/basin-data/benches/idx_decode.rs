//! IDX decode throughput: Fashion-MNIST's 60,000 training images (47 MB uncompressed), from
//! the gzipped file through gunzip, header parsing and scaling to f32, and from bytes already
//! in memory. Skips with a message where Debian's `dataset-fashion-mnist` is not installed.

use std::path::Path;

use basin_data::idx;
use basin_data::io::read_maybe_gzip;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const IMAGES: &str = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

fn idx_decode(c: &mut Criterion) {
    let path = Path::new(IMAGES);
    if !path.exists() {
        eprintln!(
            "skipping idx_decode: {IMAGES} is absent (apt-get install dataset-fashion-mnist)"
        );
        return;
    }
    let raw = read_maybe_gzip(path).expect("readable Fashion-MNIST");
    let mut group = c.benchmark_group("idx_decode_fashion_train");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function("gunzip+parse+scale", |b| {
        b.iter(|| {
            let bytes = read_maybe_gzip(path).unwrap();
            let img = idx::parse_images(&bytes, path).unwrap();
            idx::scale_pixels(img.pixels)
        })
    });
    group.bench_function("parse+scale (in memory)", |b| {
        b.iter(|| idx::scale_pixels(idx::parse_images(&raw, path).unwrap().pixels))
    });
    group.finish();
}

criterion_group!(benches, idx_decode);
criterion_main!(benches);
