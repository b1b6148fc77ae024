//! The FCN engine: forward pass, exact gradient by backpropagation, and the exact
//! Hessian-vector product by Pearlmutter's R-operator (forward-over-reverse), on a flat
//! parameter vector in basin's layout, generic over `f32` and `f64`.
//!
//! Notation for layer `l` with weight `W` (`[out, in]`), bias `b` and input rows `A` (`B × in`):
//! `Z = A Wᵀ + 1 bᵀ`, `A' = φ(Z)` on hidden layers, and the last layer's `Z` is the logit `z`.
//! The loss is the mean of `ℓ(z, y)` ([`crate::loss::bce`]).
//!
//! Backward: `Δ_L = ℓ'(z)/B`, `∇W = Δᵀ A`, `∇b = Σ_rows Δ`, `Δ_{l−1} = (Δ W) ⊙ φ'(Z_{l−1})`.
//! R-forward (direction `V`): `RZ = RA Wᵀ + A V_Wᵀ + 1 V_bᵀ`, `RA' = φ'(Z) ⊙ RZ`.
//! R-backward: `RΔ_L = ℓ''(z) Rz / B`, `(Hv)_W = RΔᵀ A + Δᵀ RA`, `(Hv)_b = Σ_rows RΔ`,
//! `RΔ_{l−1} = (RΔ W + Δ V_W) ⊙ φ'(Z_{l−1}) + (Δ W) ⊙ φ''(Z_{l−1}) ⊙ RZ_{l−1}`.
//!
//! Batches are processed in chunks of at most [`CHUNK`] examples into preallocated buffers,
//! so no call allocates. A run of consecutive indices is read in place; other batches are
//! gathered into a buffer first.

use basin_data::Dataset;

use crate::activation::{Activation, per_activation};
use crate::csr::SparseRows;
use crate::gemm::{Mode, nn, nt, nt_indexed, tn, tn_indexed};
use crate::loss::{bce, bce_dz, bce_dz2, predict};
use crate::objective::Objective;
use crate::real::{Real, convert};
use crate::simd::Kernels;
use crate::sparse;
use crate::spec::{FcnSpec, Layer, SpecError};

/// The most examples processed at once; larger batches are split into chunks of this size.
pub const CHUNK: usize = 512;

/// Per-layer buffers, each `CHUNK × fan_out`.
#[derive(Debug, Clone)]
struct LayerBufs<T> {
    z: Vec<T>,
    a: Vec<T>,
    delta: Vec<T>,
    rz: Vec<T>,
    ra: Vec<T>,
    rdelta: Vec<T>,
}

impl<T: Kernels> LayerBufs<T> {
    fn new(width: usize) -> Self {
        let v = || vec![T::ZERO; CHUNK * width];
        Self {
            z: v(),
            a: v(),
            delta: v(),
            rz: v(),
            ra: v(),
            rdelta: v(),
        }
    }
}

/// The network-side state: layout, activation and buffers.
#[derive(Debug, Clone)]
struct Engine<T> {
    layers: Vec<Layer>,
    act: Activation,
    bufs: Vec<LayerBufs<T>>,
    da: Vec<T>,
    rda: Vec<T>,
    /// Scratch for the sparse first-layer product (see [`sparse::scratch_len`]).
    scratch: Vec<T>,
}

/// A fully-connected network with the mean sigmoid cross-entropy loss over a fixed data set:
/// the exact [`Objective`] of basin's FCN experiments.
#[derive(Debug, Clone)]
pub struct FcnObjective<T> {
    spec: FcnSpec,
    n_params: usize,
    forward_cache: ForwardCache<T>,
    inputs: Inputs<T>,
    y: Vec<T>,
    engine: Engine<T>,
}

/// The input rows and what serves them to the first layer.
#[derive(Debug, Clone)]
struct Inputs<T> {
    /// `n × dim`, row-major.
    x: Vec<T>,
    dim: usize,
    /// A chunk's rows copied together, where the kernels cannot read them in place.
    gather: Vec<T>,
    /// The rows in CSR form when they are mostly zeros (see [`crate::sparse`]).
    sparse: Option<SparseRows<T>>,
}

