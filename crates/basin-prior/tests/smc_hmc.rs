//! Annealed SMC with exact HMC moves (`SmcMover::ExactHmc`: the noise-level path with u | z,
//! HMC on the truncated Gaussian u and z | u at each level) against exact and independent
//! references: the equicorrelated closed form (N = 64; N = 300 ignored as long), SciPy's
//! Genz–Bretz values of the golden set (N = 64), EP on the probit likelihood (essentially
//! exact there) both as the path's end and at the step path's checkpoint; determinism across
//! thread counts; typed errors for the HMC settings.

use basin_prior::PriorError;
use basin_prior::ep::{EpConfig, ep};
use basin_prior::equicorr::{equicorr_kernel, log_orthant_equicorr};
use basin_prior::estimate::Issue;
use basin_prior::estimator::Estimator;
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::{CHECKPOINT_SLACK, SmcConfig, SmcMover};
use basin_prior::tilting::{TiltingConfig, log_orthant};

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

/// N = 1: P(f) = ½ exactly for either likelihood and mover, whatever the kernel's scale,
/// with a standard error of 0 and every replicate listed.
#[test]
fn one_point_is_exact() {
    for mover in [SmcMover::ExactHmc, SmcMover::EllipticalSlice] {
        for lik in [Likelihood::Step, Likelihood::Probit] {
            for c in [1e-300, 1.0, 1e300] {
                let k = faer::Mat::from_fn(1, 1, |_, _| c);
                let r = SmcConfig {
                    mover,
                    ..cfg(32, 3, 1)
                }
                .estimate(k.as_ref(), &[1.0], lik)
                .unwrap();
                assert_eq!(r.estimate.log_p, 0.5f64.ln(), "{mover:?} {lik:?} {c:e}");
                assert_eq!(r.estimate.std_err, Some(0.0));
                assert!(r.estimate.converged && r.issues.is_empty());
                assert_eq!(r.diagnostics.log_z_replicates.len(), 3);
                assert_eq!(r.diagnostics.summary().log_prior_probit, Some(0.5f64.ln()));
            }
        }
    }
}

/// A kernel whose diagonal spans 32 orders of magnitude (the golden correlations, variables
/// scaled by 10⁻⁸ … 10⁸) has the step P(f) of its correlation matrix. Before the path ran on
/// the correlation matrix, the spectrum of such a kernel had a round-off negative eigenvalue
/// and the path added a jitter of 1.25e3 to the diagonal, which swamped the small variables:
/// −4.61 ± 0.03, converged, against −7.06. Now: within T99_7 standard errors + 0.02 nats of
/// tilting on the correlation matrix (2¹⁶ samples), converged, with no jitter; likewise for
/// 10⁰ … 10⁸.
#[test]
fn a_diagonal_spanning_many_orders_needs_no_jitter() {
    for (lo, hi) in [(-8.0, 8.0), (0.0, 8.0)] {
        let (k, r, y) = common::spread_kernel(lo, hi);
        let sigma = faer::Mat::from_fn(8, 8, |i, j| y[i] * y[j] * r[(i, j)]);
        let t = TiltingConfig {
            samples: 1 << 16,
            ..TiltingConfig::default()
        };
        let truth = log_orthant(sigma.as_ref(), &t).unwrap().log_p;
        let o = cfg(64, 8, 2)
            .estimate(k.as_ref(), &y, Likelihood::Step)
            .unwrap();
        let (est, se) = (o.estimate.log_p, o.estimate.std_err.unwrap());
        eprintln!(
            "10^{lo}…10^{hi}: {est:.4} ± {se:.4} vs {truth:.4}, {:?}",
            o.issues
        );
        assert!(
            (est - truth).abs() < T99_7 * se + 0.02,
            "{est} ± {se} vs {truth}"
        );
        assert!(o.estimate.converged, "{:?}", o.issues);
        assert_eq!(o.estimate.jitter, 0.0);
        assert!(o.diagnostics.on_correlation);
    }
}

/// Two identical inputs with different labels (P(f) = 0 under the step likelihood; the kernel
/// is singular). Before, the Cholesky jitter made the orthant a wedge of width ~10⁻⁶ that
/// the path chased towards s = 0 with ever more HMC bounces per trajectory: 32 particles × 2
/// replicates ran for over 200 s. Now HMC (no jitter: the zero eigenvalue stays 0) stops
/// choosing levels once trajectories reach their bounce cap, steps to s = 0, finds no
/// particle in the orthant and returns log P = −∞, flagged (not converged; the forced step
/// and the non-finite value are issues); the slice mover, whose Cholesky factor needs a
/// jitter, returns the tiny P(f) of the jittered kernel, flagged (the forced step, and the
/// jitter's effect, which ψ* cannot bound on this singular kernel). Each in well under 60 s.
#[test]
fn an_orthant_empty_in_the_kernels_range_ends_quickly_and_is_flagged() {
    let (k, y) = common::duplicate_point_kernel();
    for mover in [SmcMover::ExactHmc, SmcMover::EllipticalSlice] {
        let c = SmcConfig {
            mover,
            ..cfg(32, 2, 0)
        };
        let t0 = std::time::Instant::now();
        let o = c.estimate(k.as_ref(), &y, Likelihood::Step).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "{mover:?}: {} in {secs:.2} s, {:?}",
            o.estimate.log_p, o.issues
        );
        assert!(secs < 60.0, "{secs} s");
        assert!(!o.estimate.converged);
        assert!(
            o.issues
                .iter()
                .any(|i| matches!(i, Issue::ForcedFinalStep { .. }))
        );
        if mover == SmcMover::ExactHmc {
            assert_eq!(o.estimate.log_p, f64::NEG_INFINITY);
            assert_eq!(o.estimate.jitter, 0.0);
            assert!(
                o.issues
                    .iter()
                    .any(|i| matches!(i, Issue::NotFinite { .. }))
            );
        } else {
            assert!(
                o.issues
                    .iter()
                    .any(|i| matches!(i, Issue::JitterMovesEstimate { .. }))
            );
        }
    }
}

/// On a kernel of scale 1e15 the step likelihood's path still visits the probit checkpoint
/// (at β = √s on the scaled kernel), whose value there equals the step value to far below
/// the error bar (the noise's share is 1e-15); before, the path jumped to s = 0 first and
/// `log_prior_probit` was null.
#[test]
fn the_probit_checkpoint_is_visited_at_any_scale() {
    let k = golden_kernel(64);
    let n = 16;
    let y = golden_labels(64, false)[..n].to_vec();
    let big = faer::Mat::from_fn(n, n, |i, j| 1e15 * k[(i, j)]);
    let o = cfg(64, 4, 3)
        .estimate(big.as_ref(), &y, Likelihood::Step)
        .unwrap();
    let s = o.diagnostics.summary();
    let (p, pse) = (s.log_prior_probit.unwrap(), s.std_err_probit.unwrap());
    let se = o.estimate.std_err.unwrap();
    assert!(
        (p - o.estimate.log_p).abs() < 3.0 * (se + pse),
        "{p} vs {}",
        o.estimate.log_p
    );
}
