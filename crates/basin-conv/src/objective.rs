//! [`ConvObjective`]: a conv net with the mean sigmoid cross-entropy loss on one logit over a
//! fixed data set, behind basin's [`Objective`] trait, so that the training loop, the
//! optimizers, sharpness, Lanczos and Hutchinson run on it unchanged.
//!
//! BatchNorm: a training step ([`Objective::loss_grad`] in [`BnMode::Train`]) normalises with
//! the batch's statistics and updates the running ones. Everything else — the loss, the
//! error count, the Hessian-vector product, and `loss_grad` in [`BnMode::Eval`] — uses the
//! running statistics (PyTorch's `model.eval()`), as the paper's code and PyHessian do.

use basin_data::{Augment, Dataset, ImageShape};
use basin_nn::loss::{bce, bce_dz, bce_dz2, predict};
use basin_nn::real::convert;
use basin_nn::{Objective, Real};
use faer::Par;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::Engine;
use crate::graph::Graph;
use crate::state::{BnMode, BnState};

/// Errors building a [`ConvObjective`].
#[derive(Debug, thiserror::Error)]
pub enum ConvError {
    /// The data do not fit the network.
    #[error("data set {name:?}: {problem}")]
    Data {
        /// The data set.
        name: String,
        /// What does not fit.
        problem: String,
    },
    /// The buffers would not fit in the memory available.
    #[error(transparent)]
    Memory(#[from] basin_data::MemoryError),
    /// The BatchNorm state does not fit the network, or holds bad values.
    #[error("BatchNorm state: {0}")]
    State(String),
}

/// What the engine's buffers hold, so that repeated Hessian-vector products at one point
/// (Lanczos, Hutchinson) skip the forward and backward passes.
#[derive(Debug, Clone, Default)]
struct Cache<T> {
    valid: bool,
    theta: Vec<T>,
    batch: Vec<usize>,
}

/// A conv net's loss over a data set: the exact [`Objective`] of basin's conv experiments.
#[derive(Debug, Clone)]
pub struct ConvObjective<T> {
    engine: Engine<T>,
    state: BnState,
    mode: BnMode,
    /// `n × C·H·W`, each example in `C, H, W` order.
    x: Vec<T>,
    y: Vec<T>,
    cache: Cache<T>,
    augment: Option<Augmenter>,
}

/// Training augmentation: the transform, its seeded stream, and one image's scratch.
#[derive(Debug, Clone)]
struct Augmenter {
    augment: Augment,
    shape: ImageShape,
    rng: ChaCha8Rng,
    src: Vec<f32>,
    dst: Vec<f32>,
}

impl<T: Real> ConvObjective<T> {
    /// The objective of `graph` with BatchNorm `state` on images `x` (`n × C·H·W`, each
    /// example channel-major) with 0/1 labels `y`. Passes hold up to `chunk` examples (a
    /// training batch in [`BnMode::Train`] must fit in one); matrix products run on `par`.
    /// The forward and backward activations are allocated and checked against the memory
    /// available here; the R-operator's, as large again, by [`Self::reserve_curvature`] or
    /// the first Hessian-vector product.
    pub fn new<X: Real>(
        graph: Graph,
        state: BnState,
        x: &[X],
        y: &[u8],
        chunk: usize,
        par: Par,
    ) -> Result<Self, ConvError> {
        let dim = graph.input_shape().len();
        let data_err = |problem: String| ConvError::Data {
            name: "features".into(),
            problem,
        };
        if x.len() != y.len() * dim {
            return Err(data_err(format!(
                "{} values for {} labels of {dim} values each (the network's input shape)",
                x.len(),
                y.len()
            )));
        }
        if let Some(bad) = y.iter().find(|&&l| l > 1) {
            return Err(data_err(format!("label {bad} is not 0/1; binarise first")));
        }
        if state.layers.len() != graph.bns.len()
            || state
                .layers
                .iter()
                .zip(&graph.bns)
                .any(|(s, b)| s.mean.len() != b.c || s.var.len() != b.c)
        {
            return Err(ConvError::State(
                "its layers do not match the network's BatchNorm layers".into(),
            ));
        }
        state.check(&graph).map_err(ConvError::State)?;
        let chunk = chunk.clamp(1, y.len().max(1));
        basin_data::memory::check(
            Engine::<T>::memory_bytes(&graph, chunk, false) as u64
                + (x.len() * size_of::<T>()) as u64
                + (graph.n_params() * size_of::<T>()) as u64,
            || {
                format!(
                    "a conv net of {} parameters with passes of {chunk} examples",
                    graph.n_params()
                )
            },
            "give a smaller batch or chunk (--batch-size), or a narrower architecture",
        )?;
        Ok(Self {
            engine: Engine::new(graph, chunk, par),
            state,
            mode: BnMode::Eval,
            x: convert(x),
            y: y.iter().map(|&l| T::from_f64(f64::from(l))).collect(),
            cache: Cache::default(),
            augment: None,
        })
    }

