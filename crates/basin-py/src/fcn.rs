//! `basin.Fcn`: a fully-connected network on NumPy arrays, trained, measured, α-scaled and
//! saved by the engine `basin train`, `basin eval`, `basin sharpness`, `basin hessian` and
//! `basin scale` use.

use std::path::PathBuf;

use basin_flatness::{LanczosConfig, hutchinson, lanczos};
use basin_nn::optim::OptimizerConfig;
use basin_nn::safetensors;
use basin_nn::{
    BatchOrder, FcnObjective, FcnSpec, HookAction, Kernels, Objective, Precision, Real, StopOn,
    TrainConfig, TrainReport, alpha_scale, derive_seed, train,
};
use numpy::PyArray1;
use pyo3::prelude::*;
use serde::Serialize;

use crate::arrays::{Features, Rows, binary_labels, vector};
use crate::errors::{basin_error, parse_name, to_json, value_error};
use crate::interrupt::interruptible;
use crate::prior::fcn_spec;
use crate::sharpness::{SharpnessArgs, SharpnessMethod, SharpnessOutput};

/// A fully-connected network: its architecture, its flat parameters (float64, exactly the
/// values of its precision) and the precision it trains and is measured in.
#[pyclass(module = "basin._native")]
pub struct Fcn {
    spec: FcnSpec,
    theta: Vec<f64>,
    precision: Precision,
    seed: u64,
}

/// The data of a call: features and 0/1 labels, checked against the network.
struct Data<'py> {
    x: Features<'py>,
    y: Vec<u8>,
}

impl Fcn {
    fn data<'py>(&self, x: &Bound<'py, PyAny>, y: &Bound<'py, PyAny>) -> PyResult<Data<'py>> {
        let x = self.features(x)?;
        let n = x.shape().0;
        let labels = vector(y, "y", Some(n))?;
        let y = binary_labels(labels.as_slice()?, "y")?;
        Ok(Data { x, y })
    }

    fn features<'py>(&self, x: &Bound<'py, PyAny>) -> PyResult<Features<'py>> {
        let x = Features::extract(x, "X")?;
        let (n, d) = x.shape();
        if d != self.spec.input_dim {
            return Err(value_error(
                "X",
                format!(
                    "the network takes {} inputs per example, got {d} columns",
                    self.spec.input_dim
                ),
            ));
        }
        if n == 0 {
            return Err(value_error("X", "no examples"));
        }
        Ok(x)
    }

    fn precision_or(&self, precision: Option<&str>) -> PyResult<Precision> {
        precision.map_or(Ok(self.precision), |p| parse_name("precision", p))
    }
}

/// The objective of `spec` on `rows` and `y`, in `T`.
fn objective<T: Kernels>(
    spec: &FcnSpec,
    rows: &Rows<'_>,
    y: &[u8],
) -> Result<FcnObjective<T>, basin_nn::FcnError> {
    match rows {
        Rows::F32(x) => FcnObjective::new(spec, x, y),
        Rows::F64(x) => FcnObjective::new(spec, x, y),
    }
}

/// θ in `T`.
fn narrow<T: Real>(theta: &[f64]) -> Vec<T> {
    theta.iter().map(|&t| T::from_f64(t)).collect()
}

/// How to train, as `train`'s arguments give it.
struct TrainPlan {
    optimizer: OptimizerConfig,
    cfg: TrainConfig,
    n_train: usize,
}

/// Trains `theta` (f64, trained in `T`) on `rows`/`y`; stops early when `stop` is raised.
fn train_in<T: Kernels>(
    spec: &FcnSpec,
    theta: &mut [f64],
    rows: &Rows<'_>,
    y: &[u8],
    plan: &TrainPlan,
    stop: &basin_lab::exec::StopFlag,
) -> Result<TrainReport, basin_nn::FcnError> {
    let mut obj = objective::<T>(spec, rows, y)?;
    let mut opt = plan.optimizer.build::<T>(spec.n_params());
    let mut w: Vec<T> = narrow(theta);
    let mut hook = |_: &basin_nn::EpochInfo, _: &[T]| {
        if stop.is_requested() {
            HookAction::Stop
        } else {
            HookAction::Continue
        }
    };
    let report = train(
        &mut obj,
        opt.as_mut(),
        &mut w,
        &plan.cfg,
        plan.optimizer.full_batch(),
        plan.n_train,
        &mut hook,
    );
    for (t, v) in theta.iter_mut().zip(&w) {
        *t = v.to_f64();
    }
    Ok(report)
}

