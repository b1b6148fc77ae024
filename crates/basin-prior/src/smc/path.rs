//! One replicate of the annealed SMC: particles from N(0, K), then, level by level, the next
//! precision β = 1/s chosen so that the incremental weights keep a set effective sample
//! size, log Ẑ increased by the log mean weight, systematic resampling and elliptical slice
//! moves at the new level, until the final level (β = 1 for probit, β = ∞ for step).

use std::time::Instant;

use basin_nn::derive_seed;
use faer::MatRef;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::config::SmcConfig;
use super::gauss::Gaussian;
use super::slice::{
    MoveSetting, SliceStats, draw_particles, log_liks, move_particles, systematic_resample,
};
use crate::ep::{EpConfig, Sites, ep};
use crate::likelihood::Likelihood;

/// Bisection steps of the schedule search.
const BISECTIONS: usize = 30;
/// The schedule search stops when the ESS fraction is this close to its target, or closer
/// still for targets near 1 ([`TOLERANCE_SHARE`]).
const ESS_TOLERANCE: f64 = 0.01;
/// Near an ESS target t close to 1 the search stops within this share of 1 − t.
const TOLERANCE_SHARE: f64 = 0.2;
/// Corrections of the predicted step ([`predicted_level`]) before falling back to bisection.
const PREDICTION_STEPS: usize = 6;
/// A forced step ([`MAX_BETA`]) whose weights' ESS fraction is below this is recorded as
/// such ([`ReplicateRun::forced_step`], an issue): above it the step is as sound as a chosen
/// one, only larger.
pub(crate) const FORCED_MIN_ESS: f64 = 0.5;

/// The largest precision β = 1/s the path chooses by its ESS rule (the kernel is scaled to a
/// largest variance near 1, [`crate::scale::KernelScale`]): at s² = 10⁻¹², the smallest
/// jitter of the ladder and near the kernel's own round-off, smaller noise is not resolved.
/// From here the path steps straight to its next stop (the checkpoint or the end), whatever
/// the ESS (a forced step, recorded in [`ReplicateRun::forced_step`]); the estimate stays
/// unbiased, but its error bar is doubtful when that step's ESS is low. Without this floor a
/// function whose orthant is (nearly) empty in the kernel's range drives the path towards
/// s = 0 through ever thinner wedges, where each HMC trajectory bounces ~1/s times.
pub(crate) const MAX_BETA: f64 = 1e6;

/// One replicate's result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReplicateRun {
    /// The replicate's seed.
    pub seed: u64,
    /// log Ẑ at the final level (an unbiased Ẑ of P(f)).
    pub log_z: f64,
    /// log Ẑ at s = 1 (the probit likelihood's P(f)), when the path passed through it.
    pub log_z_probit: Option<f64>,
    /// The noise levels s = 1/β visited after s = ∞, in order (the last is 0 for step): on
    /// the scaled kernel while the replicate runs, in K's units in the estimator's result
    /// (relative to each variable's standard deviation when the path ran on the correlation
    /// matrix).
    pub noise_levels: Vec<f64>,
    /// The ESS fraction of each step's incremental weights.
    pub ess_fractions: Vec<f64>,
    /// Sweeps at each level (all particles once each: one slice update, or one HMC
    /// trajectory): at least [`SmcConfig::moves`], more until the particles decorrelate.
    pub sweeps: Vec<usize>,
    /// At each level, the correlation over particles of the mixing statistic (slice: the log
    /// likelihoods; HMC: uᵀC_s⁻¹u) before and after the sweeps (≤
    /// [`SmcConfig::decorrelation`] unless the sweeps reached [`SmcConfig::max_moves`]).
    pub end_correlations: Vec<f64>,
    /// Slice proposals per update, averaged over all moves (0 for HMC).
    pub mean_tries: f64,
    /// Slice updates that hit the shrink cap, or HMC trajectories that hit the bounce cap
    /// (either way the particle stayed).
    pub cap_hits: u64,
    /// HMC: wall bounces per trajectory, averaged (0 for slice).
    #[serde(default)]
    pub mean_bounces: f64,
    /// HMC: positions found beyond round-off outside the orthant after a move (set to the
    /// wall; 0 for slice).
    #[serde(default)]
    pub violations: u64,
    /// Whether the final level was reached within `max_temperatures`.
    pub reached_end: bool,
    /// A step taken straight to the next stop (from β ≥ [`MAX_BETA`], or after HMC moves at
    /// their bounce cap) with an ESS fraction below [`FORCED_MIN_ESS`]: the noise level s it
    /// left from and that (smallest) ESS fraction.
    #[serde(default)]
    pub forced_step: Option<(f64, f64)>,
    /// EP fits of the moves' Gaussian ([`SmcConfig::precondition`]).
    pub ep_fits: usize,
    /// EP fits that failed or gave unusable sites (the previous Gaussian was kept).
    pub ep_failures: usize,
    /// Seconds spent on the EP fits and their factorisations.
    pub ep_s: f64,
    /// Wall seconds.
    pub wall_s: f64,
}

