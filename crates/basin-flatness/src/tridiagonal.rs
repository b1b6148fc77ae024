//! The Lanczos tridiagonal `T_m` and its eigendecomposition (the Ritz values), shared by the
//! Krylov iteration that builds it and the measures that read it.

use faer::{Mat, Side};

use crate::FlatnessError;

/// The Lanczos tridiagonal `T_m` of H/`unit`: its diagonal `alpha` (length m), off-diagonal
/// `beta` (length m − 1) and the norm `beta_last` of the residual vector after step m, all in
/// the units of H/`unit` (`unit` a power of two that brings H to unit order).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tridiagonal {
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
    pub beta_last: f64,
    pub breakdown: bool,
    pub unit: f64,
}

/// The eigenvalues of `T_m` ascending, with the first and last components of their unit
/// eigenvectors.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RitzValues {
    pub values: Vec<f64>,
    pub first: Vec<f64>,
    pub last: Vec<f64>,
}

impl Tridiagonal {
    /// The eigendecomposition of `T_m` (faer's self-adjoint eigensolver), with the Ritz values
    /// in H's units.
    pub fn eigen(&self) -> Result<RitzValues, FlatnessError> {
        let m = self.alpha.len();
        let t = Mat::<f64>::from_fn(m, m, |i, j| match i.abs_diff(j) {
            0 => self.alpha[i],
            1 => self.beta[i.min(j)],
            _ => 0.0,
        });
        let evd = t
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| FlatnessError::Eigensolver {
                matrix: "Lanczos tridiagonal",
                n: m,
                detail: format!("{e:?}"),
            })?;
        let (s, u) = (evd.S(), evd.U());
        Ok(RitzValues {
            values: (0..m).map(|i| s[i] * self.unit).collect(),
            first: (0..m).map(|i| u[(0, i)]).collect(),
            last: (0..m).map(|i| u[(m - 1, i)]).collect(),
        })
    }

    /// The norm of the residual vector after step m, in H's units.
    pub fn residual_norm(&self) -> f64 {
        self.beta_last * self.unit
    }
}