/// The error rate and mean loss of `theta` on `rows`/`y`, measured in `T`.
fn evaluate<T: Kernels>(
    spec: &FcnSpec,
    theta: &[f64],
    rows: &Rows<'_>,
    y: &[u8],
) -> Result<(f64, f64), basin_nn::FcnError> {
    let mut obj = objective::<T>(spec, rows, y)?;
    let w: Vec<T> = narrow(theta);
    let all = basin_nn::all_examples(y.len());
    let errors = obj.count_errors(&w, &all);
    Ok((errors as f64 / y.len() as f64, obj.loss(&w, &all).to_f64()))
}

/// The logits of `theta` on `rows` (n examples), computed in `T`.
fn logits_in<T: Kernels>(
    spec: &FcnSpec,
    theta: &[f64],
    rows: &Rows<'_>,
    n: usize,
) -> Result<Vec<f64>, basin_nn::FcnError> {
    let mut obj = objective::<T>(spec, rows, &vec![0; n])?;
    let w: Vec<T> = narrow(theta);
    let mut out = vec![T::ZERO; n];
    obj.logits(&w, &basin_nn::all_examples(n), &mut out);
    Ok(out.iter().map(|v| v.to_f64()).collect())
}

/// The sharpness of `theta` on `rows`/`y` in `T`, by `method`.
fn sharpness_in<T: Kernels>(
    spec: &FcnSpec,
    theta: &[f64],
    rows: &Rows<'_>,
    y: &[u8],
    method: &SharpnessMethod,
) -> Result<SharpnessOutput, String> {
    let mut obj = objective::<T>(spec, rows, y).map_err(|e| e.to_string())?;
    let w: Vec<T> = narrow(theta);
    method.measure(&mut obj, &w).map_err(|e| e.to_string())
}

/// The Hessian's spectrum, with its trace when asked.
#[derive(Serialize)]
struct HessianOutput {
    #[serde(flatten)]
    spectrum: basin_flatness::Spectrum,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    trace: Option<basin_flatness::TraceEstimate>,
    n_params: usize,
}

/// What `train` reports: the training report with the error and loss on the training data.
#[derive(Serialize)]
struct TrainOutput {
    #[serde(flatten)]
    report: TrainReport,
    train_error: f64,
    train_loss: f64,
}

#[pymethods]
impl Fcn {
    /// A freshly initialised network: W ~ N(0, σ_w²/fan_in), b ~ N(0, σ_b²), drawn from
    /// `seed` as `basin train --seed` draws it.
    #[new]
    #[pyo3(signature = (input_dim, hidden, activation, sigma_w, sigma_b, seed, precision))]
    fn new(
        input_dim: usize,
        hidden: Vec<usize>,
        activation: &str,
        sigma_w: f64,
        sigma_b: f64,
        seed: u64,
        precision: &str,
    ) -> PyResult<Self> {
        let spec = fcn_spec(input_dim, hidden, activation, sigma_w, sigma_b)?;
        let precision: Precision = parse_name("precision", precision)?;
        let theta = match precision {
            Precision::F32 => spec
                .init::<f32>(derive_seed(seed, 0))
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
            Precision::F64 => spec.init::<f64>(derive_seed(seed, 0)),
        };
        Ok(Self {
            spec,
            theta,
            precision,
            seed,
        })
    }