/// What the buffers' forward pass was computed at, so that repeated Hessian-vector products
/// at one point (Lanczos, Hutchinson) skip it. Valid only after an `hvp` on a batch of at most
/// [`CHUNK`] examples; every other call clears it.
#[derive(Debug, Clone)]
struct ForwardCache<T> {
    valid: bool,
    theta: Vec<T>,
    batch: Vec<usize>,
}

impl<T: Kernels> ForwardCache<T> {
    fn new(n_params: usize) -> Self {
        Self {
            valid: false,
            theta: Vec::with_capacity(n_params),
            batch: Vec::with_capacity(CHUNK),
        }
    }

    fn holds(&self, theta: &[T], batch: &[usize]) -> bool {
        self.valid && self.batch == batch && self.theta == theta
    }

    /// Records the point of the forward pass now in the buffers (no allocation: the capacity
    /// was reserved at construction).
    fn record(&mut self, theta: &[T], batch: &[usize]) {
        self.theta.clear();
        self.theta.extend_from_slice(theta);
        self.batch.clear();
        self.batch.extend_from_slice(batch);
        self.valid = true;
    }
}

/// Errors building an objective.
#[derive(Debug, thiserror::Error)]
pub enum FcnError {
    /// The spec is invalid.
    #[error("invalid network spec: {0}")]
    Spec(#[from] SpecError),
    /// The network and its buffers would not fit in the memory available.
    #[error(transparent)]
    Memory(#[from] basin_data::MemoryError),
    /// The data do not fit the network.
    #[error("data set {name:?}: {problem}")]
    Data {
        /// The data set.
        name: String,
        /// What does not fit.
        problem: String,
    },
}

impl<T: Kernels> FcnObjective<T> {
    /// Builds the objective of `spec` on features `x` (`n × input_dim`, row-major, f32 or f64,
    /// converted to `T`) with 0/1 labels `y`.
    pub fn new<X: Real>(spec: &FcnSpec, x: &[X], y: &[u8]) -> Result<Self, FcnError> {
        spec.validate().map_err(FcnError::Spec)?;
        let dim = spec.input_dim;
        let data_err = |problem: String| FcnError::Data {
            name: "features".into(),
            problem,
        };
        if x.len() != y.len() * dim {
            return Err(data_err(format!(
                "{} values for {} labels of dimension {dim}",
                x.len(),
                y.len()
            )));
        }
        if let Some(bad) = y.iter().find(|&&l| l > 1) {
            return Err(data_err(format!("label {bad} is not 0/1; binarise first")));
        }
        basin_data::memory::check(
            Self::memory_bytes(spec, y.len()),
            || {
                format!(
                    "a network of widths {:?} on {} examples (its parameters and per-layer \
                     buffers)",
                    spec.widths(),
                    y.len()
                )
            },
            "give narrower or fewer hidden layers (--hidden, or a spec's hidden widths)",
        )?;
        let layers = spec.layers();
        let max_width = spec.max_width();
        let x: Vec<T> = convert(x);
        Ok(Self {
            forward_cache: ForwardCache::new(spec.n_params()),
            n_params: spec.n_params(),
            spec: spec.clone(),
            inputs: Inputs {
                sparse: SparseRows::of(&x, dim),
                x,
                dim,
                gather: vec![T::ZERO; CHUNK * dim],
            },
            y: y.iter().map(|&l| T::from_f64(f64::from(l))).collect(),
            engine: Engine {
                bufs: layers.iter().map(|l| LayerBufs::new(l.fan_out)).collect(),
                act: spec.activation,
                da: vec![T::ZERO; CHUNK * max_width],
                rda: vec![T::ZERO; CHUNK * max_width],
                scratch: vec![T::ZERO; sparse::scratch_len(layers[0].fan_out, dim)],
                layers,
            },
        })
    }

    /// The bytes the objective of a valid `spec` on `n` examples holds: the inputs and labels
    /// in `T`, a copy of the parameters, the first layer's sparse scratch (at most the
    /// parameters' size again), and the per-layer buffers of [`CHUNK`] examples.
    pub fn memory_bytes(spec: &FcnSpec, n: usize) -> u64 {
        let (dim, max_width) = (spec.input_dim as u64, spec.max_width() as u64);
        let widths: u64 = spec.widths()[1..].iter().map(|&w| w as u64).sum();
        let per_chunk = (CHUNK as u64)
            .saturating_mul(widths.saturating_mul(6) + max_width.saturating_mul(2) + dim);
        let values = (n as u64)
            .saturating_mul(dim + 1)
            .saturating_add(
                spec.checked_n_params()
                    .map_or(u64::MAX, |p| (p as u64).saturating_mul(2)),
            )
            .saturating_add(per_chunk);
        values.saturating_mul(std::mem::size_of::<T>() as u64)
    }

    /// Builds the objective on a labelled data set, checking its dimension against the spec.
    pub fn from_dataset(spec: &FcnSpec, data: &Dataset) -> Result<Self, FcnError> {
        let err = |problem: String| FcnError::Data {
            name: data.name().to_owned(),
            problem,
        };
        if data.dim() != spec.input_dim {
            return Err(err(format!(
                "has dimension {} but the network takes {} inputs",
                data.dim(),
                spec.input_dim
            )));
        }
        let labels = data.require_labels().map_err(|e| err(e.to_string()))?;
        Self::new(spec, data.features(), labels).map_err(|e| match e {
            FcnError::Data { problem, .. } => err(problem),
            other => other,
        })
    }

    /// The network spec.
    pub fn spec(&self) -> &FcnSpec {
        &self.spec
    }

    /// The 0/1 labels, as `T`.
    pub fn labels(&self) -> &[T] {
        &self.y
    }

    /// The logits of the examples `batch`, written to `out` (one per example).
    pub fn logits(&mut self, theta: &[T], batch: &[usize], out: &mut [T]) {
        self.check(theta, batch);
        for (chunk, out) in batch.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
            let input = self.inputs.chunk(chunk);
            self.engine.forward(theta, input, chunk.len());
            out[..chunk.len()].copy_from_slice(self.engine.output(chunk.len()));
        }
    }

    /// Checks the arguments and invalidates the cached forward pass (the call overwrites it).
    fn check(&mut self, theta: &[T], batch: &[usize]) {
        self.forward_cache.valid = false;
        assert_eq!(theta.len(), self.n_params, "parameter count");
        assert!(!batch.is_empty(), "an empty batch has no mean loss");
        debug_assert!(batch.iter().all(|&i| i < self.y.len()), "batch index");
    }
}

/// `Replace` for the first chunk of a batch (every parameter's entry is written once by it,
/// so the output needs no zeroing), `Add` for the others.
fn first_or_add(chunk: &[usize], batch: &[usize]) -> Mode {
    if std::ptr::eq(chunk.as_ptr(), batch.as_ptr()) {
        Mode::Replace
    } else {
        Mode::Add
    }
}

/// The summed loss of a chunk whose forward pass gave the logits `z`.
fn chunk_loss<T: Kernels>(z: &[T], y: &[T], chunk: &[usize]) -> T {
    chunk.iter().zip(z).map(|(&i, &z)| bce(z, y[i])).sum()
}

/// The rows a layer reads: a row-major block, or the rows of `data` at the given indices (a
/// minibatch read in place by the AVX-512 kernels).
#[derive(Debug, Clone, Copy)]
struct Input<'a, T> {
    data: &'a [T],
    rows: Option<&'a [usize]>,
    /// The sparse form of `data`, and the first row when `rows` are consecutive.
    sparse: Option<(&'a SparseRows<T>, Option<usize>)>,
}

impl<'a, T: Kernels> Input<'a, T> {
    fn block(data: &'a [T]) -> Self {
        Self {
            data,
            rows: None,
            sparse: None,
        }
    }

