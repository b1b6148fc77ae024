//! The Gaussian approximation G = N(μ, Σ) of a level's target that the slice moves use as
//! their ellipse's distribution: the prior times EP's Gaussian sites, Σ = (K⁻¹ + T)⁻¹,
//! μ = Σν̃ (T = diag τ̃). Writing π_β = G·R, the residual is separable,
//! log R(z) = ℓ_β(z) + Σᵢ(½τ̃ᵢzᵢ² − ν̃ᵢzᵢ) + const, so a slice proposal still costs O(N); and
//! since G is close to π_β, the ellipses are wide and the moves mix in a few steps where
//! slice sampling against the prior alone crawls (the posterior of a step likelihood is far
//! narrower than the prior). Any τ̃ ≥ 0 and ν̃ leave the moves exact; EP only makes them fast.
//!
//! With L the Cholesky factor of K, Σ = L·C⁻¹·Lᵀ for C = I + LᵀTL = MMᵀ (C's eigenvalues are
//! ≥ 1, so its factorisation is safe however ill-conditioned K is); a draw from N(0, Σ) is
//! L·M⁻ᵀξ.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatMut, MatRef, Par};

/// G = N(μ, Σ) from sites (τ̃, ν̃) on z; without sites, the prior N(0, K).
pub(crate) struct Gaussian {
    /// μ.
    pub mean: Vec<f64>,
    /// τ̃ (≥ 0).
    pub tau: Vec<f64>,
    /// ν̃.
    pub nu: Vec<f64>,
    /// M, the lower Cholesky factor of C = I + LᵀTL (`None`: no sites, Σ = K).
    pub m: Option<Mat<f64>>,
}

impl Gaussian {
    /// The prior N(0, K): no sites.
    pub fn prior(n: usize) -> Self {
        Gaussian {
            mean: vec![0.0; n],
            tau: vec![0.0; n],
            nu: vec![0.0; n],
            m: None,
        }
    }

    /// The prior N(0, LLᵀ) times the sites (τ̃ clipped at 0); `None` when C has no Cholesky
    /// factor (non-finite sites).
    pub fn from_sites(l: MatRef<'_, f64>, tau: &[f64], nu: &[f64]) -> Option<Self> {
        let n = l.nrows();
        let tau: Vec<f64> = tau.iter().map(|&t| t.max(0.0)).collect();
        if tau.iter().chain(nu).any(|v| !v.is_finite()) {
            return None;
        }
        let w = Mat::from_fn(n, n, |i, j| {
            if j <= i {
                tau[i].sqrt() * l[(i, j)]
            } else {
                0.0
            }
        });
        let mut c = Mat::<f64>::zeros(n, n);
        matmul(
            c.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            w.transpose(),
            BlockStructure::TriangularUpper,
            w.as_ref(),
            BlockStructure::TriangularLower,
            1.0,
            Par::Seq,
        );
        for i in 0..n {
            c[(i, i)] += 1.0;
        }
        let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(
            n,
            Par::Seq,
            Default::default(),
        ));
        cholesky_in_place(
            c.as_mut(),
            LltRegularization::default(),
            Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .ok()?;
        // μ = L·M⁻ᵀ·M⁻¹·Lᵀν̃.
        let mut v = Mat::from_fn(n, 1, |i, _| (i..n).map(|k| l[(k, i)] * nu[k]).sum::<f64>());
        solve_lower_triangular_in_place(c.as_ref(), v.as_mut(), Par::Seq);
        solve_upper_triangular_in_place(c.as_ref().transpose(), v.as_mut(), Par::Seq);
        let mean: Vec<f64> = (0..n)
            .map(|i| (0..=i).map(|k| l[(i, k)] * v[(k, 0)]).sum::<f64>())
            .collect();
        mean.iter().all(|m| m.is_finite()).then_some(Gaussian {
            mean,
            tau,
            nu: nu.to_vec(),
            m: Some(c),
        })
    }

    /// Σᵢ(½τ̃ᵢzᵢ² − ν̃ᵢzᵢ): log R(z) − ℓ_β(z) up to a constant.
    pub fn site_term(&self, z: &[f64]) -> f64 {
        if self.m.is_none() {
            return 0.0;
        }
        z.iter()
            .zip(self.tau.iter().zip(&self.nu))
            .map(|(&x, (&t, &v))| x * (0.5 * t * x - v))
            .sum()
    }

    /// Turns standard normals `xi` (n × w, column-major) in place into draws from N(0, Σ),
    /// written to `out`.
    pub fn draw(&self, l: MatRef<'_, f64>, xi: &mut [f64], out: &mut [f64]) {
        let n = l.nrows();
        let w = out.len() / n;
        let mut xi = MatMut::from_column_major_slice_mut(&mut xi[..n * w], n, w);
        if let Some(m) = &self.m {
            solve_upper_triangular_in_place(m.as_ref().transpose(), xi.as_mut(), Par::Seq);
        }
        matmul(
            MatMut::from_column_major_slice_mut(out, n, w),
            BlockStructure::Rectangular,
            Accum::Replace,
            l,
            BlockStructure::TriangularLower,
            xi.as_ref(),
            BlockStructure::Rectangular,
            1.0,
            Par::Seq,
        );
    }
}
