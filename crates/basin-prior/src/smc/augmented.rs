//! One replicate of the annealed SMC in the augmented space, with exact HMC moves
//! ([`super::hmc`]).
//!
//! Φ(yᵢzᵢ/s) = P(yᵢ(zᵢ + sεᵢ) > 0), so the level-s target is the z-marginal of
//! u = z + sε ~ N(0, C_s), C_s = K + s²I, truncated to the orthant O = {yᵢuᵢ > 0}, and
//! Z_s = P_{N(0, C_s)}(O). Every level has the same support, so the increment from s to s′
//! is a Gaussian density ratio N(u; 0, C_s′)/N(u; 0, C_s), no indicator. With K = QΛQᵀ and
//! v = Qᵀu, in the precision β = 1/s and dₖ(β) = 1/(λₖ + β⁻²) = β²/(1 + β²λₖ) (1/λₖ at β = ∞):
//! log w = −½Σₖ vₖ²(dₖ(β′) − dₖ(β)) + ½Σₖ log(dₖ(β′)/dₖ(β)), O(N) per particle once v is
//! known (one GEMM per chunk of particles).
//!
//! At s = ∞, ũ = u/s is N(0, I + K/s²)·1(O) → independent half-normals ũ = y∘|ξ|, and
//! Z_∞ = 2⁻ᴺ exactly. The first step proposes u = s₁·ũ (density 2ᴺ·N(u; 0, s₁²I) on O) and
//! weighs by N(u; 0, C_s₁)/(2ᴺ·N(u; 0, s₁²I)); with ṽ = Qᵀũ,
//! log w = −N log 2 + ½Σₖ ṽₖ²·β₁²λₖ/(1 + β₁²λₖ) − ½Σₖ log(1 + β₁²λₖ).
//!
//! The schedule, resampling, replicates and the probit checkpoint are the slice path's
//! ([`super::path::next_level`], systematic resampling); the moves at each level are
//! exact-HMC trajectories of every particle, repeated (at least [`SmcConfig::moves`], at most
//! [`SmcConfig::max_moves`]) until the correlation over particles of uᵀC_s⁻¹u (the level's
//! log density up to a constant) before and after falls below [`SmcConfig::decorrelation`].
//! Particles are kept in constraint space, a = y∘u ≥ 0.

use std::time::Instant;

use basin_nn::derive_seed;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
use faer::linalg::matmul::matmul;
use faer::diag::Diag;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::SmcConfig;
use super::hmc::{Flight, Walls, fly};
use super::path::{ReplicateRun, correlation, ess_fraction, next_level};
use super::slice::{CHUNK, systematic_resample};
use crate::PriorError;
use crate::estimate::JITTERS;

/// The eigendecomposition K = QΛQᵀ that every level shares, with the labels folded in.
pub(crate) struct Spectrum {
    /// Λ (ascending, all > 0).
    pub lambda: Vec<f64>,
    /// D Q (D = diag y), n × n.
    pub dq: Mat<f64>,
    /// D K D, column-major n × n (the walls' columns).
    pub dkd: Vec<f64>,
    /// Jitter added to K's diagonal so that every eigenvalue is positive (beyond the jitter
    /// the caller already added; 0 if none was needed).
    pub extra_jitter: f64,
}

