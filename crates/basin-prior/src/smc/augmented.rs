//! One replicate of the annealed SMC with exact HMC moves ([`super::hmc`]) in the augmented
//! space.
//!
//! Φ(yᵢzᵢ/s) = P(yᵢ(zᵢ + sεᵢ) > 0), so the level-s target π_s(z) ∝ N(z; 0, K)·Πᵢ Φ(yᵢzᵢ/s) is
//! the z-marginal of the joint π_s(z, u) ∝ N(z; 0, K)·N(u; z, s²I)·1(u ∈ O), O = {yᵢuᵢ > 0},
//! whose u-marginal is N(0, C_s), C_s = K + s²I, truncated to O: a truncated Gaussian, where
//! exact HMC moves without rejections however sharp the constraints. Both conditionals are
//! exact draws: z | u is Gaussian, N(K C_s⁻¹u, s²K C_s⁻¹) (diagonal in K's eigenbasis), and
//! u | z is independent one-sided truncated normals, yᵢuᵢ ~ N(yᵢzᵢ, s²) on (0, ∞).
//!
//! The path and its weights are the slice path's ([`super::path`]): the increment from β = 1/s
//! to β′ is the ratio of z-marginals Πᵢ Φ(β′yᵢzᵢ)/Φ(βyᵢzᵢ) (the indicator over Πᵢ Φ(βyᵢzᵢ) at
//! β′ = ∞), which is the joint ratio N(u; z, s′²I)/N(u; z, s²I) averaged over u | z. That
//! average matters: the joint (or u-marginal, N(u; 0, C_s′)/N(u; 0, C_s)) ratio varies along
//! every direction where the noise dominates K, so its ESS falls ≈ √N times faster along the
//! path (measured at N = 300, equicorrelated: 94 levels against 48, and a first step from the
//! half-normals at s = ∞ whose weights are unbounded, 0.9 nats low at s = 1).
//!
//! One level, from particles z ~ π_s (with their log likelihoods): choose β′ by bisection on
//! the ESS ([`super::path::next_level`]), log Ẑ += log mean w, systematic resampling, then
//! u | z at s′ (exact), rounds of one HMC trajectory per particle on the u-marginal (at least
//! [`SmcConfig::moves`], at most [`SmcConfig::max_moves`], until the correlation over
//! particles of uᵀC_s′⁻¹u before and after falls below [`SmcConfig::decorrelation`]), and
//! z | u (exact). The start, β = 0, is z ~ N(0, K) exactly (Z_∞ = 2⁻ᴺ). Particles' u are kept
//! in constraint space, a = y∘u ≥ 0. With K = QΛQᵀ (one eigendecomposition), the velocity
//! images (DQ·diag(√(λ + s²))·Ξ), v = Qᵀu and z = Q·z̃ are one product per chunk of
//! particles each.

use std::time::Instant;

use basin_nn::derive_seed;
use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd, self_adjoint_evd_scratch};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::config::SmcConfig;
use super::hmc::{Flight, FlightScratch, Walls, fly};
use super::path::{Level, ReplicateRun, Stops, correlation};
use super::slice::{CHUNK, log_liks, systematic_resample};
use crate::PriorError;
use crate::kernel_check::JITTERS;
use crate::truncnorm;

/// A level at which more than one trajectory in this many reaches the bounce cap forces the
/// next step ([`super::path::Level::force_next`]).
const CAPPED_SHARE: u64 = 10;

/// The eigendecomposition K = QΛQᵀ that every level shares, with the labels folded in.
pub(crate) struct Spectrum {
    /// Λ (ascending, all ≥ 0).
    pub lambda: Vec<f64>,
    /// Q, n × n.
    pub q: Mat<f64>,
    /// D Q (D = diag y), n × n.
    pub dq: Mat<f64>,
    /// D K D, column-major n × n (the walls' columns).
    pub dkd: Vec<f64>,
    /// The most negative eigenvalue of K, negated, when it was below 0 (set to 0, with D K D
    /// rebuilt from the clamped spectrum so that the walls and the velocities agree); 0 if
    /// none was.
    pub clamped: f64,
}

