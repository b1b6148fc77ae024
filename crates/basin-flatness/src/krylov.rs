//! The Lanczos recurrence with full reorthogonalisation, reading the Krylov basis once per step.
//!
//! Step k turns `z = H q_k` into the next basis vector in two passes of Gram–Schmidt, "twice is
//! enough" (Kahan–Parlett; Giraud et al. 2005):
//! 1. the three-term step `u = z − α_k q_k − β_{k−1} q_{k−1}`, which in exact arithmetic is
//!    the whole classical Gram–Schmidt pass (`H q_k ⟂ q_i` for i < k − 1), and costs two rows;
//! 2. a full classical Gram–Schmidt pass against every row, `h = Q_kᵀ u`, `u ← u − Q_k h`,
//!    which removes the O(ε‖H‖) components that round-off left along old rows.
//!
//! Done as written, pass 2 reads the basis twice (the dot products, then the update), and the
//! next step cannot begin before the update is done: the next HVP needs `q_{k+1}`. Here the
//! update is *lagged* into the next step's sweep, so that each step reads the basis once:
//!
//! * After the dot products `h`, the norm of the updated vector is known without forming it,
//!   `β_k² = ‖u‖² − ‖h‖²` (Pythagoras: the rows are orthonormal). The pending row
//!   `p = u / β_k` is stored with its coefficients `c = h / β_k`, so that `q_{k+1} = p − Q_k c`.
//! * The next HVP is taken at `p` instead of `q_{k+1}`: `H q_{k+1} = H p − H Q_k c`, and by the
//!   Lanczos relation `H Q_k = Q_k T_k + β_k q_{k+1} e_kᵀ` (up to the reorthogonalisation
//!   coefficients, O(ε‖H‖), times `c`, O(ε‖H‖/β): far below the HVP's own round-off),
//!   `H q_{k+1} = H p − Q_k T_k c − β_k c_k q_{k+1}`.
//! * Substituting `q_{k+1} = p − Q_k c` into the three-term step of step k + 1 gives
//!   `u' = w₀ − Q_k e` with `w₀ = H p − a' p − β_k q_k`, `a' = α' + β_k c_k` and
//!   `e = T_k c − a' c`, where `α' = pᵀHp − 2 β_k c_k` is the estimate of `α_{k+1}`.
//! * One sweep over the rows `q_0 … q_k` then forms `w₀`, applies `q_{k+1} = p − Q_k c` and
//!   `u' = w₀ − Q_k e` and takes the dot products `g_i = q_iᵀ w` as each row passes; pass 2's
//!   coefficients of step k + 1 are `h'_i = g_i − e_i` (the rows are orthonormal: the
//!   neglected terms are O(ε‖e‖)) and `h'_{k+1} = q_{k+1}ᵀ u'`, accumulated as the sweep
//!   finishes each column block; `α_{k+1} = α' + h'_{k+1}`.
//!
//! The arithmetic of pass 2 is unchanged; only when its update is applied moves. When the DGKS
//! test finds heavy cancellation (`‖h‖² > ½‖u‖²`: pass 1 left much along old rows), or when
//! the lagged update `e` is not small beside `u'` (so that the O(ε‖e‖) terms might matter), the
//! step falls back to explicit passes: it applies pass 2 now and then a third full pass, and
//! lags nothing. The basis stays orthonormal to working precision (see the tests).

use basin_nn::Objective;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use basin_nn::real::{nearest_pow2_exponent, pow2};

use crate::error::{FlatnessError, NonFiniteAt};
use crate::gram::{Sweep, dot, dot_rows, dot2, sub_rows, sweep};
use crate::tridiagonal::Tridiagonal;

/// β below this times the largest ‖H q_j‖ seen counts as a breakdown.
const BREAKDOWN: f64 = 1e3 * f64::EPSILON;

