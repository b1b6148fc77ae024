//! The factorisation L = chol(B), B = I + S½KS½, in f32 or f64, and what the parallel schedule
//! takes from it: log|B|, μ without a second product with K, and diag(Σ) with its relative
//! precision kept however small the site precisions are (module docs of [`super`]).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatRef, Par};

use super::config::MIN_SITE_PRECISION;

/// A real type faer factorises in: f32 or f64.
pub(super) trait Float: faer::traits::RealField + Copy {
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
}

impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
}

impl Float for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        f64::from(self)
    }
}

/// The factorisation L = chol(B), B = I + S½KS½, in f32 or f64, with buffers allocated
/// once. K itself (f64) is passed in.
pub(super) struct Factor<T: Float> {
    /// B, overwritten by L in its lower triangle.
    l: Mat<T>,
    /// [`DIAG_BLOCK`] columns of M = L⁻¹ at a time.
    /// One n × [`DIAG_BLOCK`] workspace per thread for the columns of L⁻¹.
    blocks: Vec<Mat<T>>,
    /// Block-aligned column ranges of diag(Σ), one per thread, of about equal cost.
    parts: Vec<(usize, usize)>,
    /// Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² per column i of M = L⁻¹.
    tails: Vec<f64>,
    /// One column of workspace.
    x: Mat<T>,
    /// Per site: Lᵢᵢ² − 1 while diag(Σ) is formed, then the conditioning factor κᵢ of Σᵢᵢ.
    pub(super) work: Vec<f64>,
    /// Sites whose Σᵢᵢ comes from K directly.
    direct: Vec<usize>,
    /// Vectors of workspace for the mean.
    vecs: [Vec<f64>; 5],
    mem: MemBuffer,
    par: Par,
}

impl<T: Float> Factor<T> {
    /// Buffers for n sites; `l`, when given, is an n × n buffer to reuse for B and L.
    pub(super) fn new(n: usize, l: Option<Mat<T>>, par: Par) -> Self {
        let l = l
            .filter(|l| l.nrows() == n && l.ncols() == n)
            .unwrap_or_else(|| Mat::zeros(n, n));
        Factor {
            l,
            blocks: (0..tail_parts(par))
                .map(|_| Mat::zeros(n, DIAG_BLOCK.min(n)))
                .collect(),
            parts: balanced_parts(n, tail_parts(par)),
            tails: vec![0.0; n],
            x: Mat::zeros(n, 1),
            work: vec![0.0; n],
            direct: Vec::with_capacity(n),
            vecs: std::array::from_fn(|_| vec![0.0; n]),
            mem: MemBuffer::new(
                cholesky_in_place_scratch::<T>(n, par, Default::default()).or(
                    cholesky_in_place_scratch::<T>(n, Par::Seq, Default::default()),
                ),
            ),
            par,
        }
    }

    /// Runs the Cholesky factorisation (and the direct solves) on one thread (`alone`) or
    /// with the run's parallelism. faer's parallel factorisation synchronises its threads, so
    /// it would wait for a thread that is busy elsewhere; diag(Σ)'s parts stay tasks that any
    /// free thread takes.
    pub(super) fn set_alone(&mut self, alone: bool, par: Par) {
        self.par = if alone { Par::Seq } else { par };
    }

    /// Forms B (rounded to T) from K and the site precisions' square roots `r` and
    /// factorises it; `false` when the Cholesky fails.
    pub(super) fn factor(&mut self, k: MatRef<'_, f64>, r: &[f64]) -> bool {
        let n = r.len();
        for j in 0..n {
            let rj = r[j];
            let kc = column(k, j);
            let bc = self.l.col_as_slice_mut(j);
            for i in j..n {
                bc[i] = T::of(r[i] * rj * kc[i]);
            }
            bc[j] += T::of(1.0);
        }
        cholesky_in_place(
            self.l.as_mut(),
            LltRegularization::default(),
            self.par,
            MemStack::new(&mut self.mem),
            Default::default(),
        )
        .is_ok()
    }