    /// `c (+)= self · wᵀ`, `w` stored `n × k`; `scratch` serves the sparse path.
    fn times_wt(
        self,
        c: &mut [T],
        w: &[T],
        dims: (usize, usize, usize),
        mode: Mode,
        scratch: &mut [T],
    ) {
        if let (Some((sp, _)), Some(rows)) = (self.sparse, self.rows) {
            return sparse::times_wt(sp, rows, c, w, dims, mode, scratch);
        }
        match self.rows {
            None => nt(c, self.data, w, dims, mode),
            Some(rows) => {
                let done = nt_indexed(c, (self.data, rows), w, dims, mode);
                assert!(
                    done,
                    "indexed inputs are made only where the AVX-512 kernels run"
                );
            }
        }
    }

    /// `c (+)= deltaᵀ · self`, `delta` stored `k × m`; `scratch` serves the sparse path.
    fn delta_t_times(
        self,
        c: &mut [T],
        delta: &[T],
        dims: (usize, usize, usize),
        mode: Mode,
        scratch: &mut [T],
    ) {
        if let Some((sp, Some(first))) = self.sparse {
            return sparse::delta_t_times(sp, first, c, delta, dims, mode, scratch);
        }
        match self.rows {
            None => tn(c, delta, self.data, dims, mode),
            Some(rows) => {
                let done = tn_indexed(c, delta, (self.data, rows), dims, mode);
                assert!(
                    done,
                    "indexed inputs are made only where the AVX-512 kernels run"
                );
            }
        }
    }
}

impl<T: Kernels> Inputs<T> {
    /// The input rows of a chunk: a slice of `x` if the indices are consecutive, the rows of
    /// `x` in place where the AVX-512 kernels can read them so, and a gathered copy otherwise;
    /// for a chunk of at least [`sparse::MIN_ROWS`] mostly-zero rows read in place, also their
    /// sparse form.
    fn chunk<'a>(&'a mut self, chunk: &'a [usize]) -> Input<'a, T> {
        let (x, dim) = (&self.x, self.dim);
        // The sparse path pairs with the in-place row reads, which need AVX-512.
        let sparse = self
            .sparse
            .as_ref()
            .filter(|_| chunk.len() >= sparse::MIN_ROWS && crate::simd::has_avx512());
        let first = chunk[0];
        let consecutive = chunk.iter().enumerate().all(|(k, &i)| i == first + k);
        if consecutive && sparse.is_none() {
            return Input::block(&x[first * dim..(first + chunk.len()) * dim]);
        }
        if crate::simd::has_avx512() {
            return Input {
                data: x,
                rows: Some(chunk),
                sparse: sparse.map(|sp| (sp, consecutive.then_some(first))),
            };
        }
        for (row, &i) in self.gather.chunks_exact_mut(dim).zip(chunk) {
            row.copy_from_slice(&x[i * dim..(i + 1) * dim]);
        }
        Input::block(&self.gather[..chunk.len() * dim])
    }
}

impl<T: Kernels> Engine<T> {
    fn output(&self, b: usize) -> &[T] {
        &self.bufs.last().expect("at least one layer").z[..b]
    }

