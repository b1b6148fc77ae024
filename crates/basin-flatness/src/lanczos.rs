//! The extreme eigenvalues of the loss Hessian by Lanczos with full reorthogonalisation.
//!
//! Lanczos builds an orthonormal basis `Q_m = [q_0, …, q_{m−1}]` of the Krylov space
//! `span{q_0, H q_0, …, H^{m−1} q_0}` from `m` exact Hessian-vector products, and the
//! tridiagonal `T_m = Q_mᵀ H Q_m`. The eigenvalues of `T_m` (the Ritz values) approximate the
//! eigenvalues of `H` at both ends of the spectrum first. Every new vector is
//! reorthogonalised against the whole basis ("twice is enough": the three-term step, then a
//! full classical Gram–Schmidt pass, and a third pass when the DGKS test asks for it; the
//! crate's private `krylov` module does this reading the basis once per step), so the Ritz
//! values do not come in spurious copies as in plain Lanczos.
//!
//! For a Ritz pair `(θ_i, Q_m s_i)` the residual norm is `r_i = ‖H Q_m s_i − θ_i Q_m s_i‖ =
//! |β_m · s_{m,i}|`, where `β_m` is the norm of the next (unused) Lanczos vector and `s_{m,i}`
//! the last component of the eigenvector `s_i` of `T_m`. There is an eigenvalue of `H` within
//! `r_i` of `θ_i` (and within `r_i² / gap` once `θ_i` is separated from the rest of the
//! spectrum by `gap`). A Ritz value is flagged converged when `r_i + m·ε·‖T_m‖ ≤ tol · |θ_i|`
//! (the second term bounds the round-off that the computed `r_i` leaves out; the eigensolver
//! may return `r_i = 0` for a value converged far below round-off), so that a converged value
//! is within `tol` *relative* of an eigenvalue of `H`.
//!
//! The start vector is a Gaussian vector from ChaCha8 seeded with [`LanczosConfig::seed`],
//! normalised, so a run is reproducible from its recorded seed.

use std::time::Instant;

use basin_nn::{Objective, all_examples};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::FlatnessError;
use crate::checks::check_measured;
use crate::krylov::{Krylov, gaussian_unit};
use crate::tridiagonal::{RitzValues, Tridiagonal};

/// The default number of eigenvalues at the top of the spectrum: the paper's k = 50.
pub const DEFAULT_TOP_K: usize = 50;

/// The default number of Lanczos steps (HVPs). Measured on the 784-40-40-1 MNIST nets of the
/// paper (500 training examples, attack sets of 0 and 500): 100 steps leave the 50th Ritz
/// value up to a few per cent off, while at 200 steps every one of the top 50 has a residual
/// bound below 1e-8 relative (see the README, "basin hessian").
pub const DEFAULT_STEPS: usize = 200;

/// The default relative tolerance of the converged flags (see the module docs).
pub const DEFAULT_TOL: f64 = 1e-8;

/// The settings of a Lanczos run.
#[derive(Debug, Clone, PartialEq)]
pub struct LanczosConfig {
    /// The number of Lanczos steps `m` (one HVP each); capped at the number of parameters.
    pub steps: usize,
    /// How many eigenvalues to report at each end of the spectrum.
    pub top_k: usize,
    /// The seed of the start vector.
    pub seed: u64,
    /// The relative residual tolerance of the converged flags.
    pub tol: f64,
}

impl Default for LanczosConfig {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS,
            top_k: DEFAULT_TOP_K,
            seed: 0,
            tol: DEFAULT_TOL,
        }
    }
}

impl LanczosConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), FlatnessError> {
        if self.steps == 0 {
            return Err(FlatnessError::setting(
                "steps",
                self.steps,
                "Lanczos needs at least 1 step: set the number of steps to 1 or more",
            ));
        }
        if self.top_k == 0 {
            return Err(FlatnessError::setting(
                "top_k",
                self.top_k,
                "top-k must be at least 1: ask for 1 or more eigenvalues",
            ));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(FlatnessError::setting(
                "tol",
                self.tol,
                "the residual tolerance must be > 0",
            ));
        }
        Ok(())
    }
}

/// Ritz values at one end of the spectrum with their residual bounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RitzEnd {
    /// The Ritz values, outermost first (descending at the top, ascending at the bottom).
    pub eigenvalues: Vec<f64>,
    /// The residual norms `|β_m · s_{m,i}|`, in the same order.
    pub residuals: Vec<f64>,
    /// Whether `residuals[i] + m·ε·‖T_m‖ ≤ tol · |eigenvalues[i]|` (m steps; see the module
    /// docs).
    pub converged: Vec<bool>,
}

impl RitzEnd {
    /// The number of converged values.
    pub fn n_converged(&self) -> usize {
        self.converged.iter().filter(|&&c| c).count()
    }

    /// Whether every value converged.
    pub fn all_converged(&self) -> bool {
        self.converged.iter().all(|&c| c)
    }
}

