//! Shared helpers for the integration tests: golden fixtures and error measures.
#![allow(dead_code)]

use std::path::Path;

use basin_data::npy;
use basin_nn::FcnSpec;

/// A golden array (see `tests/fixtures/golden/README.md`) as f64.
pub fn golden(name: &str) -> Vec<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(format!("{name}.npy"));
    npy::read(&path).unwrap().data.to_f64()
}

/// Golden flat parameters `[W1 (fan_in, fan_out), b1, …]` in basin's layout (`W [out, in]`).
pub fn golden_to_basin(spec: &FcnSpec, flat: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; flat.len()];
    for l in spec.layers() {
        for i in 0..l.fan_in {
            for o in 0..l.fan_out {
                out[l.w + o * l.fan_in + i] = flat[l.w + i * l.fan_out + o];
            }
        }
        out[l.b_range()].copy_from_slice(&flat[l.b_range()]);
    }
    out
}

/// basin's layout back to the golden one.
pub fn basin_to_golden(spec: &FcnSpec, theta: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; theta.len()];
    for l in spec.layers() {
        for i in 0..l.fan_in {
            for o in 0..l.fan_out {
                out[l.w + i * l.fan_out + o] = theta[l.w + o * l.fan_in + i];
            }
        }
        out[l.b_range()].copy_from_slice(&theta[l.b_range()]);
    }
    out
}

/// ‖a − b‖ / ‖b‖.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// max |a − b| / max |b|.
pub fn max_rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let den = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    num / den
}
