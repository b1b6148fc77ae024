//! The model file format against hand-built files: round trips, PyTorch exports and every
//! rejection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ::safetensors::tensor::TensorView;
use ::safetensors::{Dtype, SafeTensors};

use super::format::{bias_name, weight_name};
use super::write::IN_MEMORY;
use super::*;
use crate::activation::Activation;
use crate::spec::FcnSpec;

/// The name every in-memory test file goes by; error messages must contain it.
const NAME: &str = "net.safetensors";

/// One tensor as a test builds it: name, dtype, shape, little-endian bytes.
type Raw = (String, Dtype, Vec<usize>, Vec<u8>);

fn tanh_spec() -> FcnSpec {
    FcnSpec {
        input_dim: 3,
        hidden: vec![5],
        activation: Activation::Tanh,
        sigma_w: 1.3,
        sigma_b: 0.2,
    }
}

fn read(bytes: &[u8]) -> Result<Model, ModelError> {
    from_bytes(bytes, Path::new(NAME), None)
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_tensor(name: &str, shape: &[usize], xs: &[f32]) -> Raw {
    assert_eq!(shape.iter().product::<usize>(), xs.len());
    (name.into(), Dtype::F32, shape.to_vec(), f32_bytes(xs))
}

/// Serializes with the safetensors crate itself, as a PyTorch export would be.
fn serialize(tensors: &[Raw], meta: Option<HashMap<String, String>>) -> Vec<u8> {
    let views = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    ::safetensors::serialize(views, meta).unwrap()
}

/// Reads a file back into raw tensors (sorted by name) and its metadata.
fn unpack(bytes: &[u8]) -> (Vec<Raw>, Option<HashMap<String, String>>) {
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let st = SafeTensors::deserialize(bytes).unwrap();
    let mut raws: Vec<Raw> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    raws.sort_by(|a, b| a.0.cmp(&b.0));
    (raws, header.metadata().clone())
}

/// A basin file of the tanh 3-5-1 net, edited by `edit` and re-serialized.
fn edited(edit: impl FnOnce(&mut Vec<Raw>, &mut HashMap<String, String>)) -> Vec<u8> {
    let spec = tanh_spec();
    let (mut raws, meta) = unpack(&to_bytes(&spec, &spec.init::<f32>(1)).unwrap());
    let mut meta = meta.unwrap();
    edit(&mut raws, &mut meta);
    serialize(&raws, Some(meta))
}

/// The hand-made f32 tensors of a 3-4-2-1 net with no metadata (a PyTorch export).
fn export_tensors() -> Vec<Raw> {
    let v = |n: usize, k: f32| (0..n).map(|j| k + j as f32 * 0.125).collect::<Vec<_>>();
    vec![
        f32_tensor("layers.0.weight", &[4, 3], &v(12, -0.5)),
        f32_tensor("layers.0.bias", &[4], &v(4, 0.25)),
        f32_tensor("layers.1.weight", &[2, 4], &v(8, -1.0)),
        f32_tensor("layers.1.bias", &[2], &v(2, 2.0)),
        f32_tensor("layers.2.weight", &[1, 2], &v(2, 0.75)),
        f32_tensor("layers.2.bias", &[1], &v(1, -3.0)),
    ]
}

fn export_with(edit: impl FnOnce(&mut Vec<Raw>)) -> Vec<u8> {
    let mut raws = export_tensors();
    edit(&mut raws);
    serialize(&raws, None)
}

fn replace(raws: &mut [Raw], raw: Raw) {
    let slot = raws.iter_mut().find(|r| r.0 == raw.0).unwrap();
    *slot = raw;
}

/// Asserts the message names the file and every needle.
fn assert_says(e: &ModelError, needles: &[&str]) {
    let msg = e.to_string();
    assert!(msg.contains(NAME), "no file name in: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in: {msg}");
    }
}