    /// log|B| = 2 Σ log Lᵢᵢ.
    pub(super) fn logdet(&self) -> f64 {
        (0..self.l.nrows())
            .map(|i| 2.0 * self.l[(i, i)].f64().ln())
            .sum()
    }

    /// μ = Σν̃ = Kν̃ − KS½x with x = B⁻¹S½Kν̃, given `kv` = Kν̃ and the site precisions τ̃.
    /// As KS½ = S^-½(B − I) and Bx = S½Kν̃, (KS½x)ᵢ = ((S½Kν̃)ᵢ − xᵢ)/√τ̃ᵢ, with no second
    /// product with K; both terms are proportional to √τ̃ᵢ (module docs), so the quotient
    /// keeps its precision, and a site with τ̃ᵢ below [`MIN_SITE_PRECISION`] takes row i of K
    /// instead. The solve is followed by `refine` steps of iterative refinement (residual
    /// S½Kν̃ − Bx in f64, with Bx = x + S½K(S½x)), which make an f32 factor's μ as accurate as
    /// an f64 one's.
    pub(super) fn mean(
        &mut self,
        k: MatRef<'_, f64>,
        kv: &[f64],
        r: &[f64],
        tau: &[f64],
        refine: usize,
        mu: &mut [f64],
    ) {
        let n = r.len();
        let [b, x, resid, rx, krx] = &mut self.vecs;
        for i in 0..n {
            b[i] = r[i] * kv[i];
        }
        x.fill(0.0);
        resid.copy_from_slice(b);
        for step in 0..=refine {
            for (i, v) in resid.iter().enumerate() {
                self.x[(i, 0)] = T::of(*v);
            }
            Self::solve_column(&self.l, &mut self.x, Par::Seq);
            for (i, xi) in x.iter_mut().enumerate() {
                *xi += self.x[(i, 0)].f64();
            }
            if step == refine {
                break;
            }
            for i in 0..n {
                rx[i] = r[i] * x[i];
            }
            matvec(k, rx, krx, Par::Seq);
            for i in 0..n {
                resid[i] = b[i] - x[i] - r[i] * krx[i];
            }
        }
        for i in 0..n {
            mu[i] = if tau[i] >= MIN_SITE_PRECISION {
                kv[i] - (b[i] - x[i]) / r[i]
            } else {
                kv[i] - (0..n).map(|j| k[(i, j)] * r[j] * x[j]).sum::<f64>()
            };
        }
    }

    /// x ← B⁻¹x with B = LLᵀ.
    pub(super) fn solve_column(l: &Mat<T>, x: &mut Mat<T>, par: Par) {
        solve_lower_triangular_in_place(l.as_ref(), x.as_mut(), par);
        solve_upper_triangular_in_place(l.as_ref().transpose(), x.as_mut(), par);
    }

