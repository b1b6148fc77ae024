//! The full spectrum of the loss Hessian of a small net, from the dense matrix: the ground
//! truth that [`crate::lanczos`], [`crate::hutchinson`] and [`crate::slq`] are tested against.
//!
//! The Hessian is built column by column from `n` exact Hessian-vector products
//! ([`basin_nn::dense_hessian`]), symmetrised, and diagonalised with faer's self-adjoint
//! eigensolver. It takes `8n²` bytes for the matrix plus about as much again inside the
//! eigensolver, so nets above [`DEFAULT_MAX_PARAMS`] parameters are refused unless the caller
//! raises the limit.

use std::time::Instant;

use basin_nn::{Objective, all_examples, dense_hessian};
use faer::{MatRef, Side};
use serde::Serialize;

use crate::checks::check_measured;
use crate::error::{FlatnessError, NonFiniteAt};

/// The default largest parameter count for a dense Hessian: 6,000 (a 288 MB matrix, under
/// 1 GB in all with the eigensolver's workspace).
pub const DEFAULT_MAX_PARAMS: usize = 6_000;

/// All eigenvalues of a dense Hessian.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DenseSpectrum {
    /// Every eigenvalue, ascending.
    pub eigenvalues: Vec<f64>,
    /// The trace (the sum of the diagonal).
    pub trace: f64,
    /// The largest |H_ij − H_ji| before symmetrising (round-off of the HVPs only).
    pub asymmetry: f64,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

impl DenseSpectrum {
    /// The `k` largest eigenvalues, descending.
    pub fn top(&self, k: usize) -> Vec<f64> {
        self.eigenvalues.iter().rev().take(k).copied().collect()
    }

    /// The `k` smallest eigenvalues, ascending.
    pub fn bottom(&self, k: usize) -> Vec<f64> {
        self.eigenvalues.iter().take(k).copied().collect()
    }
}

/// Every eigenvalue of the Hessian of the mean loss over all the objective's examples at
/// `theta`.
///
/// Errors: more than `max_params` parameters (the message gives the memory it would take),
/// a θ of the wrong length or with non-finite entries, a non-finite Hessian entry, or a failed
/// eigensolver.
pub fn dense_spectrum(
    obj: &mut dyn Objective<f64>,
    theta: &[f64],
    max_params: usize,
) -> Result<DenseSpectrum, FlatnessError> {
    let n = obj.n_params();
    if n > max_params {
        return Err(FlatnessError::TooLarge {
            n_params: n,
            limit: max_params,
            gb: 3.0 * 8.0 * (n as f64).powi(2) / 1e9,
        });
    }
    check_measured(obj, theta)?;
    let start = Instant::now();
    let batch = all_examples(obj.n_examples());
    let (h, asymmetry) = dense_hessian(obj, theta, &batch);
    if let Some(i) = h.iter().position(|v| !v.is_finite()) {
        return Err(FlatnessError::non_finite(NonFiniteAt::HessianEntry {
            row: i / n,
            col: i % n,
        }));
    }
    let trace = (0..n).map(|i| h[i * n + i]).sum();
    let eigenvalues = MatRef::from_row_major_slice(&h, n, n)
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| FlatnessError::Eigensolver {
            matrix: "Hessian",
            n,
            detail: format!("{e:?}"),
        })?;
    Ok(DenseSpectrum {
        eigenvalues,
        trace,
        asymmetry,
        wall_s: start.elapsed().as_secs_f64(),
    })
}
