//! The analytic NNGP kernel of a fully-connected network: the covariance of its output logit
//! over random parameters, in the infinite-width limit (Neal 1996; Lee et al. 2018).
//!
//! For a network with hidden layers `1..=L`, linear layer `l` (0 = input, `L` = readout)
//! drawing `W ~ N(0, σ_w,l² / fan_in)` and `b ~ N(0, σ_b,l²)`:
//!
//! * `K⁰(x, x′) = σ_b,0² + σ_w,0² · x·x′ / d`;
//! * `Kˡ(x, x′) = σ_b,l² + σ_w,l² · E[φ(u) φ(u′)]`, `(u, u′) ~ N(0, Kˡ⁻¹ on {x, x′})`.
//!
//! The expectation is the activation's NNGP map ([`basin_nn::activation::NngpMap`]): it has a
//! closed form for ReLU (arc-cosine), erf (arcsine) and linear; on the diagonal ReLU's is
//! exactly `K_ii / 2`, which is what the diagonal is set to (as the golden kernel does). tanh
//! has none: use the Monte Carlo kernel of [`crate::mc_kernel`] for it.
//!
//! The result is `K^L`, the kernel of the output logit. It is computed in f64: the Gram
//! matrix `X Xᵀ` by faer, then the layer recursion fused per column, in blocks of columns in
//! parallel (rayon), on the lower triangle only, which is then mirrored.

use basin_nn::activation::NngpMap;
use basin_nn::{Activation, FcnSpec};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::PriorError;

/// Columns of the kernel per parallel task (one Gram product each: wide enough that packing
/// its row operand is cheap next to the product).
const BLOCK: usize = 256;

/// Rows of the upper triangle per parallel task when mirroring.
const MIRROR_ROWS: usize = 512;

/// The prior scales of one linear layer: `W ~ N(0, σ_w² / fan_in)`, `b ~ N(0, σ_b²)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerScale {
    /// The weight scale σ_w (> 0).
    pub sigma_w: f64,
    /// The bias scale σ_b (≥ 0; 0 for a layer without bias).
    pub sigma_b: f64,
}

/// The infinite-width limit of a fully-connected network: what its NNGP kernel depends on.
/// Hidden widths do not enter; the depth is `layers.len() − 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelSpec {
    /// The input dimension `d`.
    pub input_dim: usize,
    /// The nonlinearity of every hidden layer.
    pub activation: Activation,
    /// The scales of each linear layer, input to readout: `layers[0]` maps the input to the
    /// first hidden layer, `layers[l]` the hidden layer `l` to the next (the last one is the
    /// readout to the logit). One entry means no hidden layer (the linear kernel of `x`).
    pub layers: Vec<LayerScale>,
}

impl From<&FcnSpec> for KernelSpec {
    fn from(spec: &FcnSpec) -> Self {
        Self::uniform(
            spec.input_dim,
            spec.hidden.len(),
            spec.activation,
            spec.sigma_w,
            spec.sigma_b,
        )
    }
}

impl KernelSpec {
    /// A network of `depth` hidden layers with the same scales in every linear layer.
    pub fn uniform(
        input_dim: usize,
        depth: usize,
        activation: Activation,
        sigma_w: f64,
        sigma_b: f64,
    ) -> Self {
        Self {
            input_dim,
            activation,
            layers: vec![LayerScale { sigma_w, sigma_b }; depth + 1],
        }
    }

    /// The number of hidden layers.
    pub fn depth(&self) -> usize {
        self.layers.len().saturating_sub(1)
    }

