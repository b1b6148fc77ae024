//! The Monte Carlo empirical NNGP kernel: the average over `M` random networks of
//! `σ_w²/width · φ φᵀ + σ_b²`, where `φ` is the last hidden layer on the inputs and
//! `(σ_w, σ_b)` are the readout's scales. This is how the paper estimates the kernel of a
//! ResNet-50; it also gives the kernel of activations without a closed form (tanh).
//!
//! It is generic over a [`FeatureExtractor`] (a random feature map drawn from a seed), so conv
//! nets can plug in; [`FcnFeatures`] is the fully-connected one. Network `m` is drawn from
//! [`sample_seed`]`(seed, m)`, and the sum runs in order over `m` with faer's (deterministic)
//! parallel products, so the result depends only on the seed, not on the thread count.
//!
//! For one hidden layer the estimate is unbiased at any width; deeper, it carries an
//! O(1/width) bias. Its error falls like 1/√(M · width).

use basin_nn::FcnSpec;
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::error::PriorError;
use crate::kernel::{LayerScale, check_inputs, check_variances, mirror_lower, try_zeros};

/// A random feature map on a fixed set of inputs: the last hidden layer of a network whose
/// parameters are drawn from a seed.
pub trait FeatureExtractor: Sync {
    /// The number of input points.
    fn n_points(&self) -> usize;

    /// The width of the feature layer (the last hidden layer).
    fn width(&self) -> usize;

    /// The scales of the readout from the feature layer to the logit: one network's kernel
    /// is `σ_w²/width · φ φᵀ + σ_b²`.
    fn readout(&self) -> LayerScale;

    /// Writes the features of every input under the network drawn from `seed` into `out`
    /// (`n_points × width`). The same seed must give the same features.
    fn features(&self, seed: u64, out: MatMut<'_, f64>) -> Result<(), PriorError>;
}

/// How many networks to average and the seed they are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McConfig {
    /// The number of random networks `M` (≥ 1).
    pub samples: usize,
    /// The seed of the whole estimate; network `m` uses [`sample_seed`]`(seed, m)`.
    pub seed: u64,
}

impl Default for McConfig {
    fn default() -> Self {
        Self {
            samples: 128,
            seed: 0,
        }
    }
}

