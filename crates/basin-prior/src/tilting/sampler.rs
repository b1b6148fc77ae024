//! Importance sampling with the tilted proposal (Botev 2017, §4): for k = 1..d − 1 in order,
//! Zₖ − μₖ ~ N(0, 1) truncated to (l̂ₖ − μₖ − cₖ, ûₖ − μₖ − cₖ), cₖ = Σⱼ₍ₖ L̂ₖⱼZⱼ, and the log
//! weight gains log P(that interval) + μₖ²/2 − μₖZₖ; the last variable is not drawn, it adds
//! log P(l̂_d − c_d < Z < û_d − c_d). The weights' mean is P(l < X < u) exactly, whatever μ.
//!
//! Samples go in blocks of [`BLOCK`], each from its own ChaCha8 stream seeded by
//! `derive_seed(seed, block index)`, so a result depends only on the seed and the sample
//! count, never on the threads. Within a block the sums cₖ are formed panel by panel: for
//! the rows of a panel of [`PANEL`] variables, the part from the variables before the panel
//! is one matrix product (faer), and only the in-panel triangle is done row by row.

use basin_nn::derive_seed;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::saddle::Scaled;
use crate::truncnorm::{log_prob_between, sample};

/// Samples per block (each block has its own random stream).
/// Samples are drawn in blocks of this many (each with its own seeded stream); the sample
/// count is rounded up to a multiple of it.
pub const SAMPLE_BLOCK: usize = 128;
const BLOCK: usize = SAMPLE_BLOCK;
/// Variables per panel of the blocked sums.
const PANEL: usize = 64;

/// Buffers for one block, reused across the blocks a thread runs.
struct Scratch {
    /// Z, one column per variable (BLOCK × d).
    z: Mat<f64>,
    /// The panel's sums c (BLOCK × PANEL).
    c: Mat<f64>,
}

impl Scratch {
    fn new(d: usize) -> Self {
        Scratch {
            z: Mat::zeros(BLOCK, d),
            c: Mat::zeros(BLOCK, PANEL),
        }
    }
}

/// The log weights of blocks `first..last` (BLOCK samples each), in block order, computed in
/// parallel on rayon's pool.
pub(crate) fn log_weights(
    p: &Scaled,
    mu: &[f64],
    seed: u64,
    first: usize,
    last: usize,
) -> Vec<f64> {
    let per_block: Vec<Vec<f64>> = (first..last)
        .into_par_iter()
        .map_init(
            || Scratch::new(p.d),
            |scratch, b| {
                let mut out = vec![0.0; BLOCK];
                block(p, mu, derive_seed(seed, b as u64), scratch, &mut out);
                out
            },
        )
        .collect();
    per_block.concat()
}

/// One block of BLOCK log weights into `out`.
fn block(p: &Scaled, mu: &[f64], seed: u64, s: &mut Scratch, out: &mut [f64]) {
    let d = p.d;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    out.fill(0.0);
    for k0 in (0..d).step_by(PANEL) {
        let k1 = (k0 + PANEL).min(d);
        let width = k1 - k0;
        if k0 == 0 {
            s.c.fill(0.0);
        } else {
            matmul(
                s.c.as_mut().subcols_mut(0, width),
                Accum::Replace,
                s.z.as_ref().subcols(0, k0),
                p.lh.as_ref().submatrix(k0, 0, width, k0).transpose(),
                1.0,
                Par::Seq,
            );
        }
        for k in k0..k1 {
            let ck = s.c.col_as_slice_mut(k - k0);
            for j in k0..k {
                let l = p.lh[(k, j)];
                if l != 0.0 {
                    let zj = s.z.col_as_slice(j);
                    for (c, z) in ck.iter_mut().zip(zj) {
                        *c += l * z;
                    }
                }
            }
            if k + 1 < d {
                draw_row(p, mu, k, ck, s.z.col_as_slice_mut(k), out, &mut rng);
            } else {
                for (w, c) in out.iter_mut().zip(ck.iter()) {
                    *w += log_prob_between(p.lo[k] - c, p.up[k] - c);
                }
            }
        }
    }
}

/// Draws variable k for every sample of the block given its sums `c`, into `z`, and adds
/// its log weight.
fn draw_row(
    p: &Scaled,
    mu: &[f64],
    k: usize,
    c: &[f64],
    z: &mut [f64],
    logw: &mut [f64],
    rng: &mut ChaCha8Rng,
) {
    let mu = mu[k];
    let half_mu2 = 0.5 * mu * mu;
    for ((zs, w), cs) in z.iter_mut().zip(logw.iter_mut()).zip(c) {
        let shift = mu + cs;
        let (a, b) = (p.lo[k] - shift, p.up[k] - shift);
        let zk = mu + sample(a, b, rng);
        *w += log_prob_between(a, b) + half_mu2 - mu * zk;
        *zs = zk;
    }
}
