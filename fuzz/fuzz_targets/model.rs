//! Fuzzes the model readers: any input gives a model or a typed error, never a panic, and a
//! model that loads saves and loads back to itself. The fully-connected reader and the conv
//! reader (PyTorch state_dicts in the pytorch-cifar layout) both see every input, and
//! `Network::load`'s choice between them is exercised by the conv marker tensor's presence.
#![no_main]

use std::path::Path;

use basin_conv::model as conv_model;
use basin_nn::safetensors;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    if let Ok(model) = safetensors::from_bytes(data, path, None) {
        let bytes = safetensors::to_bytes(&model.spec, &model.theta).expect("a loaded model saves");
        let again = safetensors::from_bytes(&bytes, path, None).expect("a saved model loads");
        assert_eq!(again.theta, model.theta);
    }
    let _ = conv_model::is_conv_model(data);
    if let Ok(model) = conv_model::from_bytes(data, path) {
        let bytes = conv_model::to_bytes(&model.spec, &model.theta, &model.state)
            .expect("a loaded conv model saves");
        let again = conv_model::from_bytes(&bytes, path).expect("a saved conv model loads");
        assert_eq!((again.theta, again.state), (model.theta, model.state));
    }
});