    /// Checks that the spec has a closed-form kernel: a positive input dimension, at least one
    /// layer, finite σ_w > 0 and σ_b ≥ 0, and an activation other than tanh.
    pub fn validate(&self) -> Result<(), PriorError> {
        if self.input_dim == 0 {
            return Err(PriorError::NoInputDim);
        }
        if self.layers.is_empty() {
            return Err(PriorError::NoLayers);
        }
        for (l, s) in self.layers.iter().enumerate() {
            if !(s.sigma_w.is_finite() && s.sigma_w > 0.0) {
                return Err(PriorError::SigmaW {
                    layer: l,
                    value: s.sigma_w,
                });
            }
            if !(s.sigma_b.is_finite() && s.sigma_b >= 0.0) {
                return Err(PriorError::SigmaB {
                    layer: l,
                    value: s.sigma_b,
                });
            }
        }
        if !self.activation.has_closed_form_kernel() && self.depth() > 0 {
            return Err(PriorError::NoClosedForm {
                activation: self.activation,
            });
        }
        Ok(())
    }

    /// The kernel `K(X, X)` of `n` points, `x` row-major `n × input_dim`.
    pub fn kernel(&self, x: &[f64], n: usize) -> Result<Mat<f64>, PriorError> {
        let plan = Plan::new(self)?;
        check_inputs(x, n, self.input_dim, "x")?;
        let features = used_features(self.input_dim, &[x]);
        let pts = plan.points(x, n, "x", &features)?;
        plan.symmetric(&pts)
    }

    /// [`KernelSpec::kernel`] as a flat vector, `n²` entries in row-major order (the matrix is
    /// exactly symmetric, so this is also column-major), without a copy: for writing `.npy`.
    pub fn kernel_row_major(&self, x: &[f64], n: usize) -> Result<Vec<f64>, PriorError> {
        let plan = Plan::new(self)?;
        check_inputs(x, n, self.input_dim, "x")?;
        let features = used_features(self.input_dim, &[x]);
        let pts = plan.points(x, n, "x", &features)?;
        let mut k = basin_data::memory::try_filled(
            n.saturating_mul(n),
            0.0,
            || format!("a kernel of {n} points"),
            FEWER_POINTS,
        )
        .map_err(PriorError::Memory)?;
        plan.fill_symmetric(MatMut::from_column_major_slice_mut(&mut k, n, n), &pts);
        Ok(k)
    }

    /// [`KernelSpec::kernel`] of f32 inputs (widened to f64 first).
    pub fn kernel_f32(&self, x: &[f32], n: usize) -> Result<Mat<f64>, PriorError> {
        self.kernel(&widen(x), n)
    }

    /// The cross kernel `K(X₁, X₂)`, `n1 × n2`, of two row-major point sets (for example
    /// test against training points).
    pub fn cross(
        &self,
        x1: &[f64],
        n1: usize,
        x2: &[f64],
        n2: usize,
    ) -> Result<Mat<f64>, PriorError> {
        let plan = Plan::new(self)?;
        check_inputs(x1, n1, self.input_dim, "x1")?;
        check_inputs(x2, n2, self.input_dim, "x2")?;
        let features = used_features(self.input_dim, &[x1, x2]);
        let rows = plan.points(x1, n1, "x1", &features)?;
        let cols = plan.points(x2, n2, "x2", &features)?;
        Ok(plan.rectangular(&rows, &cols))
    }

    /// The prior variances `K(x, x)` of `n` points, in O(n · d).
    pub fn diagonal(&self, x: &[f64], n: usize) -> Result<Vec<f64>, PriorError> {
        let plan = Plan::new(self)?;
        check_inputs(x, n, self.input_dim, "x")?;
        Ok(plan.points(x, n, "x", &[])?.diag)
    }
}

/// The remedy of a kernel too large for memory.
const FEWER_POINTS: &str = "use fewer points";

/// A `rows × cols` matrix of zeros, checked against the memory available (`what` names it,
/// `remedy` says how to ask for less) and allocated fallibly: faer's own constructors abort
/// the process or panic when the allocation fails.
pub fn try_zeros(
    rows: usize,
    cols: usize,
    what: impl FnOnce() -> String,
    remedy: &str,
) -> Result<Mat<f64>, PriorError> {
    let mut what = Some(what);
    let mut describe = || what.take().map_or_else(String::new, |f| f());
    basin_data::memory::check_count(
        (rows as u64).saturating_mul(cols as u64),
        8,
        &mut describe,
        remedy,
    )
    .map_err(PriorError::Memory)?;
    let mut m = Mat::new();
    if m.try_reserve(rows, cols).is_err() {
        return Err(PriorError::Memory(basin_data::MemoryError {
            what: describe(),
            need: (rows as u64).saturating_mul(cols as u64).saturating_mul(8),
            available: basin_data::memory::available_bytes().map_or(0, |a| a.0),
            source_name: "refused by the allocator",
            remedy: remedy.to_string(),
        }));
    }
    m.resize_with(rows, cols, |_, _| 0.0);
    Ok(m)
}

