//! Exact Hamiltonian Monte Carlo for a Gaussian truncated to an orthant (Pakman & Paninski
//! 2014, "Exact Hamiltonian Monte Carlo for truncated multivariate Gaussians", JCGS), worked
//! entirely in constraint space.
//!
//! The target is u ~ N(0, C) on O = {yᵢuᵢ > 0}. Whitened, u = Rw with RRᵀ = C and w ~ N(0, I)
//! on {gᵢᵀw ≥ 0}, gᵢ = yᵢRᵀeᵢ; the Hamiltonian ½|w|² + ½|ẇ|² moves w along
//! w(t) = w cos t + ẇ sin t. In constraint space a = y∘u (all ≥ 0) and b = y∘(Rẇ) (the
//! velocity's image), so a(t) = a cos t + b sin t: constraint i (aᵢ > 0) reaches 0 at
//! t = π/2 + atan(bᵢ/aᵢ), and the first wall hit is the smallest bᵢ/aᵢ — one division per
//! constraint, no trigonometry. At the hit on wall j the velocity reflects,
//! ẇ ← ẇ − 2(gⱼᵀẇ/|gⱼ|²)gⱼ, which in constraint space is b ← b − 2(bⱼ/Cⱼⱼ)·yⱼ·(y∘C[:, j]),
//! O(N) with one column of D C D (D = diag y). After the trajectory's time T the position
//! y∘a is the new u. Moves along the ellipse and reflections both keep
//! |w|² + |ẇ|² = aᵀC⁻¹a + bᵀC⁻¹b (tested), so every trajectory is accepted.
//!
//! Round-off: the hit wall's aⱼ is set to exactly 0; other a that come out below 0 are set to
//! 0 too, and counted as violations when below −[`VIOLATION_TOL`]·√Cᵢᵢ (a status). A
//! trajectory that needs more than its cap of bounces is abandoned and leaves the particle at
//! its start (still an exact kernel: the cap only depends on the start and the velocity, and
//! staying put is the rejection), counted as a cap hit (a status).
//!
//! The hot loop ([`fly`]) is allocation-free: one fused pass per bounce moves a and b along
//! the ellipse, reflects b and finds the next wall.

use std::f64::consts::FRAC_PI_2;

/// a below −VIOLATION_TOL·√Cᵢᵢ after a move is a real constraint violation, not round-off.
pub(crate) const VIOLATION_TOL: f64 = 1e-8;

/// The walls of one level: D K D (column-major, n × n) and the noise variance s², so that
/// D C D = D K D + s²I.
pub(crate) struct Walls<'a> {
    /// D K D, column-major n × n.
    dkd: &'a [f64],
    /// n.
    n: usize,
    /// s² (0 at the step likelihood's end).
    s2: f64,
    /// The most bounces of one trajectory.
    max_bounces: usize,
    /// −[`VIOLATION_TOL`]·√Cᵢᵢ: positions below this after a move are violations.
    floor: Vec<f64>,
}

impl<'a> Walls<'a> {
    /// The walls of C = K + s²I from D K D (column-major n × n, n² = `dkd.len()`), with a cap
    /// of `max_bounces` per trajectory.
    pub fn new(dkd: &'a [f64], s2: f64, max_bounces: usize) -> Self {
        let n = (dkd.len() as f64).sqrt().round() as usize;
        debug_assert_eq!(n * n, dkd.len());
        let floor = (0..n)
            .map(|i| -VIOLATION_TOL * (dkd[i * n + i] + s2).sqrt())
            .collect();
        Walls {
            dkd,
            n,
            s2,
            max_bounces,
            floor,
        }
    }

    /// Column j of D K D.
    fn column(&self, j: usize) -> &[f64] {
        &self.dkd[j * self.n..(j + 1) * self.n]
    }

    /// Cⱼⱼ = Kⱼⱼ + s².
    fn c_diag(&self, j: usize) -> f64 {
        self.dkd[j * self.n + j] + self.s2
    }
}