/// The seed of network `m` of an estimate seeded with `seed`: SplitMix64 of the pair, so
/// nearby seeds give unrelated networks.
pub fn sample_seed(seed: u64, m: usize) -> u64 {
    let mut z = seed
        .wrapping_mul(0xD1B5_4A32_D192_ED03)
        .wrapping_add((m as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The bytes [`mc_kernel`] of [`FcnFeatures`] of `spec` on `n` points holds at its peak: the
/// inputs, the kernel, the features, one network's parameters and two layers of activations,
/// all f64.
pub fn mc_kernel_bytes(spec: &FcnSpec, n: usize) -> u64 {
    let n = n as u64;
    let width = spec.hidden.last().copied().unwrap_or(spec.input_dim) as u64;
    let params = spec.checked_n_params().map_or(u64::MAX, |p| p as u64);
    let values = n
        .saturating_mul(n)
        .saturating_add(n.saturating_mul(spec.input_dim as u64 + width))
        .saturating_add(params)
        .saturating_add(n.saturating_mul(spec.max_width() as u64).saturating_mul(2));
    values.saturating_mul(8)
}

/// The Monte Carlo kernel of `features`, `n_points × n_points`.
pub fn mc_kernel<F: FeatureExtractor>(
    features: &F,
    config: &McConfig,
) -> Result<Mat<f64>, PriorError> {
    mc_kernel_with_progress(features, config, |_| {})
}

/// [`mc_kernel`], calling `progress(m)` after each of the `M` networks (`m` = networks done).
pub fn mc_kernel_with_progress<F: FeatureExtractor>(
    features: &F,
    config: &McConfig,
    mut progress: impl FnMut(usize),
) -> Result<Mat<f64>, PriorError> {
    let (n, width) = (features.n_points(), features.width());
    if config.samples == 0 {
        return Err(PriorError::NoKernelSamples);
    }
    if n == 0 || width == 0 {
        return Err(PriorError::EmptyFeatures { n, width });
    }
    let readout = features.readout();
    let alpha = readout.sigma_w * readout.sigma_w / (width as f64 * config.samples as f64);
    let remedy = "use fewer points or a narrower last hidden layer";
    let mut phi = try_zeros(
        n,
        width,
        || format!("features of {n} points × {width}"),
        remedy,
    )?;
    let mut k = try_zeros(n, n, || format!("a kernel of {n} points"), remedy)?;
    for m in 0..config.samples {
        features.features(sample_seed(config.seed, m), phi.as_mut())?;
        if let Some((i, j)) = first_non_finite(phi.as_ref()) {
            return Err(PriorError::FeatureNotFinite {
                point: i,
                feature: j,
                network: m,
            });
        }
        triangular::matmul(
            k.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            phi.as_ref(),
            BlockStructure::Rectangular,
            phi.transpose(),
            BlockStructure::Rectangular,
            alpha,
            Par::rayon(0),
        );
        progress(m + 1);
    }
    let sb2 = readout.sigma_b * readout.sigma_b;
    for j in 0..n {
        for i in j..n {
            k[(i, j)] += sb2;
        }
    }
    mirror_lower(k.as_mut());
    let diag: Vec<f64> = (0..n).map(|i| k[(i, i)]).collect();
    check_variances(
        &diag,
        "the Monte Carlo kernel",
        "at the readout",
        readout.sigma_b == 0.0,
    )?;
    if let Some((i, j)) = first_non_finite(k.as_ref()) {
        return Err(PriorError::KernelNotFinite { row: i, col: j });
    }
    Ok(k)
}

fn first_non_finite(m: MatRef<'_, f64>) -> Option<(usize, usize)> {
    (0..m.ncols()).find_map(|j| {
        (0..m.nrows())
            .find(|&i| !m[(i, j)].is_finite())
            .map(|i| (i, j))
    })
}

/// The hidden layers of a fully-connected network on fixed inputs, drawn by
/// [`FcnSpec::init`]. Without hidden layers the features are the inputs themselves (and the
/// kernel is exactly the linear one).
#[derive(Debug, Clone)]
pub struct FcnFeatures {
    spec: FcnSpec,
    /// The inputs, `n × input_dim`.
    x: Mat<f64>,
}

impl FcnFeatures {
    /// The feature map of `spec` on `n` points, `x` row-major `n × spec.input_dim`.
    pub fn new(spec: &FcnSpec, x: &[f64], n: usize) -> Result<Self, PriorError> {
        spec.validate().map_err(PriorError::InvalidNetwork)?;
        check_inputs(x, n, spec.input_dim, "x")?;
        basin_data::memory::check(
            mc_kernel_bytes(spec, n),
            || {
                format!(
                    "the Monte Carlo kernel of {n} points through networks of widths {:?}",
                    spec.widths()
                )
            },
            "use narrower hidden layers (--hidden) or fewer points (--take)",
        )
        .map_err(PriorError::Memory)?;
        Ok(Self {
            spec: spec.clone(),
            x: MatRef::from_row_major_slice(x, n, spec.input_dim).to_owned(),
        })
    }

    /// [`FcnFeatures::new`] of f32 inputs (widened to f64).
    pub fn from_f32(spec: &FcnSpec, x: &[f32], n: usize) -> Result<Self, PriorError> {
        let wide: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        Self::new(spec, &wide, n)
    }

    /// The network spec.
    pub fn spec(&self) -> &FcnSpec {
        &self.spec
    }
}

impl FeatureExtractor for FcnFeatures {
    fn n_points(&self) -> usize {
        self.x.nrows()
    }

    fn width(&self) -> usize {
        self.spec
            .hidden
            .last()
            .copied()
            .unwrap_or(self.spec.input_dim)
    }

    fn readout(&self) -> LayerScale {
        LayerScale {
            sigma_w: self.spec.sigma_w,
            sigma_b: self.spec.sigma_b,
        }
    }

    fn features(&self, seed: u64, mut out: MatMut<'_, f64>) -> Result<(), PriorError> {
        let (n, width) = (self.n_points(), self.width());
        if (out.nrows(), out.ncols()) != (n, width) {
            return Err(PriorError::FeatureBuffer {
                rows: out.nrows(),
                cols: out.ncols(),
                n,
                width,
            });
        }
        let theta: Vec<f64> = self.spec.init(seed);
        let layers = self.spec.layers();
        let mut h = self.x.clone();
        for layer in &layers[..layers.len() - 1] {
            let w =
                MatRef::from_row_major_slice(&theta[layer.w_range()], layer.fan_out, layer.fan_in);
            let mut next = Mat::<f64>::zeros(n, layer.fan_out);
            matmul(
                next.as_mut(),
                Accum::Replace,
                h.as_ref(),
                w.transpose(),
                1.0,
                Par::rayon(0),
            );
            let bias = &theta[layer.b_range()];
            let act = self.spec.activation;
            for (j, &b) in bias.iter().enumerate() {
                next.col_mut(j)
                    .iter_mut()
                    .for_each(|v| *v = act.apply(*v + b));
            }
            h = next;
        }
        out.copy_from(&h);
        Ok(())
    }
}
