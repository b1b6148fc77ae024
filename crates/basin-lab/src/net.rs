//! The network of an experiment, of either family: a fully-connected net (`network.hidden`)
//! or a ResNet (`network.arch`). [`Net`] is built once from the spec and the data's shape and
//! is the one place where the lab turns it into objectives: the training objective (a
//! ResNet's in BatchNorm's train mode, its images augmented when the spec says so) and the
//! eval-mode objectives of every measure. A ResNet's BatchNorm running statistics travel
//! with θ from training to the measures as [`NetState`].

use std::cell::RefCell;

use basin_conv::{BnMode, BnState, ConvObjective, ConvRun, Graph, NetworkError, ResNetSpec};
use basin_data::{Augment, Dataset};
use basin_nn::{FcnObjective, FcnSpec, Kernels, Objective, Real, all_examples};

use crate::error::LabError;
use crate::spec::ExperimentSpec;

/// The network of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub enum Net {
    /// A fully-connected net.
    Fcn(FcnSpec),
    /// A ResNet with its graph on the data's image shape.
    ResNet {
        /// The architecture.
        spec: ResNetSpec,
        /// Its graph on the data's images.
        graph: Graph,
    },
}

/// What a trained network carries besides θ into its measures: a ResNet's BatchNorm running
/// statistics (in f64 whatever the training precision), nothing for a fully-connected net.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetState(Option<BnState>);

impl NetState {
    /// The state of a network that has none (a fully-connected net).
    pub fn none() -> Self {
        Self(None)
    }

    /// A ResNet's BatchNorm running statistics, if the network has them.
    pub fn batch_norm(&self) -> Option<&BnState> {
        self.0.as_ref()
    }
}

impl Net {
    /// The network of `spec` on the examples of `data` (its input dimension, or for a ResNet
    /// its image shape), checked.
    pub fn new(spec: &ExperimentSpec, data: &Dataset) -> Result<Self, LabError> {
        let n = &spec.network;
        let setup = |e: &dyn std::fmt::Display| LabError::setup(&spec.name, e);
        let Some(arch) = &n.arch else {
            return Self::fcn(spec, data.dim());
        };
        let shape = data.require_image_shape().map_err(|e| {
            setup(&format!(
                "network.arch: a ResNet needs images, and {e}; give an image source (mnist, \
                 idx, cifar10, or npy of shape (n, C, H, W))"
            ))
        })?;
        let mut resnet = arch.with_channels(shape.channels);
        resnet.activation = n.activation;
        resnet.sigma_w = n.sigma_w;
        resnet.sigma_b = n.sigma_b;
        resnet
            .validate()
            .map_err(|e| setup(&format!("network.arch: {e}")))?;
        let graph = Graph::resnet(&resnet, shape.height, shape.width);
        Ok(Self::ResNet {
            spec: resnet,
            graph,
        })
    }

    /// The fully-connected net of `spec`'s `[network]` on `input_dim` inputs, checked.
    pub fn fcn(spec: &ExperimentSpec, input_dim: usize) -> Result<Self, LabError> {
        let n = &spec.network;
        let fcn = FcnSpec {
            input_dim,
            hidden: n.hidden.clone(),
            activation: n.activation,
            sigma_w: n.sigma_w,
            sigma_b: n.sigma_b,
        };
        fcn.validate().map_err(|e| LabError::setup(&spec.name, e))?;
        Ok(Self::Fcn(fcn))
    }

    /// The fully-connected net's spec; `None` for a ResNet.
    pub fn fcn_spec(&self) -> Option<&FcnSpec> {
        match self {
            Self::Fcn(f) => Some(f),
            Self::ResNet { .. } => None,
        }
    }

    /// A short description: the FCN's widths, or the ResNet's name.
    pub fn describe(&self) -> String {
        match self {
            Self::Fcn(f) => format!("a fully-connected net of widths {:?}", f.widths()),
            Self::ResNet { spec, .. } => format!("the ResNet {spec}"),
        }
    }

    /// The number of parameters.
    pub fn n_params(&self) -> usize {
        match self {
            Self::Fcn(f) => f.n_params(),
            Self::ResNet { graph, .. } => graph.n_params(),
        }
    }

    /// Random initial parameters from `seed` (the family's init).
    pub fn init<T: Real>(&self, seed: u64) -> Vec<T> {
        match self {
            Self::Fcn(f) => f.init(seed),
            Self::ResNet { graph, .. } => graph.init(seed),
        }
    }

    /// The state of the freshly initialised network: PyTorch's BatchNorm init for a ResNet.
    pub fn fresh_state(&self) -> NetState {
        match self {
            Self::Fcn(_) => NetState::none(),
            Self::ResNet { graph, .. } => NetState(Some(BnState::fresh(graph))),
        }
    }

