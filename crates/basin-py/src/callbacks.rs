//! Any model as an `Objective`, through the user's Python callbacks: `hvp(v)` for spectra,
//! `loss_and_grad(theta, batch_indices)` and `full_loss(theta)` for sharpness.
//!
//! basin's measures run with the GIL released and take it back for each callback. A callback
//! that raises, returns a wrong shape or a non-number is remembered and the measure is fed
//! NaN, which it reports as a non-finite value and stops; the call then raises the callback's
//! own exception. Each callback first lets Python run its signal handlers, so Ctrl-C raises
//! `KeyboardInterrupt` out of a long measure at the next callback.

use basin_nn::Objective;
use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The user's callbacks over `n` parameters and `n_examples` examples.
pub struct Callbacks {
    hvp: Option<Py<PyAny>>,
    loss_and_grad: Option<Py<PyAny>>,
    full_loss: Option<Py<PyAny>>,
    n: usize,
    n_examples: usize,
    failure: Option<PyErr>,
    calls: usize,
    lender: Lender,
}

impl Callbacks {
    /// An objective whose Hessian-vector product is `hvp(v)`, at a point the callback fixes
    /// (the θ that measures pass is ignored).
    pub fn hvp(hvp: Py<PyAny>, n: usize) -> Self {
        Self {
            hvp: Some(hvp),
            loss_and_grad: None,
            full_loss: None,
            n,
            n_examples: 1,
            failure: None,
            calls: 0,
            lender: Lender::default(),
        }
    }

    /// An objective whose minibatch loss and gradient are `loss_and_grad(theta, indices)`
    /// and whose loss over all `n_examples` is `full_loss(theta)`.
    pub fn loss(
        loss_and_grad: Py<PyAny>,
        full_loss: Py<PyAny>,
        n: usize,
        n_examples: usize,
    ) -> Self {
        Self {
            hvp: None,
            loss_and_grad: Some(loss_and_grad),
            full_loss: Some(full_loss),
            n,
            n_examples,
            failure: None,
            calls: 0,
            lender: Lender::default(),
        }
    }

    /// The number of callback calls made.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// The measure's result, unless a callback failed: then the callback's exception.
    pub fn finish<R, E: std::fmt::Display>(self, result: Result<R, E>) -> PyResult<R> {
        if let Some(e) = self.failure {
            return Err(e);
        }
        result.map_err(crate::errors::basin_error)
    }

    /// The callback `which`, with the failure record, split so that a call can borrow both.
    fn parts(&mut self, which: Which) -> (&Py<PyAny>, Record<'_>) {
        let cb = match which {
            Which::Hvp => &self.hvp,
            Which::LossAndGrad => &self.loss_and_grad,
            Which::FullLoss => &self.full_loss,
        };
        let record = Record {
            failure: &mut self.failure,
            calls: &mut self.calls,
            lender: &mut self.lender,
        };
        (
            cb.as_ref().expect("the objective has this callback"),
            record,
        )
    }
}

/// Where callback calls are counted and their first failure kept, with the vectors lent to
/// them.
struct Record<'a> {
    failure: &'a mut Option<PyErr>,
    calls: &'a mut usize,
    lender: &'a mut Lender,
}

impl Record<'_> {
    /// Runs `call` with the GIL, unless a callback already failed; remembers a failure.
    fn run<R>(self, call: impl FnOnce(Python<'_>, &mut Lender) -> PyResult<R>) -> Option<R> {
        if self.failure.is_some() {
            return None;
        }
        *self.calls += 1;
        let lender = self.lender;
        let result = Python::attach(|py| {
            py.check_signals()?;
            call(py, lender)
        });
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                *self.failure = Some(e);
                None
            }
        }
    }
}

/// Which callback.
#[derive(Debug, Clone, Copy)]
enum Which {
    Hvp,
    LossAndGrad,
    FullLoss,
}

/// The NumPy vectors handed to the callbacks. Each call gets a vector that nobody else holds:
/// the one of the previous call when the callback kept no reference to it (nor a view of it),
/// refilled, else a new one. Reuse spares the kernel's zeroing of fresh pages, a third of a
/// call's cost at n = 11M.
#[derive(Default)]
struct Lender {
    last: Option<Py<PyArray1<f64>>>,
}

