//! The prior side of figure 2 for the Boolean system, given sampled functions: each function's
//! sampled log P(f) with its interval, its labels and training set on the cube, and its
//! log P(f) under the NNGP of the 128 inputs (the infinite-width Gaussian-process
//! approximation of the finite network's prior, estimated by EP or Laplace).
//!
//! The flatness side (train each function from a fresh init to zero error, then Keskar
//! sharpness and the Hessian's spectral norm) uses `basin-nn` and `basin-flatness` on
//! [`function_dataset`].

use basin_data::{BoolTarget, Dataset};
use basin_nn::FcnSpec;
use faer::Mat;
use rayon::prelude::*;

use super::counts::{FunctionCounts, Z95, wilson_interval};
use super::forward::{INPUT_BITS, N_INPUTS};
use crate::error::PriorError;
use crate::estimate::{Estimate, Method, log_prior};
use crate::kernel::nngp;
use crate::likelihood::Likelihood;

/// One sampled function and its prior, sampled and Gaussian-process.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionPrior {
    /// The function: bit `i` is `f(x_i)`.
    pub function: u128,
    /// Times it was sampled.
    pub count: u64,
    /// Samples drawn in all.
    pub samples: u64,
    /// ln(count / samples), natural log.
    pub log_p_sampled: f64,
    /// ln of the Wilson 95% interval of P(f).
    pub log_p_sampled_ci: (f64, f64),
    /// log P(f) (natural log) of its labels on the 128 inputs under N(0, K), K the NNGP
    /// kernel of the network's spec, with the chosen likelihood and method.
    pub gp: Estimate,
}

/// The 0/1 labels of `f` on the 128 inputs, in input order.
pub fn function_labels(f: u128) -> Vec<f64> {
    (0..N_INPUTS)
        .map(|i| f64::from((f >> i) as u8 & 1))
        .collect()
}

/// The 128 inputs of {0,1}^7 labelled by `f`: the training set of figure 2 (the network is
/// trained on all of them).
pub fn function_dataset(f: u128) -> Result<Dataset, PriorError> {
    let table = (0..N_INPUTS).map(|i| (f >> i) & 1 == 1).collect();
    basin_data::boolean::cube(INPUT_BITS as u32, Some(&BoolTarget::Table(table)))
        .map_err(|e| PriorError::InvalidInput(format!("the cube data set: {e}")))
}

/// The NNGP kernel of `spec` on the 128 inputs (128 × 128, input order).
pub fn cube_kernel(spec: &FcnSpec) -> Result<Mat<f64>, PriorError> {
    let x = basin_data::boolean::cube_inputs(INPUT_BITS as u32)
        .map_err(|e| PriorError::InvalidInput(format!("the cube inputs: {e}")))?;
    nngp(spec, &x, N_INPUTS)
}

/// The `k` most frequent functions of `counts` (in the order of
/// [`FunctionCounts::top`]) with their sampled and Gaussian-process log P(f); the GP values
/// are computed in parallel on the current rayon pool, on one kernel.
pub fn top_function_priors(
    spec: &FcnSpec,
    counts: &FunctionCounts,
    k: usize,
    likelihood: Likelihood,
    method: Method,
) -> Result<Vec<FunctionPrior>, PriorError> {
    let kernel = cube_kernel(spec)?;
    let samples = counts.total();
    counts
        .top(k)
        .into_par_iter()
        .map(|(function, count)| {
            let gp = log_prior(
                kernel.as_ref(),
                &function_labels(function),
                likelihood,
                method,
            )?;
            let (lo, hi) = wilson_interval(count, samples, Z95);
            Ok(FunctionPrior {
                function,
                count,
                samples,
                log_p_sampled: (count as f64 / samples as f64).ln(),
                log_p_sampled_ci: (lo.ln(), hi.ln()),
                gp,
            })
        })
        .collect()
}
