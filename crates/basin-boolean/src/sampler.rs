//! Drawing networks and counting their functions, reproducibly and in parallel.
//!
//! **How sample `s` is drawn** (seed `S`, `P` parameters, `W = 256·⌈P/256⌉` words a net):
//! * The key is 32 bytes: `derive_seed(S, j)` for `j = 0..4` (`basin_nn::derive_seed`,
//!   SplitMix64), little-endian.
//! * Samples come in blocks of [`NETS_PER_BLOCK`]: sample `s` is net `j = s mod 1024` of block
//!   `b = s / 1024`. Block `b` reads ChaCha8 stream `b` (primary) and stream `b | 2⁶³`
//!   (secondary, the ziggurat's rare fallbacks, consumed in order through the block).
//! * Net `j` takes the `W` words of primary blocks `16·W/256·j …`, arranged as
//!   [`ChaChaStream::batch`] lays them out; parameter `p` (the flat layout of `basin-nn`:
//!   per layer the weight `[out, in]` row-major, then the bias) is the ziggurat draw of word
//!   `p`, times its scale rounded to f32: `σ_w/√fan_in` for weights, `σ_b` for biases (the
//!   init of `FcnSpec`), the product rounded to f32.
//!
//! So a block's samples depend only on (seed, block), never on the thread that drew them,
//! and the first `n` samples of a larger run are the `n` samples of a smaller one.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use basin_nn::{FcnSpec, derive_seed};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::chacha::{BATCH_WORDS, ChaChaStream, LANES};
use crate::counts::FunctionCounts;
use crate::error::BooleanError;
use crate::forward::{CubeNet, Scratch};
use crate::ziggurat::Ziggurat;

/// Networks per block of samples (each block has its own random streams).
pub const NETS_PER_BLOCK: u64 = 1024;

/// The secondary stream of block `b` is `b | SECONDARY`.
const SECONDARY: u64 = 1 << 63;

/// Draws random networks of one architecture on {0,1}^7 and counts their functions.
#[derive(Debug, Clone)]
pub struct BooleanSampler {
    spec: FcnSpec,
    net: CubeNet,
    /// The scale of each parameter range (weights, then bias, per layer).
    scales: Vec<(Range<usize>, f32)>,
    /// Words per network, a multiple of one batch.
    words_per_net: usize,
}