/// The NNGP kernel of the output logit of `spec` on `n` points, `x` row-major
/// `n × spec.input_dim` (as `basin_data::Dataset::features` gives), computed in f64.
pub fn nngp(spec: &FcnSpec, x: &[f32], n: usize) -> Result<Mat<f64>, PriorError> {
    check_fcn(spec)?;
    KernelSpec::from(spec).kernel_f32(x, n)
}

/// [`nngp`] of f64 inputs (no rounding of the inputs to f32).
pub fn nngp_f64(spec: &FcnSpec, x: &[f64], n: usize) -> Result<Mat<f64>, PriorError> {
    check_fcn(spec)?;
    KernelSpec::from(spec).kernel(x, n)
}

/// The entries of `k` in row-major order (as `.npy` files store them): a transposing copy by
/// 64 × 64 tiles, rows of the output in parallel.
pub fn into_row_major(k: Mat<f64>) -> Vec<f64> {
    const TILE: usize = 64;
    let (rows, cols) = (k.nrows(), k.ncols());
    let mut out = vec![0.0; rows * cols];
    if cols == 0 {
        return out;
    }
    out.par_chunks_mut(TILE * cols)
        .enumerate()
        .for_each(|(b, strip)| {
            let i0 = b * TILE;
            let height = strip.len() / cols;
            for j0 in (0..cols).step_by(TILE) {
                for j in j0..cols.min(j0 + TILE) {
                    let col = &column_ref(k.as_ref(), j)[i0..i0 + height];
                    for (i, &v) in col.iter().enumerate() {
                        strip[i * cols + j] = v;
                    }
                }
            }
        });
    out
}

/// Column `j` of a column-major view as a slice.
fn column_ref(m: MatRef<'_, f64>, j: usize) -> &[f64] {
    m.col(j)
        .try_as_col_major()
        .expect("the columns of a faer Mat are contiguous")
        .as_slice()
}

