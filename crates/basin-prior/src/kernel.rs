//! The analytic NNGP kernel of a fully-connected network: the covariance of its output logit
//! over random parameters, in the infinite-width limit (Neal 1996; Lee et al. 2018).
//!
//! For a network with hidden layers `1..=L`, linear layer `l` (0 = input, `L` = readout)
//! drawing `W ~ N(0, σ_w,l² / fan_in)` and `b ~ N(0, σ_b,l²)`:
//!
//! * `K⁰(x, x′) = σ_b,0² + σ_w,0² · x·x′ / d`;
//! * `Kˡ(x, x′) = σ_b,l² + σ_w,l² · E[φ(u) φ(u′)]`, `(u, u′) ~ N(0, Kˡ⁻¹ on {x, x′})`.
//!
//! The expectation has a closed form for three activations, with `c = K_ij / √(K_ii K_jj)`:
//!
//! * ReLU (arc-cosine kernel, Cho & Saul 2009): `E = √(K_ii K_jj) / (2π) · (sin θ + (π − θ)
//!   cos θ)`, `θ = arccos(clamp(c, −1, 1))`; on the diagonal this is exactly `K_ii / 2`, which
//!   is what the diagonal is set to (as the golden kernel does);
//! * erf (Williams 1997): `E = (2/π) · arcsin(2 K_ij / √((1 + 2 K_ii)(1 + 2 K_jj)))`;
//! * linear (identity): `E = K_ij`.
//!
//! tanh has none: use the Monte Carlo kernel of [`crate::mc_kernel`] for it.
//!
//! The result is `K^L`, the kernel of the output logit. It is computed in f64: the Gram
//! matrix `X Xᵀ` by faer, then the layer recursion fused per column, in blocks of columns in
//! parallel (rayon), on the lower triangle only, which is then mirrored. The recursion needs
//! only `arccos`, in a branch-free form that vectorises (`sin θ = √((1 − c)(1 + c))`,
//! `π − θ = arccos(−c)`), accurate to a few ulps.

use std::f64::consts::{FRAC_PI_2, PI};
use std::fmt;
use std::str::FromStr;

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

/// The hidden nonlinearity, as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelActivation {
    /// The identity: a deep linear network (the kernel is affine in `x·x′`).
    Linear,
    /// max(0, x): the arc-cosine recursion.
    #[default]
    Relu,
    /// erf x: Williams' arcsine formula.
    Erf,
    /// tanh x: no closed form; only the Monte Carlo kernel computes it.
    Tanh,
}

impl From<Activation> for KernelActivation {
    fn from(a: Activation) -> Self {
        match a {
            Activation::Relu => Self::Relu,
            Activation::Erf => Self::Erf,
            Activation::Tanh => Self::Tanh,
        }
    }
}

impl fmt::Display for KernelActivation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Linear => "linear",
            Self::Relu => "relu",
            Self::Erf => "erf",
            Self::Tanh => "tanh",
        })
    }
}