impl Spectrum {
    /// The eigendecomposition of `k` (single-threaded, so the same for any thread count).
    /// Eigenvalues below 0 (round-off of a positive semi-definite kernel, or the error of a
    /// kernel stored in f32) are set to 0: the kernel used is then K plus a change of norm
    /// |λ_min| confined to those eigendirections, where a diagonal jitter would change every
    /// direction by more. The path needs no positive eigenvalue: z has no component along a
    /// zero eigenvalue, and u = z + sε only moves at levels with s > 0. An eigenvalue below
    /// −10⁻⁶ × the mean diagonal (the largest jitter of [`JITTERS`]) is
    /// [`PriorError::NotPsd`].
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
        .map_err(|e| PriorError::Eigendecomposition {
            n,
            reason: format!("{e:?}"),
        })?;
        let mut lambda: Vec<f64> = (0..n).map(|i| lambda[i]).collect();
        let mean_diag = (0..n).map(|i| k[(i, i)]).sum::<f64>() / n as f64;
        let largest_jitter = JITTERS[JITTERS.len() - 1] * mean_diag;
        let min = lambda.iter().copied().fold(f64::INFINITY, f64::min);
        if min.is_nan() || min < -largest_jitter {
            return Err(PriorError::NotPsd {
                jitter: largest_jitter,
            });
        }
        let clamped = if min < 0.0 { -min } else { 0.0 };
        for l in lambda.iter_mut() {
            *l = l.max(0.0);
        }
        let dq = Mat::from_fn(n, n, |i, j| y[i] * q[(i, j)]);
        let dkd = if clamped > 0.0 {
            tracing::warn!(
                "the kernel has an eigenvalue {min:e} < 0; set to 0 for the HMC path (a change \
                 of {:e} relative to the mean diagonal)",
                clamped / mean_diag
            );
            // D Q Λ Qᵀ D with the clamped Λ.
            let scaled = Mat::from_fn(n, n, |i, j| dq[(i, j)] * lambda[j]);
            let mut out = Mat::<f64>::zeros(n, n);
            matmul(
                out.as_mut(),
                Accum::Replace,
                scaled.as_ref(),
                dq.as_ref().transpose(),
                1.0,
                Par::Seq,
            );
            (0..n * n)
                .map(|e| {
                    let (i, j) = (e % n, e / n);
                    0.5 * (out[(i, j)] + out[(j, i)])
                })
                .collect()
        } else {
            (0..n * n)
                .map(|e| {
                    let (i, j) = (e % n, e / n);
                    y[i] * y[j] * k[(i, j)]
                })
                .collect()
        };
        Ok(Spectrum {
            lambda,
            q,
            dq,
            dkd,
            clamped,
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

/// 1/(λ + β⁻²): the precision of u along an eigendirection at level β (1/λ at β = ∞).
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
    y: &'a [f64],
    cfg: &'a SmcConfig,
    /// Latent z (n × P, column-major).
    z: Vec<f64>,
    /// Their level, log likelihoods and increments.
    lv: Level,
    /// Positions a = y∘u (n × P) and v = Qᵀu.
    a: Vec<f64>,
    v: Vec<f64>,
    /// uᵀC⁻¹u of each particle before and after the moves (mixing check).
    stat_start: Vec<f64>,
    stat: Vec<f64>,
    /// Scratch for resampling.
    z_old: Vec<f64>,
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

/// One replicate from `seed` towards `stops`, at the levels of `schedule` when it is not
/// empty.
pub(crate) fn run_replicate(
    spec: &Spectrum,
    y: &[f64],
    cfg: &SmcConfig,
    stops: Stops,
    seed: u64,
    schedule: &[f64],
) -> ReplicateRun {
    let start = Instant::now();
    let n = spec.n();
    let p = cfg.particles;
    let log_half = -(n as f64) * std::f64::consts::LN_2;
    let mut path = AugPath {
        spec,
        y,
        cfg,
        z: vec![0.0; n * p],
        lv: Level::start(log_half, p, schedule, stops),
        a: vec![0.0; n * p],
        v: vec![0.0; n * p],
        stat_start: vec![0.0; p],
        stat: vec![0.0; p],
        z_old: vec![0.0; n * p],
        picks: Vec::with_capacity(p),
    };
    path.draw_z_given_u(derive_seed(seed, 0));
    let mut run = ReplicateRun {
        seed,
        log_z: log_half,
        ..ReplicateRun::default()
    };
    let mut totals = MoveTotals::default();
    for t in 1..=cfg.max_temperatures {
        if path
            .lv
            .advance(path.y, &path.z, path.cfg, &mut run)
            .is_none()
        {
            break;
        }
        let level_seed = derive_seed(seed, t as u64);
        path.resample(derive_seed(level_seed, 0));
        path.draw_u_given_z(derive_seed(level_seed, 1));
        let (rounds, corr, level) = path.move_until_mixed(derive_seed(level_seed, 2));
        totals = totals.add(level);
        // Trajectories at their bounce cap: the particles sit in a wedge far thinner than
        // the level's noise can open (an orthant nearly empty in K's range); smaller noise
        // would only cost more bounces, so the path steps straight to its next stop.
        path.lv.force_next = level.capped * CAPPED_SHARE > level.trajectories;
        run.sweeps.push(rounds);
        run.end_correlations.push(corr);
        path.draw_z_given_u(derive_seed(level_seed, 3));
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

    /// The noise variance s² = β⁻² of the current level (0 at β = ∞; unused at β = 0).
    fn noise_var(&self) -> f64 {
        if self.lv.beta.is_infinite() {
            0.0
        } else {
            1.0 / (self.lv.beta * self.lv.beta)
        }
    }

    /// z | u at the current level, exactly, and its log likelihoods: in K's eigenbasis
    /// z̃ₖ = λₖ/(λₖ + s²)·vₖ + √(λₖs²/(λₖ + s²))·ξₖ, z = Q z̃ (at β = 0, z ~ N(0, K):
    /// z̃ₖ = √λₖ ξₖ). Chunk c draws from `derive_seed(seed, c)`.
    fn draw_z_given_u(&mut self, seed: u64) {
        let n = self.n();
        let spec = self.spec;
        let (first, s2) = (self.lv.beta == 0.0, self.noise_var());
        let (mean_coef, sd): (Vec<f64>, Vec<f64>) = spec
            .lambda
            .iter()
            .map(|&l| {
                if first {
                    (0.0, l.sqrt())
                } else {
                    (l / (l + s2), (l * s2 / (l + s2)).sqrt())
                }
            })
            .unzip();
        self.z
            .par_chunks_mut(n * CHUNK)
            .zip(self.v.par_chunks(n * CHUNK))
            .enumerate()
            .for_each_init(
                || vec![0.0; n * CHUNK],
                |zt, (c, (zc, vc))| {
                    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, c as u64));
                    let w = zc.len() / n;
                    for (col, vcol) in zt[..n * w].chunks_mut(n).zip(vc.chunks(n)) {
                        for (((x, &vk), m), sdk) in
                            col.iter_mut().zip(vcol).zip(&mean_coef).zip(&sd)
                        {
                            *x = m * vk + sdk * rng.sample::<f64, _>(StandardNormal);
                        }
                    }
                    matmul(
                        MatMut::from_column_major_slice_mut(zc, n, w),
                        Accum::Replace,
                        spec.q.as_ref(),
                        MatRef::from_column_major_slice(&zt[..n * w], n, w),
                        1.0,
                        Par::Seq,
                    );
                },
            );
        if !first {
            log_liks(self.y, &self.z, self.lv.beta, &mut self.lv.ll);
        }
    }

    /// u | z at the current level, exactly: aᵢ = yᵢuᵢ ~ N(yᵢzᵢ, s²) on (0, ∞); then v = Qᵀu.
    /// Chunk c draws from `derive_seed(seed, c)`.
    fn draw_u_given_z(&mut self, seed: u64) {
        let n = self.n();
        let (spec, y) = (self.spec, self.y);
        let s = self.noise_var().sqrt();
        self.a
            .par_chunks_mut(n * CHUNK)
            .zip(self.v.par_chunks_mut(n * CHUNK))
            .zip(self.z.par_chunks(n * CHUNK))
            .enumerate()
            .for_each(|(c, ((ac, vc), zc))| {
                let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, c as u64));
                for (col, zcol) in ac.chunks_mut(n).zip(zc.chunks(n)) {
                    for ((x, &zi), &yi) in col.iter_mut().zip(zcol).zip(y) {
                        let m = yi * zi;
                        *x = m + s * truncnorm::sample(-m / s, f64::INFINITY, &mut rng);
                    }
                }
                spec.eigen_coords(ac, vc);
            });
    }

