//! Annealed SMC with exact HMC moves (`SmcMover::ExactHmc`: the noise-level path with u | z,
//! HMC on the truncated Gaussian u and z | u at each level) against exact and independent
//! references: the equicorrelated closed form (N = 64; N = 300 ignored as long), SciPy's
//! Genz–Bretz values of the golden set (N = 64), EP on the probit likelihood (essentially
//! exact there) both as the path's end and at the step path's checkpoint; determinism across
//! thread counts; typed errors for the HMC settings.

use basin_prior::PriorError;
use basin_prior::ep::{EpConfig, ep};
use basin_prior::equicorr::{equicorr_kernel, log_orthant_equicorr};
use basin_prior::estimator::Estimator;
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::{CHECKPOINT_SLACK, SmcConfig, SmcMover};

mod common;
use common::{T99_7, golden_kernel, golden_labels, pm_labels};

fn cfg(particles: usize, replicates: usize, seed: u64) -> SmcConfig {
    SmcConfig {
        particles,
        replicates,
        seed,
        mover: SmcMover::ExactHmc,
        ..SmcConfig::default()
    }
}

/// Checks the estimate against an exact value within [`T99_7`] of its standard errors and the
/// standard error below `max_se`; prints the diagnostics.
fn check_equicorr(rho: f64, np: usize, nn: usize, c: &SmcConfig, max_se: f64) {
    let n = np + nn;
    let truth = log_orthant_equicorr(rho, np, nn).unwrap();
    let k = equicorr_kernel(n, rho, 1.0, 0.0);
    let r = c
        .estimate(k.as_ref(), &pm_labels(np, nn), Likelihood::Step)
        .unwrap();
    let (est, se) = (r.estimate.log_p, r.estimate.std_err.unwrap());
    let d = &r.diagnostics;
    eprintln!(
        "ρ={rho} N={n} step: hmc {est:.4} ± {se:.4}, exact {truth:.4} ({:+.2} s.e.), spread \
         {:.3}, {:.1} levels, {:.1} bounces/trajectory, {:.2} s",
        (est - truth) / se,
        d.log_z_spread,
        d.mean_temperatures,
        d.mean_bounces,
        d.wall_s
    );
    assert!((est - truth).abs() < T99_7 * se, "ρ={rho} N={n}");
    assert!(se < max_se, "ρ={rho} N={n}: s.e. {se}");
    assert!(r.estimate.converged, "{:?}", r.issues);
    assert!(d.mean_bounces > 0.0 && d.cap_hits == 0 && d.violations == 0);
}

/// The equicorrelated orthant probability (exact by quadrature), N = 64 (ρ = 0.5, 0.9), step
/// likelihood, 256 particles × 8 replicates: within [`T99_7`] reported standard errors; s.e.
/// < 0.3. (ρ = 0.9 over 20 seeds with 4 replicates: mean error +0.005 nats, sd 0.044.)
#[test]
fn equicorrelated_closed_form_n_64() {
    check_equicorr(0.5, 40, 24, &cfg(256, 8, 1), 0.3);
    check_equicorr(0.9, 32, 32, &cfg(256, 8, 2), 0.3);
}

/// N = 300 (ρ = 0.5), 1024 particles × 4 replicates: within 3 reported standard errors, s.e.
/// < 0.4. Ignored by default: 80 s on 2 idle cores. Measured (seed 3): 1024 particles
/// −193.64 ± 0.12 against the exact −193.64; with 256 particles −194.23 ± 0.11 (−5.4 s.e.;
/// 16 trajectories per level instead of 4: −193.88 ± 0.18): on this kernel the particles
/// lag behind the path's common factor and 256 are too few, a bias the replicates do not
/// show (as with the slice mover, README).
#[test]
#[ignore = "N = 300 with 1024 particles: 80 s; run with --ignored"]
fn equicorrelated_closed_form_n_300() {
    check_equicorr(0.5, 200, 100, &cfg(1024, 4, 3), 0.4);
}

/// GPy's golden set (N = 64, MNIST NNGP kernel, true and 20%-flipped labels), step
/// likelihood, 256 particles × 4 replicates: SciPy's Genz–Bretz values (3 s.e. given) within
/// 3 combined standard errors; s.e. below 0.3 nats; the probit checkpoint within 3 s.e. +
/// [`CHECKPOINT_SLACK`] of EP.
#[test]
fn genz_values_for_n_64_and_ep_at_the_checkpoint() {
    let cases: [(bool, f64, f64); 2] = [
        (false, -39.437886083381926, 0.010976996098432222),
        (true, -48.90341543245954, 0.02434151953076047),
    ];
    let k = golden_kernel(64);
    for (flip, genz, genz_3se) in cases {
        let y = golden_labels(64, flip);
        let r = cfg(256, 4, 6)
            .estimate(k.as_ref(), &y, Likelihood::Step)
            .unwrap();
        let (est, se) = (r.estimate.log_p, r.estimate.std_err.unwrap());
        let combined = (se * se + (genz_3se / 3.0).powi(2)).sqrt();
        let ep_probit = ep(
            k.as_ref(),
            &y,
            Likelihood::Probit,
            &EpConfig::default(),
            None,
        )
        .unwrap()
        .estimate
        .log_p;
        let (pr, pr_se) = r.diagnostics.probit.expect("the path passes s = 1");
        eprintln!(
            "N=64 flip={flip} step: hmc {est:.4} ± {se:.4}, Genz {genz:.4} ({:+.2} s.e.); \
             probit checkpoint {pr:.4} ± {pr_se:.4}, EP {ep_probit:.4}; {:.1} levels, {:.2} s",
            (est - genz) / combined,
            r.diagnostics.mean_temperatures,
            r.diagnostics.wall_s
        );
        assert!((est - genz).abs() < 3.0 * combined, "flip={flip}");
        assert!((pr - ep_probit).abs() < 3.0 * pr_se + CHECKPOINT_SLACK);
        assert!(se < 0.3 && r.estimate.converged, "{:?}", r.issues);
    }
}