/// A replicate's level β = 1/s, its particles' log likelihoods there, and the increments to
/// a candidate level: what both movers' paths share.
pub(crate) struct Level {
    /// β.
    pub beta: f64,
    /// Each particle's log likelihood Σᵢ log Φ(βyᵢzᵢ).
    pub ll: Vec<f64>,
    /// Scratch: the log likelihoods at a candidate level.
    pub ll_new: Vec<f64>,
    /// The increments to the candidate level.
    pub log_w: Vec<f64>,
    /// ln(β/β_prev) of the latest step between two finite, positive levels: the next step's
    /// first guess.
    pub last_step: Option<f64>,
    /// The levels to follow, in order (a pilot's); empty: chosen from the particles' ESS.
    pub schedule: Vec<f64>,
    /// Levels taken so far.
    pub taken: usize,
    /// The path's stops.
    pub stops: Stops,
    /// Set by a mover whose moves no longer resolve the level (HMC trajectories at their
    /// bounce cap): the next level is then the next stop, as from [`MAX_BETA`].
    pub force_next: bool,
}

/// Where a replicate's path must stop: the checkpoint (if any, taken on the way) and the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stops {
    /// β of the probit checkpoint on the step likelihood's path (`None`: none).
    pub checkpoint: Option<f64>,
    /// β of the end: 1/√v for noise variance v > 0 (probit), ∞ for the step likelihood.
    pub end: f64,
}

impl Stops {
    /// The next stop after `beta`: the checkpoint while it lies ahead, else the end.
    pub fn next_after(self, beta: f64) -> f64 {
        match self.checkpoint {
            Some(c) if beta < c && c < self.end => c,
            _ => self.end,
        }
    }
}

impl Level {
    /// β = 0, every one of the `p` particles with log likelihood `ll0`, towards `stops`; the
    /// levels follow `schedule` (β values, in order) when it is not empty.
    pub fn start(ll0: f64, p: usize, schedule: &[f64], stops: Stops) -> Self {
        Level {
            beta: 0.0,
            ll: vec![ll0; p],
            ll_new: vec![0.0; p],
            log_w: vec![0.0; p],
            last_step: None,
            schedule: schedule.to_vec(),
            taken: 0,
            stops,
            force_next: false,
        }
    }

    /// The ESS fraction (Σw)²/(P·Σw²) of the increments of particles `z` (n × P,
    /// column-major) to level `beta`, leaving the increments in `log_w` and the new log
    /// likelihoods in `ll_new`.
    pub fn ess_fraction(&mut self, y: &[f64], z: &[f64], beta: f64) -> f64 {
        log_liks(y, z, beta, &mut self.ll_new);
        for ((w, new), old) in self.log_w.iter_mut().zip(&self.ll_new).zip(&self.ll) {
            *w = if *new == f64::NEG_INFINITY {
                f64::NEG_INFINITY
            } else {
                new - old
            };
        }
        ess_fraction(&self.log_w)
    }

