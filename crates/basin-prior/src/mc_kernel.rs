//! The Monte Carlo empirical NNGP kernel: the average over `M` random networks of
//! `σ_w²/width · φ φᵀ + σ_b²`, where `φ` is the last hidden layer (the penultimate features)
//! on the inputs and `(σ_w, σ_b)` are the readout's scales. This is how the paper estimates
//! the kernel of a ResNet-50; it also gives the kernel of activations without a closed form
//! (tanh).
//!
//! It is generic over a [`FeatureExtractor`] (a random feature map drawn from a seed):
//! [`FcnFeatures`] is the fully-connected one, [`ConvFeatures`] the conv net's. Network `m` is
//! drawn from [`sample_seed`]`(seed, m)`, so a sample does not depend on the thread count or
//! on how the samples are sharded. [`mc_sums`] accumulates, in f64 and in order over `m`:
//! - the sum of the networks' kernels in `blocks` interleaved blocks (sample `m` in block
//!   `m mod blocks`), whose leave-one-block-out means give a jackknife error for anything
//!   computed from the kernel ([`crate::mc_error`]);
//! - the sum of their squares, entry by entry, for each entry's Monte Carlo standard error.
//!
//! A shard `K/N` of the samples holds the networks `m ≡ K − 1 (mod N)`; [`McSums::merge`]
//! adds the shards' sums in shard order, and equals one run's sums to round-off.
//!
//! For one hidden layer the estimate is unbiased at any width; deeper, it carries an
//! O(1/width) bias. Its error falls like 1/√(M · width).

use basin_nn::FcnSpec;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::PriorError;
use crate::kernel::{LayerScale, check_inputs, check_variances, mirror_lower, try_zeros};

/// A random feature map on a fixed set of inputs: the last hidden layer of a network whose
/// parameters are drawn from a seed.
pub trait FeatureExtractor {
    /// The number of input points.
    fn n_points(&self) -> usize;

    /// The width of the feature layer (the last hidden layer).
    fn width(&self) -> usize;

    /// The scales of the readout from the feature layer to the logit: one network's kernel
    /// is `σ_w²/width · φ φᵀ + σ_b²`.
    fn readout(&self) -> LayerScale;

    /// Writes the features of every input under the network drawn from `seed` into `out`
    /// (`n_points × width`). The same seed must give the same features.
    fn features(&mut self, seed: u64, out: MatMut<'_, f64>) -> Result<(), PriorError>;
}

/// A `K/N` shard of the samples (1-based `K`, as `basin run --shard`): the networks
/// `m ≡ K − 1 (mod N)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SampleShard {
    /// This shard, `1..=count`.
    pub index: usize,
    /// The number of shards.
    pub count: usize,
}

impl SampleShard {
    /// The whole estimate as one shard.
    pub const WHOLE: Self = Self { index: 1, count: 1 };

    /// The samples of this shard among `0..samples`, in order.
    pub fn samples(self, samples: usize) -> impl Iterator<Item = usize> {
        (self.index - 1..samples).step_by(self.count.max(1))
    }
}

/// How many networks to average, the seed they are drawn from, the blocks of the error
/// estimate and the shard to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McConfig {
    /// The number of random networks `M` (≥ 1).
    pub samples: usize,
    /// The seed of the whole estimate; network `m` uses [`sample_seed`]`(seed, m)`.
    pub seed: u64,
    /// Interleaved blocks of samples whose sums are kept apart for the jackknife error of
    /// log P(f) (≥ 1; each block needs a sample, so at most `samples`).
    pub blocks: usize,
    /// The shard of the samples to compute.
    pub shard: SampleShard,
}

/// The blocks of a Monte Carlo kernel unless told otherwise: 8, so the jackknife error of
/// log P(f) has 7 degrees of freedom.
pub const DEFAULT_BLOCKS: usize = 8;

impl Default for McConfig {
    fn default() -> Self {
        Self {
            samples: 128,
            seed: 0,
            blocks: DEFAULT_BLOCKS,
            shard: SampleShard::WHOLE,
        }
    }
}