/// What one trajectory did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flight {
    /// Wall hits (reflections).
    pub bounces: u64,
    /// Whether it reached the bounce cap (the particle stayed at its start).
    pub capped: bool,
    /// Positions found below −[`VIOLATION_TOL`]·√Cᵢᵢ after a move (set to 0).
    pub violations: u64,
}

/// The first wall that the ellipse a cos t + b sin t reaches, with its time t ∈ [0, π):
/// the smallest bᵢ/aᵢ over aᵢ > 0, t = π/2 + atan(bᵢ/aᵢ); a wall at aᵢ = 0 with bᵢ < 0 is
/// hit at once (t = 0); `None` when no wall is reached before t = π. `skip` is excluded (the
/// wall just reflected from).
pub(crate) fn first_hit(a: &[f64], b: &[f64], skip: Option<usize>) -> Option<(usize, f64)> {
    let mut best = f64::INFINITY;
    let mut arg = usize::MAX;
    for (i, (&ai, &bi)) in a.iter().zip(b).enumerate() {
        // aᵢ = 0: bᵢ/aᵢ is ±∞ (or NaN for bᵢ = 0, never below `best`).
        let r = bi / ai;
        if r < best {
            best = r;
            arg = i;
        }
    }
    if let Some(j) = skip
        && arg == j
    {
        // Rare (the reflected wall moves away, so its ratio is +∞): search again without it.
        best = f64::INFINITY;
        arg = usize::MAX;
        for (i, (&ai, &bi)) in a.iter().zip(b).enumerate() {
            let r = bi / ai;
            if i != j && r < best {
                best = r;
                arg = i;
            }
        }
    }
    (arg != usize::MAX && best < f64::INFINITY).then(|| (arg, FRAC_PI_2 + best.atan()))
}

/// Moves (a, b) along the ellipse for time t and clamps positions below 0 to 0; returns the
/// number of real violations (below −[`VIOLATION_TOL`]·√Cᵢᵢ).
pub(crate) fn advance(walls: &Walls<'_>, a: &mut [f64], b: &mut [f64], t: f64) -> u64 {
    let (sn, cs) = t.sin_cos();
    let mut violations = 0;
    for ((ai, bi), &floor) in a.iter_mut().zip(b.iter_mut()).zip(&walls.floor) {
        let na = *ai * cs + *bi * sn;
        *bi = -*ai * sn + *bi * cs;
        violations += u64::from(na < floor);
        *ai = clamp_position(na);
    }
    violations
}

/// `na` if > 0, else +0 (never −0, whose ratios b/a would flip sign).
#[inline]
fn clamp_position(na: f64) -> f64 {
    if na <= 0.0 { 0.0 } else { na }
}

/// Scratch of one trajectory: the start position (for a capped trajectory) and the ratios
/// bᵢ/aᵢ of a bounce.
pub(crate) struct FlightScratch {
    start: Vec<f64>,
    ratio: Vec<f64>,
}

impl FlightScratch {
    /// Buffers for n constraints.
    pub fn new(n: usize) -> Self {
        FlightScratch {
            start: vec![0.0; n],
            ratio: vec![0.0; n],
        }
    }
}

/// Reflects the velocity image `b` off wall j: b ← b − 2(bⱼ/Cⱼⱼ)·(D C D)[:, j] (the
/// reference for the fused [`bounce`]).
#[cfg(test)]
pub(crate) fn reflect(walls: &Walls<'_>, b: &mut [f64], j: usize) {
    let coef = 2.0 * b[j] / walls.c_diag(j);
    for (bi, &kij) in b.iter_mut().zip(walls.column(j)) {
        *bi -= coef * kij;
    }
    b[j] -= coef * walls.s2;
}

/// One exact-HMC trajectory of time `time` from position `a` (all ≥ 0) with velocity image
/// `b`, both updated in place (a ends at the new position; b at the final velocity). `start`
/// keeps the starting position for a capped trajectory.
pub(crate) fn fly(
    walls: &Walls<'_>,
    a: &mut [f64],
    b: &mut [f64],
    time: f64,
    scratch: &mut FlightScratch,
) -> Flight {
    scratch.start.copy_from_slice(a);
    let mut flight = Flight::default();
    let mut left = time;
    let mut hit = first_hit(a, b, None);
    while let Some((j, t)) = hit.filter(|&(_, t)| t < left) {
        if flight.bounces as usize == walls.max_bounces {
            a.copy_from_slice(&scratch.start);
            flight.capped = true;
            return flight;
        }
        hit = bounce(
            walls,
            a,
            b,
            j,
            t,
            &mut scratch.ratio,
            &mut flight.violations,
        );
        flight.bounces += 1;
        left -= t;
    }
    flight.violations += advance(walls, a, b, left);
    flight
}