fn bits32(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

fn bits64(xs: &[f64]) -> Vec<u64> {
    xs.iter().map(|x| x.to_bits()).collect()
}

fn temp_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("basin-st-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(NAME)
}

// -- Round trips: bit-exact spec and theta. --

#[test]
fn f32_paper_net_round_trips_bit_exactly_through_a_file() {
    let spec = FcnSpec::paper(784);
    let theta = spec.init::<f32>(11);
    let path = temp_path("f32");
    save(&path, &spec, &theta).unwrap();
    let m = load(&path, None).unwrap();
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    assert_eq!(m.spec, spec);
    assert_eq!((m.dtype, m.has_basin_metadata), (StoredDtype::F32, true));
    assert_eq!(bits32(&m.theta_as::<f32>()), bits32(&theta));
}

#[test]
fn f64_nets_round_trip_bit_exactly() {
    for spec in [tanh_spec(), FcnSpec::paper(784)] {
        let theta = spec.init::<f64>(5);
        let m = read(&to_bytes(&spec, &theta).unwrap()).unwrap();
        assert_eq!(m.spec, spec);
        assert_eq!(m.dtype, StoredDtype::F64);
        assert_eq!(bits64(&m.theta), bits64(&theta));
    }
}

#[test]
fn f32_tanh_net_round_trips_and_save_overwrites_atomically() {
    let spec = tanh_spec();
    let path = temp_path("overwrite");
    save(&path, &spec, &spec.init::<f32>(1)).unwrap();
    let theta = spec.init::<f32>(2);
    save(&path, &spec, &theta).unwrap();
    let m = load(&path, None).unwrap();
    let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    assert_eq!(leftovers, 1, "no temporary file may remain");
    assert_eq!(m.spec, spec);
    assert_eq!(bits32(&m.theta_as::<f32>()), bits32(&theta));
}

#[test]
fn sigmas_survive_the_json_metadata_bit_exactly() {
    // serde_json writes the shortest round-tripping decimal; check awkward values read back.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let sigma_w = (x >> 11) as f64 / (1u64 << 53) as f64 * 10.0;
        let spec = FcnSpec {
            sigma_w,
            sigma_b: sigma_w / 3.0,
            ..tanh_spec()
        };
        let m = read(&to_bytes(&spec, &spec.init::<f32>(0)).unwrap()).unwrap();
        assert_eq!(m.spec.sigma_w.to_bits(), spec.sigma_w.to_bits());
        assert_eq!(m.spec.sigma_b.to_bits(), spec.sigma_b.to_bits());
    }
}

#[test]
fn the_file_holds_out_in_row_major_tensors_and_the_metadata() {
    let spec = FcnSpec::paper(784);
    let theta = spec.init::<f32>(3);
    let bytes = to_bytes(&spec, &theta).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for (i, l) in spec.layers().iter().enumerate() {
        let w = st.tensor(&weight_name(i)).unwrap();
        assert_eq!(
            (w.dtype(), w.shape()),
            (Dtype::F32, &[l.fan_out, l.fan_in][..])
        );
        assert_eq!(w.data(), f32_bytes(&theta[l.w_range()]));
        let b = st.tensor(&bias_name(i)).unwrap();
        assert_eq!(b.shape(), &[l.fan_out]);
        assert_eq!(b.data(), f32_bytes(&theta[l.b_range()]));
    }
    assert_eq!(st.len(), 6);
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().as_ref().unwrap();
    assert_eq!(meta[META_FORMAT], FORMAT);
    assert_eq!(
        serde_json::from_str::<FcnSpec>(&meta[META_SPEC]).unwrap(),
        spec
    );
    // The data section is theta itself, and the bytes are deterministic.
    assert!(bytes.ends_with(&f32_bytes(&theta)));
    assert_eq!(bytes, to_bytes(&spec, &theta).unwrap());
    assert_eq!(
        bytes.len(),
        8 + (bytes.len() - 8 - 4 * theta.len()) + 4 * theta.len()
    );
    assert_eq!(
        (bytes.len() - 4 * theta.len()) % 8,
        0,
        "header padded to 8 bytes"
    );
}

#[test]
fn activation_argument_overrides_the_stored_one() {
    let spec = tanh_spec();
    let bytes = to_bytes(&spec, &spec.init::<f64>(0)).unwrap();
    let m = from_bytes(&bytes, Path::new(NAME), Some(Activation::Erf)).unwrap();
    assert_eq!(
        m.spec,
        FcnSpec {
            activation: Activation::Erf,
            ..spec
        }
    );
}

// -- Files without basin metadata. --