impl McConfig {
    /// The checks of the settings alone.
    pub fn check(&self) -> Result<(), PriorError> {
        if self.samples == 0 {
            return Err(PriorError::NoKernelSamples);
        }
        let bad = |problem: String| Err(PriorError::McSettings(problem));
        if self.blocks == 0 || self.blocks > self.samples {
            return bad(format!(
                "{} blocks for {} samples: give 1 to {} blocks (--blocks), one sample at least \
                 in each",
                self.blocks, self.samples, self.samples
            ));
        }
        let SampleShard { index, count } = self.shard;
        if count == 0 || index == 0 || index > count || count > self.samples {
            return bad(format!(
                "shard {index}/{count} of {} samples: give K/N with 1 ≤ K ≤ N ≤ samples",
                self.samples
            ));
        }
        Ok(())
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

/// A short fingerprint of a set of inputs: the first 16 hex digits of the SHA-256 of their
/// values as little-endian f64, so that sums of different inputs are not merged.
pub fn inputs_fingerprint(values: impl Iterator<Item = f64>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for v in values {
        h.update(v.to_le_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("inputs {}", &hex[..16])
}

/// The bytes [`mc_kernel`] of [`FcnFeatures`] of `spec` on `n` points holds at its peak,
/// with [`DEFAULT_BLOCKS`] blocks: the inputs, the sums, the features, one network's
/// parameters and two layers of activations, all f64.
pub fn mc_kernel_bytes(spec: &FcnSpec, n: usize) -> u64 {
    let n64 = n as u64;
    let width = spec.hidden.last().copied().unwrap_or(spec.input_dim) as u64;
    let params = spec.checked_n_params().map_or(u64::MAX, |p| p as u64);
    let values = n64
        .saturating_mul(spec.input_dim as u64 + width)
        .saturating_add(params)
        .saturating_add(
            n64.saturating_mul(spec.max_width() as u64)
                .saturating_mul(2),
        );
    values
        .saturating_mul(8)
        .saturating_add(sums_bytes(n, DEFAULT_BLOCKS))
}

/// The bytes of the sums of `blocks` blocks on `n` points: the block sums, the sum of
/// squares, one strip of a network's kernel, and the kernel assembled from them.
pub fn sums_bytes(n: usize, blocks: usize) -> u64 {
    let n2 = (n as u64).saturating_mul(n as u64);
    let strip = (n as u64).saturating_mul(strip_width(n) as u64);
    n2.saturating_mul(blocks as u64 + 2)
        .saturating_add(strip)
        .saturating_mul(8)
}

/// Columns per strip of one network's kernel: about 4 million entries of scratch.
fn strip_width(n: usize) -> usize {
    let n = n.max(1);
    (4_000_000 / n).max(64).min(n)
}

/// What a set of Monte Carlo sums is the estimate of: enough to refuse merging sums of
/// different kernels, and to say what a cached kernel holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct McMeta {
    /// The number of points.
    pub n: usize,
    /// The width of the feature layer.
    pub width: usize,
    /// The readout's σ_w.
    pub sigma_w: f64,
    /// The readout's σ_b.
    pub sigma_b: f64,
    /// The samples of the whole estimate, `M`.
    pub samples: usize,
    /// The seed.
    pub seed: u64,
    /// The blocks.
    pub blocks: usize,
    /// The number of shards the samples were split into.
    pub shards: usize,
    /// The shards these sums hold (1-based, ascending).
    pub shards_held: Vec<usize>,
    /// What the caller says the features are (architecture, inputs): sums merge only with
    /// sums of the same description.
    pub description: String,
}

impl McMeta {
    /// The checks of a description read from a file: positive sizes, held shards in range.
    pub fn check(&self) -> Result<(), PriorError> {
        let ok = self.n > 0
            && self.width > 0
            && self.blocks >= 1
            && self.shards >= 1
            && !self.shards_held.is_empty()
            && self.shards_held.windows(2).all(|w| w[0] < w[1])
            && self
                .shards_held
                .iter()
                .all(|&k| (1..=self.shards).contains(&k))
            && self.sigma_w.is_finite()
            && self.sigma_b.is_finite();
        if ok {
            return Ok(());
        }
        Err(PriorError::McSettings(format!(
            "an inconsistent description ({})",
            summary(self)
        )))
    }
}

/// Monte Carlo sums of network kernels `g_m = σ_w²/width · φ_m φ_mᵀ` (without the readout's
/// σ_b²): per block, their sum and count; over all samples, the sum of their squares.
/// Stored column-major, lower triangle (`i ≥ j`) only.
#[derive(Debug, Clone, PartialEq)]
pub struct McSums {
    /// What the sums estimate.
    pub meta: McMeta,
    block_sums: Vec<Vec<f64>>,
    block_counts: Vec<usize>,
    sum_sq: Vec<f64>,
}

impl McSums {
    /// Empty sums for `meta` (its `n` points and `blocks`), checked against the memory
    /// available.
    pub fn zeros(meta: McMeta) -> Result<Self, PriorError> {
        let n2 = meta.n.saturating_mul(meta.n);
        basin_data::memory::check(
            sums_bytes(meta.n, meta.blocks),
            || {
                format!(
                    "the Monte Carlo sums of a kernel of {} points in {} blocks",
                    meta.n, meta.blocks
                )
            },
            "use fewer points, or fewer blocks (--blocks)",
        )
        .map_err(PriorError::Memory)?;
        Ok(Self {
            block_sums: (0..meta.blocks).map(|_| vec![0.0; n2]).collect(),
            block_counts: vec![0; meta.blocks],
            sum_sq: vec![0.0; n2],
            meta,
        })
    }

    /// The sums from their parts, as a file stores them: checks their sizes.
    pub fn from_parts(
        meta: McMeta,
        block_sums: Vec<Vec<f64>>,
        block_counts: Vec<usize>,
        sum_sq: Vec<f64>,
    ) -> Result<Self, PriorError> {
        let n2 = meta.n * meta.n;
        let sizes_ok = block_sums.len() == meta.blocks
            && block_counts.len() == meta.blocks
            && block_sums.iter().all(|b| b.len() == n2)
            && sum_sq.len() == n2;
        if !sizes_ok {
            return Err(PriorError::McSettings(format!(
                "the sums do not have {} blocks of {} × {} entries",
                meta.blocks, meta.n, meta.n
            )));
        }
        Ok(Self {
            meta,
            block_sums,
            block_counts,
            sum_sq,
        })
    }

    /// Block `b`'s sum (column-major, lower triangle).
    pub fn block_sum(&self, b: usize) -> &[f64] {
        &self.block_sums[b]
    }

    /// The samples in each block.
    pub fn block_counts(&self) -> &[usize] {
        &self.block_counts
    }

    /// The sum of squares (column-major, lower triangle).
    pub fn sum_sq(&self) -> &[f64] {
        &self.sum_sq
    }

    /// The samples summed.
    pub fn count(&self) -> usize {
        self.block_counts.iter().sum()
    }

    /// True when every shard is held, so that the sums are the whole estimate.
    pub fn is_complete(&self) -> bool {
        self.meta.shards_held.len() == self.meta.shards
    }

    /// Adds network `m`'s features `phi` (`n × width`): its kernel goes to block
    /// `m mod blocks`, its square to the sum of squares. `strip` is scratch of
    /// `n × strip_width` (reused between calls).
    fn add_sample(&mut self, m: usize, phi: MatRef<'_, f64>, strip: &mut Mat<f64>) {
        let n = self.meta.n;
        let alpha = self.meta.sigma_w * self.meta.sigma_w / self.meta.width as f64;
        let b = m % self.meta.blocks;
        self.block_counts[b] += 1;
        let w = strip.ncols();
        for j0 in (0..n).step_by(w) {
            let cols = w.min(n - j0);
            // Rows j0.. of the columns j0..j0 + cols: the strip's lower part and the rows
            // below it.
            let mut g = strip.as_mut().submatrix_mut(0, 0, n - j0, cols);
            matmul(
                g.as_mut(),
                Accum::Replace,
                phi.subrows(j0, n - j0),
                phi.subrows(j0, cols).transpose(),
                alpha,
                Par::rayon(0),
            );
            let g = g.as_ref();
            let sums = &mut self.block_sums[b][j0 * n..(j0 + cols) * n];
            let squares = &mut self.sum_sq[j0 * n..(j0 + cols) * n];
            sums.par_chunks_mut(n)
                .zip(squares.par_chunks_mut(n))
                .enumerate()
                .for_each(|(jj, (s, q))| {
                    let j = j0 + jj;
                    let col = g.col(jj);
                    for i in j..n {
                        let v = col[i - j0];
                        s[i] += v;
                        q[i] += v * v;
                    }
                });
        }
    }

    /// The shard sums `parts` of one estimate, added in shard order. They must describe the
    /// same estimate and hold distinct shards.
    pub fn merge(mut parts: Vec<McSums>) -> Result<McSums, PriorError> {
        let bad = |m: String| Err(PriorError::McMerge(m));
        if parts.is_empty() {
            return bad("no sums to merge: give the shards' files".into());
        }
        parts.sort_by_key(|p| p.meta.shards_held.first().copied().unwrap_or(0));
        let first = parts.remove(0);
        let mut total = first;
        for part in parts {
            let (a, b) = (&total.meta, &part.meta);
            let same = McMeta {
                shards_held: a.shards_held.clone(),
                ..b.clone()
            };
            if &same != a {
                return bad(format!(
                    "the sums are of different estimates ({} against {}): merge only the shards \
                     of one `basin kernel` command",
                    summary(a),
                    summary(b)
                ));
            }
            if let Some(k) = b.shards_held.iter().find(|k| a.shards_held.contains(k)) {
                return bad(format!(
                    "shard {k}/{} is given twice: give each shard's file once",
                    a.shards
                ));
            }
            total.add(&part);
        }
        Ok(total)
    }

    /// Adds `other`'s sums (same shape) to these.
    fn add(&mut self, other: &McSums) {
        for (s, o) in self.block_sums.iter_mut().zip(&other.block_sums) {
            add_into(s, o);
        }
        add_into(&mut self.sum_sq, &other.sum_sq);
        for (c, o) in self.block_counts.iter_mut().zip(&other.block_counts) {
            *c += o;
        }
        self.meta
            .shards_held
            .extend_from_slice(&other.meta.shards_held);
        self.meta.shards_held.sort_unstable();
    }

    /// An error unless every shard is held and every block has a sample.
    pub fn require_complete(&self) -> Result<(), PriorError> {
        if !self.is_complete() {
            let missing: Vec<String> = (1..=self.meta.shards)
                .filter(|k| !self.meta.shards_held.contains(k))
                .map(|k| format!("{k}/{}", self.meta.shards))
                .collect();
            return Err(PriorError::McMerge(format!(
                "shards {} are missing: compute them, then merge all shards (basin kernel merge)",
                missing.join(", ")
            )));
        }
        if let Some(b) = self.block_counts.iter().position(|&c| c == 0) {
            return Err(PriorError::McSettings(format!(
                "block {b} has no sample: use fewer blocks than samples"
            )));
        }
        Ok(())
    }

    /// The kernel: the mean of the network kernels plus σ_b², over all blocks or, with
    /// `leave_out = Some(b)`, over every block but `b` (the jackknife's kernel).
    pub fn kernel_without(&self, leave_out: Option<usize>) -> Result<Mat<f64>, PriorError> {
        self.require_complete()?;
        let n = self.meta.n;
        let kept = |b: &usize| Some(*b) != leave_out;
        let count: usize = (0..self.meta.blocks)
            .filter(kept)
            .map(|b| self.block_counts[b])
            .sum();
        if count == 0 {
            return Err(PriorError::McSettings(
                "no samples are left without the block: use at least 2 blocks".into(),
            ));
        }
        let mut k = try_zeros(
            n,
            n,
            || format!("a kernel of {n} points"),
            "use fewer points",
        )?;
        let (inv, sb2) = (1.0 / count as f64, self.meta.sigma_b * self.meta.sigma_b);
        for j in 0..n {
            for i in j..n {
                let total: f64 = (0..self.meta.blocks)
                    .filter(kept)
                    .map(|b| self.block_sums[b][j * n + i])
                    .sum();
                k[(i, j)] = total * inv + sb2;
            }
        }
        mirror_lower(k.as_mut());
        check_kernel(k.as_ref(), &self.meta)?;
        Ok(k)
    }

    /// The kernel: the mean of every network's kernel plus σ_b².
    pub fn kernel(&self) -> Result<Mat<f64>, PriorError> {
        self.kernel_without(None)
    }

    /// Each entry's Monte Carlo standard error, `s/√M` with `s` the sample standard
    /// deviation of the network kernels' entry; `None` with fewer than 2 samples.
    pub fn std_err(&self) -> Result<Option<Mat<f64>>, PriorError> {
        self.require_complete()?;
        let (n, m) = (self.meta.n, self.count());
        if m < 2 {
            return Ok(None);
        }
        let mut se = try_zeros(
            n,
            n,
            || format!("the standard errors of a kernel of {n} points"),
            "use fewer points",
        )?;
        let mf = m as f64;
        for j in 0..n {
            for i in j..n {
                let at = j * n + i;
                let sum: f64 = self.block_sums.iter().map(|b| b[at]).sum();
                let mean = sum / mf;
                let var = ((self.sum_sq[at] - sum * mean) / (mf - 1.0)).max(0.0);
                se[(i, j)] = (var / mf).sqrt();
            }
        }
        mirror_lower(se.as_mut());
        Ok(Some(se))
    }
}

/// `a += b`, elementwise.
fn add_into(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}

fn summary(m: &McMeta) -> String {
    format!(
        "{} points, width {}, {} samples in {} blocks and {} shards, seed {}, σ_w {}, σ_b {}, {}",
        m.n, m.width, m.samples, m.blocks, m.shards, m.seed, m.sigma_w, m.sigma_b, m.description
    )
}

/// The kernel's variances must be positive and finite, and every entry finite.
fn check_kernel(k: MatRef<'_, f64>, meta: &McMeta) -> Result<(), PriorError> {
    let diag: Vec<f64> = (0..k.nrows()).map(|i| k[(i, i)]).collect();
    check_variances(
        &diag,
        "the Monte Carlo kernel",
        "at the readout",
        meta.sigma_b == 0.0,
    )?;
    match first_non_finite(k) {
        Some((row, col)) => Err(PriorError::KernelNotFinite { row, col }),
        None => Ok(()),
    }
}

/// The Monte Carlo sums of the shard `config.shard` of `features`'s estimate, calling
/// `progress(done, total)` after each network. `description` names the features (the
/// architecture and the inputs) so that only sums of the same estimate merge.
pub fn mc_sums<F: FeatureExtractor + Send>(
    features: &mut F,
    config: &McConfig,
    description: &str,
    progress: impl FnMut(usize, usize),
) -> Result<McSums, PriorError> {
    mc_sums_parallel(
        std::slice::from_mut(features),
        config,
        description,
        progress,
    )
}

/// [`mc_sums`] with one feature map per worker: the workers draw the features of
/// consecutive networks at the same time (each on its own thread), and the networks are
/// added to the sums one by one in order, so the sums are those of [`mc_sums`] bit for bit.
/// The maps must be of the same network on the same inputs.
pub fn mc_sums_parallel<F: FeatureExtractor + Send>(
    workers: &mut [F],
    config: &McConfig,
    description: &str,
    mut progress: impl FnMut(usize, usize),
) -> Result<McSums, PriorError> {
    config.check()?;
    let first = workers
        .first()
        .ok_or_else(|| PriorError::McSettings("no feature map to draw the networks with".into()))?;
    let (n, width, readout) = (first.n_points(), first.width(), first.readout());
    if n == 0 || width == 0 {
        return Err(PriorError::EmptyFeatures { n, width });
    }
    let mut sums = McSums::zeros(McMeta {
        n,
        width,
        sigma_w: readout.sigma_w,
        sigma_b: readout.sigma_b,
        samples: config.samples,
        seed: config.seed,
        blocks: config.blocks,
        shards: config.shard.count,
        shards_held: vec![config.shard.index],
        description: description.to_owned(),
    })?;
    let remedy = "use fewer points, a narrower last hidden layer, or fewer threads";
    let mut phis = (0..workers.len())
        .map(|_| {
            try_zeros(
                n,
                width,
                || format!("features of {n} points × {width}"),
                remedy,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut strip = try_zeros(
        n,
        strip_width(n),
        || format!("a strip of {n} points"),
        remedy,
    )?;
    let samples: Vec<usize> = config.shard.samples(config.samples).collect();
    let mut done = 0;
    for round in samples.chunks(workers.len()) {
        let drawn: Vec<Result<(), PriorError>> = workers
            .par_iter_mut()
            .zip(phis.par_iter_mut())
            .zip(round.par_iter())
            .map(|((f, phi), &m)| f.features(sample_seed(config.seed, m), phi.as_mut()))
            .collect();
        for ((result, phi), &m) in drawn.into_iter().zip(&phis).zip(round) {
            result?;
            if let Some((i, j)) = first_non_finite(phi.as_ref()) {
                return Err(PriorError::FeatureNotFinite {
                    point: i,
                    feature: j,
                    network: m,
                });
            }
            sums.add_sample(m, phi.as_ref(), &mut strip);
            done += 1;
            progress(done, samples.len());
        }
    }
    Ok(sums)
}

/// The Monte Carlo kernel of `features`, `n_points × n_points`.
pub fn mc_kernel<F: FeatureExtractor + Send>(
    features: &mut F,
    config: &McConfig,
) -> Result<Mat<f64>, PriorError> {
    mc_kernel_with_progress(features, config, |_| {})
}

/// [`mc_kernel`], calling `progress(m)` after each of the `M` networks (`m` = networks done).
pub fn mc_kernel_with_progress<F: FeatureExtractor + Send>(
    features: &mut F,
    config: &McConfig,
    mut progress: impl FnMut(usize),
) -> Result<Mat<f64>, PriorError> {
    let config = McConfig {
        blocks: 1,
        shard: SampleShard::WHOLE,
        ..*config
    };
    mc_sums(features, &config, "", |m, _| progress(m))?.kernel()
}

/// An error unless a feature buffer is `n × width`.
fn check_buffer(out: MatRef<'_, f64>, n: usize, width: usize) -> Result<(), PriorError> {
    if (out.nrows(), out.ncols()) != (n, width) {
        return Err(PriorError::FeatureBuffer {
            rows: out.nrows(),
            cols: out.ncols(),
            n,
            width,
        });
    }
    Ok(())
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

    fn features(&mut self, seed: u64, mut out: MatMut<'_, f64>) -> Result<(), PriorError> {
        let (n, width) = (self.n_points(), self.width());
        check_buffer(out.as_ref(), n, width)?;
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

/// The penultimate features of a conv net (the network without its readout; for a ResNet the
/// pooled channels) on fixed images, as the paper's `empirical_kernel.py`: He-normal weights,
/// BatchNorm at its init in eval mode, the forward pass in `T` (f32 as the paper, or f64).
#[derive(Debug, Clone)]
pub struct ConvFeatures<T> {
    map: basin_conv::FeatureMap<T>,
    /// One network's features in `T`'s pass, widened: column-major `n × width`.
    scratch: Vec<f64>,
}

impl<T: basin_nn::Real> ConvFeatures<T> {
    /// The features of `graph` on the images of `data`, in passes of `chunk` images whose
    /// products run on `par`.
    pub fn new(
        graph: basin_conv::Graph,
        data: &basin_data::Dataset,
        chunk: usize,
        par: Par,
    ) -> Result<Self, PriorError> {
        let map = basin_conv::FeatureMap::new(graph, data, chunk, par)?;
        let len = map.n_points() * map.width();
        Ok(Self {
            map,
            scratch: vec![0.0; len],
        })
    }
}

impl<T: basin_nn::Real> FeatureExtractor for ConvFeatures<T> {
    fn n_points(&self) -> usize {
        self.map.n_points()
    }

    fn width(&self) -> usize {
        self.map.width()
    }

    fn readout(&self) -> LayerScale {
        let g = self.map.graph();
        LayerScale {
            sigma_w: g.sigma_w,
            sigma_b: g.sigma_b,
        }
    }

    fn features(&mut self, seed: u64, mut out: MatMut<'_, f64>) -> Result<(), PriorError> {
        let (n, width) = (self.n_points(), self.width());
        check_buffer(out.as_ref(), n, width)?;
        self.map.features(seed, &mut self.scratch, n);
        out.copy_from(MatRef::from_column_major_slice(&self.scratch, n, width));
        Ok(())
    }
}
