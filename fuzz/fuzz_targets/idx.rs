//! Fuzzes the IDX parsers: the input, split where its first two bytes say, is an image file and a label
//! file, each possibly gzipped. Any input must give a data set or a typed error, never a panic.
#![no_main]

use std::path::Path;

use basin_data::{idx, io::decode_maybe_gzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first two bytes say where the image file ends and the label file begins.
    let [a, b, rest @ ..] = data else {
        return;
    };
    let (images, labels) = rest.split_at(usize::from(u16::from_le_bytes([*a, *b])) % (rest.len() + 1));
    let (ip, lp) = (Path::new("images"), Path::new("labels"));
    let images = decode_maybe_gzip(images.to_vec(), ip);
    let labels = decode_maybe_gzip(labels.to_vec(), lp);
    if let (Ok(i), Ok(l)) = (&images, &labels) {
        if let Ok(ds) = idx::decode_pair(i, ip, l, lp, "fuzz") {
            assert_eq!(ds.len() * ds.dim(), ds.features().len());
        }
        let _ = idx::parse_labels(i, ip);
        let _ = idx::parse_images(l, lp);
    }
});