/// The preallocated workspace of a Lanczos run: the basis (`steps + 1` rows of length `n`,
/// row-major; the last row written is pending until its correction is applied), the HVP
/// output, the Gram–Schmidt coefficients and the lagged corrections.
pub(crate) struct Krylov {
    n: usize,
    steps: usize,
    basis: Vec<f64>,
    w: Vec<f64>,
    h: Vec<f64>,
    c: Vec<f64>,
    e: Vec<f64>,
    /// How many steps of the last run fell back to explicit passes (see the module docs).
    fallbacks: usize,
    /// The power of two the last run divided every HVP by (see [`Krylov::run`]).
    unit: f64,
}

/// The recurrence's coefficients so far.
#[derive(Default)]
struct Coefficients {
    alpha: Vec<f64>,
    beta: Vec<f64>,
}

impl Krylov {
    /// A workspace for up to `steps` steps on vectors of length `n`.
    pub fn new(n: usize, steps: usize) -> Self {
        Self {
            n,
            steps,
            basis: vec![0.0; (steps + 1) * n],
            w: vec![0.0; n],
            h: vec![0.0; steps + 1],
            c: vec![0.0; steps + 1],
            e: vec![0.0; steps + 1],
            fallbacks: 0,
            unit: 1.0,
        }
    }

    /// The start vector q_0, to be filled with a unit vector before [`Krylov::run`].
    pub fn start_mut(&mut self) -> &mut [f64] {
        &mut self.basis[..self.n]
    }

    /// Basis row `i` (after [`Krylov::run`], rows `0..=steps` are finished).
    #[cfg(test)]
    fn row(&self, i: usize) -> &[f64] {
        &self.basis[i * self.n..(i + 1) * self.n]
    }

    /// Runs up to `steps` Lanczos steps from the unit vector in [`Krylov::start_mut`].
    ///
    /// The recurrence runs on H/u, where u is the power of two nearest the largest entry of
    /// the first HVP, so that its sums of squares neither underflow nor overflow whatever the
    /// Hessian's scale (1e-300 or 1e300); the division is exact, and the tridiagonal carries u
    /// ([`Tridiagonal::unit`]) to give its eigenvalues in H's units.
    pub fn run<O: Objective<f64> + ?Sized>(
        &mut self,
        obj: &mut O,
        theta: &[f64],
        batch: &[usize],
    ) -> Result<Tridiagonal, FlatnessError> {
        let n = self.n;
        let mut t = Coefficients::default();
        let mut scale = 0.0f64;
        self.fallbacks = 0;
        self.unit = 1.0;
        for k in 0..self.steps {
            let (pz, hz_norm) = self.hvp(obj, theta, batch, k)?;
            scale = scale.max(hz_norm);
            let (alpha, b, lagged) = self.reorthogonalise(&t, k, pz);
            t.alpha.push(alpha);
            // An invariant subspace: nothing new beyond the round-off of the HVPs.
            let invariant = b <= BREAKDOWN * scale;
            if invariant || k + 1 == n {
                return Ok(Tridiagonal {
                    alpha: t.alpha,
                    beta: t.beta,
                    beta_last: 0.0,
                    breakdown: invariant && k + 1 < self.steps,
                    unit: self.unit,
                });
            }
            t.beta.push(b);
            self.start_row(k + 1, b, lagged);
        }
        self.finish_pending_row();
        let beta_last = t.beta.pop().unwrap_or(0.0);
        Ok(Tridiagonal {
            alpha: t.alpha,
            beta: t.beta,
            beta_last,
            breakdown: false,
            unit: self.unit,
        })
    }

    /// `w = H p` for the pending row `p` of step `k`; returns `(pᵀHp, ‖H p‖)`.
    fn hvp<O: Objective<f64> + ?Sized>(
        &mut self,
        obj: &mut O,
        theta: &[f64],
        batch: &[usize],
        k: usize,
    ) -> Result<(f64, f64), FlatnessError> {
        let p = &self.basis[k * self.n..(k + 1) * self.n];
        obj.hvp(theta, batch, p, &mut self.w);
        if k == 0 {
            let largest = self.w.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            self.unit = pow2(nearest_pow2_exponent(largest).clamp(-1022, 1022));
        }
        if self.unit != 1.0 {
            let inv = 1.0 / self.unit;
            self.w.iter_mut().for_each(|x| *x *= inv);
        }
        let (pz, zz) = dot2(p, &self.w);
        let norm = zz.sqrt();
        if !(norm.is_finite() && pz.is_finite()) {
            return Err(FlatnessError::non_finite(NonFiniteAt::LanczosStep(k + 1)));
        }
        Ok((pz, norm))
    }