impl FromStr for KernelActivation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "linear" => Ok(Self::Linear),
            "relu" => Ok(Self::Relu),
            "erf" => Ok(Self::Erf),
            "tanh" => Ok(Self::Tanh),
            _ => Err(format!(
                "unknown activation {s:?}; expected linear, relu, erf or tanh"
            )),
        }
    }
}

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
    pub activation: KernelActivation,
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
            spec.activation.into(),
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
        activation: KernelActivation,
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
        if self.activation == KernelActivation::Tanh && self.depth() > 0 {
            return Err(PriorError::TanhNoClosedForm);
        }
        Ok(())
    }

    /// The kernel `K(X, X)` of `n` points, `x` row-major `n × input_dim`.
    pub fn kernel(&self, x: &[f64], n: usize) -> Result<Mat<f64>, PriorError> {
        let plan = Plan::new(self)?;
        check_inputs(x, n, self.input_dim, "x")?;
        let features = used_features(self.input_dim, &[x]);
        let pts = plan.points(x, n, "x", &features)?;
        Ok(plan.symmetric(&pts))
    }

    /// [`KernelSpec::kernel`] as a flat vector, `n²` entries in row-major order (the matrix is
    /// exactly symmetric, so this is also column-major), without a copy: for writing `.npy`.
    pub fn kernel_row_major(&self, x: &[f64], n: usize) -> Result<Vec<f64>, PriorError> {
        let plan = Plan::new(self)?;
        check_inputs(x, n, self.input_dim, "x")?;
        let features = used_features(self.input_dim, &[x]);
        let pts = plan.points(x, n, "x", &features)?;
        let mut k = vec![0.0; n * n];
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

/// One hidden layer followed by its linear map: `K ← σ_b² + σ_w² E[φ(u) φ(u′)]`.
#[derive(Debug, Clone, Copy)]
struct LayerMap {
    activation: KernelActivation,
    sw2: f64,
    sb2: f64,
    /// The factor in front of the closed form: σ_w²/(2π) (ReLU), 2σ_w²/π (erf), σ_w² (linear).
    coef: f64,
}

impl LayerMap {
    fn new(activation: KernelActivation, scale: LayerScale) -> Self {
        let sw2 = scale.sigma_w * scale.sigma_w;
        let coef = match activation {
            KernelActivation::Relu => sw2 / (2.0 * PI),
            KernelActivation::Erf => sw2 * (2.0 / PI),
            KernelActivation::Linear | KernelActivation::Tanh => sw2,
        };
        Self {
            activation,
            sw2,
            sb2: scale.sigma_b * scale.sigma_b,
            coef,
        }
    }

    /// The new variance of a point of variance `q`.
    fn diag(&self, q: f64) -> f64 {
        match self.activation {
            KernelActivation::Relu => self.sb2 + 0.5 * self.sw2 * q,
            KernelActivation::Erf => {
                let t = 2.0 * q;
                self.sb2 + self.coef * asin_fast(t / (1.0 + t))
            }
            KernelActivation::Linear | KernelActivation::Tanh => self.sb2 + self.sw2 * q,
        }
    }

    /// The per-point factor of the off-diagonal map: √q (ReLU), 1/√(1 + 2q) (erf), 1 (linear).
    fn factor(&self, q: f64) -> f64 {
        match self.activation {
            KernelActivation::Relu => q.sqrt(),
            KernelActivation::Erf => 1.0 / (1.0 + 2.0 * q).sqrt(),
            KernelActivation::Linear | KernelActivation::Tanh => 1.0,
        }
    }

    /// Applies the map to a column segment `k[i] = K(x_i, x_j)`, with the row points'
    /// factors `rows` and the column point's factor `fc`. Uses AVX-512 where the CPU has it
    /// (the same arithmetic, wider registers: the results are bit-identical).
    fn apply(&self, k: &mut [f64], rows: &[f64], fc: f64) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { self.apply_avx512(k, rows, fc) };
            return;
        }
        self.apply_portable(k, rows, fc);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn apply_avx512(&self, k: &mut [f64], rows: &[f64], fc: f64) {
        self.apply_portable(k, rows, fc);
    }

    #[inline(always)]
    fn apply_portable(&self, k: &mut [f64], rows: &[f64], fc: f64) {
        let (sb2, coef) = (self.sb2, self.coef);
        let pairs = k.iter_mut().zip(rows);
        match self.activation {
            KernelActivation::Relu => pairs.for_each(|(k, &fr)| *k = relu(*k, fr * fc, sb2, coef)),
            KernelActivation::Erf => pairs.for_each(|(k, &fr)| *k = erf(*k, fr * fc, sb2, coef)),
            KernelActivation::Linear | KernelActivation::Tanh => {
                pairs.for_each(|(k, _)| *k = sb2 + coef * *k)
            }
        }
    }
}

/// The arc-cosine map of one entry: `norm = √(K_ii K_jj)`.
#[inline(always)]
fn relu(k: f64, norm: f64, sb2: f64, coef: f64) -> f64 {
    let c = if norm > 0.0 { k / norm } else { 0.0 };
    let c = c.clamp(-1.0, 1.0);
    // sin θ + (π − θ) cos θ with cos θ = c, sin θ = √((1 − c)(1 + c)), π − θ = arccos(−c).
    let j = ((1.0 - c) * (1.0 + c)).sqrt() + acos_fast(-c) * c;
    sb2 + coef * norm * j
}

/// Williams' erf map of one entry: `scale = 1/√((1 + 2K_ii)(1 + 2K_jj))`.
#[inline(always)]
fn erf(k: f64, scale: f64, sb2: f64, coef: f64) -> f64 {
    let s = (2.0 * k * scale).clamp(-1.0, 1.0);
    sb2 + coef * asin_fast(s)
}

