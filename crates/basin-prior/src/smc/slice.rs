//! The particles' latent vectors, their log likelihoods at a noise level, Gaussian draws as
//! one triangular matrix product per chunk of particles, and elliptical slice sampling
//! (Murray, Adams & MacKay 2010) on the ellipses of a Gaussian G ([`Gaussian`]: the prior, or
//! the prior times EP's sites) against the residual likelihood π_β/G.
//!
//! The likelihood at precision β = 1/s is ℓ_β(z) = Σᵢ log Φ(β·yᵢzᵢ); at β = ∞ it is the orthant
//! indicator (0 inside, −∞ outside). Every term is ≤ 0, so a partial sum below the slice
//! level already rejects a proposal: the loop stops there.
//!
//! Particles are processed in chunks of [`CHUNK`], each chunk with its own ChaCha8 stream, so
//! a result depends only on the seed, never on the number of threads.

use std::f64::consts::TAU;

use basin_nn::derive_seed;
use faer::MatRef;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::gauss::Gaussian;
use crate::normal::log_cdf;

/// Particles per chunk (one random stream and one matrix product each).
pub(crate) const CHUNK: usize = 32;

/// ℓ_β(z) = Σ log Φ(β·yᵢzᵢ) (β finite) or the orthant indicator's log (β = ∞), stopping
/// early (returning the partial sum, which is below `floor`) once the sum falls below `floor`.
pub(crate) fn log_lik(y: &[f64], z: &[f64], beta: f64, floor: f64) -> f64 {
    if beta.is_infinite() {
        return if y.iter().zip(z).all(|(a, b)| a * b > 0.0) {
            0.0
        } else {
            f64::NEG_INFINITY
        };
    }
    let mut sum = 0.0;
    for (a, b) in y.iter().zip(z) {
        sum += log_cdf(beta * a * b);
        if sum < floor {
            return sum;
        }
    }
    sum
}

/// ℓ_β of every particle (columns of the n × P column-major `z`) into `out`, in parallel.
pub(crate) fn log_liks(y: &[f64], z: &[f64], beta: f64, out: &mut [f64]) {
    let n = y.len();
    out.par_iter_mut()
        .zip(z.par_chunks(n))
        .for_each(|(o, zp)| *o = log_lik(y, zp, beta, f64::NEG_INFINITY));
}

/// Per-chunk buffers: standard normals Ξ and the draws ν = LΞ (n × CHUNK each), and one
/// proposal vector.
struct Scratch {
    xi: Vec<f64>,
    nu: Vec<f64>,
    proposal: Vec<f64>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            xi: vec![0.0; n * CHUNK],
            nu: vec![0.0; n * CHUNK],
            proposal: vec![0.0; n],
        }
    }
}

/// `out` (n × w, column-major): w draws from `g`'s N(0, Σ) (Σ = K without sites), from
/// standard normals Ξ drawn from `rng` and one triangular product.
fn draw_gaussian(
    l: MatRef<'_, f64>,
    g: &Gaussian,
    xi: &mut [f64],
    out: &mut [f64],
    rng: &mut ChaCha8Rng,
) {
    let n = l.nrows();
    let w = out.len() / n;
    for v in xi[..n * w].iter_mut() {
        *v = rng.sample(StandardNormal);
    }
    g.draw(l, xi, out);
}

/// Fills the n × P column-major `z` with P draws from N(0, LLᵀ), chunk c from the stream
/// `derive_seed(seed, c)`.
pub(crate) fn draw_particles(l: MatRef<'_, f64>, z: &mut [f64], seed: u64) {
    let n = l.nrows();
    let prior = Gaussian::prior(n);
    z.par_chunks_mut(n * CHUNK).enumerate().for_each_init(
        || vec![0.0; n * CHUNK],
        |xi, (c, zc)| {
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, c as u64));
            draw_gaussian(l, &prior, xi, zc, &mut rng);
        },
    );
}

/// Counts from a sweep of elliptical slice sampling.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SliceStats {
    /// Likelihood evaluations (proposals tried), over all particles and iterations.
    pub tries: u64,
    /// Updates (particles × iterations).
    pub updates: u64,
    /// Updates that hit the shrink cap and left the particle where it was.
    pub cap_hits: u64,
}

impl SliceStats {
    fn add(self, o: SliceStats) -> SliceStats {
        SliceStats {
            tries: self.tries + o.tries,
            updates: self.updates + o.updates,
            cap_hits: self.cap_hits + o.cap_hits,
        }
    }
}

/// What a sweep of moves needs besides the particles.
pub(crate) struct MoveSetting<'a> {
    /// The Cholesky factor L of K (lower triangle).
    pub l: MatRef<'a, f64>,
    /// ±1 labels.
    pub y: &'a [f64],
    /// The precision β = 1/s of the current likelihood (finite or ∞).
    pub beta: f64,
    /// The most proposals per update before giving up (the particle stays).
    pub max_tries: usize,
    /// The ellipses' Gaussian ([`Gaussian`]).
    pub g: &'a Gaussian,
}