    /// diag(Σ) into `sigma` (module docs), given K, its diagonal and the sites; leaves each
    /// site's conditioning factor κᵢ = max(Kᵢᵢ/Σᵢᵢ, dᵢ/(Lᵢᵢ²τ̃ᵢΣᵢᵢ)) in `work`.
    ///
    /// With dᵢ = Lᵢᵢ² − 1 = τ̃ᵢKᵢᵢ − Σⱼ₍ⱼ₌₀..ᵢ₎ Lᵢⱼ² and sᵢ = Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ²,
    /// τ̃ᵢΣᵢᵢ = 1 − (B⁻¹)ᵢᵢ = 1 − 1/Lᵢᵢ² − sᵢ = dᵢ/Lᵢᵢ² − sᵢ. Row i of L and column i of M
    /// below the diagonal are proportional to √τ̃ᵢ, so dᵢ, sᵢ and their difference keep their
    /// relative precision however small τ̃ᵢ is: 1 is never added to or subtracted from them.
    /// Both terms are nonnegative, and the difference loses a factor dᵢ/(Lᵢᵢ²τ̃ᵢΣᵢᵢ) ≤ Kᵢᵢ/Σᵢᵢ
    /// in relative precision, the conditioning of Σᵢᵢ itself (GPy's Kᵢᵢ − ‖L⁻¹S½Keᵢ‖² loses
    /// Kᵢᵢ/Σᵢᵢ). Sites with τ̃ᵢ below [`MIN_SITE_PRECISION`] (a warm start's zeros) have no
    /// quotient and take the direct formula, one triangular solve each.
    pub(super) fn sigma_diag(
        &mut self,
        k: MatRef<'_, f64>,
        kdiag: &[f64],
        r: &[f64],
        tau: &[f64],
        sigma: &mut [f64],
    ) {
        let n = r.len();
        for (w, (t, kd)) in self.work.iter_mut().zip(tau.iter().zip(kdiag)) {
            *w = t * kd;
        }
        for j in 0..n {
            let below = &self.l.col_as_slice(j)[j + 1..];
            for (w, v) in self.work[j + 1..].iter_mut().zip(below) {
                *w -= v.f64() * v.f64();
            }
        }
        self.column_tails();
        self.direct.clear();
        for i in 0..n {
            let lii = self.l[(i, i)].f64();
            let lead = self.work[i] / (lii * lii);
            let q = lead - self.tails[i];
            if tau[i] >= MIN_SITE_PRECISION && q > 0.0 && q.is_finite() {
                sigma[i] = q / tau[i];
                self.work[i] = (lead / q).max(kdiag[i] / sigma[i]);
            } else {
                self.direct.push(i);
            }
        }
        let direct = std::mem::take(&mut self.direct);
        self.sigma_direct(k, &direct, kdiag, r, sigma);
        for &i in &direct {
            self.work[i] = kdiag[i] / sigma[i];
        }
        self.direct = direct;
    }

    /// `tails` ← Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² for every column i of M = L⁻¹, each thread taking one of
    /// `parts` (the blocks of columns are independent).
    pub(super) fn column_tails(&mut self) {
        let l = self.l.as_ref();
        if self.blocks.len() == 1 {
            tails_of_columns(l, &mut self.blocks[0], 0, &mut self.tails);
            return;
        }
        rayon::scope(|s| {
            let mut rest = self.tails.as_mut_slice();
            for (buf, &(start, end)) in self.blocks.iter_mut().zip(&self.parts) {
                let (mine, tail) = rest.split_at_mut(end - start);
                rest = tail;
                s.spawn(move |_| tails_of_columns(l, buf, start, mine));
            }
        });
    }

    /// Σᵢᵢ = Kᵢᵢ − ‖L⁻¹S½Keᵢ‖² for the sites in `idx` (GPy's formula, one column each).
    pub(super) fn sigma_direct(
        &self,
        k: MatRef<'_, f64>,
        idx: &[usize],
        kdiag: &[f64],
        r: &[f64],
        sigma: &mut [f64],
    ) {
        if idx.is_empty() {
            return;
        }
        let n = r.len();
        let mut y = Mat::<T>::from_fn(n, idx.len(), |i, c| T::of(r[i] * k[(i, idx[c])]));
        solve_lower_triangular_in_place(self.l.as_ref(), y.as_mut(), self.par);
        for (c, &i) in idx.iter().enumerate() {
            let q: f64 = y.col_as_slice(c).iter().map(|v| v.f64() * v.f64()).sum();
            sigma[i] = kdiag[i] - q;
        }
    }
}

/// Threads of `par` (1 for [`Par::Seq`]).
pub(super) fn threads(par: Par) -> usize {
    par.degree().max(1)
}