    /// Checks that the R-operator's buffers (as large again as the forward and backward
    /// activations) fit in memory and allocates them, so that Hessian-vector products cannot
    /// run out of memory later. Without it, the first [`Objective::hvp`] allocates them.
    pub fn reserve_curvature(&mut self) -> Result<(), ConvError> {
        let graph = self.engine.graph();
        let chunk = self.engine.capacity();
        basin_data::memory::check(
            Engine::<T>::memory_bytes(graph, chunk, false) as u64,
            || format!("the Hessian-vector product's buffers for passes of {chunk} examples"),
            "give a smaller --chunk",
        )?;
        self.engine.ensure_r_buffers();
        Ok(())
    }

    /// Augments every training example ([`BnMode::Train`] steps only) with `augment` (the
    /// paper's random crop and flip), its draws from ChaCha8 seeded with `seed`, in batch order.
    pub fn set_augment(&mut self, augment: Augment, seed: u64) -> Result<(), ConvError> {
        let s = self.engine.graph().input_shape();
        let shape = ImageShape::new(s.c, s.h, s.w);
        augment.check(shape).map_err(|e| ConvError::Data {
            name: "augmentation".into(),
            problem: e.to_string(),
        })?;
        self.augment = (!augment.is_identity()).then(|| Augmenter {
            augment,
            shape,
            rng: ChaCha8Rng::seed_from_u64(seed),
            src: vec![0.0; s.len()],
            dst: vec![0.0; s.len()],
        });
        Ok(())
    }

    /// The objective on a labelled data set whose examples have the graph's input shape.
    pub fn from_dataset(
        graph: Graph,
        state: BnState,
        data: &Dataset,
        chunk: usize,
        par: Par,
    ) -> Result<Self, ConvError> {
        let labels = data.require_labels().map_err(|e| ConvError::Data {
            name: data.name().into(),
            problem: e.to_string(),
        })?;
        Self::new(graph, state, data.features(), labels, chunk, par).map_err(|e| match e {
            ConvError::Data { problem, .. } => ConvError::Data {
                name: data.name().into(),
                problem,
            },
            other => other,
        })
    }

    /// Sets how [`Objective::loss_grad`] normalises: [`BnMode::Train`] for training steps,
    /// [`BnMode::Eval`] (the default) for measures.
    pub fn set_mode(&mut self, mode: BnMode) {
        self.mode = mode;
        self.cache.valid = false;
    }

    /// The BatchNorm running statistics.
    pub fn state(&self) -> &BnState {
        &self.state
    }

    /// Replaces the BatchNorm running statistics.
    pub fn set_state(&mut self, state: BnState) {
        self.state = state;
        self.cache.valid = false;
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        self.engine.graph()
    }

    /// The eval-mode logits of the examples `batch`, in its order.
    pub fn logits(&mut self, theta: &[T], batch: &[usize]) -> Vec<T> {
        let mut out = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(self.engine.capacity()) {
            self.forward(theta, chunk, BnMode::Eval);
            out.extend_from_slice(self.engine.logits(chunk.len()));
        }
        out
    }

    /// Copies the examples `chunk` into the engine's input, channel-major, and runs the
    /// forward pass.
    fn forward(&mut self, theta: &[T], chunk: &[usize], mode: BnMode) {
        self.cache.valid = false;
        let shape = self.engine.graph().input_shape();
        let (hw, nb) = (shape.spatial(), chunk.len());
        let input = self.engine.input_mut();
        let mut augment = self.augment.as_mut().filter(|_| mode == BnMode::Train);
        for (n, &ex) in chunk.iter().enumerate() {
            let image = &self.x[ex * shape.len()..(ex + 1) * shape.len()];
            match augment.as_deref_mut() {
                Some(a) => {
                    let augmented = a.apply(image);
                    for (c, plane) in augmented.chunks_exact(hw).enumerate() {
                        let dst = &mut input[(c * nb + n) * hw..(c * nb + n + 1) * hw];
                        dst.iter_mut()
                            .zip(plane)
                            .for_each(|(d, v)| *d = T::from_f64(f64::from(*v)));
                    }
                }
                None => {
                    for (c, plane) in image.chunks_exact(hw).enumerate() {
                        input[(c * nb + n) * hw..(c * nb + n + 1) * hw].copy_from_slice(plane);
                    }
                }
            }
        }
        self.engine.forward(theta, nb, mode, &mut self.state);
    }