    /// Step k's Gram–Schmidt with `w = H p` and `pz = pᵀHp` on entry: one fused sweep (see
    /// the module docs), then the fallback passes when they are needed. Leaves pass 2's
    /// coefficients in `h[..=k]` and the vector in `w`; returns `(α_k, β_k, lagged)`, where
    /// `lagged` says that `w` still needs the update `w −= Q_k h`, and β_k is the norm of `w`
    /// after it (`√(‖w‖² − ‖h‖²)`).
    fn reorthogonalise(&mut self, t: &Coefficients, k: usize, pz: f64) -> (f64, f64, bool) {
        let n = self.n;
        let (rows, rest) = self.basis.split_at_mut(k * n);
        let p = &mut rest[..n];
        let (c, e) = (&self.c[..k], &mut self.e[..k]);
        let beta_prev = t.beta.last().copied().unwrap_or(0.0);
        let c_last = c.last().copied().unwrap_or(0.0);
        let alpha_est = pz - 2.0 * beta_prev * c_last;
        let shift = alpha_est + beta_prev * c_last;
        lagged_update(t, c, shift, e);
        let s = Sweep {
            rows: &*rows,
            c,
            e,
            shift: (shift, beta_prev),
        };
        let h = &mut self.h[..=k];
        let sums = sweep(&s, p, &mut self.w, &mut h[..k]);
        h[..k].iter_mut().zip(e.iter()).for_each(|(h, e)| *h -= e);
        h[k] = sums.pw;
        let alpha = alpha_est + h[k];
        let hh = dot(h, h);
        // DGKS: pass 1 left little along the old rows; and the lagged terms are negligible.
        if hh <= 0.5 * sums.ww && dot(e, e) <= sums.ww {
            return (alpha, (sums.ww - hh).sqrt(), true);
        }
        self.fallbacks += 1;
        let rows = &self.basis[..(k + 1) * n];
        sub_rows(rows, h, &mut self.w);
        h.fill(0.0);
        dot_rows(rows, &self.w, h);
        sub_rows(rows, h, &mut self.w);
        (alpha + h[k], dot(&self.w, &self.w).sqrt(), false)
    }

    /// Writes the pending row `k = p = w / b` and its coefficients `c = h / b` (zero when the
    /// update was applied already).
    fn start_row(&mut self, k: usize, b: f64, lagged: bool) {
        let n = self.n;
        let row = &mut self.basis[k * n..(k + 1) * n];
        row.iter_mut().zip(&self.w).for_each(|(q, &x)| *q = x / b);
        for (c, &h) in self.c[..k].iter_mut().zip(&self.h[..k]) {
            *c = if lagged { h / b } else { 0.0 };
        }
    }

    /// Applies the pending correction of the last row, `q_m = p − Q_{m−1} c`, so that the
    /// whole basis is finished: a sweep with no update of `w` (its dot products are unused).
    fn finish_pending_row(&mut self) {
        let n = self.n;
        let m = self.steps;
        let (rows, last) = self.basis.split_at_mut(m * n);
        self.e[..m].fill(0.0);
        let s = Sweep {
            rows: &*rows,
            c: &self.c[..m],
            e: &self.e[..m],
            shift: (0.0, 0.0),
        };
        sweep(&s, &mut last[..n], &mut self.w, &mut self.h[..m]);
    }
}

/// `e = T c − a' c`: the coefficients of the lagged update of `w` (see the module docs), with
/// `T` the k × k tridiagonal of the coefficients so far (`k = c.len()`).
fn lagged_update(t: &Coefficients, c: &[f64], shift: f64, e: &mut [f64]) {
    let k = c.len();
    for i in 0..k {
        let mut v = (t.alpha[i] - shift) * c[i];
        if i > 0 {
            v += t.beta[i - 1] * c[i - 1];
        }
        if i + 1 < k {
            v += t.beta[i] * c[i + 1];
        }
        e[i] = v;
    }
}

