//! The spectral density of the loss Hessian by stochastic Lanczos quadrature (Ubaru, Chen &
//! Saad 2017; as used for neural-network Hessians by Ghorbani, Krishnan & Xiao 2019).
//!
//! For a unit probe `v` (Rademacher entries / √n), `m` Lanczos steps from `v` give the
//! tridiagonal `T_m` with eigenpairs `(θ_i, s_i)`; the nodes `θ_i` and weights `τ_i = s_{1,i}²`
//! form an m-point Gauss quadrature of the spectral measure `Σ_j (vᵀu_j)² δ(t − λ_j)`, whose
//! expectation over `v` is the normalised density `(1/n) Σ_j δ(t − λ_j)`. Averaging over
//! probes and replacing each δ by a Gaussian of width σ gives a smooth density φ(t) that
//! integrates to 1 and has mean `Σ τ_i θ_i` (the Hutchinson estimate of tr H / n).
//! The Lanczos runs use full reorthogonalisation ([`crate::lanczos`]).

use std::time::Instant;

use basin_nn::{Objective, all_examples};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::FlatnessError;
use crate::checks::check_measured;
use crate::hutchinson::rademacher;
use crate::krylov::Krylov;

/// The settings of [`spectral_density`].
#[derive(Debug, Clone, PartialEq)]
pub struct SlqConfig {
    /// The number of random probes (independent Lanczos runs).
    pub probes: usize,
    /// Lanczos steps per probe (capped at the number of parameters).
    pub steps: usize,
    /// The seed of the probes.
    pub seed: u64,
    /// The Gaussian broadening σ as a fraction of the width of the spectrum (largest node −
    /// smallest node).
    pub sigma_rel: f64,
    /// The number of grid points.
    pub grid_points: usize,
}

impl Default for SlqConfig {
    fn default() -> Self {
        Self {
            probes: 10,
            steps: 80,
            seed: 0,
            sigma_rel: 0.01,
            grid_points: 1001,
        }
    }
}

impl SlqConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), FlatnessError> {
        let fix = "SLQ needs at least 1 probe and 1 step";
        if self.probes == 0 {
            return Err(FlatnessError::setting("probes", self.probes, fix));
        }
        if self.steps == 0 {
            return Err(FlatnessError::setting("steps", self.steps, fix));
        }
        if !(self.sigma_rel.is_finite() && self.sigma_rel > 0.0) {
            return Err(FlatnessError::setting(
                "sigma_rel",
                self.sigma_rel,
                "the relative broadening must be > 0",
            ));
        }
        if self.grid_points < 2 {
            return Err(FlatnessError::setting(
                "grid_points",
                self.grid_points,
                "the density grid needs at least 2 points",
            ));
        }
        Ok(())
    }
}

/// A smoothed spectral density, as data for a plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpectralDensity {
    /// The grid of eigenvalues t, ascending, evenly spaced from the smallest node − 5σ to the
    /// largest node + 5σ.
    pub grid: Vec<f64>,
    /// φ(t) on the grid (per unit of eigenvalue; integrates to 1).
    pub density: Vec<f64>,
    /// The Gaussian broadening σ.
    pub sigma: f64,
    /// The quadrature nodes θ_i of every probe, concatenated probe by probe.
    pub nodes: Vec<f64>,
    /// Their weights τ_i / probes (they sum to 1).
    pub weights: Vec<f64>,
    /// The mean of the density, Σ weights · nodes: an estimate of tr H / n.
    pub mean: f64,
    /// The number of probes.
    pub probes: usize,
    /// The Lanczos steps per probe.
    pub steps: usize,
    /// Wall-clock seconds.
    pub wall_s: f64,
}

/// The spectral density of the Hessian of the mean loss over all the objective's examples at
/// `theta` by stochastic Lanczos quadrature.
///
/// Errors: invalid settings, a θ of the wrong length or with non-finite entries, or a
/// non-finite Hessian-vector product.
pub fn spectral_density<O: Objective<f64> + ?Sized>(
    obj: &mut O,
    theta: &[f64],
    cfg: &SlqConfig,
) -> Result<SpectralDensity, FlatnessError> {
    cfg.validate()?;
    check_measured(obj, theta)?;
    let start = Instant::now();
    let n = theta.len();
    let batch = all_examples(obj.n_examples());
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut krylov = Krylov::new(n, cfg.steps.min(n));
    let (mut nodes, mut weights) = (Vec::new(), Vec::new());
    let inv_sqrt_n = 1.0 / (n as f64).sqrt();
    for _ in 0..cfg.probes {
        let v = krylov.start_mut();
        rademacher(&mut rng, v);
        v.iter_mut().for_each(|x| *x *= inv_sqrt_n);
        let ritz = krylov.run(obj, theta, &batch)?.eigen()?;
        nodes.extend_from_slice(&ritz.values);
        let p = cfg.probes as f64;
        weights.extend(ritz.first.iter().map(|s| s * s / p));
    }
    let mean = nodes.iter().zip(&weights).map(|(t, w)| t * w).sum();
    let (grid, density, sigma) = broaden(&nodes, &weights, cfg);
    Ok(SpectralDensity {
        grid,
        density,
        sigma,
        nodes,
        weights,
        mean,
        probes: cfg.probes,
        steps: cfg.steps.min(n),
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// The grid, the Gaussian-broadened density of the weighted nodes on it, and σ.
fn broaden(nodes: &[f64], weights: &[f64], cfg: &SlqConfig) -> (Vec<f64>, Vec<f64>, f64) {
    let lo = nodes.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = nodes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = hi - lo;
    let sigma = if width > 0.0 {
        cfg.sigma_rel * width
    } else {
        cfg.sigma_rel * lo.abs().max(1.0)
    };
    let (a, b) = (lo - 5.0 * sigma, hi + 5.0 * sigma);
    let step = (b - a) / (cfg.grid_points - 1) as f64;
    let grid: Vec<f64> = (0..cfg.grid_points).map(|i| a + step * i as f64).collect();
    let norm = 1.0 / (sigma * std::f64::consts::TAU.sqrt());
    let density = grid
        .iter()
        .map(|&t| {
            nodes
                .iter()
                .zip(weights)
                .map(|(&x, &w)| w * (-0.5 * ((t - x) / sigma).powi(2)).exp())
                .sum::<f64>()
                * norm
        })
        .collect();
    (grid, density, sigma)
}