    /// Sets the logits' adjoint `ℓ′(z)/B` of a chunk and returns the chunk's summed loss.
    fn seed_adjoint(&mut self, chunk: &[usize], b: T) -> T {
        let (z, adj) = self.engine.logit_adjoint_mut(chunk.len());
        let mut loss = T::ZERO;
        for ((a, &zi), &ex) in adj.iter_mut().zip(z).zip(chunk) {
            loss += bce(zi, self.y[ex]);
            *a = bce_dz(zi, self.y[ex]) / b;
        }
        loss
    }
}

impl Augmenter {
    /// An augmented copy of `image` (a fresh draw), in the augmenter's scratch. The features
    /// come from f32 data, so the round trip through f32 is exact.
    fn apply<T: Real>(&mut self, image: &[T]) -> &[f32] {
        for (s, x) in self.src.iter_mut().zip(image) {
            *s = x.to_f64() as f32;
        }
        let draw = self.augment.draw(&mut self.rng);
        // The shapes were checked when the augmentation was set, so this cannot fail; were it
        // to, the image goes in unaugmented.
        if self
            .augment
            .apply_at(self.shape, &self.src, &mut self.dst, draw)
            .is_err()
        {
            self.dst.copy_from_slice(&self.src);
        }
        &self.dst
    }
}

impl<T: Real> Objective<T> for ConvObjective<T> {
    fn n_params(&self) -> usize {
        self.engine.graph().n_params()
    }

    fn n_examples(&self) -> usize {
        self.y.len()
    }

    fn loss(&mut self, theta: &[T], batch: &[usize]) -> T {
        let mut total = T::ZERO;
        for chunk in batch.chunks(self.engine.capacity()) {
            self.forward(theta, chunk, BnMode::Eval);
            let z = self.engine.logits(chunk.len());
            total += z
                .iter()
                .zip(chunk)
                .map(|(&zi, &ex)| bce(zi, self.y[ex]))
                .sum::<T>();
        }
        total / T::from_f64(batch.len().max(1) as f64)
    }

    fn loss_grad(&mut self, theta: &[T], batch: &[usize], grad: &mut [T]) -> T {
        grad.fill(T::ZERO);
        let b = T::from_f64(batch.len().max(1) as f64);
        let mut total = T::ZERO;
        for chunk in batch.chunks(self.engine.capacity()) {
            self.forward(theta, chunk, self.mode);
            total += self.seed_adjoint(chunk, b);
            self.engine.backward(theta, chunk.len(), Some(grad));
        }
        total / b
    }

    fn hvp(&mut self, theta: &[T], batch: &[usize], v: &[T], out: &mut [T]) {
        out.fill(T::ZERO);
        let b = T::from_f64(batch.len().max(1) as f64);
        let single = batch.len() <= self.engine.capacity();
        for chunk in batch.chunks(self.engine.capacity()) {
            let nb = chunk.len();
            let cached = single
                && self.cache.valid
                && self.cache.batch == chunk
                && self.cache.theta == theta;
            if !cached {
                self.forward(theta, chunk, BnMode::Eval);
                self.seed_adjoint(chunk, b);
                self.engine.backward(theta, nb, None);
                if single {
                    self.cache.theta.clear();
                    self.cache.theta.extend_from_slice(theta);
                    self.cache.batch.clear();
                    self.cache.batch.extend_from_slice(chunk);
                    self.cache.valid = true;
                }
            }
            self.engine.r_forward(theta, v, nb);
            let (z, rz, radj) = self.engine.logit_r_adjoint_mut(nb);
            for ((r, zi), rzi) in radj.iter_mut().zip(z).zip(rz) {
                *r = bce_dz2(*zi) * *rzi / b;
            }
            self.engine.r_backward(theta, v, nb, out);
        }
    }

    fn count_errors(&mut self, theta: &[T], batch: &[usize]) -> usize {
        let mut errors = 0;
        for chunk in batch.chunks(self.engine.capacity()) {
            self.forward(theta, chunk, BnMode::Eval);
            let z = self.engine.logits(chunk.len());
            errors += z
                .iter()
                .zip(chunk)
                .filter(|(zi, ex)| T::from_f64(f64::from(predict(**zi))) != self.y[**ex])
                .count();
        }
        errors
    }
}
