//! Annealed SMC with exact HMC moves on the augmented path (`SmcMover::ExactHmc`) against
//! exact and independent references.

use basin_prior::equicorr::{equicorr_kernel, log_orthant_equicorr};
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::{SmcConfig, SmcMover, smc};

mod common;
use common::pm_labels;

fn cfg(particles: usize, replicates: usize, seed: u64) -> SmcConfig {
    SmcConfig {
        particles,
        replicates,
        seed,
        mover: SmcMover::ExactHmc,
        ..SmcConfig::default()
    }
}

/// Checks the estimate against an exact value within 3 of its standard errors and the
/// standard error below `max_se`; prints the diagnostics.
fn check_equicorr(rho: f64, np: usize, nn: usize, c: &SmcConfig, max_se: f64) {
    let n = np + nn;
    let truth = log_orthant_equicorr(rho, np, nn).unwrap();
    let k = equicorr_kernel(n, rho, 1.0, 0.0);
    let r = smc(k.as_ref(), &pm_labels(np, nn), Likelihood::Step, c).unwrap();
    let (est, se) = (r.estimate.log_p, r.estimate.std_err.unwrap());
    let d = &r.diagnostics;
    eprintln!(
        "ρ={rho} N={n} step: hmc {est:.4} ± {se:.4}, exact {truth:.4} ({:+.2} s.e.), spread \
         {:.3}, {:.1} levels, {:.1} sweeps/level, {:.1} bounces/trajectory, {:.2} s",
        (est - truth) / se,
        d.log_z_spread,
        d.mean_temperatures,
        d.replicates[0].sweeps.iter().sum::<usize>() as f64 / d.replicates[0].sweeps.len() as f64,
        d.mean_bounces,
        d.wall_s
    );
    assert!((est - truth).abs() < 3.0 * se, "ρ={rho} N={n}");
    assert!(se < max_se, "ρ={rho} N={n}: s.e. {se}");
    assert!(r.estimate.converged, "{:?}", r.issues);
}

#[test]
fn equicorrelated_closed_form_n_64() {
    check_equicorr(0.5, 40, 24, &cfg(256, 4, 1), 0.3);
    check_equicorr(0.9, 32, 32, &cfg(256, 4, 2), 0.3);
}

#[test]
fn equicorrelated_closed_form_n_300() {
    check_equicorr(0.5, 200, 100, &cfg(256, 4, 3), 0.3);
}