/// Parts the columns of M = L⁻¹ are split into for diag(Σ): [`TAIL_PARTS_PER_THREAD`] per
/// thread, so that a thread that is busy elsewhere (the kernel check) leaves the others to
/// take more parts; 1 on one thread.
pub(super) fn tail_parts(par: Par) -> usize {
    match threads(par) {
        1 => 1,
        t => t * TAIL_PARTS_PER_THREAD,
    }
}

/// `parts` block-aligned ranges of the n columns of M = L⁻¹ whose triangular solves cost
/// about the same (a block starting at column j costs about (n − j)² per column).
pub(super) fn balanced_parts(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let starts: Vec<usize> = (0..n).step_by(DIAG_BLOCK).collect();
    let cost = |j: usize| {
        let m = (n - j) as f64;
        m * m * DIAG_BLOCK.min(n - j) as f64
    };
    let total: f64 = starts.iter().map(|&j| cost(j)).sum();
    let mut out = Vec::with_capacity(parts);
    let (mut begin, mut acc) = (0, 0.0);
    for &j in &starts {
        if out.len() + 1 < parts && acc >= total * (out.len() + 1) as f64 / parts as f64 {
            out.push((begin, j));
            begin = j;
        }
        acc += cost(j);
    }
    out.push((begin, n));
    out
}

/// `tails[c]` ← Σₖ₍ₖ₌ᵢ₊₁..ₙ₎ Mₖᵢ² for the columns i = start + c of M = L⁻¹, [`DIAG_BLOCK`] at
/// a time: each block by one triangular solve with the trailing block of L (M is zero above
/// its diagonal), in the workspace `buf`.
pub(super) fn tails_of_columns<T: Float>(
    l: MatRef<'_, T>,
    buf: &mut Mat<T>,
    start: usize,
    tails: &mut [f64],
) {
    let n = l.nrows();
    for (b, out) in tails.chunks_mut(DIAG_BLOCK).enumerate() {
        let j0 = start + b * DIAG_BLOCK;
        let (m, width) = (n - j0, out.len());
        let mut x = buf.as_mut().submatrix_mut(0, 0, m, width);
        x.fill(T::of(0.0));
        for c in 0..width {
            x[(c, c)] = T::of(1.0);
        }
        let trailing = l.submatrix(j0, j0, m, m);
        solve_lower_triangular_in_place(trailing, x.as_mut(), Par::Seq);
        for (c, sum) in out.iter_mut().enumerate() {
            *sum = column(x.as_ref(), c)[c + 1..]
                .iter()
                .map(|v| v.f64() * v.f64())
                .sum();
        }
    }
}

/// Column j of a column-major matrix as a slice.
pub(super) fn column<T>(k: MatRef<'_, T>, j: usize) -> &[T] {
    k.col(j)
        .try_as_col_major()
        .expect("the columns of a faer Mat are contiguous")
        .as_slice()
}

/// K·v into `out` (f64).
pub(super) fn matvec(k: MatRef<'_, f64>, v: &[f64], out: &mut [f64], par: Par) {
    let n = v.len();
    let vm = MatRef::from_column_major_slice(v, n, 1);
    let om = faer::MatMut::from_column_major_slice_mut(out, n, 1);
    matmul(om, Accum::Replace, k.as_ref(), vm, 1.0, par);
}

/// Columns of L⁻¹ formed at a time for diag(Σ).
pub(super) const DIAG_BLOCK: usize = 64;