    /// The next level: the schedule's, or [`next_level`]'s towards the next stop (never past
    /// it, so the checkpoint is always visited); from β ≥ [`MAX_BETA`], or when the mover
    /// set [`Level::force_next`], the next stop itself. A schedule that ends early ends at
    /// the end.
    pub fn next_beta(&mut self, y: &[f64], z: &[f64], cfg: &SmcConfig) -> f64 {
        if !self.schedule.is_empty() {
            return self
                .schedule
                .get(self.taken)
                .copied()
                .unwrap_or(self.stops.end);
        }
        let stop = self.stops.next_after(self.beta);
        if self.forced() {
            return stop;
        }
        let (beta, target, hint) = (self.beta, cfg.ess_fraction, self.last_step);
        next_level(beta, stop, stop, target, hint, |b| {
            self.ess_fraction(y, z, b)
        })
    }

    /// Whether the next step is forced: from β ≥ [`MAX_BETA`] or at the mover's request.
    fn forced(&self) -> bool {
        self.beta >= MAX_BETA || self.force_next
    }

    /// Moves to the next level and records it in `run` (log Ẑ, s, the ESS fraction, the
    /// probit checkpoint, a forced step); returns the new β, or `None` when it is the end.
    pub fn advance(
        &mut self,
        y: &[f64],
        z: &[f64],
        cfg: &SmcConfig,
        run: &mut ReplicateRun,
    ) -> Option<f64> {
        let forced = self.forced();
        let next = self.next_beta(y, z, cfg);
        let from = self.beta;
        self.force_next = false;
        self.taken += 1;
        self.last_step = (self.beta > 0.0 && next.is_finite()).then(|| (next / self.beta).ln());
        let (log_mean, frac) = self.reweight(y, z, next);
        run.log_z += log_mean;
        run.noise_levels.push(1.0 / next);
        run.ess_fractions.push(frac);
        if forced && frac < FORCED_MIN_ESS {
            let worst = run.forced_step.map_or(frac, |(_, f)| f.min(frac));
            run.forced_step = Some((1.0 / from, worst));
        }
        if Some(next) == self.stops.checkpoint {
            run.log_z_probit = Some(run.log_z);
        }
        if next == self.stops.end {
            run.reached_end = true;
            return None;
        }
        Some(next)
    }

    /// Moves to level `beta`: returns log mean(w) and the ESS fraction (the particles are not
    /// yet resampled; `ll_new` holds their log likelihoods there).
    pub fn reweight(&mut self, y: &[f64], z: &[f64], beta: f64) -> (f64, f64) {
        let frac = self.ess_fraction(y, z, beta);
        let m = self.log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        self.beta = beta;
        if m == f64::NEG_INFINITY {
            // Every weight is 0 (no particle in the orthant at β = ∞): Ẑ = 0.
            return (f64::NEG_INFINITY, 0.0);
        }
        let mean = self.log_w.iter().map(|&l| (l - m).exp()).sum::<f64>() / self.log_w.len() as f64;
        self.beta = beta;
        (m + mean.ln(), frac)
    }
}

/// The state of a replicate between levels.
struct Path<'a> {
    y: &'a [f64],
    cfg: &'a SmcConfig,
    /// n × P particles, column-major.
    z: Vec<f64>,
    /// Their level, log likelihoods and increments.
    lv: Level,
    /// The log likelihoods right after resampling (for the mixing check).
    ll_start: Vec<f64>,
    /// Scratch for resampling.
    z_old: Vec<f64>,
    picks: Vec<usize>,
}

/// The moves' Gaussian and the EP sites (on z) it came from.
struct Precond {
    g: Gaussian,
    /// EP sites on z of the last fit (zero before any).
    sites: Sites,
    /// The precision of the last fit (0: none yet).
    beta_fit: f64,
}

