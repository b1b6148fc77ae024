//! [`Network`]: a trained network of either family — fully connected or conv — as a model file
//! holds it, and the one place that turns it and a data set into an [`Objective`]. The
//! commands that measure a saved network (eval, sharpness, hessian, scale) see only this.

use std::path::Path;

use basin_data::Dataset;
use basin_nn::safetensors::{self, Model, ModelError};
use basin_nn::{Activation, FcnObjective, Kernels, Objective, Real};
use faer::Par;

use crate::graph::Graph;
use crate::model::{self, ConvModel, ConvModelError};
use crate::objective::{ConvError, ConvObjective};
use crate::state::BnMode;

/// A trained network read from a model file.
#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    /// A fully-connected net (`layers.{i}.weight`, `layers.{i}.bias`).
    Fcn(Model),
    /// A conv net (a pytorch-cifar ResNet state_dict).
    Conv(ConvModel),
}

/// Errors loading a network or building its objective.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The fully-connected model file is bad.
    #[error(transparent)]
    Fcn(#[from] ModelError),
    /// The conv model file is bad.
    #[error(transparent)]
    Conv(#[from] ConvModelError),
    /// The FCN objective could not be built.
    #[error(transparent)]
    FcnObjective(#[from] basin_nn::FcnError),
    /// The conv objective could not be built.
    #[error(transparent)]
    ConvObjective(#[from] ConvError),
    /// The data do not fit the network.
    #[error("{0}")]
    Data(String),
    /// The file could not be read.
    #[error("{path}: cannot read the model file: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The memory the passes of an automatic chunk may take: 2 GiB.
pub const AUTO_CHUNK_BYTES: u128 = 2 << 30;

/// How a conv net's passes run: examples per pass and the threads of its matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvRun {
    /// The most examples a pass holds (a training batch must fit in one); 0 chooses the
    /// whole set when its passes fit in [`AUTO_CHUNK_BYTES`], else the most that do, so that
    /// repeated Hessian-vector products at one point reuse one forward pass.
    pub chunk: usize,
    /// Threads of the matrix products (1: sequential).
    pub threads: usize,
    /// Whether Hessian-vector products will be taken: their buffers are then checked and
    /// allocated up front, and the automatic chunk leaves room for them.
    pub curvature: bool,
}

impl Default for ConvRun {
    fn default() -> Self {
        Self {
            chunk: 128,
            threads: 1,
            curvature: true,
        }
    }
}

impl ConvRun {
    /// The examples per pass for `graph` on `n` examples in `T`.
    pub fn chunk_for<T: Real>(&self, graph: &Graph, n: usize) -> usize {
        if self.chunk > 0 {
            return self.chunk;
        }
        let per = crate::engine::Engine::<T>::memory_bytes(graph, 1, self.curvature).max(1);
        ((AUTO_CHUNK_BYTES / per) as usize).clamp(1, n.max(1))
    }

    /// faer's parallelism for `threads`.
    pub fn par(&self) -> Par {
        if self.threads <= 1 {
            Par::Seq
        } else {
            Par::rayon(self.threads)
        }
    }
}

impl Network {
    /// Reads the model file `path`: a conv net when it holds `conv1.weight`, else a
    /// fully-connected net (whose activation `activation` overrides).
    pub fn load(path: &Path, activation: Option<Activation>) -> Result<Self, NetworkError> {
        let bytes = std::fs::read(path).map_err(|source| NetworkError::Io {
            path: path.to_owned(),
            source,
        })?;
        if model::is_conv_model(&bytes) {
            let mut m = model::from_bytes(&bytes, path)?;
            if let Some(a) = activation {
                m.spec.activation = a;
            }
            Ok(Self::Conv(m))
        } else {
            Ok(Self::Fcn(safetensors::from_bytes(
                &bytes, path, activation,
            )?))
        }
    }

    /// θ, widened to f64.
    pub fn theta(&self) -> &[f64] {
        match self {
            Self::Fcn(m) => &m.theta,
            Self::Conv(m) => &m.theta,
        }
    }

    /// θ as `T`.
    pub fn theta_as<T: Real>(&self) -> Vec<T> {
        self.theta().iter().map(|&x| T::from_f64(x)).collect()
    }

    /// True when the file stores F32.
    pub fn is_f32(&self) -> bool {
        match self {
            Self::Fcn(m) => m.dtype == safetensors::StoredDtype::F32,
            Self::Conv(m) => m.f32,
        }
    }

    /// A short description: the FCN's widths, or the ResNet's name.
    pub fn describe(&self) -> String {
        match self {
            Self::Fcn(m) => format!("a fully-connected net of widths {:?}", m.spec.widths()),
            Self::Conv(m) => format!("a ResNet {}", m.spec),
        }
    }

    /// An error unless `data`'s examples fit the network's input.
    pub fn check_data(&self, data: &Dataset) -> Result<(), NetworkError> {
        match self {
            Self::Fcn(m) if data.dim() != m.spec.input_dim => Err(NetworkError::Data(format!(
                "the model expects {} inputs per example but {} has {}: use the data the model \
                 was trained on",
                m.spec.input_dim,
                data.name(),
                data.dim()
            ))),
            Self::Fcn(_) => Ok(()),
            Self::Conv(m) => conv_graph(&m.spec, data).map(|_| ()),
        }
    }

    /// The network's eval-mode objective on `data` in `T`.
    pub fn objective<T: Kernels>(
        &self,
        data: &Dataset,
        run: ConvRun,
    ) -> Result<Box<dyn Objective<T>>, NetworkError> {
        self.check_data(data)?;
        Ok(match self {
            Self::Fcn(m) => Box::new(FcnObjective::<T>::from_dataset(&m.spec, data)?),
            Self::Conv(m) => Box::new(conv_objective::<T>(m, data, run)?),
        })
    }

    /// The eval-mode logits of every example of `data`, in order.
    pub fn logits(&self, data: &Dataset, run: ConvRun) -> Result<Vec<f64>, NetworkError> {
        self.check_data(data)?;
        let all: Vec<usize> = (0..data.len()).collect();
        let theta = self.theta();
        Ok(match self {
            Self::Fcn(m) => {
                let mut obj = FcnObjective::<f64>::from_dataset(&m.spec, data)?;
                let mut out = vec![0.0; all.len()];
                obj.logits(theta, &all, &mut out);
                out
            }
            Self::Conv(m) => conv_objective::<f64>(m, data, run)?.logits(theta, &all),
        })
    }
}

/// The eval-mode objective of conv net `m` on `data`, its passes and curvature buffers as
/// `run` says.
fn conv_objective<T: Real>(
    m: &ConvModel,
    data: &Dataset,
    run: ConvRun,
) -> Result<ConvObjective<T>, NetworkError> {
    let graph = conv_graph(&m.spec, data)?;
    let chunk = run.chunk_for::<T>(&graph, data.len());
    let mut obj = ConvObjective::<T>::from_dataset(graph, m.state.clone(), data, chunk, run.par())?;
    obj.set_mode(BnMode::Eval);
    if run.curvature {
        obj.reserve_curvature()?;
    }
    Ok(obj)
}

/// The graph of `spec` on `data`'s images, or an error saying why the data do not fit.
pub fn conv_graph(spec: &crate::ResNetSpec, data: &Dataset) -> Result<Graph, NetworkError> {
    let shape = data
        .require_image_shape()
        .map_err(|e| NetworkError::Data(e.to_string()))?;
    if shape.channels != spec.in_channels {
        return Err(NetworkError::Data(format!(
            "the ResNet takes {} input channels but the images of {} have {}: use the data the \
             model was trained on",
            spec.in_channels,
            data.name(),
            shape.channels
        )));
    }
    Ok(Graph::resnet(spec, shape.height, shape.width))
}