/// `iterations` elliptical-slice updates of every particle (columns of the n × P `z`, with
/// their log likelihoods `ll` at `set.beta`, updated in place); chunk c of iteration m draws
/// from the stream `derive_seed(derive_seed(seed, m), c)`.
pub(crate) fn move_particles(
    set: &MoveSetting<'_>,
    z: &mut [f64],
    ll: &mut [f64],
    iterations: usize,
    seed: u64,
) -> SliceStats {
    let n = set.y.len();
    let mut total = SliceStats::default();
    for m in 0..iterations {
        let iter_seed = derive_seed(seed, m as u64);
        let s = z
            .par_chunks_mut(n * CHUNK)
            .zip(ll.par_chunks_mut(CHUNK))
            .enumerate()
            .map_init(
                || Scratch::new(n),
                |scratch, (c, (zc, lc))| {
                    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(iter_seed, c as u64));
                    move_chunk(set, zc, lc, scratch, &mut rng)
                },
            )
            .reduce(SliceStats::default, SliceStats::add);
        total = total.add(s);
    }
    total
}

/// One update of each particle of a chunk.
fn move_chunk(
    set: &MoveSetting<'_>,
    zc: &mut [f64],
    lc: &mut [f64],
    s: &mut Scratch,
    rng: &mut ChaCha8Rng,
) -> SliceStats {
    let n = set.y.len();
    let w = lc.len();
    draw_gaussian(set.l, set.g, &mut s.xi, &mut s.nu[..n * w], rng);
    let mut stats = SliceStats::default();
    for (p, lp) in lc.iter_mut().enumerate() {
        let zp = &mut zc[p * n..(p + 1) * n];
        let nu = &s.nu[p * n..(p + 1) * n];
        let (tries, moved) = slice_update(set, zp, lp, nu, &mut s.proposal, rng);
        stats.tries += tries;
        stats.updates += 1;
        stats.cap_hits += u64::from(!moved);
    }
    stats
}

/// One elliptical slice update of `z` (log likelihood `ll`) on the ellipse of N(μ, Σ)
/// through z and μ + `nu`, against the residual log R = ℓ_β + site term; returns (proposals
/// tried, whether it moved: false only at the cap).
fn slice_update(
    set: &MoveSetting<'_>,
    z: &mut [f64],
    ll: &mut f64,
    nu: &[f64],
    proposal: &mut [f64],
    rng: &mut ChaCha8Rng,
) -> (u64, bool) {
    let g = set.g;
    // Without sites every term of log R is ≤ 0 and a partial sum can reject early.
    let early = g.m.is_none();
    let u: f64 = rng.random();
    let level = *ll + g.site_term(z) + (1.0 - u).ln();
    let mut theta = TAU * rng.random::<f64>();
    let (mut lo, mut hi) = (theta - TAU, theta);
    for tries in 1..=set.max_tries {
        let (sn, cs) = theta.sin_cos();
        for (((q, a), b), m) in proposal.iter_mut().zip(z.iter()).zip(nu).zip(&g.mean) {
            *q = m + (a - m) * cs + b * sn;
        }
        let floor = if early { level } else { f64::NEG_INFINITY };
        let lq = log_lik(set.y, proposal, set.beta, floor);
        if lq > f64::NEG_INFINITY && lq + g.site_term(proposal) > level {
            z.copy_from_slice(proposal);
            *ll = lq;
            return (tries as u64, true);
        }
        if theta < 0.0 {
            lo = theta;
        } else {
            hi = theta;
        }
        theta = lo + (hi - lo) * rng.random::<f64>();
    }
    (set.max_tries as u64, false)
}

/// Systematic resampling: P indices with multiplicities ≈ P·wᵢ/Σw from one uniform;
/// `log_w` are log weights (some may be −∞, not all).
pub(crate) fn systematic_resample(log_w: &[f64], rng: &mut impl Rng, out: &mut Vec<usize>) {
    let p = log_w.len();
    let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = log_w.iter().map(|&l| (l - m).exp()).sum();
    let u: f64 = rng.random();
    let last_positive = log_w
        .iter()
        .rposition(|&l| l > f64::NEG_INFINITY)
        .unwrap_or(0);
    out.clear();
    let mut i = 0;
    let mut cum = (log_w[0] - m).exp();
    for k in 0..p {
        let target = (k as f64 + u) / p as f64 * total;
        while cum <= target && i < last_positive {
            i += 1;
            cum += (log_w[i] - m).exp();
        }
        out.push(i);
    }
}
