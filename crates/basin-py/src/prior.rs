//! log P(f) on the user's kernel, and the NNGP kernel of a fully-connected net: the estimators
//! and the kernel `basin prior` and `basin kernel` use.

use std::time::Instant;

use basin_nn::{Activation, FcnSpec};
use basin_prior::dispatch::{Diagnostics, EstimatorOptions};
use basin_prior::estimate::{Method, Outcome};
use basin_prior::kernel::{into_row_major, nngp, nngp_f64};
use basin_prior::likelihood::Likelihood;
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use serde::Serialize;

use crate::arrays::{Features, Matrix, Rows, binary_labels, vector};
use crate::errors::{basin_error, parse_name, to_json, value_error};
use crate::interrupt::interruptible;

/// What `log_prior` returns: `basin prior --json`'s fields.
#[derive(Serialize)]
struct PriorResult {
    #[serde(flatten)]
    outcome: Outcome<Diagnostics>,
    log10_prior: f64,
    wall_s: f64,
    estimate_wall_s: f64,
}

/// log P(f) of the labels `y` under N(0, K) with `likelihood` by `method`; `options` is a
/// JSON object of [`EstimatorOptions`]' fields. Returns the result as JSON.
#[pyfunction]
#[pyo3(signature = (kernel, y, likelihood, method, options))]
pub fn log_prior_json(
    py: Python<'_>,
    kernel: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    likelihood: &str,
    method: &str,
    options: &str,
) -> PyResult<String> {
    let start = Instant::now();
    let k = Matrix::extract(kernel, "K")?;
    let (rows, cols) = k.shape();
    if rows != cols || rows == 0 {
        return Err(value_error(
            "K",
            format!("expected a non-empty square matrix, got shape ({rows}, {cols})"),
        ));
    }
    let labels = vector(y, "y", Some(rows))?;
    let labels = labels.as_slice()?;
    binary_labels(labels, "y")?;
    let likelihood: Likelihood = parse_name("likelihood", likelihood)?;
    let method: Method = parse_name("method", method)?;
    if method == Method::Exact {
        return Err(value_error(
            "method",
            "exact values exist only for special kernels; choose ep, ep-sequential, laplace, \
             tilting or smc",
        ));
    }
    let options: EstimatorOptions =
        serde_json::from_str(options).map_err(|e| value_error("options", e))?;
    let estimators = options.estimators().map_err(basin_error)?;
    let view = k.view();
    let (outcome, estimate_wall_s) = interruptible(py, |_| {
        let t = Instant::now();
        let outcome = estimators.estimate(method, view, labels, likelihood);
        (outcome, t.elapsed().as_secs_f64())
    })?;
    let outcome = outcome.map_err(basin_error)?;
    to_json(&PriorResult {
        log10_prior: outcome.estimate.log_p / std::f64::consts::LN_10,
        outcome,
        wall_s: start.elapsed().as_secs_f64(),
        estimate_wall_s,
    })
}

/// The fully-connected architecture of the arguments on `input_dim` inputs, checked.
pub fn fcn_spec(
    input_dim: usize,
    hidden: Vec<usize>,
    activation: &str,
    sigma_w: f64,
    sigma_b: f64,
) -> PyResult<FcnSpec> {
    let activation: Activation = activation
        .parse()
        .map_err(|e| value_error("activation", e))?;
    let spec = FcnSpec {
        input_dim,
        hidden,
        activation,
        sigma_w,
        sigma_b,
    };
    spec.validate()
        .map_err(|e| value_error("architecture", e))?;
    Ok(spec)
}

/// The NNGP kernel of the output logit of a fully-connected net on the rows of `X`, in
/// float64 (float32 inputs are used as they are, float64 ones without rounding).
#[pyfunction]
#[pyo3(signature = (x, hidden, activation, sigma_w, sigma_b))]
pub fn nngp_kernel<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    hidden: Vec<usize>,
    activation: &str,
    sigma_w: f64,
    sigma_b: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let features = Features::extract(x, "X")?;
    let (n, d) = features.shape();
    let spec = fcn_spec(d, hidden, activation, sigma_w, sigma_b)?;
    let rows = features.rows();
    let k = interruptible(py, |_| match &rows {
        Rows::F32(x) => nngp(&spec, x, n),
        Rows::F64(x) => nngp_f64(&spec, x, n),
    })?
    .map_err(basin_error)?;
    PyArray1::from_vec(py, into_row_major(k)).reshape([n, n])
}