impl Precond {
    /// Refits G at precision `beta` when it has grown by more than `ratio` since the last
    /// fit, up to [`MAX_BETA`]: probit EP on β²K (the target in w = βz), warm-started from the last sites,
    /// mapped back to z (τ̃_z = β²τ̃_w, ν̃_z = βν̃_w). Returns whether it fitted and whether
    /// the fit failed.
    fn refit(
        &mut self,
        k: MatRef<'_, f64>,
        l: MatRef<'_, f64>,
        y: &[f64],
        beta: f64,
        ratio: f64,
    ) -> (bool, bool) {
        if self.beta_fit > 0.0 && (beta <= ratio * self.beta_fit || beta > MAX_BETA) {
            // Past MAX_BETA the noise is below the kernel's resolution: the last fit's ellipses
            // serve (the residual keeps the moves exact).
            return (false, false);
        }
        let n = y.len();
        let scaled = faer::Mat::from_fn(n, n, |i, j| beta * beta * k[(i, j)]);
        let warm = Sites {
            tau: self.sites.tau.iter().map(|t| t / (beta * beta)).collect(),
            nu: self.sites.nu.iter().map(|v| v / beta).collect(),
        };
        let cfg = EpConfig {
            check_psd: false,
            ..EpConfig::default()
        };
        let fit = ep(scaled.as_ref(), y, Likelihood::Probit, &cfg, Some(&warm)).ok();
        let Some(fit) = fit else {
            return (true, true);
        };
        let tau: Vec<f64> = fit.sites.tau.iter().map(|t| t * beta * beta).collect();
        let nu: Vec<f64> = fit.sites.nu.iter().map(|v| v * beta).collect();
        match Gaussian::from_sites(l, &tau, &nu) {
            Some(g) => {
                self.g = g;
                self.sites = Sites { tau, nu };
                self.beta_fit = beta;
                (true, false)
            }
            None => (true, true),
        }
    }
}

/// One replicate from `seed` towards `stops`, at the levels of `schedule` when it is not
/// empty.
pub(crate) fn run_replicate(
    k: MatRef<'_, f64>,
    l: MatRef<'_, f64>,
    y: &[f64],
    cfg: &SmcConfig,
    stops: Stops,
    seed: u64,
    schedule: &[f64],
) -> ReplicateRun {
    let start = Instant::now();
    let n = y.len();
    let p = cfg.particles;
    let mut path = Path {
        y,
        cfg,
        z: vec![0.0; n * p],
        lv: Level::start(-(n as f64) * std::f64::consts::LN_2, p, schedule, stops),
        ll_start: vec![0.0; p],
        z_old: vec![0.0; n * p],
        picks: Vec::with_capacity(p),
    };
    draw_particles(l, &mut path.z, derive_seed(seed, 0));
    let mut run = ReplicateRun {
        seed,
        log_z: -(n as f64) * std::f64::consts::LN_2,
        log_z_probit: None,
        noise_levels: Vec::new(),
        ess_fractions: Vec::new(),
        sweeps: Vec::new(),
        end_correlations: Vec::new(),
        ..ReplicateRun::default()
    };
    let mut pre = Precond {
        g: Gaussian::prior(n),
        sites: Sites::zeros(n),
        beta_fit: 0.0,
    };
    let mut stats = SliceStats::default();
    for t in 1..=cfg.max_temperatures {
        let Some(next) = path.lv.advance(path.y, &path.z, path.cfg, &mut run) else {
            break;
        };
        let level_seed = derive_seed(seed, t as u64);
        path.resample(derive_seed(level_seed, 0));
        if cfg.precondition {
            let t0 = Instant::now();
            let (fitted, failed) = pre.refit(k, l, y, next, cfg.refit_ratio);
            run.ep_fits += usize::from(fitted);
            run.ep_failures += usize::from(failed);
            run.ep_s += t0.elapsed().as_secs_f64();
        }
        let set = MoveSetting {
            l,
            y,
            beta: next,
            max_tries: cfg.max_tries,
            g: &pre.g,
        };
        let move_seed = derive_seed(level_seed, 1);
        path.ll_start.copy_from_slice(&path.lv.ll);
        let mut sweeps = 0;
        while sweeps < cfg.max_moves {
            let s = move_particles(
                &set,
                &mut path.z,
                &mut path.lv.ll,
                1,
                derive_seed(move_seed, sweeps as u64),
            );
            sweeps += 1;
            stats = SliceStats {
                tries: stats.tries + s.tries,
                updates: stats.updates + s.updates,
                cap_hits: stats.cap_hits + s.cap_hits,
            };
            if sweeps >= cfg.moves && correlation(&path.ll_start, &path.lv.ll) < cfg.decorrelation {
                break;
            }
        }
        run.sweeps.push(sweeps);
        run.end_correlations
            .push(correlation(&path.ll_start, &path.lv.ll));
    }
    run.mean_tries = stats.tries as f64 / stats.updates.max(1) as f64;
    run.cap_hits = stats.cap_hits;
    run.wall_s = start.elapsed().as_secs_f64();
    run
}