    /// Forward pass of `b` rows of `input`, filling each layer's `z` and (hidden) `a`.
    fn forward(&mut self, theta: &[T], input: Input<'_, T>, b: usize) {
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = self.bufs.split_at_mut(l);
            let prev = if l == 0 {
                input
            } else {
                Input::block(&done[l - 1].a[..])
            };
            let buf = &mut rest[0];
            let (fi, fo) = (layer.fan_in, layer.fan_out);
            let bias = &theta[layer.b_range()];
            for row in buf.z[..b * fo].chunks_exact_mut(fo) {
                row.copy_from_slice(bias);
            }
            let w = &theta[layer.w_range()];
            prev.times_wt(&mut buf.z, w, (b, fo, fi), Mode::Add, &mut self.scratch);
            if l < last {
                let act = self.act;
                per_activation!(act, {
                    for (a, &z) in buf.a[..b * fo].iter_mut().zip(&buf.z[..b * fo]) {
                        *a = act.apply(z);
                    }
                });
            }
        }
    }

    /// Backward pass from `delta` of the output layer (already set), accumulating the gradient.
    fn backward(&mut self, theta: &[T], input: Input<'_, T>, b: usize, grad: &mut [T], mode: Mode) {
        for l in (0..self.layers.len()).rev() {
            let layer = self.layers[l];
            let (fi, fo) = (layer.fan_in, layer.fan_out);
            let (done, rest) = self.bufs.split_at_mut(l);
            let prev = if l == 0 {
                input
            } else {
                Input::block(&done[l - 1].a[..])
            };
            let delta = &rest[0].delta[..b * fo];
            accumulate_weight_grad(grad, &layer, (delta, prev), b, mode, &mut self.scratch);
            if l == 0 {
                break;
            }
            nn(
                &mut self.da,
                delta,
                &theta[layer.w_range()],
                (b, fi, fo),
                Mode::Replace,
            );
            let below = &mut done[l - 1];
            let act = self.act;
            per_activation!(act, {
                for ((d, &da), &z) in below.delta[..b * fi]
                    .iter_mut()
                    .zip(&self.da[..b * fi])
                    .zip(&below.z[..b * fi])
                {
                    *d = da * act.derivative(z);
                }
            });
        }
    }

