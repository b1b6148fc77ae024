//! The Cholesky factor of Σ with the variables reordered by Gibson, Glasbey and Elston's rule
//! (1994; Genz & Bretz 2009, §4.1.3; Botev's `cholperm`): at step j, of the variables not yet
//! placed, take the one with the smallest probability of its interval given the earlier ones
//! set to their truncated means, log P(ãᵢ < Zᵢ < b̃ᵢ) with
//! ãᵢ = (lᵢ − Σₖ₍ⱼ Lᵢₖμₖ)/σ̃ᵢ, b̃ᵢ likewise, σ̃ᵢ² = Σᵢᵢ − Σₖ₍ⱼ Lᵢₖ², and μₖ the mean of N(0, 1)
//! truncated to the chosen variable's (ã, b̃). The most constrained variables go first, which
//! is what keeps the importance weights' variance down.
//!
//! The conditional means and variances are updated in place after each column (as in a
//! pivoted Cholesky), so choosing costs O(d) per step; a column costs one (d − j) × j
//! matrix-vector product (faer), d³/6 multiply-adds in all.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};

use crate::truncnorm::{log_prob_between, moments};

/// Σ(perm, perm) = L·Lᵀ and the bounds in the same order.
pub(crate) struct PermutedCholesky {
    /// Lower-triangular factor (column-major), rows and columns in `perm` order.
    pub l: Mat<f64>,
    /// Lower bounds in `perm` order.
    pub lower: Vec<f64>,
    /// Upper bounds in `perm` order.
    pub upper: Vec<f64>,
    /// The smallest pivot relative to its variable's variance, Lⱼⱼ²/Σⱼⱼ (1 for independent
    /// variables; near 0 where Σ is near singular).
    pub min_rel_pivot: f64,
}

/// The step at which the factorisation met a non-positive conditional variance.
pub(crate) struct PivotFailure {
    /// The step (column) of L.
    pub step: usize,
    /// The variance met (≤ 0 or NaN).
    pub value: f64,
}

/// The factor of Σ (d × d, symmetric) for the box [lower, upper], ordered by the GGE rule.
pub(crate) fn cholperm(
    sigma: &Mat<f64>,
    lower: &[f64],
    upper: &[f64],
) -> Result<PermutedCholesky, PivotFailure> {
    let d = sigma.nrows();
    let mut f = Factoring::new(sigma);
    for j in 0..d {
        let (pick, a, b) = f.choose(j, lower, upper)?;
        f.swap(j, pick);
        f.column(j, sigma);
        let m = moments(a, b).mean;
        f.condition_on(j, m);
    }
    let perm = f.perm;
    let l = Mat::from_fn(d, d, |i, k| if k <= i { f.r[(k, i)] } else { 0.0 });
    let min_rel_pivot = (0..d)
        .map(|j| l[(j, j)] * l[(j, j)] / sigma[(perm[j], perm[j])])
        .fold(f64::INFINITY, f64::min);
    Ok(PermutedCholesky {
        lower: perm.iter().map(|&i| lower[i]).collect(),
        upper: perm.iter().map(|&i| upper[i]).collect(),
        l,
        min_rel_pivot,
    })
}

/// The state of the factorisation: R = Lᵀ (column i of R is row i of L, so the inner products
/// of rows are faer products over contiguous columns), the permutation, and each unplaced
/// variable's conditional mean Σₖ Lᵢₖμₖ and variance Σᵢᵢ − Σₖ Lᵢₖ² given the placed ones.
struct Factoring {
    d: usize,
    r: Mat<f64>,
    perm: Vec<usize>,
    cond_mean: Vec<f64>,
    cond_var: Vec<f64>,
    col: Mat<f64>,
}

impl Factoring {
    fn new(sigma: &Mat<f64>) -> Self {
        let d = sigma.nrows();
        Factoring {
            d,
            r: Mat::zeros(d, d),
            perm: (0..d).collect(),
            cond_mean: vec![0.0; d],
            cond_var: (0..d).map(|i| sigma[(i, i)]).collect(),
            col: Mat::zeros(d, 1),
        }
    }

    /// The unplaced variable (position ≥ j) whose standardised interval has the least mass,
    /// with that interval.
    fn choose(
        &self,
        j: usize,
        lower: &[f64],
        upper: &[f64],
    ) -> Result<(usize, f64, f64), PivotFailure> {
        let mut best = (j, f64::INFINITY, 0.0, 0.0);
        for i in j..self.d {
            let v = self.cond_var[i];
            if v.is_nan() || v <= 0.0 {
                return Err(PivotFailure { step: j, value: v });
            }
            let s = v.sqrt();
            let orig = self.perm[i];
            let a = (lower[orig] - self.cond_mean[i]) / s;
            let b = (upper[orig] - self.cond_mean[i]) / s;
            let lp = log_prob_between(a, b);
            if lp < best.1 || i == j {
                best = (i, lp, a, b);
            }
        }
        Ok((best.0, best.2, best.3))
    }

    /// Swaps positions j and i (rows of L so far, permutation and conditional moments).
    fn swap(&mut self, j: usize, i: usize) {
        if i == j {
            return;
        }
        for k in 0..j {
            let t = self.r[(k, j)];
            self.r[(k, j)] = self.r[(k, i)];
            self.r[(k, i)] = t;
        }
        self.perm.swap(j, i);
        self.cond_mean.swap(j, i);
        self.cond_var.swap(j, i);
    }

    /// Column j of L: Lⱼⱼ = σ̃ⱼ, Lᵢⱼ = (Σᵢⱼ − Σₖ₍ⱼ LᵢₖLⱼₖ)/Lⱼⱼ.
    fn column(&mut self, j: usize, sigma: &Mat<f64>) {
        let d = self.d;
        let ljj = self.cond_var[j].sqrt();
        self.r[(j, j)] = ljj;
        let rest = d - j - 1;
        if rest == 0 {
            return;
        }
        let mut prod = self.col.as_mut().subrows_mut(0, rest);
        matmul(
            prod.as_mut(),
            Accum::Replace,
            self.r.as_ref().submatrix(0, j + 1, j, rest).transpose(),
            self.r.as_ref().submatrix(0, j, j, 1),
            1.0,
            Par::Seq,
        );
        let sigma_col = sigma.col_as_slice(self.perm[j]);
        for t in 0..rest {
            let i = j + 1 + t;
            self.r[(j, i)] = (sigma_col[self.perm[i]] - self.col[(t, 0)]) / ljj;
        }
    }

    /// Conditions the unplaced variables on variable j at its truncated mean `m`.
    fn condition_on(&mut self, j: usize, m: f64) {
        for i in j + 1..self.d {
            let lij = self.r[(j, i)];
            self.cond_mean[i] += lij * m;
            self.cond_var[i] -= lij * lij;
        }
    }
}