impl Path<'_> {
    /// Systematic resampling by the current increments `log_w`; afterwards `ll` holds the
    /// resampled particles' log likelihoods at the current level.
    fn resample(&mut self, seed: u64) {
        let n = self.y.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        systematic_resample(&self.lv.log_w, &mut rng, &mut self.picks);
        std::mem::swap(&mut self.z, &mut self.z_old);
        for (k, &i) in self.picks.iter().enumerate() {
            self.z[k * n..(k + 1) * n].copy_from_slice(&self.z_old[i * n..(i + 1) * n]);
            self.lv.ll[k] = self.lv.ll_new[i];
        }
    }
}

/// The next precision after `beta` on a path that ends at `end_beta` and must stop at
/// `ceiling` (≤ `end_beta`; β = 1 for the probit checkpoint): `end_beta` if `ess(end_beta)`,
/// the ESS fraction of the increments to it, is at least `target`; otherwise the β where the
/// fraction meets the target to within [`ESS_TOLERANCE`] (tighter near 1:
/// [`TOLERANCE_SHARE`]·(1 − target)), first by [`predicted_level`] from `hint` (the previous
/// step's ln(β/β_prev)), which usually needs one or two evaluations; then `ceiling` if its
/// fraction meets the target; then by bisection (geometric once β > 0; towards a ceiling
/// above max(2β, 1), ∞ included, an upper bracket by doubling up to [`MAX_BETA`]).
pub(crate) fn next_level(
    beta: f64,
    end_beta: f64,
    ceiling: f64,
    target: f64,
    hint: Option<f64>,
    mut ess: impl FnMut(f64) -> f64,
) -> f64 {
    if ess(end_beta) >= target {
        return end_beta;
    }
    let tol = ESS_TOLERANCE.min(TOLERANCE_SHARE * (1.0 - target));
    if let Some(step) = hint.filter(|_| beta > 0.0)
        && let Some(next) = predicted_level(beta, ceiling, target, tol, step, &mut ess)
    {
        return next;
    }
    if ceiling != end_beta && ess(ceiling) >= target {
        return ceiling;
    }
    let mut lo = beta;
    let first = (2.0 * beta).max(1.0);
    let mut hi = if ceiling <= first {
        ceiling
    } else {
        // A far ceiling (∞, or a stop far above the path, as for a kernel scaled far above
        // 1): bracket by doubling, so that the bisection starts near the path.
        let mut h = first;
        while h < ceiling.min(MAX_BETA) && ess(h) >= target {
            lo = h;
            h *= 2.0;
        }
        h.min(ceiling)
    };
    for _ in 0..BISECTIONS {
        let mid = if lo > 0.0 { (lo * hi).sqrt() } else { 0.5 * hi };
        let f = ess(mid);
        if (f - target).abs() < tol {
            return mid;
        }
        if f > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if lo > beta { lo } else { hi }
}

/// The level β·e^d whose ESS fraction is within `tol` of `target`, from the guess d = `step`:
/// for small steps −ln ESS grows like d², so each evaluation corrects d by
/// √(ln target / ln ESS) (at most 4× either way). `None` when a guess reaches `ceiling` or
/// [`PREDICTION_STEPS`] corrections do not get there (the caller bisects).
fn predicted_level(
    beta: f64,
    ceiling: f64,
    target: f64,
    tol: f64,
    step: f64,
    ess: &mut impl FnMut(f64) -> f64,
) -> Option<f64> {
    let want = -target.ln();
    let mut d = step;
    for _ in 0..PREDICTION_STEPS {
        let next = beta * d.exp();
        if !(next < ceiling && d > 0.0) {
            return None;
        }
        let f = ess(next);
        if (f - target).abs() < tol {
            return Some(next);
        }
        let factor = if f > 0.0 {
            (want / -f.ln()).sqrt()
        } else {
            0.25
        };
        d *= factor.clamp(0.25, 4.0);
    }
    None
}

/// (Σw)²/(P·Σw²) of log weights (0 when all are −∞).
pub(crate) fn ess_fraction(log_w: &[f64]) -> f64 {
    let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return 0.0;
    }
    let (s1, s2) = log_w.iter().fold((0.0, 0.0), |(a, b), &l| {
        let w = (l - m).exp();
        (a + w, b + w * w)
    });
    s1 * s1 / (s2 * log_w.len() as f64)
}