/// Moves (a, b) for time t to wall j, reflects b there and finds the next wall (the fused
/// form of [`advance`], [`reflect`] and [`first_hit`]): one pass over the constraints that
/// the compiler vectorises (the ratios bᵢ/aᵢ go to `ratio`), then their minimum and its
/// index.
fn bounce(
    walls: &Walls<'_>,
    a: &mut [f64],
    b: &mut [f64],
    j: usize,
    t: f64,
    ratio: &mut [f64],
    violations: &mut u64,
) -> Option<(usize, f64)> {
    let (sn, cs) = t.sin_cos();
    let bj = -a[j] * sn + b[j] * cs;
    let coef = 2.0 * bj / walls.c_diag(j);
    let step = Step { cs, sn, coef };
    *violations += simd::bounce_pass(a, b, walls.column(j), &walls.floor, ratio, step);
    // Wall j sits on its wall moving away: excluded from the next hit.
    a[j] = 0.0;
    b[j] -= coef * walls.s2;
    ratio[j] = f64::INFINITY;
    let best = simd::min(ratio);
    if best == f64::INFINITY {
        return None;
    }
    let arg = ratio.iter().position(|&r| r == best)?;
    Some((arg, FRAC_PI_2 + best.atan()))
}

/// The rotation of one bounce (cos t, sin t) and its reflection coefficient 2bⱼ/Cⱼⱼ.
#[derive(Clone, Copy)]
struct Step {
    cs: f64,
    sn: f64,
    coef: f64,
}

/// The loops of a bounce, compiled for AVX-512 when the CPU has it (chosen at run time; the
/// same arithmetic either way, so the same results).
mod simd {
    use super::{Step, clamp_position};