    /// The training objective on `data`: a ResNet's normalises with batch statistics and
    /// updates the running ones, in passes that hold a batch of `batch` examples, and
    /// augments its images with `augment`'s transform, drawn from its seed, when one is given.
    pub fn trainer<T: Kernels>(
        &self,
        data: &Dataset,
        batch: usize,
        augment: Option<(Augment, u64)>,
    ) -> Result<Trainer<T>, NetworkError> {
        let inner = match self {
            Self::Fcn(f) => Trainee::Fcn(Box::new(FcnObjective::from_dataset(f, data)?)),
            Self::ResNet { graph, .. } => {
                let run = ConvRun {
                    chunk: batch.max(1),
                    threads: 1,
                    curvature: false,
                };
                let mut obj = ConvObjective::from_dataset(
                    graph.clone(),
                    BnState::fresh(graph),
                    data,
                    run.chunk,
                    run.par(),
                )?;
                obj.set_mode(BnMode::Train);
                if let Some((transform, seed)) = augment {
                    obj.set_augment(transform, seed)?;
                }
                Trainee::Conv(Box::new(obj))
            }
        };
        Ok(Trainer(RefCell::new(inner)))
    }

    /// The eval-mode objective on `data` of the network with `state` (a ResNet's running
    /// statistics): for errors, losses, sharpness and, with `curvature`, Hessian-vector
    /// products (whose buffers are then allocated up front).
    pub fn objective<T: Kernels>(
        &self,
        data: &Dataset,
        state: &NetState,
        curvature: bool,
    ) -> Result<Box<dyn Objective<T>>, NetworkError> {
        Ok(match self {
            Self::Fcn(f) => Box::new(FcnObjective::<T>::from_dataset(f, data)?),
            Self::ResNet { graph, .. } => {
                Box::new(conv_objective::<T>(graph, data, state, curvature)?)
            }
        })
    }

    /// The eval-mode logits of every example of `data`, in order.
    pub fn logits<T: Kernels>(
        &self,
        theta: &[T],
        state: &NetState,
        data: &Dataset,
    ) -> Result<Vec<T>, NetworkError> {
        let all = all_examples(data.len());
        Ok(match self {
            Self::Fcn(f) => {
                let mut out = vec![T::ZERO; data.len()];
                FcnObjective::<T>::from_dataset(f, data)?.logits(theta, &all, &mut out);
                out
            }
            Self::ResNet { graph, .. } => {
                conv_objective::<T>(graph, data, state, false)?.logits(theta, &all)
            }
        })
    }
}

/// A ResNet's eval-mode objective on `data` with `state`, its passes as large as fit in
/// basin-conv's automatic chunk.
fn conv_objective<T: Kernels>(
    graph: &Graph,
    data: &Dataset,
    state: &NetState,
    curvature: bool,
) -> Result<ConvObjective<T>, NetworkError> {
    let run = ConvRun {
        chunk: 0,
        threads: 1,
        curvature,
    };
    let chunk = run.chunk_for::<T>(graph, data.len());
    let mut obj = ConvObjective::<T>::from_dataset(
        graph.clone(),
        BnState::fresh(graph),
        data,
        chunk,
        run.par(),
    )?;
    // The state comes from this graph's own training, so its layers match. It is set without
    // the check of its values that a model file's gets: a run whose statistics are not finite
    // is measured with them, as a fully-connected net is with its parameters (its measures
    // fail with notes), rather than stopping the experiment.
    if let Some(bn) = state.batch_norm() {
        obj.set_state(bn.clone());
    }
    if curvature {
        obj.reserve_curvature()?;
    }
    Ok(obj)
}

/// The training objective of a [`Net`], whose state (a ResNet's running statistics) can be
/// read between training steps: train through `&mut &trainer`, read [`Trainer::state`] in the
/// training loop's hook.
#[derive(Debug)]
pub struct Trainer<T>(RefCell<Trainee<T>>);

/// The objective a [`Trainer`] holds.
#[derive(Debug)]
enum Trainee<T> {
    Fcn(Box<FcnObjective<T>>),
    Conv(Box<ConvObjective<T>>),
}

impl<T: Kernels> Trainer<T> {
    /// The network's state now.
    pub fn state(&self) -> NetState {
        match &*self.0.borrow() {
            Trainee::Fcn(_) => NetState::none(),
            Trainee::Conv(c) => NetState(Some(c.state().clone())),
        }
    }

    /// Runs `f` on the objective.
    fn with<R>(&self, f: impl FnOnce(&mut dyn Objective<T>) -> R) -> R {
        match &mut *self.0.borrow_mut() {
            Trainee::Fcn(o) => f(o.as_mut()),
            Trainee::Conv(o) => f(o.as_mut()),
        }
    }
}

impl<T: Kernels> Objective<T> for &Trainer<T> {
    fn n_params(&self) -> usize {
        self.with(|o| o.n_params())
    }

    fn n_examples(&self) -> usize {
        self.with(|o| o.n_examples())
    }

    fn loss(&mut self, theta: &[T], batch: &[usize]) -> T {
        self.with(|o| o.loss(theta, batch))
    }

    fn loss_grad(&mut self, theta: &[T], batch: &[usize], grad: &mut [T]) -> T {
        self.with(|o| o.loss_grad(theta, batch, grad))
    }

    fn hvp(&mut self, theta: &[T], batch: &[usize], v: &[T], out: &mut [T]) {
        self.with(|o| o.hvp(theta, batch, v, out))
    }

    fn count_errors(&mut self, theta: &[T], batch: &[usize]) -> usize {
        self.with(|o| o.count_errors(theta, batch))
    }
}