impl BooleanSampler {
    /// A sampler for `spec` (7 inputs, ReLU, at least one hidden layer; any widths and
    /// scales).
    pub fn new(spec: &FcnSpec) -> Result<Self, BooleanError> {
        let net = CubeNet::new(spec)?;
        let scales = net
            .layers()
            .iter()
            .flat_map(|l| {
                let w = (spec.sigma_w / (l.fan_in as f64).sqrt()) as f32;
                [(l.w_range(), w), (l.b_range(), spec.sigma_b as f32)]
            })
            .collect();
        let words_per_net = net.n_params().div_ceil(BATCH_WORDS) * BATCH_WORDS;
        Ok(Self {
            spec: spec.clone(),
            net,
            scales,
            words_per_net,
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &FcnSpec {
        &self.spec
    }

    /// The network evaluator.
    pub fn net(&self) -> &CubeNet {
        &self.net
    }

    /// The 32-byte ChaCha8 key of `seed`.
    pub fn key(seed: u64) -> [u8; 32] {
        let mut key = [0u8; 32];
        for (j, chunk) in key.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&derive_seed(seed, j as u64).to_le_bytes());
        }
        key
    }

    /// Draws `samples` networks from `seed` and counts their functions, on all threads of
    /// the current rayon pool.
    pub fn sample(&self, samples: u64, seed: u64) -> Result<FunctionCounts, BooleanError> {
        self.sample_with_progress(samples, seed, &|_| {})
    }

    /// [`BooleanSampler::sample`], calling `progress(done)` after each block of samples.
    pub fn sample_with_progress(
        &self,
        samples: u64,
        seed: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<FunctionCounts, BooleanError> {
        if samples == 0 {
            return Err(BooleanError::NoSamples);
        }
        let key = Self::key(seed);
        let blocks = samples.div_ceil(NETS_PER_BLOCK);
        let done = AtomicU64::new(0);
        let counts = (0..blocks)
            .into_par_iter()
            .fold(
                || (FunctionCounts::new(), Block::buffers(self)),
                |(mut counts, mut buffers), b| {
                    let nets = (samples - b * NETS_PER_BLOCK).min(NETS_PER_BLOCK);
                    buffers.count_block(self, &key, b, nets, &mut counts);
                    progress(done.fetch_add(nets, Ordering::Relaxed) + nets);
                    (counts, buffers)
                },
            )
            .map(|(counts, _)| counts)
            .reduce(FunctionCounts::new, FunctionCounts::merge);
        Ok(counts)
    }

    /// The parameters of sample `index` under `seed` (flat `basin-nn` layout, f32).
    pub fn network(&self, seed: u64, index: u64) -> Vec<f32> {
        let key = Self::key(seed);
        let mut buffers = Block::buffers(self);
        let mut block = buffers.start(&key, index / NETS_PER_BLOCK);
        for j in 0..index % NETS_PER_BLOCK {
            block.draw(self, j);
        }
        block.draw(self, index % NETS_PER_BLOCK);
        block.buffers.theta.clone()
    }

    /// The functions of samples `range` under `seed`, in order, on one thread.
    pub fn functions(&self, seed: u64, range: Range<u64>) -> Vec<u128> {
        let key = Self::key(seed);
        let mut buffers = Block::buffers(self);
        let mut out = Vec::with_capacity((range.end.saturating_sub(range.start)) as usize);
        let mut s = range.start;
        while s < range.end {
            let b = s / NETS_PER_BLOCK;
            let mut block = buffers.start(&key, b);
            for j in 0..NETS_PER_BLOCK {
                let index = b * NETS_PER_BLOCK + j;
                if index >= range.end {
                    break;
                }
                block.draw(self, j);
                if index >= range.start {
                    out.push(block.function(self));
                }
            }
            s = (b + 1) * NETS_PER_BLOCK;
        }
        out
    }
}

/// One thread's buffers: random words, normals, parameters and activations.
struct Block {
    words: Vec<[u32; BATCH_WORDS]>,
    z: Vec<f32>,
    theta: Vec<f32>,
    scratch: Scratch,
}

/// A block being drawn: its two streams and the thread's buffers.
struct BlockDraw<'a> {
    primary: ChaChaStream,
    secondary: ChaCha8Rng,
    buffers: &'a mut Block,
}

impl Block {
    fn buffers(sampler: &BooleanSampler) -> Self {
        let p = sampler.net.n_params();
        Self {
            words: vec![[0u32; BATCH_WORDS]; sampler.words_per_net / BATCH_WORDS],
            z: vec![0.0; p],
            theta: vec![0.0; p],
            scratch: sampler.net.scratch(),
        }
    }

    fn start(&mut self, key: &[u8; 32], b: u64) -> BlockDraw<'_> {
        let mut secondary = ChaCha8Rng::from_seed(*key);
        secondary.set_stream(b | SECONDARY);
        BlockDraw {
            primary: ChaChaStream::new(*key, b),
            secondary,
            buffers: self,
        }
    }

    fn count_block(
        &mut self,
        sampler: &BooleanSampler,
        key: &[u8; 32],
        b: u64,
        nets: u64,
        counts: &mut FunctionCounts,
    ) {
        let mut block = self.start(key, b);
        for j in 0..nets {
            block.draw(sampler, j);
            counts.add(block.function(sampler));
        }
    }
}

impl BlockDraw<'_> {
    /// Draws net `j` of the block into the parameter buffer.
    fn draw(&mut self, sampler: &BooleanSampler, j: u64) {
        let blocks_per_net = (sampler.words_per_net / BATCH_WORDS * LANES) as u64;
        let buf = &mut *self.buffers;
        for (t, batch) in buf.words.iter_mut().enumerate() {
            self.primary
                .batch(j * blocks_per_net + (t * LANES) as u64, batch);
        }
        let p = buf.theta.len();
        let words = &buf.words.as_flattened()[..p];
        Ziggurat::get().fill(words, &mut buf.z, &mut self.secondary);
        for (range, scale) in &sampler.scales {
            for (t, &z) in buf.theta[range.clone()]
                .iter_mut()
                .zip(&buf.z[range.clone()])
            {
                *t = z * scale;
            }
        }
    }

    /// The function of the parameters last drawn.
    fn function(&mut self, sampler: &BooleanSampler) -> u128 {
        let buf = &mut *self.buffers;
        sampler.net.function(&buf.theta, &mut buf.scratch)
    }
}
