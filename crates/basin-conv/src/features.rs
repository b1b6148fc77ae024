//! The penultimate features of random networks: the network without its readout, drawn from
//! a seed by [`Graph::init`] (the paper's He-normal init, BatchNorm at its init in eval mode),
//! on a fixed set of images. Averaged over seeds, `σ_w²/d · Φ Φᵀ + σ_b²` is the empirical
//! NNGP kernel (`basin_prior::mc_kernel`).

use basin_data::Dataset;
use basin_nn::Real;
use faer::Par;

use crate::engine::Engine;
use crate::graph::Graph;
use crate::objective::ConvError;
use crate::state::{BnMode, BnState};

/// A graph's random feature map on fixed images: the values of [`Graph::feature_node`] for
/// every image, computed in `T` in passes of up to `chunk` images, with buffers kept between
/// draws.
#[derive(Debug, Clone)]
pub struct FeatureMap<T> {
    engine: Engine<T>,
    state: BnState,
    theta: Vec<T>,
    x: Vec<T>,
    n: usize,
    node: usize,
}

impl<T: Real> FeatureMap<T> {
    /// The feature map of `graph` on the images of `data` (each of the graph's input shape),
    /// in passes of `chunk` images whose products run on `par`. The buffers are checked
    /// against the memory available.
    pub fn new(graph: Graph, data: &Dataset, chunk: usize, par: Par) -> Result<Self, ConvError> {
        let dim = graph.input_shape().len();
        let n = data.len();
        if data.dim() != dim || n == 0 {
            return Err(ConvError::Data {
                name: data.name().into(),
                problem: format!(
                    "{n} examples of {} values each, but the network takes {dim} values per \
                     example and needs at least one",
                    data.dim()
                ),
            });
        }
        let chunk = chunk.clamp(1, n);
        basin_data::memory::check(
            (Engine::<T>::forward_bytes(&graph, chunk)
                + ((data.features().len() + graph.n_params()) * size_of::<T>()) as u128)
                as u64,
            || {
                format!(
                    "the features of a network of {} parameters in passes of {chunk} images",
                    graph.n_params()
                )
            },
            "give a smaller --chunk, or a narrower architecture",
        )?;
        Ok(Self {
            state: BnState::fresh(&graph),
            theta: vec![T::ZERO; graph.n_params()],
            x: data
                .features()
                .iter()
                .map(|&v| T::from_f64(v.into()))
                .collect(),
            n,
            node: graph.feature_node(),
            engine: Engine::forward_only(graph, chunk, par),
        })
    }

    /// The number of images.
    pub fn n_points(&self) -> usize {
        self.n
    }

    /// The number of features per image (channels × positions of the feature node).
    pub fn width(&self) -> usize {
        self.engine.graph().nodes[self.node].shape.len()
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        self.engine.graph()
    }

    /// Draws the network of `seed` and writes image `i`'s feature `j` to `out(i, j)`, where
    /// `out(i, j)` stores the value (in f64) at `out[j * col_stride + i]` (`out` is
    /// column-major `n_points × width`).
    pub fn features(&mut self, seed: u64, out: &mut [f64], col_stride: usize) {
        self.engine.graph().init_into(seed, &mut self.theta);
        let (n, width, cap) = (self.n, self.width(), self.engine.capacity());
        let per = self.engine.graph().nodes[self.node].shape;
        let spatial = per.spatial();
        for start in (0..n).step_by(cap) {
            let nb = cap.min(n - start);
            self.load(start, nb);
            self.engine
                .forward(&self.theta, nb, BnMode::Eval, &mut self.state);
            // [C, N, H, W]: feature (c, p) of image i is at (c·nb + i)·spatial + p.
            let values = self.engine.values(self.node, nb);
            for j in 0..width {
                let (c, p) = (j / spatial, j % spatial);
                let col = &mut out[j * col_stride + start..j * col_stride + start + nb];
                for (i, o) in col.iter_mut().enumerate() {
                    *o = values[(c * nb + i) * spatial + p].to_f64();
                }
            }
        }
    }

    /// Copies images `start..start + nb` into the engine's input, channel-major.
    fn load(&mut self, start: usize, nb: usize) {
        let shape = self.engine.graph().input_shape();
        let (len, hw) = (shape.len(), shape.spatial());
        let input = self.engine.input_mut();
        for k in 0..nb {
            let image = &self.x[(start + k) * len..(start + k + 1) * len];
            for (c, plane) in image.chunks_exact(hw).enumerate() {
                input[(c * nb + k) * hw..(c * nb + k + 1) * hw].copy_from_slice(plane);
            }
        }
    }
}