/// Fills `v` with a standard Gaussian vector (Box–Muller on ChaCha8 uniforms), normalised to
/// unit length.
pub(crate) fn gaussian_unit(rng: &mut ChaCha8Rng, v: &mut [f64]) {
    for pair in v.chunks_mut(2) {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let phi = std::f64::consts::TAU * u2;
        pair[0] = r * phi.cos();
        if let Some(x) = pair.get_mut(1) {
            *x = r * phi.sin();
        }
    }
    let norm = dot(v, v).sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::gram::axpy;

    /// ½ θᵀ D θ: H = D.
    struct Diag(Vec<f64>);

    impl Objective<f64> for Diag {
        fn n_params(&self) -> usize {
            self.0.len()
        }
        fn n_examples(&self) -> usize {
            1
        }
        fn loss(&mut self, _: &[f64], _: &[usize]) -> f64 {
            0.0
        }
        fn loss_grad(&mut self, _: &[f64], _: &[usize], _: &mut [f64]) -> f64 {
            0.0
        }
        fn hvp(&mut self, _: &[f64], _: &[usize], v: &[f64], out: &mut [f64]) {
            for ((o, x), d) in out.iter_mut().zip(v).zip(&self.0) {
                *o = d * x;
            }
        }
        fn count_errors(&mut self, _: &[f64], _: &[usize]) -> usize {
            0
        }
    }

    /// max |QᵀQ − I| over the rows `0..=steps`.
    fn loss_of_orthogonality(k: &Krylov, steps: usize) -> f64 {
        let mut worst = 0.0f64;
        for i in 0..=steps {
            for j in 0..=i {
                let target = if i == j { 1.0 } else { 0.0 };
                worst = worst.max((dot(k.row(i), k.row(j)) - target).abs());
            }
        }
        worst
    }

    #[test]
    fn the_basis_stays_orthonormal() {
        // A spectrum like a trained net's: a few large outliers, a bulk near 0 with both signs.
        let n = 3000;
        let d: Vec<f64> = (0..n)
            .map(|i| match i {
                0..5 => 100.0 / (i + 1) as f64,
                _ => 1e-3 * ((i * 7919) % 2000) as f64 - 0.5,
            })
            .collect();
        let steps = 250;
        let mut k = Krylov::new(n, steps);
        gaussian_unit(&mut ChaCha8Rng::seed_from_u64(1), k.start_mut());
        let tri = k.run(&mut Diag(d), &vec![0.0; n], &[0]).unwrap();
        assert_eq!(tri.alpha.len(), steps);
        // Orthonormal to working precision: |QᵀQ − I| ≤ 1e-13 (ε·√n·small factor).
        let worst = loss_of_orthogonality(&k, steps);
        assert!(worst < 1e-13, "loss of orthogonality {worst:e}");
        assert_eq!(k.fallbacks, 0, "every step lagged its update");
    }

    #[test]
    fn the_lagged_recurrence_matches_explicit_gram_schmidt() {
        // The tridiagonal of the fused, lagged sweep against the textbook recurrence with two
        // explicit classical Gram–Schmidt passes, on four outliers (1e3 … −200) over a bulk in
        // [−0.01, 0.01], so that β falls five orders below ‖H‖ once the outliers converge.
        // Both are accurate to O(ε‖H‖) per entry, so they agree to 1e-10 absolute.
        let n = 800;
        let d: Vec<f64> = (0..n)
            .map(|i| match i {
                0 => 1e3,
                1 => 300.0,
                2 => -200.0,
                3 => 50.0,
                _ => 1e-5 * ((i * 7919) % 2001) as f64 - 0.01,
            })
            .collect();
        let steps = 120;
        let mut k = Krylov::new(n, steps);
        gaussian_unit(&mut ChaCha8Rng::seed_from_u64(7), k.start_mut());
        let start = k.start_mut().to_vec();
        let tri = k.run(&mut Diag(d.clone()), &vec![0.0; n], &[0]).unwrap();
        let (alpha, beta) = textbook_lanczos(&d, &start, steps);
        // The run's tridiagonal is of H/u (u a power of two): compare in H's units.
        let u = tri.unit;
        for (i, (a, b)) in tri.alpha.iter().zip(&alpha).enumerate() {
            assert!((a * u - b).abs() < 1e-10, "α_{i}: {a}·{u} vs {b}");
        }
        let all_beta: Vec<f64> = tri.beta.iter().copied().chain([tri.beta_last]).collect();
        for (i, (a, b)) in all_beta.iter().zip(&beta).enumerate() {
            assert!((a * u - b).abs() < 1e-10, "β_{i}: {a}·{u} vs {b}");
        }
        let worst = loss_of_orthogonality(&k, steps);
        assert!(worst < 1e-13, "loss of orthogonality {worst:e}");
        assert_eq!(k.fallbacks, 0, "every step lagged its update");
    }

    /// `D v + s (v_{i+1} − v_{i−1})` (cyclic): a non-symmetric operator, so that the three-term
    /// step leaves O(s) components along old rows and the DGKS test fires.
    struct Skewed(Vec<f64>, f64);

    impl Objective<f64> for Skewed {
        fn n_params(&self) -> usize {
            self.0.len()
        }
        fn n_examples(&self) -> usize {
            1
        }
        fn loss(&mut self, _: &[f64], _: &[usize]) -> f64 {
            0.0
        }
        fn loss_grad(&mut self, _: &[f64], _: &[usize], _: &mut [f64]) -> f64 {
            0.0
        }
        fn hvp(&mut self, _: &[f64], _: &[usize], v: &[f64], out: &mut [f64]) {
            let n = v.len();
            for i in 0..n {
                out[i] = self.0[i] * v[i] + self.1 * (v[(i + 1) % n] - v[(i + n - 1) % n]);
            }
        }
        fn count_errors(&mut self, _: &[f64], _: &[usize]) -> usize {
            0
        }
    }

    #[test]
    fn the_fallback_passes_keep_the_basis_orthonormal() {
        // Heavy cancellation on most steps: the explicit passes run, and the basis stays
        // orthonormal to 1e-13 as in the lagged case.
        let n = 500;
        let d: Vec<f64> = (0..n).map(|i| 1e-2 * (i % 7) as f64).collect();
        let steps = 60;
        let mut k = Krylov::new(n, steps);
        gaussian_unit(&mut ChaCha8Rng::seed_from_u64(5), k.start_mut());
        let tri = k.run(&mut Skewed(d, 1.0), &vec![0.0; n], &[0]).unwrap();
        assert_eq!(tri.alpha.len(), steps);
        assert!(k.fallbacks > steps / 2, "{} fallbacks", k.fallbacks);
        let worst = loss_of_orthogonality(&k, steps);
        assert!(worst < 1e-13, "loss of orthogonality {worst:e}");
    }

    /// Lanczos on `diag(d)` with two full classical Gram–Schmidt passes after the three-term
    /// step, every update applied at once: `(α, β)` with `β` including the last one.
    fn textbook_lanczos(d: &[f64], start: &[f64], steps: usize) -> (Vec<f64>, Vec<f64>) {
        let n = d.len();
        let mut q: Vec<Vec<f64>> = vec![start.to_vec()];
        let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (vec![], vec![]);
        for j in 0..steps {
            let mut w: Vec<f64> = q[j].iter().zip(d).map(|(x, d)| x * d).collect();
            let mut a = dot(&q[j], &w);
            axpy(-a, &q[j], &mut w);
            if j > 0 {
                axpy(-beta[j - 1], &q[j - 1], &mut w);
            }
            for _ in 0..2 {
                let h: Vec<f64> = q.iter().map(|qi| dot(qi, &w)).collect();
                for (qi, hi) in q.iter().zip(&h) {
                    axpy(-hi, qi, &mut w);
                }
                a += h[j];
            }
            let b = dot(&w, &w).sqrt();
            alpha.push(a);
            beta.push(b);
            q.push(w.iter().map(|x| x / b).collect());
            assert_eq!(q[j + 1].len(), n);
        }
        (alpha, beta)
    }
}