#[test]
fn pytorch_export_loads_with_inferred_widths_and_relu_or_override() {
    let raws = export_tensors();
    let pt_meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = serialize(&raws, Some(pt_meta));
    let m = read(&bytes).unwrap();
    assert!(!m.has_basin_metadata);
    assert_eq!(m.dtype, StoredDtype::F32);
    assert_eq!(m.spec.widths(), vec![3, 4, 2, 1]);
    assert_eq!(m.spec.activation, Activation::Relu);
    assert_eq!(
        (m.spec.sigma_w, m.spec.sigma_b),
        (std::f64::consts::SQRT_2, 1.0)
    );
    // export_tensors lists them in layer order: each weight, then its bias.
    let expected: Vec<u8> = raws.iter().flat_map(|r| r.3.clone()).collect();
    assert_eq!(f32_bytes(&m.theta_as::<f32>()), expected);
    let tanh = from_bytes(&bytes, Path::new(NAME), Some(Activation::Tanh)).unwrap();
    assert_eq!(tanh.spec.activation, Activation::Tanh);
    assert_eq!(tanh.theta, m.theta);
}

#[test]
fn an_f64_export_loads_as_f64() {
    let raws: Vec<Raw> = export_tensors()
        .into_iter()
        .map(|(n, _, s, b)| {
            let xs: Vec<u8> = b
                .chunks_exact(4)
                .flat_map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes())
                .collect();
            (n, Dtype::F64, s, xs)
        })
        .collect();
    let m = read(&serialize(&raws, None)).unwrap();
    assert_eq!(m.dtype, StoredDtype::F64);
    assert_eq!(
        m.theta,
        read(&serialize(&export_tensors(), None)).unwrap().theta
    );
}

// -- Errors: right variant, message naming the file and the tensor. --

#[test]
fn empty_garbage_and_missing_files_are_errors() {
    assert!(matches!(read(&[]), Err(ModelError::Empty { .. })));
    let e = read(b"this is not a safetensors file at all").unwrap_err();
    assert!(matches!(e, ModelError::NotSafetensors { .. }), "{e}");
    assert_says(&e, &["not a safetensors file"]);
    let e = load(
        &std::env::temp_dir().join("basin-st-no-such-dir/absent.safetensors"),
        None,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::Io { action: "read", .. }), "{e}");
    assert!(e.to_string().contains("absent.safetensors"));
}

#[test]
fn every_truncation_and_corruption_is_an_error_not_a_panic() {
    let spec = tanh_spec();
    let bytes = to_bytes(&spec, &spec.init::<f32>(4)).unwrap();
    for n in 0..bytes.len() {
        assert!(read(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
    }
    // Byte flips anywhere: Ok (a flipped value or padding) or Err, never a panic.
    let mut x = 7u64;
    for _ in 0..5000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut b = bytes.clone();
        let k = (x >> 33) as usize % b.len();
        b[k] ^= 1 << ((x >> 29) % 8);
        let _ = read(&b);
    }
    // Random garbage, with and without a plausible header length.
    for len in [1, 7, 8, 9, 64, 1000] {
        let mut g: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
        assert!(read(&g).is_err());
        if len >= 8 {
            g[..8].copy_from_slice(&((len - 8) as u64).to_le_bytes());
            assert!(read(&g).is_err());
        }
    }
}

/// `bytes` with its JSON header edited by `edit` (the header length is rewritten).
fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    edit(&mut header);
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + len..]);
    out
}

#[test]
fn shape_and_offset_errors_name_the_tensor() {
    let spec = tanh_spec();
    let bytes = to_bytes(&spec, &spec.init::<f32>(4)).unwrap();
    let shape = with_header(&bytes, |h| {
        h["layers.1.weight"]["shape"] = serde_json::json!([1, 4])
    });
    let e = read(&shape).unwrap_err();
    assert!(
        matches!(e, ModelError::BadTensorData { ref name, .. } if name == "layers.1.weight"),
        "{e}"
    );
    assert_says(
        &e,
        &[
            "layers.1.weight",
            "shape [1, 4] of F32 needs 16 bytes",
            "hold 20",
        ],
    );
    let offsets = with_header(&bytes, |h| {
        let o = h["layers.0.bias"]["data_offsets"].as_array_mut().unwrap();
        let start = o[0].as_u64().unwrap();
        o[0] = serde_json::json!(start + 4);
    });
    let e = read(&offsets).unwrap_err();
    assert!(
        matches!(e, ModelError::BadTensorData { ref name, .. } if name == "layers.0.bias"),
        "{e}"
    );
    assert_says(&e, &["layers.0.bias", "data_offsets"]);
    let e = read(&bytes[..bytes.len() - 4]).unwrap_err();
    assert_says(&e, &["tensor layers.", "data section"]);
}