/// The probit likelihood's path ends at s = 1: on the golden K_64 (flipped labels) against
/// EP's probit value within 3 s.e. + [`CHECKPOINT_SLACK`]; and on the equicorrelated closed
/// form (K = Σ/s − I, s = ½(1 − ρ), exact) within 3 s.e. 128 particles × 8 replicates: with 4
/// the delta-method s.e. is itself too noisy (once 0.05 where the replicates' spread says
/// 0.15).
#[test]
fn probit_path_against_ep_and_the_closed_form() {
    let k = golden_kernel(64);
    let y = golden_labels(64, true);
    let r = cfg(128, 8, 11)
        .estimate(k.as_ref(), &y, Likelihood::Probit)
        .unwrap();
    let (est, se) = (r.estimate.log_p, r.estimate.std_err.unwrap());
    let ep_probit = ep(
        k.as_ref(),
        &y,
        Likelihood::Probit,
        &EpConfig::default(),
        None,
    )
    .unwrap()
    .estimate
    .log_p;
    eprintln!("probit K_64: hmc {est:.4} ± {se:.4}, EP {ep_probit:.4}");
    assert!((est - ep_probit).abs() < 3.0 * se + CHECKPOINT_SLACK);
    let (rho, np, nn) = (0.5, 40, 24);
    let truth = log_orthant_equicorr(rho, np, nn).unwrap();
    let k = equicorr_kernel(64, rho, 1.0 / (0.5 * (1.0 - rho)), -1.0);
    let r = cfg(128, 8, 12)
        .estimate(k.as_ref(), &pm_labels(np, nn), Likelihood::Probit)
        .unwrap();
    let (est, se) = (r.estimate.log_p, r.estimate.std_err.unwrap());
    eprintln!("probit equicorrelated N=64: hmc {est:.4} ± {se:.4}, exact {truth:.4}");
    assert!((est - truth).abs() < 3.0 * se && se < 0.3);
}

/// The error bar's calibration, as for the slice mover (`tests/smc.rs`): 40 estimates (seeds
/// 100–139, 8 replicates of 64 particles, the default schedule with its pilot) of the
/// equicorrelated N = 24 orthant (ρ = 0.5, step) against the exact value. (Without the pilot
/// the same seeds gave mean z +1.29: the bias of levels chosen from each replicate's own
/// weights.) With an exact error bar z = (est − exact)/s.e. is about
/// Student-t with 7 degrees of freedom (P(|z| < 2) ≈ 0.91, sd 1.2). The test: at least 30 of
/// 40 within 2, |mean z| < 0.8, sd z < 1.8 (a biased path is off by many s.e.).
#[test]
fn standard_error_is_calibrated_over_seeds() {
    let (z, within, mean, sd) = common::smc_calibration(|seed| cfg(64, 8, seed));
    assert!(within >= 30, "{within} of 40 within 2 s.e.: {z:?}");
    assert!(
        mean.abs() < 0.8 && sd < 1.8,
        "mean z {mean}, sd {sd}: {z:?}"
    );
}

/// With the pilot schedule (the HMC default) every replicate visits the pilot's levels, which
/// makes each Ẑ_r unbiased; without it each replicate chooses its own.
#[test]
fn replicates_follow_the_pilots_levels() {
    let k = golden_kernel(64);
    let y = golden_labels(64, false);
    let r = cfg(64, 3, 5)
        .estimate(k.as_ref(), &y, Likelihood::Step)
        .unwrap();
    let pilot = r.diagnostics.pilot.as_ref().expect("a pilot by default");
    assert!(pilot.reached_end && r.estimate.converged, "{:?}", r.issues);
    for run in &r.diagnostics.replicates {
        assert_eq!(run.noise_levels.len(), pilot.noise_levels.len());
        for (a, b) in run.noise_levels.iter().zip(&pilot.noise_levels) {
            assert!(a == b || (a / b - 1.0).abs() < 1e-12, "{a} vs {b}");
        }
        assert_eq!(run.noise_levels.last(), Some(&0.0));
        assert!(run.noise_levels.contains(&1.0), "the probit checkpoint");
    }
    let own = SmcConfig {
        pilot_schedule: false,
        ..cfg(64, 3, 5)
    };
    let r = own.estimate(k.as_ref(), &y, Likelihood::Step).unwrap();
    assert!(r.diagnostics.pilot.is_none());
    let runs = &r.diagnostics.replicates;
    assert!(
        runs.windows(2)
            .any(|w| w[0].noise_levels != w[1].noise_levels)
    );
}

/// The same seed gives the same value, bit for bit, on 1 and 2 threads; another seed another.
#[test]
fn deterministic_from_its_seed_across_thread_counts() {
    common::assert_smc_deterministic_across_threads(|seed| cfg(96, 2, seed));
}

/// Bad HMC settings are typed errors.
#[test]
fn bad_hmc_settings_are_typed_errors() {
    let k = golden_kernel(64);
    let y = golden_labels(64, false);
    for bad in [
        SmcConfig {
            max_bounces: 0,
            ..cfg(64, 2, 0)
        },
        SmcConfig {
            trajectory_time: 0.0,
            ..cfg(64, 2, 0)
        },
        SmcConfig {
            trajectory_time: 4.0,
            ..cfg(64, 2, 0)
        },
    ] {
        let e = bad.estimate(k.as_ref(), &y, Likelihood::Step).unwrap_err();
        assert!(matches!(e, PriorError::Setting { .. }), "{e}");
    }
}