impl Spectrum {
    /// The eigendecomposition of `k` (single-threaded, so the same for any thread count). When
    /// an eigenvalue is ≤ 0 (a kernel whose Cholesky factor exists only in round-off), the
    /// smallest of the relative jitters [`JITTERS`] (times the mean diagonal) that makes them
    /// all positive is added, and returned in `extra_jitter`.
    pub fn new(k: MatRef<'_, f64>, y: &[f64]) -> Result<Self, PriorError> {
        let n = y.len();
        let mut lambda = Diag::<f64>::zeros(n);
        let mut q = Mat::<f64>::zeros(n, n);
        let mut mem = MemBuffer::new(self_adjoint_evd_scratch::<f64>(
            n,
            ComputeEigenvectors::Yes,
            Par::Seq,
            Default::default(),
        ));
        self_adjoint_evd(
            k,
            lambda.as_mut(),
            Some(q.as_mut()),
            Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .map_err(|e| {
            PriorError::InvalidKernel(format!(
                "the eigendecomposition of the {n}×{n} kernel failed ({e:?}): check it for \
                 extreme entries"
            ))
        })?;
        let mut lambda: Vec<f64> = (0..n).map(|i| lambda[i]).collect();
        let mean_diag = (0..n).map(|i| k[(i, i)]).sum::<f64>() / n as f64;
        let min = lambda.iter().copied().fold(f64::INFINITY, f64::min);
        let extra_jitter = if min > 0.0 {
            0.0
        } else {
            let j = JITTERS
                .iter()
                .map(|r| r * mean_diag)
                .find(|j| min + j > 0.0)
                .ok_or(PriorError::NotPsd {
                    jitter: JITTERS[JITTERS.len() - 1] * mean_diag,
                })?;
            tracing::warn!(
                "the kernel has an eigenvalue {min:e} ≤ 0; added jitter {j:e} to its diagonal \
                 for the HMC path"
            );
            j
        };
        for l in lambda.iter_mut() {
            *l += extra_jitter;
        }
        let dq = Mat::from_fn(n, n, |i, j| y[i] * q[(i, j)]);
        let dkd = (0..n * n)
            .map(|e| {
                let (i, j) = (e % n, e / n);
                let d = if i == j { extra_jitter } else { 0.0 };
                y[i] * y[j] * k[(i, j)] + d
            })
            .collect();
        Ok(Spectrum {
            lambda,
            dq,
            dkd,
            extra_jitter,
        })
    }

    fn n(&self) -> usize {
        self.lambda.len()
    }

    /// `v` (n × w) = (DQ)ᵀ `a` (n × w): the eigen-coordinates v = Qᵀu of positions a = y∘u.
    fn eigen_coords(&self, a: &[f64], v: &mut [f64]) {
        let n = self.n();
        let w = a.len() / n;
        matmul(
            MatMut::from_column_major_slice_mut(v, n, w),
            Accum::Replace,
            self.dq.as_ref().transpose(),
            MatRef::from_column_major_slice(a, n, w),
            1.0,
            Par::Seq,
        );
    }
}

/// dₖ(β) = 1/(λₖ + β⁻²) (1/λₖ at β = ∞).
fn precision_coef(lambda: f64, beta: f64) -> f64 {
    if beta.is_infinite() {
        1.0 / lambda
    } else {
        beta * beta / (1.0 + beta * beta * lambda)
    }
}

/// The state of a replicate between levels.
struct AugPath<'a> {
    spec: &'a Spectrum,
    cfg: &'a SmcConfig,
    /// Positions a = y∘u (n × P, column-major); at β = 0, ũ's.
    a: Vec<f64>,
    /// v = Qᵀu (ṽ at β = 0), n × P.
    v: Vec<f64>,
    beta: f64,
    /// Scratch: per-eigendirection coefficients of a candidate increment.
    coef: Vec<f64>,
    /// The increments to a candidate level.
    log_w: Vec<f64>,
    /// uᵀC⁻¹u of each particle after resampling and after the moves (mixing check).
    stat_start: Vec<f64>,
    stat: Vec<f64>,
    /// Scratch for resampling.
    a_old: Vec<f64>,
    v_old: Vec<f64>,
    picks: Vec<usize>,
}

/// Totals of the HMC moves of a replicate.
#[derive(Debug, Clone, Copy, Default)]
struct MoveTotals {
    trajectories: u64,
    bounces: u64,
    capped: u64,
    violations: u64,
}

impl MoveTotals {
    fn add(self, o: MoveTotals) -> MoveTotals {
        MoveTotals {
            trajectories: self.trajectories + o.trajectories,
            bounces: self.bounces + o.bounces,
            capped: self.capped + o.capped,
            violations: self.violations + o.violations,
        }
    }

    fn record(&mut self, f: Flight) {
        self.trajectories += 1;
        self.bounces += f.bounces;
        self.capped += u64::from(f.capped);
        self.violations += f.violations;
    }
}

/// One replicate from `seed` on the augmented path, ending at `end_beta` (1 or ∞) and
/// passing through β = 1 when [`SmcConfig::probit_checkpoint`] and the end is ∞.
pub(crate) fn run_replicate(
    spec: &Spectrum,
    cfg: &SmcConfig,
    end_beta: f64,
    seed: u64,
) -> ReplicateRun {
    let start = Instant::now();
    let n = spec.n();
    let p = cfg.particles;
    let mut path = AugPath {
        spec,
        cfg,
        a: vec![0.0; n * p],
        v: vec![0.0; n * p],
        beta: 0.0,
        coef: vec![0.0; n],
        log_w: vec![0.0; p],
        stat_start: vec![0.0; p],
        stat: vec![0.0; p],
        a_old: vec![0.0; n * p],
        v_old: vec![0.0; n * p],
        picks: Vec::with_capacity(p),
    };
    path.draw_half_normals(derive_seed(seed, 0));
    let mut run = ReplicateRun {
        seed,
        log_z: -(n as f64) * std::f64::consts::LN_2,
        ..ReplicateRun::default()
    };
    let mut totals = MoveTotals::default();
    for t in 1..=cfg.max_temperatures {
        let next = path.next_beta(end_beta);
        let (log_mean, frac) = path.reweight(next);
        run.log_z += log_mean;
        run.noise_levels.push(1.0 / next);
        run.ess_fractions.push(frac);
        if next == 1.0 {
            run.log_z_probit = Some(run.log_z);
        }
        if next == end_beta {
            run.reached_end = true;
            break;
        }
        let level_seed = derive_seed(seed, t as u64);
        path.resample(derive_seed(level_seed, 0));
        let (rounds, corr, level) = path.move_until_mixed(derive_seed(level_seed, 1));
        totals = totals.add(level);
        run.sweeps.push(rounds);
        run.end_correlations.push(corr);
    }
    run.mean_bounces = totals.bounces as f64 / totals.trajectories.max(1) as f64;
    run.cap_hits = totals.capped;
    run.violations = totals.violations;
    run.wall_s = start.elapsed().as_secs_f64();
    run
}