/// The widths and scales of an `FcnSpec`, as an error that says how to fix them.
fn check_fcn(spec: &FcnSpec) -> Result<(), PriorError> {
    spec.validate().map_err(PriorError::InvalidNetwork)
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// A validated spec, ready to compute.
struct Plan {
    input_dim: usize,
    /// σ_w,0² / d and σ_b,0²: the input layer.
    alpha: f64,
    sb0: f64,
    /// One map per hidden layer.
    maps: Vec<NngpMap>,
    /// Whether every σ_b is 0, so that the zero input has variance 0 in every layer.
    no_bias: bool,
}

/// An error when a point's variance after `layer` has left f64's normal range (overflowed,
/// or underflowed below it, where the kernel's entries would lose their precision or vanish).
/// A variance of exactly 0 (the zero input) is in range only in a net with no biases.
pub(crate) fn check_variances(
    q: &[f64],
    name: &str,
    at: &str,
    no_bias: bool,
) -> Result<(), PriorError> {
    let in_range = |v: f64| v.is_finite() && (v >= f64::MIN_POSITIVE || (no_bias && v == 0.0));
    match q.iter().position(|&v| !in_range(v)) {
        Some(point) => Err(PriorError::VarianceRange {
            name: name.to_string(),
            point,
            at: at.to_string(),
            value: q[point],
        }),
        None => Ok(()),
    }
}

/// The per-point quantities of one input set.
struct Points {
    /// The points' used features (see [`used_features`]), column-major: the layout the Gram
    /// product packs fastest.
    x: Mat<f64>,
    /// `factors[l][i]`: the factor of point `i` in hidden layer `l + 1`'s map.
    factors: Vec<Vec<f64>>,
    /// The variances of the output logit, `K(x_i, x_i)`.
    diag: Vec<f64>,
}

impl Plan {
    fn new(spec: &KernelSpec) -> Result<Self, PriorError> {
        spec.validate()?;
        let first = spec.layers[0];
        Ok(Self {
            input_dim: spec.input_dim,
            alpha: first.sigma_w * first.sigma_w / spec.input_dim as f64,
            sb0: first.sigma_b * first.sigma_b,
            maps: spec.layers[1..]
                .iter()
                .map(|s| {
                    (spec.activation.nngp(s.sigma_w, s.sigma_b)).ok_or(PriorError::NoClosedForm {
                        activation: spec.activation,
                    })
                })
                .collect::<Result<_, _>>()?,
            no_bias: spec.layers.iter().all(|s| s.sigma_b == 0.0),
        })
    }

    /// Every point's variances layer by layer, and its `features` for the Gram product. The
    /// inputs must have passed [`check_inputs`].
    fn points(
        &self,
        x: &[f64],
        n: usize,
        name: &str,
        features: &[usize],
    ) -> Result<Points, PriorError> {
        let d = self.input_dim;
        let mut q: Vec<f64> = x
            .chunks_exact(d)
            .map(|row| row.iter().map(|v| v * v).sum::<f64>() * self.alpha + self.sb0)
            .collect();
        if let Some(i) = q.iter().position(|v| !v.is_finite()) {
            return Err(PriorError::NormOverflow {
                name: name.to_string(),
                point: i,
            });
        }
        check_variances(&q, name, "after layer 1", self.no_bias)?;
        let mut factors = Vec::with_capacity(self.maps.len());
        for (l, map) in self.maps.iter().enumerate() {
            factors.push(q.iter().map(|&v| map.factor(v)).collect());
            q.iter_mut().for_each(|v| *v = map.diag(*v));
            check_variances(&q, name, &format!("after layer {}", l + 2), self.no_bias)?;
        }
        Ok(Points {
            x: Mat::from_fn(n, features.len(), |i, f| x[i * d + features[f]]),
            factors,
            diag: q,
        })
    }

    /// Turns a column segment of `σ_w,0²/d · x_i·x_j` (rows `row0..`) into the output kernel.
    fn finish_column(&self, k: &mut [f64], rows: &Points, row0: usize, cols: &Points, j: usize) {
        k.iter_mut().for_each(|v| *v += self.sb0);
        for (l, map) in self.maps.iter().enumerate() {
            let fr = &rows.factors[l][row0..row0 + k.len()];
            map.apply(k, fr, cols.factors[l][j]);
        }
    }

    /// `K(X, X)`: the lower triangle by blocks of columns in parallel, then mirrored.
    fn symmetric(&self, pts: &Points) -> Result<Mat<f64>, PriorError> {
        let n = pts.x.nrows();
        let mut k = try_zeros(n, n, || format!("a kernel of {n} points"), FEWER_POINTS)?;
        self.fill_symmetric(k.as_mut(), pts);
        Ok(k)
    }

    /// Fills the `n × n` `k` with `K(X, X)`.
    fn fill_symmetric(&self, mut k: MatMut<'_, f64>, pts: &Points) {
        let n = pts.x.nrows();
        k.rb_mut()
            .par_col_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(b, mut block)| {
                let j0 = b * BLOCK;
                let width = block.ncols();
                self.gram_lower(block.rb_mut().subrows_mut(j0, n - j0), pts, j0);
                for jj in 0..width {
                    let j = j0 + jj;
                    let col = column(block.rb_mut(), jj);
                    self.finish_column(&mut col[j..], pts, j, pts, j);
                    col[j] = pts.diag[j];
                }
            });
        mirror_lower(k);
    }

    /// `dst = σ_w,0²/d · X[j0..] X[j0..j0 + w]ᵀ` for a block of `w` columns starting on the
    /// diagonal: only the lower triangle of its top `w × w` square.
    fn gram_lower(&self, dst: MatMut<'_, f64>, pts: &Points, j0: usize) {
        let (m, w) = (dst.nrows(), dst.ncols());
        let cols = pts.x.subrows(j0, w);
        let (top, below) = dst.split_at_row_mut(w);
        triangular::matmul(
            top,
            BlockStructure::TriangularLower,
            Accum::Replace,
            cols,
            BlockStructure::Rectangular,
            cols.transpose(),
            BlockStructure::Rectangular,
            self.alpha,
            Par::Seq,
        );
        let rows = pts.x.subrows(j0 + w, m - w);
        matmul(
            below,
            Accum::Replace,
            rows,
            cols.transpose(),
            self.alpha,
            Par::Seq,
        );
    }

    /// `K(X₁, X₂)`, by blocks of columns in parallel.
    fn rectangular(&self, rows: &Points, cols: &Points) -> Mat<f64> {
        let (n1, n2) = (rows.x.nrows(), cols.x.nrows());
        let mut k = Mat::<f64>::zeros(n1, n2);
        k.as_mut()
            .par_col_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(b, mut block)| {
                let j0 = b * BLOCK;
                let rhs = cols.x.subrows(j0, block.ncols()).transpose();
                matmul(
                    block.rb_mut(),
                    Accum::Replace,
                    rows.x.as_ref(),
                    rhs,
                    self.alpha,
                    Par::Seq,
                );
                for jj in 0..block.ncols() {
                    let col = column(block.rb_mut(), jj);
                    self.finish_column(col, rows, 0, cols, j0 + jj);
                }
            });
        k
    }
}