#[test]
fn missing_tensors_are_named() {
    let e = read(&export_with(|r| r.retain(|t| t.0 != "layers.1.bias"))).unwrap_err();
    assert!(matches!(e, ModelError::MissingTensor { ref name, .. } if name == "layers.1.bias"));
    assert_says(&e, &["layers.1.bias"]);
    let e = read(&edited(|r, _| r.retain(|t| t.0 != "layers.1.weight"))).unwrap_err();
    assert!(matches!(e, ModelError::MissingTensor { ref name, .. } if name == "layers.1.weight"));
    assert_says(&e, &["layers.1.weight", "basin.spec"]);
    let e = read(&serialize(&[], None)).unwrap_err();
    assert!(matches!(e, ModelError::MissingTensor { .. }), "{e}");
    assert_says(&e, &["layers.0.weight"]);
}

#[test]
fn unsupported_and_mixed_dtypes_are_rejected() {
    let f16 = (
        "layers.0.bias".to_string(),
        Dtype::F16,
        vec![4],
        vec![0u8; 8],
    );
    let e = read(&export_with(|r| replace(r, f16))).unwrap_err();
    assert!(matches!(e, ModelError::UnsupportedDtype { .. }), "{e}");
    assert_says(&e, &["layers.0.bias", "F16", "F32 and F64"]);
    let f64_bias = (
        "layers.1.bias".to_string(),
        Dtype::F64,
        vec![2],
        vec![0u8; 16],
    );
    let e = read(&export_with(|r| replace(r, f64_bias))).unwrap_err();
    assert!(matches!(e, ModelError::MixedDtypes { .. }), "{e}");
    assert_says(&e, &["layers.0.weight", "layers.1.bias", "F64"]);
}

#[test]
fn wrong_ranks_are_rejected() {
    let flat = f32_tensor("layers.0.weight", &[12], &[0.0; 12]);
    let e = read(&export_with(|r| replace(r, flat))).unwrap_err();
    assert!(matches!(e, ModelError::BadRank { expected: 2, .. }), "{e}");
    assert_says(&e, &["layers.0.weight", "[12]"]);
    let col = f32_tensor("layers.2.bias", &[1, 1], &[0.0]);
    let e = read(&export_with(|r| replace(r, col))).unwrap_err();
    assert!(matches!(e, ModelError::BadRank { expected: 1, .. }), "{e}");
    assert_says(&e, &["layers.2.bias"]);
}

#[test]
fn shapes_that_do_not_chain_are_rejected() {
    let w = f32_tensor("layers.1.weight", &[2, 5], &[0.0; 10]);
    let e = read(&export_with(|r| replace(r, w))).unwrap_err();
    assert!(matches!(e, ModelError::InconsistentShapes { .. }), "{e}");
    assert_says(&e, &["layers.1.weight is [2, 5] but layers.0 outputs 4"]);
    let transposed = f32_tensor("layers.1.weight", &[4, 2], &[0.0; 8]);
    let e = read(&export_with(|r| replace(r, transposed))).unwrap_err();
    assert_says(&e, &["layers.1.weight", "transposed"]);
    let b = f32_tensor("layers.0.bias", &[3], &[0.0; 3]);
    let e = read(&export_with(|r| replace(r, b))).unwrap_err();
    assert!(
        matches!(e, ModelError::InconsistentShapes { ref name, .. } if name == "layers.0.bias")
    );
    assert_says(&e, &["layers.0.bias has length 3", "layers.0.weight"]);
    let e = read(&export_with(|r| {
        replace(r, f32_tensor("layers.2.weight", &[2, 2], &[0.0; 4]));
        replace(r, f32_tensor("layers.2.bias", &[2], &[0.0; 2]));
    }))
    .unwrap_err();
    assert!(matches!(e, ModelError::InconsistentShapes { .. }), "{e}");
    assert_says(&e, &["layers.2.weight", "one output"]);
    let e = read(&export_with(|r| {
        replace(r, f32_tensor("layers.0.weight", &[4, 0], &[]));
    }))
    .unwrap_err();
    assert_says(&e, &["layers.0.weight", "positive"]);
}