impl AugPath<'_> {
    fn n(&self) -> usize {
        self.spec.n()
    }

    /// The s = ∞ particles: ũ = y∘|ξ|, i.e. a = |ξ|, chunk c from `derive_seed(seed, c)`;
    /// and ṽ = Qᵀũ.
    fn draw_half_normals(&mut self, seed: u64) {
        let n = self.n();
        let spec = self.spec;
        self.a
            .par_chunks_mut(n * CHUNK)
            .zip(self.v.par_chunks_mut(n * CHUNK))
            .enumerate()
            .for_each(|(c, (ac, vc))| {
                let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, c as u64));
                for x in ac.iter_mut() {
                    *x = rng.sample::<f64, _>(StandardNormal).abs();
                }
                spec.eigen_coords(ac, vc);
            });
    }

    /// Fills `log_w` with the increments to level `beta` and returns their ESS fraction.
    fn ess_fraction(&mut self, beta: f64) -> f64 {
        let constant = self.increment_coefs(beta);
        let n = self.n();
        let coef = &self.coef;
        self.log_w
            .par_iter_mut()
            .zip(self.v.par_chunks(n))
            .for_each(|(w, vp)| {
                let q: f64 = vp.iter().zip(coef).map(|(x, c)| x * x * c).sum();
                *w = if constant.is_finite() {
                    constant - 0.5 * q
                } else {
                    f64::NEG_INFINITY
                };
            });
        ess_fraction(&self.log_w)
    }

    /// Sets `coef` so that the increment to `beta` is −½Σ coefₖvₖ² + (returned constant)
    /// (−∞ for a jump from β = 0 straight to β = ∞, which the proposal cannot make).
    fn increment_coefs(&mut self, beta: f64) -> f64 {
        let lambda = &self.spec.lambda;
        let mut constant = 0.0;
        if self.beta == 0.0 {
            if beta.is_infinite() {
                return f64::NEG_INFINITY;
            }
            let b2 = beta * beta;
            for (c, &l) in self.coef.iter_mut().zip(lambda) {
                let x = b2 * l;
                *c = -x / (1.0 + x);
                constant -= 0.5 * x.ln_1p();
            }
        } else {
            for (c, &l) in self.coef.iter_mut().zip(lambda) {
                let (d_old, d_new) = (precision_coef(l, self.beta), precision_coef(l, beta));
                *c = d_new - d_old;
                constant += 0.5 * (d_new / d_old).ln();
            }
        }
        constant
    }

    /// The next level ([`next_level`] on the Gaussian increments).
    fn next_beta(&mut self, end_beta: f64) -> f64 {
        let ceiling = if self.cfg.probit_checkpoint && self.beta < 1.0 {
            1.0
        } else {
            end_beta
        };
        let (beta, target) = (self.beta, self.cfg.ess_fraction);
        next_level(beta, end_beta, ceiling, target, |b| self.ess_fraction(b))
    }

    /// Moves the weights to level `beta`: returns log mean(w) and the ESS fraction. From
    /// β = 0 the particles are scaled from ũ to u = ũ/β.
    fn reweight(&mut self, beta: f64) -> (f64, f64) {
        let frac = self.ess_fraction(beta);
        let m = self.log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = self.log_w.iter().map(|&l| (l - m).exp()).sum::<f64>() / self.log_w.len() as f64;
        if self.beta == 0.0 {
            let s = 1.0 / beta;
            self.a.iter_mut().for_each(|x| *x *= s);
            self.v.iter_mut().for_each(|x| *x *= s);
        }
        self.beta = beta;
        (m + mean.ln(), frac)
    }

    /// Systematic resampling by the increments `log_w` (positions and their v).
    fn resample(&mut self, seed: u64) {
        let n = self.n();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        systematic_resample(&self.log_w, &mut rng, &mut self.picks);
        std::mem::swap(&mut self.a, &mut self.a_old);
        std::mem::swap(&mut self.v, &mut self.v_old);
        for (k, &i) in self.picks.iter().enumerate() {
            self.a[k * n..(k + 1) * n].copy_from_slice(&self.a_old[i * n..(i + 1) * n]);
            self.v[k * n..(k + 1) * n].copy_from_slice(&self.v_old[i * n..(i + 1) * n]);
        }
    }

    /// uᵀC⁻¹u = Σ dₖvₖ² of every particle at the current level, into `out`.
    fn quad_forms(&self, out: &mut [f64]) {
        let n = self.n();
        let beta = self.beta;
        let lambda = &self.spec.lambda;
        out.par_iter_mut()
            .zip(self.v.par_chunks(n))
            .for_each(|(o, vp)| {
                *o = vp
                    .iter()
                    .zip(lambda)
                    .map(|(x, &l)| x * x * precision_coef(l, beta))
                    .sum();
            });
    }

    /// Rounds of one HMC trajectory per particle until the particles' uᵀC⁻¹u decorrelate
    /// (at least `moves`, at most `max_moves` rounds); returns the rounds, the final
    /// correlation and the move totals. Round r, chunk c draws from
    /// `derive_seed(derive_seed(seed, r), c)`.
    fn move_until_mixed(&mut self, seed: u64) -> (usize, f64, MoveTotals) {
        let mut stat_start = std::mem::take(&mut self.stat_start);
        let mut stat = std::mem::take(&mut self.stat);
        self.quad_forms(&mut stat_start);
        let mut totals = MoveTotals::default();
        let mut rounds = 0;
        let mut corr = 1.0;
        while rounds < self.cfg.max_moves {
            totals = totals.add(self.move_round(derive_seed(seed, rounds as u64)));
            rounds += 1;
            self.quad_forms(&mut stat);
            corr = correlation(&stat_start, &stat);
            if rounds >= self.cfg.moves && corr < self.cfg.decorrelation {
                break;
            }
        }
        self.stat_start = stat_start;
        self.stat = stat;
        (rounds, corr, totals)
    }

    /// One trajectory of every particle at the current level, then v recomputed.
    fn move_round(&mut self, seed: u64) -> MoveTotals {
        let n = self.n();
        let spec = self.spec;
        let s2 = if self.beta.is_infinite() {
            0.0
        } else {
            1.0 / (self.beta * self.beta)
        };
        let walls = Walls::new(&spec.dkd, s2, self.cfg.max_bounces);
        let scale: Vec<f64> = spec.lambda.iter().map(|l| (l + s2).sqrt()).collect();
        let time = self.cfg.trajectory_time;
        self.a
            .par_chunks_mut(n * CHUNK)
            .zip(self.v.par_chunks_mut(n * CHUNK))
            .enumerate()
            .map_init(
                || MoveScratch::new(n),
                |scratch, (c, (ac, vc))| {
                    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, c as u64));
                    let totals = move_chunk(spec, &walls, &scale, time, ac, scratch, &mut rng);
                    spec.eigen_coords(ac, vc);
                    totals
                },
            )
            .reduce(MoveTotals::default, MoveTotals::add)
    }
}