/// Parts of diag(Σ)'s columns per thread ([`tail_parts`]).
pub(super) const TAIL_PARTS_PER_THREAD: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use faer::linalg::solvers::Solve;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The NNGP kernel of the paper's FCN (two ReLU layers, σ_w² = 2, σ_b² = 1) on 240 seeded
    /// inputs in 8 dimensions, every sixth a copy of the one before moved by 10⁻⁵: eigenvalues
    /// from 2·10⁻¹² to 8·10², condition number 3·10¹⁴.
    pub(super) fn ill_conditioned_kernel() -> Mat<f64> {
        let (n, d) = (240, 8);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut x = vec![0.0f64; n * d];
        for i in 0..n {
            for c in 0..d {
                x[i * d + c] = if i % 6 == 5 {
                    x[(i - 1) * d + c] + 1e-5 * rng.random_range(-1.0..1.0)
                } else {
                    rng.random_range(-1.0..1.0)
                };
            }
        }
        let spec = basin_nn::FcnSpec::paper(d);
        crate::kernel::nngp_f64(&spec, &x, n).expect("NNGP kernel")
    }

    /// Site precisions from 0 and 2.2e-16 up to 10⁶, cycled over the sites.
    pub(super) fn mixed_precisions(n: usize) -> Vec<f64> {
        let levels = [
            0.0,
            MIN_SITE_PRECISION,
            1e-12,
            1e-8,
            1e-4,
            0.03,
            1.0,
            30.0,
            1e3,
            1e6,
        ];
        (0..n).map(|i| levels[(i * 7) % levels.len()]).collect()
    }

    /// diag(Σ) by the quotient ([`Factor::sigma_diag`]) and by GPy's formula
    /// Kᵢᵢ − ‖L⁻¹S½Keᵢ‖² for every site, and the conditioning factors.
    pub(super) fn both_formulas(k: MatRef<'_, f64>, tau: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = k.nrows();
        let r: Vec<f64> = tau.iter().map(|t| t.sqrt()).collect();
        let kdiag: Vec<f64> = (0..n).map(|i| k[(i, i)]).collect();
        let mut f = Factor::<f64>::new(n, None, Par::Seq);
        assert!(f.factor(k, &r));
        let mut fast = vec![0.0; n];
        f.sigma_diag(k, &kdiag, &r, tau, &mut fast);
        let all: Vec<usize> = (0..n).collect();
        let mut direct = vec![0.0; n];
        f.sigma_direct(k, &all, &kdiag, &r, &mut direct);
        (fast, direct, f.work.clone())
    }

    /// The quotient and GPy's formula carry the same kind of error, about u·Kᵢᵢ per site
    /// (each loses Kᵢᵢ/Σᵢᵢ of relative precision to cancellation): they must agree to
    /// 10⁻¹³·Kᵢᵢ (measured 2·10⁻¹⁵), and to 10⁻¹⁰ relative where Kᵢᵢ/Σᵢᵢ < 10³ (measured
    /// 3·10⁻¹³), on a kernel of condition number 3·10¹⁴ with site precisions from 0 (GPy's
    /// formula is then used as it is) and 2.2·10⁻¹⁶ to 10⁶.
    #[test]
    pub(super) fn sigma_diag_matches_the_direct_formula_on_an_ill_conditioned_kernel() {
        let k = ill_conditioned_kernel();
        let n = k.nrows();
        let tau = mixed_precisions(n);
        let (fast, direct, kappa) = both_formulas(k.as_ref(), &tau);
        let (mut worst_abs, mut worst_rel) = (0.0f64, 0.0f64);
        for i in 0..n {
            let (kii, d) = (k[(i, i)], (fast[i] - direct[i]).abs());
            assert!(
                fast[i] > 0.0 && fast[i] <= kii,
                "site {i}: Σᵢᵢ = {}",
                fast[i]
            );
            worst_abs = worst_abs.max(d / kii);
            if kii / direct[i] < 1e3 {
                worst_rel = worst_rel.max(d / direct[i]);
            }
            assert!(kappa[i] >= kii / fast[i] && kappa[i].is_finite());
            if tau[i] == 0.0 {
                assert_eq!(fast[i], direct[i], "a zero site takes the direct formula");
            }
        }
        eprintln!("max |Δ|/Kᵢᵢ = {worst_abs:e}, max relative |Δ| where K/Σ < 1e3: {worst_rel:e}");
        assert!(worst_abs < 1e-13, "max |Δ|/Kᵢᵢ = {worst_abs:e}");
        assert!(worst_rel < 1e-10, "max relative |Δ| = {worst_rel:e}");
    }

    /// With tiny site precisions 1 − (B⁻¹)ᵢᵢ ≈ τ̃ᵢKᵢᵢ: formed naively, 1 − ‖Meᵢ‖² would keep
    /// about four digits at τ̃ = 10⁻¹² (‖Meᵢ‖² ≈ 1 − 3·10⁻¹² carries an error ≥ 10⁻¹⁶); the
    /// exact subtraction keeps Σᵢᵢ to 10⁻¹⁰ of GPy's formula.
    #[test]
    pub(super) fn sigma_diag_keeps_its_precision_at_tiny_site_precisions() {
        let k = ill_conditioned_kernel();
        let n = k.nrows();
        let tau: Vec<f64> = (0..n).map(|i| 1e-12 * (1.0 + (i % 5) as f64)).collect();
        let (fast, direct, _) = both_formulas(k.as_ref(), &tau);
        for i in 0..n {
            let rel = (fast[i] - direct[i]).abs() / direct[i];
            assert!(rel < 1e-10, "site {i}: relative |Δ| = {rel:e}");
        }
    }

    /// μ without a second product with K (`Factor::mean`) against GPy's K(ν̃ − S½B⁻¹S½Kν̃),
    /// with an independent solve: to 10⁻¹³ of Σⱼ|Kᵢⱼν̃ⱼ| (measured 10⁻¹⁶) on the
    /// ill-conditioned kernel with site precisions from 0 to 10⁶; and from an f32 factor with
    /// one refinement step, to 10⁻¹⁰ of it (measured 3·10⁻¹²).
    #[test]
    pub(super) fn mean_matches_gpys_formula() {
        let k = ill_conditioned_kernel();
        let n = k.nrows();
        let tau = mixed_precisions(n);
        let r: Vec<f64> = tau.iter().map(|t| t.sqrt()).collect();
        let nu: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 / 5.0 - 1.0).collect();
        let mut kv = vec![0.0; n];
        matvec(k.as_ref(), &nu, &mut kv, Par::Seq);
        let b = Mat::<f64>::from_fn(n, n, |i, j| {
            r[i] * r[j] * k[(i, j)] + if i == j { 1.0 } else { 0.0 }
        });
        let rhs = Mat::<f64>::from_fn(n, 1, |i, _| r[i] * kv[i]);
        let x = b
            .llt(faer::Side::Lower)
            .expect("B is positive definite")
            .solve(&rhs);
        let alpha: Vec<f64> = (0..n).map(|i| nu[i] - r[i] * x[(i, 0)]).collect();
        let mut want = vec![0.0; n];
        matvec(k.as_ref(), &alpha, &mut want, Par::Seq);
        let scale: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| (k[(i, j)] * nu[j]).abs()).sum())
            .collect();
        let mut f = Factor::<f64>::new(n, None, Par::Seq);
        assert!(f.factor(k.as_ref(), &r));
        let mut mu = vec![0.0; n];
        f.mean(k.as_ref(), &kv, &r, &tau, 0, &mut mu);
        let mut g = Factor::<f32>::new(n, None, Par::Seq);
        assert!(g.factor(k.as_ref(), &r));
        let mut mu32 = vec![0.0; n];
        g.mean(k.as_ref(), &kv, &r, &tau, 1, &mut mu32);
        let worst = |m: &[f64]| {
            (0..n)
                .map(|i| (m[i] - want[i]).abs() / scale[i])
                .fold(0.0f64, f64::max)
        };
        let (e64, e32) = (worst(&mu), worst(&mu32));
        eprintln!("max |Δμᵢ|/Σⱼ|Kᵢⱼν̃ⱼ|: f64 {e64:e}, f32 refined {e32:e}");
        assert!(e64 < 1e-13, "f64: {e64:e}");
        assert!(e32 < 1e-10, "f32: {e32:e}");
    }
}