    /// R-forward pass along `v` (after [`Engine::forward`]), filling `rz` and (hidden) `ra`.
    fn r_forward(&mut self, theta: &[T], v: &[T], input: Input<'_, T>, b: usize) {
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = self.bufs.split_at_mut(l);
            let buf = &mut rest[0];
            let (fi, fo) = (layer.fan_in, layer.fan_out);
            for row in buf.rz[..b * fo].chunks_exact_mut(fo) {
                row.copy_from_slice(&v[layer.b_range()]);
            }
            let prev = if l == 0 {
                input
            } else {
                Input::block(&done[l - 1].a[..])
            };
            let (vw, w) = (&v[layer.w_range()], &theta[layer.w_range()]);
            prev.times_wt(&mut buf.rz, vw, (b, fo, fi), Mode::Add, &mut self.scratch);
            if l > 0 {
                let rprev = &done[l - 1].ra[..];
                nt(&mut buf.rz, rprev, w, (b, fo, fi), Mode::Add);
            }
            if l < last {
                let act = self.act;
                per_activation!(act, {
                    for ((ra, &rz), &z) in buf.ra[..b * fo]
                        .iter_mut()
                        .zip(&buf.rz[..b * fo])
                        .zip(&buf.z[..b * fo])
                    {
                        *ra = act.derivative(z) * rz;
                    }
                });
            }
        }
    }

    /// R-backward pass (after the forward and R-forward passes, with the output layer's `delta`
    /// and `rdelta` set), accumulating `H v` into `out`.
    fn r_backward(
        &mut self,
        theta: &[T],
        v: &[T],
        input: Input<'_, T>,
        b: usize,
        out: &mut [T],
        mode: Mode,
    ) {
        for l in (0..self.layers.len()).rev() {
            let layer = self.layers[l];
            let (fi, fo) = (layer.fan_in, layer.fan_out);
            let (done, rest) = self.bufs.split_at_mut(l);
            let here = &rest[0];
            let prev = if l == 0 {
                input
            } else {
                Input::block(&done[l - 1].a[..])
            };
            let rdelta = &here.rdelta[..b * fo];
            accumulate_weight_grad(out, &layer, (rdelta, prev), b, mode, &mut self.scratch);
            if l == 0 {
                break;
            }
            let (w, vw) = (&theta[layer.w_range()], &v[layer.w_range()]);
            let (delta, rdelta) = (&here.delta[..b * fo], &here.rdelta[..b * fo]);
            tn(
                &mut out[layer.w_range()],
                delta,
                &done[l - 1].ra,
                (fo, fi, b),
                Mode::Add,
            );
            nn(&mut self.da, delta, w, (b, fi, fo), Mode::Replace);
            nn(&mut self.rda, rdelta, w, (b, fi, fo), Mode::Replace);
            nn(&mut self.rda, delta, vw, (b, fi, fo), Mode::Add);
            propagate_r_delta(self.act, &self.da, &self.rda, &mut done[l - 1], b * fi);
        }
    }
}

/// `Δ = dA ⊙ φ'(Z)` and `RΔ = RdA ⊙ φ'(Z) + dA ⊙ φ''(Z) ⊙ RZ` for the layer below.
fn propagate_r_delta<T: Kernels>(
    act: Activation,
    da: &[T],
    rda: &[T],
    below: &mut LayerBufs<T>,
    len: usize,
) {
    let (z, rz) = (&below.z[..len], &below.rz[..len]);
    let (delta, rdelta) = (&mut below.delta[..len], &mut below.rdelta[..len]);
    per_activation!(act, {
        let smooth = !act.is_piecewise_linear();
        let outs = delta.iter_mut().zip(rdelta.iter_mut());
        let ins = da[..len].iter().zip(&rda[..len]).zip(z.iter().zip(rz));
        for ((d, rd), ((&da, &rda), (&z, &rz))) in outs.zip(ins) {
            let d1 = act.derivative(z);
            *d = da * d1;
            *rd = rda * d1;
            if smooth {
                *rd += da * act.second_derivative(z) * rz;
            }
        }
    });
}