/// The Pearson correlation of two equally long vectors (0 when either is constant).
pub(crate) fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa > 0.0 && sbb > 0.0 {
        sab / (saa * sbb).sqrt()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ESS fraction that falls like exp(−c·d²) with the step d = ln(β′/β), as for small
    /// steps, and a counter of its evaluations.
    fn gaussian_ess(beta: f64, c: f64, calls: &mut usize) -> impl FnMut(f64) -> f64 + '_ {
        move |b: f64| {
            *calls += 1;
            if b.is_infinite() {
                return 0.0;
            }
            let d = (b / beta).ln();
            (-c * d * d).exp()
        }
    }

    #[test]
    fn the_predicted_level_meets_the_target_in_few_evaluations() {
        let (beta, c, target) = (2.0, 50.0, 0.97);
        let tol = TOLERANCE_SHARE * (1.0 - target);
        let exact = beta * ((-target.ln()) / c).sqrt().exp();
        for hint in [None, Some(0.001), Some(0.02), Some(0.5)] {
            let mut calls = 0;
            let next = next_level(
                beta,
                f64::INFINITY,
                f64::INFINITY,
                target,
                hint,
                gaussian_ess(beta, c, &mut calls),
            );
            let d = (next / beta).ln();
            let f = (-c * d * d).exp();
            assert!((f - target).abs() < tol, "hint {hint:?}: ESS {f}");
            assert!(
                (next / exact - 1.0).abs() < 0.01,
                "hint {hint:?}: {next} vs {exact}"
            );
            if hint == Some(0.02) {
                // The exact step is 0.0247: one guess and one correction at most, plus the
                // end's check.
                assert!(calls <= 3, "{calls} evaluations");
            }
        }
    }

    #[test]
    fn a_prediction_past_the_ceiling_leaves_the_ceiling_to_the_bracketed_search() {
        let (beta, c, target) = (0.9, 50.0, 0.97);
        let mut calls = 0;
        // The target's step is 0.0247 past β = 0.9, beyond the ceiling at 0.91 (d = 0.011).
        let next = next_level(
            beta,
            f64::INFINITY,
            0.91,
            target,
            Some(0.05),
            gaussian_ess(beta, c, &mut calls),
        );
        assert_eq!(next, 0.91);
    }
}