/// The result of [`lanczos`].
///
/// It serialises flat, as `basin hessian --json` prints it: `lambda_max`, `lambda_min`,
/// `spectral_norm`, the top end as `top_eigenvalues`, `residuals`, `converged` and
/// `n_converged`, the bottom end as `bottom_eigenvalues`, `bottom_residuals` and
/// `bottom_converged`, then `log_product_top_k`, `n_positive_top_k`, `lanczos_steps`,
/// `breakdown`, `seed`, `tol` and `lanczos_wall_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// The largest Ritz value: the estimate of λmax.
    pub lambda_max: f64,
    /// The smallest Ritz value: the estimate of λmin.
    pub lambda_min: f64,
    /// max(|λmax|, |λmin|): the spectral norm ‖H‖₂ (the extreme Ritz values converge first).
    pub spectral_norm: f64,
    /// The top-k Ritz values, descending (fewer than k when the run took fewer than k steps).
    pub top: RitzEnd,
    /// The bottom-k Ritz values, ascending.
    pub bottom: RitzEnd,
    /// Σ ln λ_i over the *positive* values among the top k: the paper's log-product. When
    /// fewer than k of the top k are positive the product runs over those only (see
    /// `n_positive_top_k`); 0 when none is positive.
    pub log_product_top_k: f64,
    /// How many of the top-k values are positive.
    pub n_positive_top_k: usize,
    /// Lanczos steps (HVPs) taken.
    pub steps: usize,
    /// True when the run stopped early because the Krylov space became invariant (β ≈ 0):
    /// the Ritz values are then exact eigenvalues of H restricted to that space.
    pub breakdown: bool,
    /// The seed of the start vector.
    pub seed: u64,
    /// The relative residual tolerance of the flags.
    pub tol: f64,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

impl Serialize for Spectrum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_struct("Spectrum", 17)?;
        m.serialize_field("lambda_max", &self.lambda_max)?;
        m.serialize_field("lambda_min", &self.lambda_min)?;
        m.serialize_field("spectral_norm", &self.spectral_norm)?;
        m.serialize_field("top_eigenvalues", &self.top.eigenvalues)?;
        m.serialize_field("residuals", &self.top.residuals)?;
        m.serialize_field("converged", &self.top.converged)?;
        m.serialize_field("n_converged", &self.top.n_converged())?;
        m.serialize_field("bottom_eigenvalues", &self.bottom.eigenvalues)?;
        m.serialize_field("bottom_residuals", &self.bottom.residuals)?;
        m.serialize_field("bottom_converged", &self.bottom.converged)?;
        m.serialize_field("log_product_top_k", &self.log_product_top_k)?;
        m.serialize_field("n_positive_top_k", &self.n_positive_top_k)?;
        m.serialize_field("lanczos_steps", &self.steps)?;
        m.serialize_field("breakdown", &self.breakdown)?;
        m.serialize_field("seed", &self.seed)?;
        m.serialize_field("tol", &self.tol)?;
        m.serialize_field("lanczos_wall_s", &self.wall_s)?;
        m.end()
    }
}

/// The top and bottom `cfg.top_k` eigenvalues of the Hessian of the mean loss over all the
/// objective's examples at `theta`, by `cfg.steps` steps of Lanczos with full
/// reorthogonalisation from a seeded Gaussian start vector.
///
/// Errors: invalid settings, a θ of the wrong length or with non-finite entries, or a
/// non-finite Hessian-vector product.
pub fn lanczos<O: Objective<f64> + ?Sized>(
    obj: &mut O,
    theta: &[f64],
    cfg: &LanczosConfig,
) -> Result<Spectrum, FlatnessError> {
    cfg.validate()?;
    check_measured(obj, theta)?;
    let start = Instant::now();
    let n = theta.len();
    let batch = all_examples(obj.n_examples());
    let mut krylov = Krylov::new(n, cfg.steps.min(n));
    gaussian_unit(&mut ChaCha8Rng::seed_from_u64(cfg.seed), krylov.start_mut());
    let tri = krylov.run(obj, theta, &batch)?;
    let ritz = tri.eigen()?;
    Ok(spectrum(&tri, &ritz, cfg, start.elapsed().as_secs_f64()))
}

fn spectrum(tri: &Tridiagonal, ritz: &RitzValues, cfg: &LanczosConfig, wall_s: f64) -> Spectrum {
    let m = ritz.values.len();
    let k = cfg.top_k.min(m);
    let norm = ritz.values[0].abs().max(ritz.values[m - 1].abs());
    let roundoff = m as f64 * f64::EPSILON * norm;
    let end = |idx: &mut dyn Iterator<Item = usize>| {
        let (mut eigenvalues, mut residuals, mut converged) = (vec![], vec![], vec![]);
        for i in idx.take(k) {
            let (v, r) = (ritz.values[i], (tri.residual_norm() * ritz.last[i]).abs());
            eigenvalues.push(v);
            residuals.push(r);
            converged.push(r + roundoff <= cfg.tol * v.abs());
        }
        RitzEnd {
            eigenvalues,
            residuals,
            converged,
        }
    };
    let top = end(&mut (0..m).rev());
    let bottom = end(&mut (0..m));
    let positive: Vec<f64> = top
        .eigenvalues
        .iter()
        .copied()
        .filter(|&v| v > 0.0)
        .collect();
    let (lambda_max, lambda_min) = (ritz.values[m - 1], ritz.values[0]);
    Spectrum {
        lambda_max,
        lambda_min,
        spectral_norm: lambda_max.abs().max(lambda_min.abs()),
        top,
        bottom,
        log_product_top_k: positive.iter().map(|v| v.ln()).sum(),
        n_positive_top_k: positive.len(),
        steps: m,
        breakdown: tri.breakdown,
        seed: cfg.seed,
        tol: cfg.tol,
        wall_s,
    }
}