    /// aᵢ ← max(aᵢcos t + bᵢsin t, 0), bᵢ ← −aᵢsin t + bᵢcos t − coef·kᵢ, ratioᵢ = bᵢ/aᵢ;
    /// returns how many new aᵢ fell below `floor`ᵢ.
    pub(super) fn bounce_pass(
        a: &mut [f64],
        b: &mut [f64],
        col: &[f64],
        floor: &[f64],
        ratio: &mut [f64],
        step: Step,
    ) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if basin_nn::simd::has_avx512() {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { bounce_pass_avx512(a, b, col, floor, ratio, step) };
        }
        bounce_pass_body(a, b, col, floor, ratio, step)
    }

    /// The smallest entry (NaN entries ignored; +∞ when none).
    pub(super) fn min(x: &[f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if basin_nn::simd::has_avx512() {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { min_avx512(x) };
        }
        min_body(x)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn bounce_pass_avx512(
        a: &mut [f64],
        b: &mut [f64],
        col: &[f64],
        floor: &[f64],
        ratio: &mut [f64],
        step: Step,
    ) -> u64 {
        bounce_pass_body(a, b, col, floor, ratio, step)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn min_avx512(x: &[f64]) -> f64 {
        min_body(x)
    }

    #[inline(always)]
    fn bounce_pass_body(
        a: &mut [f64],
        b: &mut [f64],
        col: &[f64],
        floor: &[f64],
        ratio: &mut [f64],
        step: Step,
    ) -> u64 {
        let Step { cs, sn, coef } = step;
        let n = a.len();
        let (b, col, floor, ratio) = (&mut b[..n], &col[..n], &floor[..n], &mut ratio[..n]);
        let mut count = 0;
        for i in 0..n {
            let na = a[i] * cs + b[i] * sn;
            let nb = -a[i] * sn + b[i] * cs - coef * col[i];
            count += u64::from(na < floor[i]);
            let na = clamp_position(na);
            a[i] = na;
            b[i] = nb;
            ratio[i] = nb / na;
        }
        count
    }

    #[inline(always)]
    fn min_body(x: &[f64]) -> f64 {
        // Eight running minima, so that the loop vectorises (min is exact in any order).
        let mut m = [f64::INFINITY; 8];
        let chunks = x.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            for k in 0..8 {
                m[k] = if c[k] < m[k] { c[k] } else { m[k] };
            }
        }
        let mut best = m.iter().copied().fold(f64::INFINITY, f64::min);
        for &v in tail {
            if v < best {
                best = v;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::prelude::Solve;
    use faer::{Mat, Side};
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// A random SPD n × n matrix BBᵀ/n + 0.2 I.
    fn random_spd(n: usize, rng: &mut ChaCha8Rng) -> Mat<f64> {
        let b = Mat::<f64>::from_fn(n, n, |_, _| rng.sample(StandardNormal));
        Mat::from_fn(n, n, |i, j| {
            (0..n).map(|k| b[(i, k)] * b[(j, k)]).sum::<f64>() / n as f64
                + if i == j { 0.2 } else { 0.0 }
        })
    }

    /// D K D column-major for labels y.
    fn dkd(k: &Mat<f64>, y: &[f64]) -> Vec<f64> {
        let n = y.len();
        (0..n * n)
            .map(|e| {
                let (i, j) = (e % n, e / n);
                y[i] * y[j] * k[(i, j)]
            })
            .collect()
    }

    /// xᵀ(D C D)⁻¹x for C = K + s²I.
    fn c_norm(k: &Mat<f64>, y: &[f64], s2: f64, x: &[f64]) -> f64 {
        let n = y.len();
        let c = Mat::from_fn(n, n, |i, j| {
            y[i] * y[j] * k[(i, j)] + if i == j { s2 } else { 0.0 }
        });
        let rhs = Mat::from_fn(n, 1, |i, _| x[i]);
        let sol = c.llt(Side::Lower).unwrap().solve(&rhs);
        (0..n).map(|i| x[i] * sol[(i, 0)]).sum()
    }

    /// A velocity image b = D·L·ξ (L the Cholesky factor of D C D's C).
    fn velocity(k: &Mat<f64>, y: &[f64], s2: f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let n = y.len();
        let c = Mat::from_fn(n, n, |i, j| k[(i, j)] + if i == j { s2 } else { 0.0 });
        let l = c.llt(Side::Lower).unwrap();
        let l = l.L();
        let xi: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
        (0..n)
            .map(|i| y[i] * (0..=i).map(|m| l[(i, m)] * xi[m]).sum::<f64>())
            .collect()
    }

    /// The first hit against brute-force time stepping (step 1e-6 on [0, π)), on 200 random
    /// cases of 5–40 constraints: the same wall, and a time within one step.
    #[test]
    fn first_hit_matches_time_stepping() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for case in 0..200 {
            let n = 5 + case % 36;
            let a: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 2.0).collect();
            let b: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            let dt = 1e-6;
            let mut brute = None;
            let mut t = 0.0;
            'steps: while t < std::f64::consts::PI {
                t += dt;
                for i in 0..n {
                    if a[i] * t.cos() + b[i] * t.sin() < 0.0 {
                        brute = Some((i, t));
                        break 'steps;
                    }
                }
            }
            let fast = first_hit(&a, &b, None);
            match (fast, brute) {
                (Some((j, tf)), Some((i, tb))) => {
                    assert_eq!(j, i, "case {case}");
                    assert!(tf <= tb && tb - tf <= dt, "case {case}: {tf} vs {tb}");
                }
                (None, None) => {}
                other => panic!("case {case}: {other:?}"),
            }
        }
        // A wall at 0 moving inwards is hit at once; moving outwards it is not reached before
        // π, so another wall is (every aᵢ > 0 reaches 0 before π).
        assert_eq!(first_hit(&[1.0, 0.0], &[0.5, -1.0], None), Some((1, 0.0)));
        assert_eq!(
            first_hit(&[1.0, 0.0], &[0.5, 1.0], None),
            Some((0, FRAC_PI_2 + 0.5f64.atan()))
        );
        assert_eq!(first_hit(&[0.0, 0.0], &[0.5, 1.0], None), None);
        assert_eq!(first_hit(&[1.0, 0.0], &[-1.0, -1.0], Some(1)).unwrap().0, 0);
    }

    /// A reflection, and a whole trajectory with many bounces, keep the whitened energy
    /// aᵀC⁻¹a + bᵀC⁻¹b (in constraint space, C ↦ D C D) to 1e-10 relative; the reflected
    /// wall's velocity changes sign; the positions stay ≥ 0.
    #[test]
    fn reflections_and_trajectories_keep_the_energy() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for case in 0..20 {
            let n = 3 + case;
            let k = random_spd(n, &mut rng);
            let y: Vec<f64> = (0..n)
                .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
                .collect();
            let s2 = [0.0, 0.3, 2.0][case % 3];
            let m = dkd(&k, &y);
            let walls = Walls::new(&m, s2, 100_000);
            let mut a: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let mut b = velocity(&k, &y, s2, &mut rng);
            let energy = |a: &[f64], b: &[f64]| c_norm(&k, &y, s2, a) + c_norm(&k, &y, s2, b);
            let e0 = energy(&a, &b);
            let j = case % n;
            let bj = b[j];
            reflect(&walls, &mut b, j);
            assert!((b[j] + bj).abs() < 1e-12 * bj.abs().max(1.0));
            let e1 = energy(&a, &b);
            assert!((e1 - e0).abs() < 1e-10 * e0, "case {case}: {e0} → {e1}");
            let mut scratch = FlightScratch::new(n);
            let f = fly(&walls, &mut a, &mut b, 20.0, &mut scratch);
            let e2 = energy(&a, &b);
            assert!(f.bounces > 0 && !f.capped && f.violations == 0, "{f:?}");
            assert!((e2 - e0).abs() < 1e-10 * e0, "case {case}: {e0} → {e2}");
            assert!(a.iter().all(|&x| x >= 0.0));
        }
    }

    /// The fused bounce is the same as advance + reflect + first_hit (to 1e-12).
    #[test]
    fn fused_bounce_matches_its_parts() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 12;
        let k = random_spd(n, &mut rng);
        let y: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { -1.0 } else { 1.0 })
            .collect();
        let m = dkd(&k, &y);
        let walls = Walls::new(&m, 0.5, 10);
        for _ in 0..50 {
            let a: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let b = velocity(&k, &y, 0.5, &mut rng);
            let Some((j, t)) = first_hit(&a, &b, None) else {
                continue;
            };
            let (mut a1, mut b1) = (a.clone(), b.clone());
            let mut v = 0;
            let mut ratio = vec![0.0; n];
            let next1 = bounce(&walls, &mut a1, &mut b1, j, t, &mut ratio, &mut v);
            let (mut a2, mut b2) = (a.clone(), b.clone());
            advance(&walls, &mut a2, &mut b2, t);
            a2[j] = 0.0;
            reflect(&walls, &mut b2, j);
            let next2 = first_hit(&a2, &b2, Some(j));
            for i in 0..n {
                assert!((a1[i] - a2[i]).abs() < 1e-12 && (b1[i] - b2[i]).abs() < 1e-12);
            }
            assert_eq!(next1.map(|h| h.0), next2.map(|h| h.0));
        }
    }

    /// Draws from N(0, C) on {yᵢuᵢ > 0}, as constraint-space positions a = y∘u, by rejection.
    fn rejection(l: &Mat<f64>, y: &[f64], count: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
        let n = y.len();
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let xi: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            let a: Vec<f64> = (0..n)
                .map(|i| y[i] * (0..=i).map(|m| l[(i, m)] * xi[m]).sum::<f64>())
                .collect();
            if a.iter().all(|&x| x > 0.0) {
                out.push(a);
            }
        }
        out
    }

    /// Means and second moments of samples, with their standard errors.
    fn moments(xs: &[Vec<f64>]) -> Vec<(f64, f64)> {
        let n = xs[0].len();
        let count = xs.len() as f64;
        let mut out = Vec::new();
        let stats = |f: &dyn Fn(&[f64]) -> f64| {
            let v: Vec<f64> = xs.iter().map(|x| f(x)).collect();
            let m = v.iter().sum::<f64>() / count;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (count - 1.0);
            (m, (var / count).sqrt())
        };
        for i in 0..n {
            out.push(stats(&|x| x[i]));
            for j in i..n {
                out.push(stats(&|x| x[i] * x[j]));
            }
        }
        out
    }

    /// The kernel leaves the truncated Gaussian invariant: 20,000 exact draws (rejection)
    /// from a 2-D and a 3-D truncated Gaussian (correlated, mixed signs, s² = 0.3), each
    /// moved by 3 trajectories (T = π/2, and T uniform in [π/4, π/2]), have the means and
    /// second moments of an independent set of 20,000 exact draws within 4 combined
    /// standard errors (two-sample; a kernel that lost invariance is off by tens).
    #[test]
    fn kernel_leaves_the_truncated_gaussian_invariant() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let cases: [(Mat<f64>, Vec<f64>); 2] = [
            (
                Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.8 }),
                vec![1.0, -1.0],
            ),
            (
                Mat::from_fn(3, 3, |i, j| {
                    [[2.0, 0.9, -0.5], [0.9, 1.0, 0.3], [-0.5, 0.3, 0.7]][i][j]
                }),
                vec![1.0, 1.0, -1.0],
            ),
        ];
        for (k, y) in &cases {
            let n = y.len();
            let s2 = 0.3;
            let c = Mat::from_fn(n, n, |i, j| k[(i, j)] + if i == j { s2 } else { 0.0 });
            let l = c.llt(Side::Lower).unwrap().L().to_owned();
            let m = dkd(k, y);
            let walls = Walls::new(&m, s2, 10_000);
            let reference = moments(&rejection(&l, y, 20_000, &mut rng));
            for jitter in [false, true] {
                let mut moved = rejection(&l, y, 20_000, &mut rng);
                let mut scratch = FlightScratch::new(n);
                for a in moved.iter_mut() {
                    for _ in 0..3 {
                        let mut b = velocity(k, y, s2, &mut rng);
                        let t = if jitter {
                            FRAC_PI_2 * (0.5 + 0.5 * rng.random::<f64>())
                        } else {
                            FRAC_PI_2
                        };
                        let f = fly(&walls, a, &mut b, t, &mut scratch);
                        assert!(!f.capped && f.violations == 0);
                    }
                }
                for (q, ((m1, s1), (m2, s2))) in moments(&moved).iter().zip(&reference).enumerate()
                {
                    let z = (m1 - m2) / (s1 * s1 + s2 * s2).sqrt();
                    assert!(
                        z.abs() < 4.0,
                        "n={n} jitter={jitter} moment {q}: {m1} vs {m2}"
                    );
                }
            }
        }
    }

    /// The kernel moves mass: started all at one point near a corner, 2,000 chains of 20
    /// trajectories reach the 2-D truncated Gaussian's moments within 4 standard errors
    /// (a kernel that leaves the target invariant but does not move would fail).
    #[test]
    fn kernel_mixes_from_a_point() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let k = Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { -0.6 });
        let y = vec![1.0, 1.0];
        let c = k.clone();
        let l = c.llt(Side::Lower).unwrap().L().to_owned();
        let m = dkd(&k, &y);
        let walls = Walls::new(&m, 0.0, 10_000);
        let reference = moments(&rejection(&l, &y, 20_000, &mut rng));
        let mut scratch = FlightScratch::new(2);
        let chains: Vec<Vec<f64>> = (0..2000)
            .map(|_| {
                let mut a = vec![0.01, 0.01];
                for _ in 0..20 {
                    let mut b = velocity(&k, &y, 0.0, &mut rng);
                    fly(&walls, &mut a, &mut b, FRAC_PI_2, &mut scratch);
                }
                a
            })
            .collect();
        for ((m1, s1), (m2, s2)) in moments(&chains).iter().zip(&reference) {
            assert!(((m1 - m2) / (s1 * s1 + s2 * s2).sqrt()).abs() < 4.0);
        }
    }
}
