//! Spectra, trace, density and sharpness of any model, from the user's callbacks: the same
//! functions `basin hessian` and `basin sharpness` run, on a [`Callbacks`] objective.

use basin_flatness::{LanczosConfig, SlqConfig, hutchinson, lanczos, spectral_density};
use pyo3::prelude::*;
use serde::Serialize;

use crate::arrays::vector;
use crate::callbacks::Callbacks;
use crate::errors::{to_json, value_error};
use crate::sharpness::{SharpnessArgs, SharpnessMethod};

/// The top and bottom `top_k` eigenvalues of the operator `hvp` over `n` parameters, by
/// `steps` Lanczos steps with full reorthogonalisation from a start vector seeded by `seed`;
/// converged when `residual + m·ε·‖T‖ ≤ tol·|λ|`. Returns `basin hessian --json`'s fields as
/// JSON, with `hvp_calls`.
#[pyfunction]
#[pyo3(signature = (hvp, n, top_k, steps, tol, seed))]
pub fn lanczos_json(
    py: Python<'_>,
    hvp: Py<PyAny>,
    n: usize,
    top_k: usize,
    steps: usize,
    tol: f64,
    seed: u64,
) -> PyResult<String> {
    let cfg = LanczosConfig {
        steps,
        top_k,
        seed,
        tol,
    };
    with_hvp(py, hvp, n, |obj, theta| lanczos(obj, theta, &cfg))
}

/// Hutchinson's trace estimate of the operator `hvp` from `probes` seeded Rademacher probes.
#[pyfunction]
#[pyo3(signature = (hvp, n, probes, seed))]
pub fn hutchinson_json(
    py: Python<'_>,
    hvp: Py<PyAny>,
    n: usize,
    probes: usize,
    seed: u64,
) -> PyResult<String> {
    with_hvp(py, hvp, n, |obj, theta| {
        hutchinson(obj, theta, probes, seed)
    })
}

/// The spectral density of the operator `hvp` by stochastic Lanczos quadrature.
#[pyfunction]
#[pyo3(signature = (hvp, n, probes, steps, seed, sigma_rel, grid_points))]
#[allow(clippy::too_many_arguments)]
pub fn spectral_density_json(
    py: Python<'_>,
    hvp: Py<PyAny>,
    n: usize,
    probes: usize,
    steps: usize,
    seed: u64,
    sigma_rel: f64,
    grid_points: usize,
) -> PyResult<String> {
    let cfg = SlqConfig {
        probes,
        steps,
        seed,
        sigma_rel,
        grid_points,
    };
    with_hvp(py, hvp, n, |obj, theta| spectral_density(obj, theta, &cfg))
}

/// Keskar sharpness of any model from `loss_and_grad(theta, indices)` and `full_loss(theta)`
/// at `theta0` (float64), by the SGD ascent (`method` "sgd") or L-BFGS-B ("lbfgsb").
#[pyfunction]
#[pyo3(signature = (loss_and_grad, full_loss, theta0, n_examples, epsilon, lr, epochs, batch_size, order, seed, method, max_iter))]
#[allow(clippy::too_many_arguments)]
pub fn keskar_json(
    py: Python<'_>,
    loss_and_grad: Py<PyAny>,
    full_loss: Py<PyAny>,
    theta0: &Bound<'_, PyAny>,
    n_examples: usize,
    epsilon: f64,
    lr: f64,
    epochs: usize,
    batch_size: usize,
    order: &str,
    seed: u64,
    method: &str,
    max_iter: usize,
) -> PyResult<String> {
    let theta = vector(theta0, "theta0", None)?;
    let theta = theta.as_slice()?;
    check_n(theta.len())?;
    if n_examples == 0 {
        return Err(value_error("n_examples", "must be at least 1"));
    }
    let method = SharpnessMethod::parse(&SharpnessArgs {
        method,
        epsilon,
        lr,
        epochs,
        batch_size,
        order,
        seed,
        max_iter,
    })?;
    let mut obj = Callbacks::loss(loss_and_grad, full_loss, theta.len(), n_examples);
    let result = py.detach(|| method.measure(&mut obj, theta));
    to_json(&obj.finish(result)?)
}

/// Runs `measure` on the operator `hvp` over `n` parameters (at a θ the callback ignores)
/// with the GIL released, and returns its result as JSON with the number of HVP calls.
fn with_hvp<R, E>(
    py: Python<'_>,
    hvp: Py<PyAny>,
    n: usize,
    measure: impl FnOnce(&mut Callbacks, &[f64]) -> Result<R, E> + Send,
) -> PyResult<String>
where
    R: Serialize + Send,
    E: std::fmt::Display + Send,
{
    check_n(n)?;
    let mut obj = Callbacks::hvp(hvp, n);
    let theta = vec![0.0; n];
    let result = py.detach(|| measure(&mut obj, &theta));
    let hvp_calls = obj.calls();
    to_json(&WithCalls {
        result: obj.finish(result)?,
        hvp_calls,
    })
}

/// `n` parameters: at least one.
fn check_n(n: usize) -> PyResult<()> {
    if n == 0 {
        return Err(value_error("n", "the operator needs at least 1 parameter"));
    }
    Ok(())
}

/// A measure's result with the number of HVP callbacks it made.
#[derive(Serialize)]
struct WithCalls<R> {
    #[serde(flatten)]
    result: R,
    hvp_calls: usize,
}