#[test]
fn tensors_after_a_gap_or_with_unknown_names_are_listed() {
    let e = read(&export_with(|r| {
        r.push(f32_tensor("layers.5.weight", &[1, 1], &[0.0]));
        r.push(f32_tensor("layers.5.bias", &[1], &[0.0]));
    }))
    .unwrap_err();
    assert!(matches!(e, ModelError::UnexpectedTensors { ref names, .. } if names.len() == 2));
    assert_says(&e, &["layers.5.weight", "layers.5.bias", "gap"]);
    let e = read(&export_with(|r| {
        r.push(f32_tensor("fc.weight", &[1], &[0.0]))
    }))
    .unwrap_err();
    assert!(matches!(e, ModelError::UnexpectedTensors { .. }), "{e}");
    assert_says(&e, &["fc.weight", "layers.{i}.weight"]);
    let e = read(&export_with(|r| {
        for t in r.iter_mut() {
            t.0 = t.0.replace("layers.", "net.");
        }
    }))
    .unwrap_err();
    assert_says(&e, &["net.0.weight", "net.2.bias"]);
    let e = read(&edited(|r, _| {
        r.push(f32_tensor("layers.2.weight", &[1, 1], &[0.0]));
        r.push(f32_tensor("layers.02.bias", &[1], &[0.0]));
    }))
    .unwrap_err();
    assert_says(
        &e,
        &["layers.2.weight", "layers.02.bias", "describes 2 layers"],
    );
}

#[test]
fn bad_or_disagreeing_metadata_is_rejected() {
    let bad = |key: &str, value: Option<&str>| {
        let e = read(&edited(|_, m| match value {
            Some(v) => drop(m.insert(key.into(), v.into())),
            None => drop(m.remove(key)),
        }))
        .unwrap_err();
        assert!(matches!(e, ModelError::BadMetadata { .. }), "{e}");
        assert_says(&e, &[key]);
    };
    bad(META_SPEC, Some("{not json"));
    bad(
        META_SPEC,
        Some(r#"{"input_dim": 3, "hidden": [5], "depth": 2}"#),
    );
    bad(META_SPEC, Some(r#"{"input_dim": 3, "hidden": [0]}"#));
    bad(META_SPEC, None);
    bad(META_FORMAT, Some("basin-fcn/9"));
    bad(META_FORMAT, None);
    let e = read(&edited(|_, m| {
        let spec = FcnSpec {
            hidden: vec![6],
            ..tanh_spec()
        };
        m.insert(META_SPEC.into(), serde_json::to_string(&spec).unwrap());
    }))
    .unwrap_err();
    assert!(matches!(e, ModelError::MetadataMismatch { .. }), "{e}");
    assert_says(&e, &["layers.0.weight", "[5, 3]", "[6, 3]"]);
}

#[test]
fn non_finite_values_are_located() {
    let mut w = vec![0.5f32; 8];
    w[6] = f32::NAN;
    let e = read(&export_with(|r| {
        replace(r, f32_tensor("layers.1.weight", &[2, 4], &w))
    }))
    .unwrap_err();
    assert!(matches!(e, ModelError::NonFinite { ref index, .. } if index == &[1, 2]));
    assert_says(&e, &["layers.1.weight[1, 2]", "NaN"]);
    let e = read(&edited(|r, _| {
        replace(r, f32_tensor("layers.1.bias", &[1], &[f32::INFINITY]))
    }))
    .unwrap_err();
    assert_says(&e, &["layers.1.bias[0]", "inf"]);
}

#[test]
fn save_checks_its_arguments() {
    let spec = tanh_spec();
    let path = Path::new(NAME);
    let e = save(path, &spec, &vec![0.0f32; spec.n_params() - 1]).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::ParamCount {
                len: 25,
                n_params: 26,
                ..
            }
        ),
        "{e}"
    );
    assert_says(&e, &["26 parameters"]);
    let mut theta = spec.init::<f64>(0);
    theta[15] = f64::NEG_INFINITY;
    let e = save(path, &spec, &theta).unwrap_err();
    assert_says(&e, &["layers.0.bias[0]", "-inf"]);
    let bad = FcnSpec {
        hidden: vec![0],
        ..spec
    };
    let e = save(path, &bad, &[0.0f32; 1]).unwrap_err();
    assert!(matches!(e, ModelError::InvalidSpec { .. }), "{e}");
    assert!(!path.exists(), "nothing is written on error");
    let e = to_bytes(&tanh_spec(), &[0.0f32]).unwrap_err();
    assert!(e.to_string().contains(IN_MEMORY));
}