    /// A network saved by `save` or `basin train` (safetensors).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let model = safetensors::load(&path, None).map_err(basin_error)?;
        let precision = match model.dtype {
            safetensors::StoredDtype::F64 => Precision::F64,
            _ => Precision::F32,
        };
        Ok(Self {
            spec: model.spec,
            theta: model.theta,
            precision,
            seed: 0,
        })
    }

    /// Saves the network as safetensors in its precision, with the architecture in the
    /// metadata (what `basin train --out` writes).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        match self.precision {
            Precision::F32 => safetensors::save(&path, &self.spec, &narrow::<f32>(&self.theta)),
            Precision::F64 => safetensors::save(&path, &self.spec, &self.theta),
        }
        .map_err(basin_error)
    }

    /// The architecture as JSON.
    fn spec_json(&self) -> PyResult<String> {
        to_json(&self.spec)
    }

    /// The precision: "f32" or "f64".
    #[getter]
    fn precision(&self) -> &'static str {
        match self.precision {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// The number of parameters.
    #[getter]
    fn n_params(&self) -> usize {
        self.theta.len()
    }

    /// A copy of the flat parameters (float64), in the layout of `torch.nn.Linear` layers.
    #[getter]
    fn theta<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, &self.theta)
    }

    /// Replaces the parameters (rounded to the network's precision).
    #[setter]
    fn set_theta(&mut self, theta: &Bound<'_, PyAny>) -> PyResult<()> {
        let values = vector(theta, "theta", Some(self.theta.len()))?;
        let values = values.as_slice()?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(value_error("theta", format!("entry {i} is not finite")));
        }
        self.theta = match self.precision {
            Precision::F32 => values.iter().map(|&v| f64::from(v as f32)).collect(),
            Precision::F64 => values.to_vec(),
        };
        Ok(())
    }

    /// Trains in place to zero training error; returns the report as JSON.
    #[pyo3(signature = (x, y, optimizer, lr, batch_size, order, stop_on, n_train, max_epochs, overtrain_epochs, seed))]
    #[allow(clippy::too_many_arguments)]
    fn train_json(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        optimizer: &str,
        lr: Option<f64>,
        batch_size: usize,
        order: &str,
        stop_on: &str,
        n_train: Option<usize>,
        max_epochs: usize,
        overtrain_epochs: usize,
        seed: Option<u64>,
    ) -> PyResult<String> {
        let data = self.data(x, y)?;
        let n = data.y.len();
        let seed = seed.unwrap_or(self.seed);
        let n_train = n_train.unwrap_or(n);
        if n_train == 0 || n_train > n {
            return Err(value_error(
                "n_train",
                format!("must be between 1 and the {n} examples"),
            ));
        }
        if batch_size == 0 {
            return Err(value_error("batch_size", "must be at least 1"));
        }
        let plan = TrainPlan {
            optimizer: optimizer_config(optimizer, lr, seed)?,
            cfg: TrainConfig {
                batch_size,
                order: parse_name::<BatchOrder>("order", order)?,
                stop_on: parse_name::<StopOn>("stop_on", stop_on)?,
                max_epochs,
                overtrain_epochs,
                seed: derive_seed(seed, 1),
            },
            n_train,
        };
        let rows = data.x.rows();
        let (spec, precision) = (&self.spec, self.precision);
        let theta = &mut self.theta;
        let report = interruptible(py, |stop| match precision {
            Precision::F32 => train_in::<f32>(spec, theta, &rows, &data.y, &plan, stop),
            Precision::F64 => train_in::<f64>(spec, theta, &rows, &data.y, &plan, stop),
        })?
        .map_err(basin_error)?;
        let (train_error, train_loss) = self.error_and_loss(&rows, &data.y)?;
        to_json(&TrainOutput {
            report,
            train_error,
            train_loss,
        })
    }

    /// The output logits on the rows of `X`, computed in the network's precision.
    fn logits<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let features = self.features(x)?;
        let n = features.shape().0;
        let rows = features.rows();
        let out = match self.precision {
            Precision::F32 => logits_in::<f32>(&self.spec, &self.theta, &rows, n),
            Precision::F64 => logits_in::<f64>(&self.spec, &self.theta, &rows, n),
        }
        .map_err(basin_error)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// The error rate and the mean loss on (X, y), as a pair.
    fn evaluate(&self, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
        let data = self.data(x, y)?;
        self.error_and_loss(&data.x.rows(), &data.y)
    }

    /// Keskar sharpness on (X, y); returns the measurement as JSON.
    #[pyo3(signature = (x, y, epsilon, lr, epochs, batch_size, order, seed, method, max_iter, precision))]
    #[allow(clippy::too_many_arguments)]
    fn sharpness_json(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        epsilon: f64,
        lr: f64,
        epochs: usize,
        batch_size: usize,
        order: &str,
        seed: u64,
        method: &str,
        max_iter: usize,
        precision: Option<&str>,
    ) -> PyResult<String> {
        let data = self.data(x, y)?;
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
        let precision = self.precision_or(precision)?;
        let rows = data.x.rows();
        let (spec, theta) = (&self.spec, &self.theta);
        let out = interruptible(py, |_| match precision {
            Precision::F32 => sharpness_in::<f32>(spec, theta, &rows, &data.y, &method),
            Precision::F64 => sharpness_in::<f64>(spec, theta, &rows, &data.y, &method),
        })?
        .map_err(basin_error)?;
        to_json(&out)
    }

    /// The Hessian's spectrum on (X, y) by Lanczos in float64, with Hutchinson's trace when
    /// `trace_probes` > 0; returns it as JSON.
    #[pyo3(signature = (x, y, top_k, steps, tol, seed, trace_probes))]
    #[allow(clippy::too_many_arguments)]
    fn hessian_json(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        top_k: usize,
        steps: usize,
        tol: f64,
        seed: u64,
        trace_probes: usize,
    ) -> PyResult<String> {
        let data = self.data(x, y)?;
        let rows = data.x.rows();
        let cfg = LanczosConfig {
            steps,
            top_k,
            seed,
            tol,
        };
        let (spec, theta) = (&self.spec, &self.theta);
        let out = interruptible(py, |_| -> Result<HessianOutput, String> {
            let mut obj = objective::<f64>(spec, &rows, &data.y).map_err(|e| e.to_string())?;
            let spectrum = lanczos(&mut obj, theta, &cfg).map_err(|e| e.to_string())?;
            let trace = match trace_probes {
                0 => None,
                p => Some(
                    hutchinson(&mut obj, theta, p, seed.wrapping_add(1))
                        .map_err(|e| e.to_string())?,
                ),
            };
            Ok(HessianOutput {
                spectrum,
                trace,
                n_params: theta.len(),
            })
        })?
        .map_err(basin_error)?;
        to_json(&out)
    }

    /// α-scales hidden layer `layer` (0-based) in place: its weights and biases times α, the
    /// next layer's weights over α. The function stays the same (ReLU only).
    fn scale(&mut self, alpha: f64, layer: usize) -> PyResult<()> {
        let mut theta = self.theta.clone();
        match self.precision {
            Precision::F32 => {
                let mut w = narrow::<f32>(&theta);
                alpha_scale(&self.spec, &mut w, layer, alpha).map_err(basin_error)?;
                theta = w.iter().map(|&v| f64::from(v)).collect();
            }
            Precision::F64 => {
                alpha_scale(&self.spec, &mut theta, layer, alpha).map_err(basin_error)?;
            }
        }
        self.theta = theta;
        Ok(())
    }
}

impl Fcn {
    fn error_and_loss(&self, rows: &Rows<'_>, y: &[u8]) -> PyResult<(f64, f64)> {
        match self.precision {
            Precision::F32 => evaluate::<f32>(&self.spec, &self.theta, rows, y),
            Precision::F64 => evaluate::<f64>(&self.spec, &self.theta, rows, y),
        }
        .map_err(basin_error)
    }
}

/// The optimizer named `name` (or given as a JSON object), with `lr` when given, for a run
/// seeded `seed`.
fn optimizer_config(name: &str, lr: Option<f64>, seed: u64) -> PyResult<OptimizerConfig> {
    let (cfg, seed_given): (OptimizerConfig, bool) = if name.trim_start().starts_with('{') {
        let cfg = serde_json::from_str(name).map_err(|e| value_error("optimizer", e))?;
        (cfg, name.contains("\"seed\""))
    } else {
        (
            name.parse().map_err(|e| value_error("optimizer", e))?,
            false,
        )
    };
    let mut cfg = cfg.for_run(seed, seed_given);
    if let Some(lr) = lr {
        cfg = cfg.with_lr(lr);
    }
    cfg.validate().map_err(|e| value_error("optimizer", e))?;
    Ok(cfg)
}