/// Column `j` of a column-major view as a slice.
fn column<'a>(m: MatMut<'a, f64>, j: usize) -> &'a mut [f64] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("the columns of a faer Mat are contiguous")
        .as_slice_mut()
}

/// Copies the strict lower triangle of a square matrix onto its upper triangle.
pub(crate) fn mirror_lower(mut k: MatMut<'_, f64>) {
    let n = k.nrows();
    let mut j0 = 0;
    while j0 < n {
        let width = BLOCK.min(n - j0);
        let (left, right) = k.rb_mut().split_at_col_mut(j0);
        let mut right = right.subcols_mut(0, width);
        // Inside the diagonal block, column by column.
        for jj in 1..width {
            for ii in 0..jj {
                right[(j0 + ii, jj)] = right[(j0 + jj, ii)];
            }
        }
        // Above it: rows 0..j0 of these columns are rows j0..j0+width of the columns before.
        let src = left.rb().subrows(j0, width).transpose();
        right
            .subrows_mut(0, j0)
            .par_row_chunks_mut(MIRROR_ROWS)
            .zip(src.par_row_chunks(MIRROR_ROWS))
            .for_each(|(mut dst, src)| dst.copy_from(src));
        j0 += width;
    }
}

/// The features that are nonzero in some point of some set: the others add exact zeros to
/// every dot product, so the Gram product skips them (MNIST's border pixels, for example).
fn used_features(d: usize, sets: &[&[f64]]) -> Vec<usize> {
    let mut used = vec![false; d];
    for x in sets {
        for row in x.chunks_exact(d) {
            used.iter_mut().zip(row).for_each(|(u, &v)| *u |= v != 0.0);
        }
    }
    (0..d).filter(|&f| used[f]).collect()
}

/// Shape and finiteness of a row-major input set.
pub(crate) fn check_inputs(x: &[f64], n: usize, d: usize, name: &str) -> Result<(), PriorError> {
    if n == 0 {
        return Err(PriorError::NoPoints {
            name: name.to_string(),
        });
    }
    if n.checked_mul(d) != Some(x.len()) {
        return Err(PriorError::InputShape {
            name: name.to_string(),
            values: x.len(),
            n,
            d,
            need: n.saturating_mul(d),
        });
    }
    if let Some(p) = x.iter().position(|v| !v.is_finite()) {
        return Err(PriorError::InputNotFinite {
            name: name.to_string(),
            point: p / d,
            feature: p % d,
            value: x[p],
        });
    }
    Ok(())
}