impl Lender {
    /// A vector holding `values` that only the caller will hold.
    fn lend<'py>(
        &mut self,
        py: Python<'py>,
        values: &[f64],
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        if let Some(last) = &self.last {
            let last = last.bind(py);
            // SAFETY: reading the reference count of an object we hold, with the GIL.
            let references = unsafe { pyo3::ffi::Py_REFCNT(last.as_ptr()) };
            // One reference: ours. The callback kept neither the vector nor a view of it.
            if references == 1
                && PyUntypedArrayMethods::len(last) == values.len()
                && let Ok(mut rw) = last.try_readwrite()
            {
                rw.as_slice_mut()?.copy_from_slice(values);
                return Ok(last.clone());
            }
        }
        let fresh = PyArray1::from_vec(py, values.to_vec());
        self.last = Some(fresh.clone().unbind());
        Ok(fresh)
    }
}

/// A Python number as f64, or a `ValueError` naming the callback.
fn float_of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must return a float (a Python or NumPy scalar), got {}",
            type_name(obj)
        ))
    })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "an object".to_owned(), |n| n.to_string())
}

/// Copies the array `obj` returned by the callback `name` into `out`, converting it with
/// `numpy.asarray(obj, dtype=float64)` (so JAX arrays, float32 and lists work) and checking
/// its length.
fn copy_vector(obj: &Bound<'_, PyAny>, out: &mut [f64], name: &str) -> PyResult<()> {
    let py = obj.py();
    let arr = match obj.cast::<PyArray1<f64>>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let np = py.import("numpy")?;
            let converted = np
                .getattr("asarray")?
                .call1((obj, "float64"))
                .map_err(|e| {
                    PyValueError::new_err(format!(
                        "{name} must return a float array, got {} ({e})",
                        type_name(obj)
                    ))
                })?;
            converted.cast_into::<PyArray1<f64>>().map_err(|_| {
                PyValueError::new_err(format!(
                    "{name} must return a 1-D array of {} values",
                    out.len()
                ))
            })?
        }
    };
    let ro = arr.try_readonly()?;
    let view = ro.as_array();
    if view.len() != out.len() {
        return Err(PyValueError::new_err(format!(
            "{name} returned {} values, expected {} (one per parameter)",
            view.len(),
            out.len()
        )));
    }
    match ro.as_slice() {
        Ok(values) => out.copy_from_slice(values),
        Err(_) => out.iter_mut().zip(view.iter()).for_each(|(o, v)| *o = *v),
    }
    Ok(())
}

impl Objective<f64> for Callbacks {
    fn n_params(&self) -> usize {
        self.n
    }

    fn n_examples(&self) -> usize {
        self.n_examples
    }

    fn loss(&mut self, theta: &[f64], batch: &[usize]) -> f64 {
        if batch.len() == self.n_examples && self.full_loss.is_some() {
            let (f, record) = self.parts(Which::FullLoss);
            return record
                .run(|py, lender| {
                    let out = f.call1(py, (lender.lend(py, theta)?,))?;
                    float_of(out.bind(py), "full_loss")
                })
                .unwrap_or(f64::NAN);
        }
        let mut grad = vec![0.0; self.n];
        self.loss_grad(theta, batch, &mut grad)
    }

    fn loss_grad(&mut self, theta: &[f64], batch: &[usize], grad: &mut [f64]) -> f64 {
        let (f, record) = self.parts(Which::LossAndGrad);
        let loss = record.run(|py, lender| {
            let indices: Vec<i64> = batch.iter().map(|&i| i as i64).collect();
            let args = (lender.lend(py, theta)?, PyArray1::from_vec(py, indices));
            let out = f.call1(py, args)?;
            let out = out.bind(py);
            let pair = out.cast::<PyTuple>().ok().filter(|t| t.len() == 2);
            let Some(pair) = pair else {
                return Err(PyValueError::new_err(format!(
                    "loss_and_grad must return a tuple (loss, grad), got {}",
                    type_name(out)
                )));
            };
            copy_vector(&pair.get_item(1)?, grad, "loss_and_grad's gradient")?;
            float_of(&pair.get_item(0)?, "loss_and_grad's loss")
        });
        loss.unwrap_or_else(|| {
            grad.fill(f64::NAN);
            f64::NAN
        })
    }

    fn hvp(&mut self, _theta: &[f64], _batch: &[usize], v: &[f64], out: &mut [f64]) {
        let (f, record) = self.parts(Which::Hvp);
        let done = record.run(|py, lender| {
            let r = f.call1(py, (lender.lend(py, v)?,))?;
            copy_vector(r.bind(py), out, "hvp")
        });
        if done.is_none() {
            out.fill(f64::NAN);
        }
    }

    /// Callbacks give no predictions, so no error count: basin's callback measures
    /// (spectra, trace, density, sharpness) never ask for one.
    fn count_errors(&mut self, _theta: &[f64], _batch: &[usize]) -> usize {
        0
    }
}
