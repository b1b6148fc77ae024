//! Shared helpers for the integration tests: golden fixtures and error measures.
#![allow(dead_code)]

use std::path::Path;

use basin_data::npy;
use basin_nn::{FcnSpec, Objective};

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

/// The loss ½ Σ c·dᵢθᵢ², whose Hessian is c·diag(d); with `nan`, every HVP is NaN (a broken
/// objective).
pub struct Diagonal {
    /// The Hessian's diagonal at c = 1.
    pub d: Vec<f64>,
    /// The scale c.
    pub c: f64,
    /// Whether HVPs return NaN.
    pub nan: bool,
}

impl Objective<f64> for Diagonal {
    fn n_params(&self) -> usize {
        self.d.len()
    }
    fn n_examples(&self) -> usize {
        1
    }
    fn loss(&mut self, theta: &[f64], _: &[usize]) -> f64 {
        let c = self.c;
        0.5 * theta
            .iter()
            .zip(&self.d)
            .map(|(t, d)| c * d * t * t)
            .sum::<f64>()
    }
    fn loss_grad(&mut self, theta: &[f64], b: &[usize], grad: &mut [f64]) -> f64 {
        for ((g, t), d) in grad.iter_mut().zip(theta).zip(&self.d) {
            *g = self.c * d * t;
        }
        self.loss(theta, b)
    }
    fn hvp(&mut self, _: &[f64], _: &[usize], v: &[f64], out: &mut [f64]) {
        for ((o, x), d) in out.iter_mut().zip(v).zip(&self.d) {
            *o = if self.nan { f64::NAN } else { self.c * d * x };
        }
    }
    fn count_errors(&mut self, _: &[f64], _: &[usize]) -> usize {
        0
    }
}