/// Per-chunk buffers: standard normals, velocity images (n × CHUNK each), and a start copy.
struct MoveScratch {
    xi: Vec<f64>,
    b: Vec<f64>,
    start: Vec<f64>,
}

impl MoveScratch {
    fn new(n: usize) -> Self {
        MoveScratch {
            xi: vec![0.0; n * CHUNK],
            b: vec![0.0; n * CHUNK],
            start: vec![0.0; n],
        }
    }
}

/// One trajectory of each particle (column) of the chunk `ac`: velocity images
/// B = DQ·diag(√(λ + s²))·Ξ in one product, then [`fly`].
fn move_chunk(
    spec: &Spectrum,
    walls: &Walls<'_>,
    scale: &[f64],
    time: f64,
    ac: &mut [f64],
    s: &mut MoveScratch,
    rng: &mut ChaCha8Rng,
) -> MoveTotals {
    let n = spec.n();
    let w = ac.len() / n;
    for col in s.xi[..n * w].chunks_mut(n) {
        for (x, sc) in col.iter_mut().zip(scale) {
            *x = sc * rng.sample::<f64, _>(StandardNormal);
        }
    }
    matmul(
        MatMut::from_column_major_slice_mut(&mut s.b[..n * w], n, w),
        Accum::Replace,
        spec.dq.as_ref(),
        MatRef::from_column_major_slice(&s.xi[..n * w], n, w),
        1.0,
        Par::Seq,
    );
    let mut totals = MoveTotals::default();
    for (ap, bp) in ac.chunks_mut(n).zip(s.b.chunks_mut(n)) {
        totals.record(fly(walls, ap, bp, time, &mut s.start));
    }
    totals
}
