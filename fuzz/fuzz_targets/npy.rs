//! Fuzzes the `.npy` parser (after gzip detection). A parsed array must re-encode and re-parse
//! to itself; nothing may panic.
#![no_main]

use std::path::Path;

use basin_data::{io::decode_maybe_gzip, npy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.npy");
    let Ok(bytes) = decode_maybe_gzip(data.to_vec(), path) else {
        return;
    };
    if let Ok(array) = npy::parse(&bytes, path) {
        let again = npy::parse(&array.to_bytes(), path).expect("re-encoded array parses");
        assert_eq!(again.shape, array.shape);
        assert_eq!(again.data.len(), array.data.len());
    }
});
