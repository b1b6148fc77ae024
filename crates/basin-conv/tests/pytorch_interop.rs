//! pytorch-cifar ResNet state_dicts: logits against an independent JAX implementation
//! (`bench/peers/conv/resnet_jax.py fixtures`, kept in `tests/fixtures/resnet_logits.json`),
//! within 1e-9 relative in f64 and 1e-4 in f32; the file format's round trip and its errors.
//!
//! The fixture's weights and images come from an integer hash (its `formula`), reimplemented
//! here, so that no weight file is kept. The state_dict is written as PyTorch's
//! `safetensors.torch.save_file` writes it (by the safetensors crate, not basin's writer, with
//! the I64 `num_batches_tracked` scalars) and read by basin's loader with no other
//! information.

use std::collections::HashMap;
use std::path::Path;

use basin_conv::model::{self, ConvModelError};
use basin_conv::{BlockKind, ConvObjective, Graph, ResNetSpec};
use basin_nn::Real;
use faer::Par;
use safetensors::{Dtype, tensor::TensorView};
use serde_json::Value;

/// A tensor as PyTorch's exporter hands it to safetensors: name, dtype, shape, bytes.
type Owned = (String, Dtype, Vec<usize>, Vec<u8>);

fn fnv(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn u(name: &str, j: usize) -> f64 {
    let z = fnv(name).wrapping_add((j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (mix(z) >> 11) as f64 * 2f64.powi(-53) * 2.0 - 1.0
}

/// The fixture's value of entry `j` of tensor `name` with fan-in `fan_in` (weights only).
fn hashed(name: &str, j: usize, fan_in: usize) -> f64 {
    let x = u(name, j);
    if name.ends_with("running_mean") {
        0.1 * x
    } else if name.ends_with("running_var") {
        1.0 + 0.5 * x
    } else if name == "linear.bias" {
        0.1 * x
    } else if name.contains("bn") || name.contains("shortcut.1") {
        if name.ends_with(".weight") {
            1.0 + 0.2 * x
        } else {
            0.1 * x
        }
    } else {
        x * (6.0 / fan_in as f64).sqrt()
    }
}

/// The state_dict of `spec` with hashed values, as PyTorch's safetensors export in `T`.
fn hashed_state_dict<T: Real>(spec: &ResNetSpec) -> Vec<u8> {
    let graph = Graph::resnet(spec, 32, 32);
    let mut tensors: Vec<Owned> = Vec::new();
    let float = |name: &str, shape: Vec<usize>, fan_in: usize| {
        let n: usize = shape.iter().product();
        let mut bytes = Vec::new();
        for j in 0..n {
            let v = hashed(name, j, fan_in);
            if T::NAME == "f32" {
                bytes.extend_from_slice(&(v as f32).to_le_bytes());
            } else {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let dtype = if T::NAME == "f32" {
            Dtype::F32
        } else {
            Dtype::F64
        };
        (name.to_string(), dtype, shape, bytes)
    };
    for p in &graph.params {
        let fan_in = p.shape[1..].iter().product();
        tensors.push(float(&p.name, p.shape.clone(), fan_in));
    }
    for slot in &graph.bns {
        tensors.push(float(
            &format!("{}.running_mean", slot.name),
            vec![slot.c],
            1,
        ));
        tensors.push(float(
            &format!("{}.running_var", slot.name),
            vec![slot.c],
            1,
        ));
        let name = format!("{}.num_batches_tracked", slot.name);
        tensors.push((name, Dtype::I64, vec![], 0i64.to_le_bytes().to_vec()));
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn fixture() -> Value {
    let text = include_str!("fixtures/resnet_logits.json");
    serde_json::from_str(text).unwrap()
}

fn spec_of(case: &Value) -> (ResNetSpec, [usize; 3], usize) {
    let arch = case;
    let block = match arch["block"].as_str().unwrap() {
        "basic" => BlockKind::Basic,
        _ => BlockKind::Bottleneck,
    };
    let blocks: Vec<usize> = arch["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as usize)
        .collect();
    let get = |k: &str| arch[k].as_u64().unwrap() as usize;
    let shape: Vec<usize> = arch["image_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as usize)
        .collect();
    let spec = ResNetSpec::general(block, blocks, get("base_width"), get("in_channels"));
    (spec, [shape[0], shape[1], shape[2]], get("n"))
}

/// The eval-mode logits basin computes from the hashed state_dict in `T`.
fn basin_logits<T: Real>(spec: &ResNetSpec, shape: [usize; 3], n: usize) -> Vec<f64> {
    let bytes = hashed_state_dict::<T>(spec);
    let m = model::from_bytes(&bytes, Path::new("hashed.safetensors")).unwrap();
    assert_eq!(
        m.spec.blocks, spec.blocks,
        "the architecture is inferred from the names"
    );
    assert_eq!(
        (m.spec.block, m.spec.base_width, m.spec.in_channels),
        (spec.block, spec.base_width, spec.in_channels)
    );
    let graph = Graph::resnet(&m.spec, shape[1], shape[2]);
    let x: Vec<T> = (0..n * shape.iter().product::<usize>())
        .map(|j| T::from_f64(u("input", j)))
        .collect();
    let y = vec![0u8; n];
    let mut obj = ConvObjective::new(graph, m.state.clone(), &x, &y, n, Par::Seq).unwrap();
    let theta: Vec<T> = m.theta_as();
    obj.logits(&theta, &(0..n).collect::<Vec<_>>())
        .iter()
        .map(|z| z.to_f64())
        .collect()
}

fn check_case(name: &str) {
    let fx = fixture();
    let case = fx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    let (spec, shape, n) = spec_of(case);
    for (key, tol, got) in [
        ("logits_f64", 1e-9, basin_logits::<f64>(&spec, shape, n)),
        ("logits_f32", 1e-4, basin_logits::<f32>(&spec, shape, n)),
    ] {
        let want: Vec<f64> = case[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= tol * w.abs(),
                "{name} {key}: basin {g} JAX {w}"
            );
        }
    }
}

#[test]
fn hash_matches_the_fixtures_checks() {
    let fx = fixture();
    for check in fx["hash_checks"].as_array().unwrap() {
        let name = check["name"].as_str().unwrap();
        assert_eq!(
            format!("{:#018x}", fnv(name)),
            check["fnv"].as_str().unwrap()
        );
        // The peer script checks u at these indices.
        let js = [0, 1, 2, 1000, 123_456];
        for (&j, want) in js.iter().zip(check["u"].as_array().unwrap()) {
            assert_eq!(u(name, j), want.as_f64().unwrap(), "{name}[{j}]");
        }
    }
    assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn tiny_basic_logits_match_jax() {
    check_case("tiny_basic");
}

#[test]
fn tiny_bottleneck_logits_match_jax() {
    check_case("tiny_bottleneck");
}

#[test]
fn resnet18_logits_match_jax() {
    check_case("resnet18");
}

#[test]
fn resnet50_logits_match_jax() {
    check_case("resnet50");
}

#[test]
fn basin_files_round_trip_with_pytorch_names() {
    let spec = ResNetSpec::general(BlockKind::Bottleneck, vec![1, 2], 4, 3);
    let graph = Graph::resnet(&spec, 8, 8);
    let theta: Vec<f64> = graph.init(11);
    let mut state = basin_conv::BnState::fresh(&graph);
    state.layers[2].mean[1] = 0.25;
    state.layers[2].batches = 7;
    let bytes = model::to_bytes(&spec, &theta, &state).unwrap();
    let back = model::from_bytes(&bytes, Path::new("m.safetensors")).unwrap();
    assert_eq!(
        (back.theta, back.state, back.spec, back.f32),
        (theta.clone(), state.clone(), spec.clone(), false)
    );
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("layer2.0.shortcut.1.num_batches_tracked")
            .unwrap()
            .dtype(),
        Dtype::I64
    );
    assert_eq!(
        st.tensor("layer2.1.conv3.weight").unwrap().shape(),
        [32, 8, 1, 1]
    );
    assert_eq!(st.tensor("linear.weight").unwrap().shape(), [1, 32]);
    // Same bytes for the same network.
    assert_eq!(bytes, model::to_bytes(&spec, &theta, &state).unwrap());
    assert!(model::is_conv_model(&bytes));
}

#[test]
fn a_wrong_missing_or_extra_tensor_is_named_with_its_shape() {
    let spec = ResNetSpec::general(BlockKind::Basic, vec![1, 1], 4, 1);
    let bytes = hashed_state_dict::<f32>(&spec);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let rebuild = |edit: &dyn Fn(&str, TensorView<'_>) -> Option<Owned>| {
        let mut owned: Vec<Owned> = Vec::new();
        for (name, view) in st.tensors() {
            if let Some(t) = edit(&name, view) {
                owned.push(t);
            }
        }
        owned.push(("extra".into(), Dtype::F32, vec![1], vec![0; 4]));
        owned
    };
    let serialize = |owned: &[Owned], skip_extra: bool| {
        let views: Vec<(String, TensorView<'_>)> = owned
            .iter()
            .filter(|t| !(skip_extra && t.0 == "extra"))
            .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    };
    let keep = |n: &str, v: TensorView<'_>| {
        Some((
            n.to_string(),
            v.dtype(),
            v.shape().to_vec(),
            v.data().to_vec(),
        ))
    };
    let err = |b: &[u8]| model::from_bytes(b, Path::new("bad.safetensors")).unwrap_err();

    let missing = rebuild(&|n, v| {
        (n != "layer2.0.bn1.running_var")
            .then(|| keep(n, v))
            .flatten()
    });
    let e = err(&serialize(&missing, true));
    assert!(matches!(e, ConvModelError::Missing { .. }), "{e}");
    assert!(
        e.to_string().contains("layer2.0.bn1.running_var") && e.to_string().contains("[8]"),
        "{e}"
    );

    let e = err(&serialize(&rebuild(&keep), false));
    assert!(e.to_string().contains("\"extra\""), "{e}");

    let wrong = rebuild(&|n, v| {
        if n == "layer1.0.conv2.weight" {
            Some((
                n.to_string(),
                Dtype::F32,
                vec![4, 4, 1, 9],
                v.data().to_vec(),
            ))
        } else {
            keep(n, v)
        }
    });
    let e = err(&serialize(&wrong, true));
    assert!(
        e.to_string().contains("layer1.0.conv2.weight") && e.to_string().contains("[4, 4, 3, 3]"),
        "{e}"
    );

    let e = err(b"not a safetensors file at all");
    assert!(matches!(e, ConvModelError::NotSafetensors { .. }), "{e}");
}
