//! Fuzzes the CIFAR-10 batch parser (after gzip detection); nothing may panic.
#![no_main]

use std::path::Path;

use basin_data::{cifar, io::decode_maybe_gzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("data_batch_1.bin");
    let Ok(bytes) = decode_maybe_gzip(data.to_vec(), path) else {
        return;
    };
    if let Ok((labels, pixels)) = cifar::parse_batch(&bytes, path) {
        assert_eq!(pixels.len(), labels.len() * cifar::IMAGE_BYTES);
    }
});