    /// Systematic resampling of the z by the increments `log_w` (u is redrawn from z next).
    fn resample(&mut self, seed: u64) {
        let n = self.n();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        systematic_resample(&self.lv.log_w, &mut rng, &mut self.picks);
        std::mem::swap(&mut self.z, &mut self.z_old);
        for (k, &i) in self.picks.iter().enumerate() {
            self.z[k * n..(k + 1) * n].copy_from_slice(&self.z_old[i * n..(i + 1) * n]);
            self.lv.ll[k] = self.lv.ll_new[i];
        }
    }

    /// uᵀC⁻¹u = Σₖ vₖ²/(λₖ + s²) of every particle at the current level, into `out`.
    fn quad_forms(&self, out: &mut [f64]) {
        let n = self.n();
        let beta = self.lv.beta;
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
        let s2 = self.noise_var();
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

/// Per-chunk buffers: standard normals, velocity images (n × CHUNK each), a trajectory's.
struct MoveScratch {
    xi: Vec<f64>,
    b: Vec<f64>,
    flight: FlightScratch,
}

impl MoveScratch {
    fn new(n: usize) -> Self {
        MoveScratch {
            xi: vec![0.0; n * CHUNK],
            b: vec![0.0; n * CHUNK],
            flight: FlightScratch::new(n),
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
        totals.record(fly(walls, ap, bp, time, &mut s.flight));
    }
    totals
}
