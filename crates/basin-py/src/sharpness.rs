//! Keskar sharpness as the Python functions ask for it: the method and its settings by name,
//! measured on any objective (the user's callbacks or basin's FCN), with one result format.

use basin_flatness::FlatnessError;
use basin_flatness::keskar::{AscentOrder, KeskarConfig, Sharpness, sharpness_sgd};
use basin_flatness::lbfgsb::{LbfgsbConfig, LbfgsbStatus, sharpness_lbfgsb};
use basin_nn::{Objective, Real};
use pyo3::prelude::*;
use serde::Serialize;

use crate::errors::value_error;

/// The settings of a sharpness measurement as the Python arguments give them.
pub struct SharpnessArgs<'a> {
    /// `"sgd"` or `"lbfgsb"`.
    pub method: &'a str,
    /// The box's relative half-width.
    pub epsilon: f64,
    /// The ascent's learning rate.
    pub lr: f64,
    /// The ascent's epochs.
    pub epochs: usize,
    /// The ascent's minibatch size.
    pub batch_size: usize,
    /// `"fixed"` or `"shuffled"`.
    pub order: &'a str,
    /// The seed of a shuffled order.
    pub seed: u64,
    /// L-BFGS-B's iterations.
    pub max_iter: usize,
}

/// The two ways of measuring sharpness.
pub enum SharpnessMethod {
    /// The paper's SGD ascent.
    Sgd(KeskarConfig),
    /// L-BFGS-B over the box, with the box's ε.
    Lbfgsb(f64, LbfgsbConfig),
}

/// A sharpness measurement with what its method reports.
#[derive(Serialize)]
pub struct SharpnessOutput {
    /// The measurement.
    #[serde(flatten)]
    pub sharpness: Sharpness,
    /// "sgd" or "lbfgsb".
    pub method: &'static str,
    /// The SGD ascent's full-set loss after every step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_trace: Option<Vec<f64>>,
    /// Why L-BFGS-B stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lbfgsb_status: Option<LbfgsbStatus>,
    /// −L at L-BFGS-B's last point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lbfgsb_f: Option<f64>,
}

impl SharpnessMethod {
    /// The method the arguments name, with its settings; a `ValueError` for an unknown
    /// method or order.
    pub fn parse(args: &SharpnessArgs<'_>) -> PyResult<Self> {
        match args.method {
            "sgd" => Ok(SharpnessMethod::Sgd(KeskarConfig {
                epsilon: args.epsilon,
                lr: args.lr,
                epochs: args.epochs,
                batch_size: args.batch_size,
                order: ascent_order(args.order, args.seed)?,
            })),
            "lbfgsb" => Ok(SharpnessMethod::Lbfgsb(
                args.epsilon,
                LbfgsbConfig {
                    max_iter: args.max_iter,
                    ..LbfgsbConfig::default()
                },
            )),
            other => Err(value_error(
                "method",
                format!("expected \"sgd\" or \"lbfgsb\", got {other:?}"),
            )),
        }
    }

    /// The sharpness of `obj` at `theta`.
    pub fn measure<T: Real>(
        &self,
        obj: &mut dyn Objective<T>,
        theta: &[T],
    ) -> Result<SharpnessOutput, FlatnessError> {
        Ok(match self {
            SharpnessMethod::Sgd(cfg) => {
                let ascent = sharpness_sgd(obj, theta, cfg)?;
                SharpnessOutput {
                    sharpness: ascent.sharpness,
                    method: "sgd",
                    loss_trace: Some(ascent.loss_trace),
                    lbfgsb_status: None,
                    lbfgsb_f: None,
                }
            }
            SharpnessMethod::Lbfgsb(epsilon, cfg) => {
                let (sharpness, report) = sharpness_lbfgsb(obj, theta, *epsilon, cfg)?;
                SharpnessOutput {
                    sharpness,
                    method: "lbfgsb",
                    loss_trace: None,
                    lbfgsb_status: Some(report.status),
                    lbfgsb_f: Some(report.f),
                }
            }
        })
    }
}

/// The ascent's batch order by name.
fn ascent_order(order: &str, seed: u64) -> PyResult<AscentOrder> {
    match order {
        "fixed" => Ok(AscentOrder::Fixed),
        "shuffled" => Ok(AscentOrder::Shuffled { seed }),
        other => Err(value_error(
            "order",
            format!("expected \"fixed\" or \"shuffled\", got {other:?}"),
        )),
    }
}