/// `∇W (+)= Δᵀ A` and `∇b (+)= Σ_rows Δ` for one layer (`Replace` for a batch's first chunk).
fn accumulate_weight_grad<T: Kernels>(
    grad: &mut [T],
    layer: &Layer,
    (delta, prev): (&[T], Input<'_, T>),
    b: usize,
    mode: Mode,
    scratch: &mut [T],
) {
    let (fi, fo) = (layer.fan_in, layer.fan_out);
    prev.delta_t_times(
        &mut grad[layer.w_range()],
        delta,
        (fo, fi, b),
        mode,
        scratch,
    );
    let gb = &mut grad[layer.b_range()];
    if mode == Mode::Replace {
        gb.iter_mut().for_each(|g| *g = T::ZERO);
    }
    for row in delta.chunks_exact(fo) {
        for (g, &d) in gb.iter_mut().zip(row) {
            *g += d;
        }
    }
}

impl<T: Kernels> Objective<T> for FcnObjective<T> {
    fn n_params(&self) -> usize {
        self.n_params
    }

    fn n_examples(&self) -> usize {
        self.y.len()
    }

    fn loss(&mut self, theta: &[T], batch: &[usize]) -> T {
        self.check(theta, batch);
        let mut total = T::ZERO;
        for chunk in batch.chunks(CHUNK) {
            let input = self.inputs.chunk(chunk);
            self.engine.forward(theta, input, chunk.len());
            total += chunk_loss(self.engine.output(chunk.len()), &self.y, chunk);
        }
        total / T::from_f64(batch.len() as f64)
    }

    fn loss_grad(&mut self, theta: &[T], batch: &[usize], grad: &mut [T]) -> T {
        self.check(theta, batch);
        let scale = T::ONE / T::from_f64(batch.len() as f64);
        let mut total = T::ZERO;
        for chunk in batch.chunks(CHUNK) {
            let b = chunk.len();
            let input = self.inputs.chunk(chunk);
            self.engine.forward(theta, input, b);
            total += chunk_loss(self.engine.output(chunk.len()), &self.y, chunk);
            let out = self.engine.bufs.last_mut().expect("a layer");
            for ((d, &z), &i) in out.delta[..b].iter_mut().zip(&out.z[..b]).zip(chunk) {
                *d = bce_dz(z, self.y[i]) * scale;
            }
            self.engine
                .backward(theta, input, b, grad, first_or_add(chunk, batch));
        }
        total / T::from_f64(batch.len() as f64)
    }

    /// The forward pass is reused when the previous call was an `hvp` at the same `θ` and the
    /// same batch of at most [`CHUNK`] examples, as in Lanczos iterations.
    fn hvp(&mut self, theta: &[T], batch: &[usize], v: &[T], out: &mut [T]) {
        let reuse = self.forward_cache.holds(theta, batch);
        self.check(theta, batch);
        assert_eq!(v.len(), theta.len(), "direction length");
        let scale = T::ONE / T::from_f64(batch.len() as f64);
        for chunk in batch.chunks(CHUNK) {
            let b = chunk.len();
            let input = self.inputs.chunk(chunk);
            if !reuse {
                self.engine.forward(theta, input, b);
            }
            self.engine.r_forward(theta, v, input, b);
            let top = self.engine.bufs.last_mut().expect("a layer");
            for (k, &i) in chunk.iter().enumerate() {
                let (z, y) = (top.z[k], self.y[i]);
                top.delta[k] = bce_dz(z, y) * scale;
                top.rdelta[k] = bce_dz2(z) * top.rz[k] * scale;
            }
            self.engine
                .r_backward(theta, v, input, b, out, first_or_add(chunk, batch));
        }
        if reuse {
            // The recorded point is this one: keep it rather than copy θ again.
            self.forward_cache.valid = true;
        } else if batch.len() <= CHUNK {
            self.forward_cache.record(theta, batch);
        }
    }

    /// Counts the examples whose predicted class (z > 0) differs from the label.
    fn count_errors(&mut self, theta: &[T], batch: &[usize]) -> usize {
        self.check(theta, batch);
        let mut errors = 0;
        for chunk in batch.chunks(CHUNK) {
            let input = self.inputs.chunk(chunk);
            self.engine.forward(theta, input, chunk.len());
            let z = self.engine.output(chunk.len());
            errors += chunk
                .iter()
                .zip(z)
                .filter(|&(&i, &z)| predict(z) != u8::from(self.y[i] > T::ZERO))
                .count();
        }
        errors
    }
}