/// `(asin s, s)` for `s = |x|` folded into [0, 1/2]: `s = |x|` when `|x| ≤ 1/2`, else
/// `s = √((1 − |x|)/2)`. fdlibm's rational approximation (error < 2^−58.75 on [0, 1/2]).
#[inline(always)]
fn asin_folded(a: f64, big: bool) -> f64 {
    // fdlibm's coefficients, bit for bit (pS0..pS5, qS1..qS4 of e_asin.c).
    const P: [f64; 6] = [
        f64::from_bits(0x3FC5_5555_5555_5555),
        f64::from_bits(0xBFD4_D612_03EB_6F7D),
        f64::from_bits(0x3FC9_C155_0E88_4455),
        f64::from_bits(0xBFA4_8228_B568_8F3B),
        f64::from_bits(0x3F49_EFE0_7501_B288),
        f64::from_bits(0x3F02_3DE1_0DFD_F709),
    ];
    const Q: [f64; 4] = [
        f64::from_bits(0xC003_3A27_1C8A_2D4B),
        f64::from_bits(0x4000_2AE5_9C59_8AC8),
        f64::from_bits(0xBFE6_066C_1B8D_0159),
        f64::from_bits(0x3FB3_B8C5_B12E_9282),
    ];
    let z = if big { 0.5 * (1.0 - a) } else { a * a };
    let s = if big { z.sqrt() } else { a };
    let p = z * (P[0] + z * (P[1] + z * (P[2] + z * (P[3] + z * (P[4] + z * P[5])))));
    let q = 1.0 + z * (Q[0] + z * (Q[1] + z * (Q[2] + z * Q[3])));
    s + s * (p / q)
}

/// arccos x for x in [−1, 1], branch-free (it vectorises), within a few ulps.
#[inline(always)]
pub(crate) fn acos_fast(x: f64) -> f64 {
    let a = x.abs();
    let big = a > 0.5;
    let t = asin_folded(a, big);
    // arccos|x| = 2 asin √((1 − |x|)/2) when |x| > 1/2, else π/2 − asin|x|.
    let acos_a = if big { 2.0 * t } else { FRAC_PI_2 - t };
    if x < 0.0 { PI - acos_a } else { acos_a }
}

/// arcsin x for x in [−1, 1], branch-free, within a few ulps.
#[inline(always)]
pub(crate) fn asin_fast(x: f64) -> f64 {
    let a = x.abs();
    let big = a > 0.5;
    let t = asin_folded(a, big);
    let asin_a = if big { FRAC_PI_2 - 2.0 * t } else { t };
    asin_a.copysign(x)
}

/// A validated spec, ready to compute.
struct Plan {
    input_dim: usize,
    /// σ_w,0² / d and σ_b,0²: the input layer.
    alpha: f64,
    sb0: f64,
    /// One map per hidden layer.
    maps: Vec<LayerMap>,
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
                .map(|&s| LayerMap::new(spec.activation, s))
                .collect(),
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
        let mut factors = Vec::with_capacity(self.maps.len());
        for map in &self.maps {
            factors.push(q.iter().map(|&v| map.factor(v)).collect());
            q.iter_mut().for_each(|v| *v = map.diag(*v));
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
    fn symmetric(&self, pts: &Points) -> Mat<f64> {
        let n = pts.x.nrows();
        let mut k = Mat::<f64>::zeros(n, n);
        self.fill_symmetric(k.as_mut(), pts);
        k
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_arc_functions_match_std_to_a_few_ulps() {
        let n = 200_001;
        let (mut worst_acos, mut worst_asin) = (0.0f64, 0.0f64);
        for i in 0..n {
            let x = -1.0 + 2.0 * i as f64 / (n - 1) as f64;
            worst_acos = worst_acos.max((acos_fast(x) - x.acos()).abs());
            let rel = (asin_fast(x) - x.asin()).abs() / x.asin().abs().max(f64::MIN_POSITIVE);
            worst_asin = worst_asin.max(if x == 0.0 { 0.0 } else { rel });
        }
        // Absolute 4 ulps of π for arccos; relative 4 ulps for arcsin (odd, near 0 too).
        assert!(worst_acos <= 4.0 * f64::EPSILON * PI, "{worst_acos:e}");
        assert!(worst_asin <= 4.0 * f64::EPSILON, "{worst_asin:e}");
        for x in [1.0, -1.0, 0.0, 0.5, -0.5, 1.0 - f64::EPSILON, 1e-300] {
            assert!(
                (acos_fast(x) - x.acos()).abs() <= 2.0 * f64::EPSILON * PI,
                "{x}"
            );
        }
        assert_eq!(acos_fast(1.0), 0.0);
        assert_eq!(asin_fast(-0.0).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn avx512_and_portable_paths_agree_bit_for_bit() {
        let k: Vec<f64> = (0..257).map(|i| -3.0 + 0.025 * i as f64).collect();
        let rows: Vec<f64> = (0..257).map(|i| 1.0 + 0.01 * i as f64).collect();
        for act in [KernelActivation::Relu, KernelActivation::Erf] {
            let map = LayerMap::new(
                act,
                LayerScale {
                    sigma_w: 1.3,
                    sigma_b: 0.4,
                },
            );
            let (mut a, mut b) = (k.clone(), k.clone());
            map.apply(&mut a, &rows, 2.5);
            map.apply_portable(&mut b, &rows, 2.5);
            assert_eq!(a, b, "{act}");
        }
    }
}
