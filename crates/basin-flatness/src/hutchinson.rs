//! The trace of the loss Hessian by Hutchinson's estimator (Hutchinson 1990).
//!
//! For a Rademacher vector `z` (independent ±1 entries), `E[zᵀ H z] = tr H`. The estimate is
//! the mean of `zᵀ H z` over `probes` seeded probes, and its standard error is the sample
//! standard deviation over √probes.

use std::time::Instant;

use basin_nn::real::{nearest_pow2_exponent, pow2};
use basin_nn::{Objective, all_examples};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::checks::check_measured;
use crate::error::{FlatnessError, NonFiniteAt};
use crate::gram::dot;

/// The default number of probes.
pub const DEFAULT_PROBES: usize = 100;

/// A trace estimate. It serialises with its fields prefixed by `trace_` (as `trace`,
/// `trace_std_err`, `trace_probes`, …), so that it sits beside a spectrum in one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEstimate {
    /// The mean of `zᵀ H z` over the probes.
    pub trace: f64,
    /// The standard error of the mean: sample standard deviation / √probes.
    #[serde(rename = "trace_std_err")]
    pub std_err: f64,
    /// The number of probes (HVPs).
    #[serde(rename = "trace_probes")]
    pub probes: usize,
    /// The seed of the probes.
    #[serde(rename = "trace_seed")]
    pub seed: u64,
    /// Wall-clock seconds.
    #[serde(rename = "trace_wall_s")]
    pub wall_s: f64,
}

/// Fills `z` with independent ±1 entries, 64 signs per draw.
pub(crate) fn rademacher(rng: &mut ChaCha8Rng, z: &mut [f64]) {
    for chunk in z.chunks_mut(64) {
        let bits: u64 = rng.random();
        for (i, x) in chunk.iter_mut().enumerate() {
            *x = if (bits >> i) & 1 == 1 { 1.0 } else { -1.0 };
        }
    }
}

/// Hutchinson's estimate of the trace of the Hessian of the mean loss over all the objective's
/// examples at `theta`, from `probes` Rademacher probes drawn from ChaCha8 seeded with `seed`.
///
/// Errors: fewer than 2 probes (no standard error), a θ of the wrong length or with
/// non-finite entries, or a non-finite Hessian-vector product.
pub fn hutchinson<O: Objective<f64> + ?Sized>(
    obj: &mut O,
    theta: &[f64],
    probes: usize,
    seed: u64,
) -> Result<TraceEstimate, FlatnessError> {
    if probes < 2 {
        return Err(FlatnessError::setting(
            "probes",
            probes,
            "Hutchinson's trace needs at least 2 probes for a standard error",
        ));
    }
    check_measured(obj, theta)?;
    let start = Instant::now();
    let n = theta.len();
    let batch = all_examples(obj.n_examples());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut z, mut hz) = (vec![0.0; n], vec![0.0; n]);
    let mut quads = Vec::with_capacity(probes);
    for p in 0..probes {
        rademacher(&mut rng, &mut z);
        obj.hvp(theta, &batch, &z, &mut hz);
        let q = dot(&z, &hz);
        if !q.is_finite() {
            return Err(FlatnessError::non_finite(NonFiniteAt::Probe {
                probe: p + 1,
                value: q,
            }));
        }
        quads.push(q);
    }
    let (mean, std_err) = mean_and_std_err(&quads);
    Ok(TraceEstimate {
        trace: mean,
        std_err,
        probes,
        seed,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The mean of `values` (at least two) and its standard error (sample standard deviation
/// over √count), computed in two passes on the values divided by a power of two near the
/// largest, so that neither the sums nor the squares overflow or underflow and the variance
/// has no cancellation, whatever the values' scale.
fn mean_and_std_err(values: &[f64]) -> (f64, f64) {
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let e = nearest_pow2_exponent(largest).clamp(-1022, 1022);
    let (unit, inv) = (pow2(e), pow2(-e));
    let count = values.len() as f64;
    let mean = values.iter().map(|v| v * inv).sum::<f64>() / count;
    let var = values.iter().map(|v| (v * inv - mean).powi(2)).sum::<f64>() / (count - 1.0);
    (mean * unit, (var / count).sqrt() * unit)
}
