//! Fuzzes the safetensors model reader: any input gives a model or a typed error, never a
//! panic, and a model that loads saves and loads back to itself.
#![no_main]

use std::path::Path;

use basin_nn::safetensors;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    if let Ok(model) = safetensors::from_bytes(data, path, None) {
        let bytes = safetensors::to_bytes(&model.spec, &model.theta).expect("a loaded model saves");
        let again = safetensors::from_bytes(&bytes, path, None).expect("a saved model loads");
        assert_eq!(again.theta, model.theta);
    }
});
