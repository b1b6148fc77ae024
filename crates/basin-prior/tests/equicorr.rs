//! The equicorrelated closed form against mpmath and the bivariate/trivariate orthant
//! formulas, and EP (parallel and sequential, probit and step forms) against it.

use std::f64::consts::PI;

use basin_prior::ep::{EpConfig, EpSchedule, ep};
use basin_prior::equicorr::{equicorr_kernel, log_orthant_equicorr};
use basin_prior::likelihood::Likelihood;

#[test]
fn matches_small_n_orthant_formulas_to_1e_13() {
    for rho in [0.1, 0.5, 0.9] {
        let asin = f64::asin(rho);
        let want2 = (0.25 + asin / (2.0 * PI)).ln();
        let want2_mixed = (0.25 - asin / (2.0 * PI)).ln();
        let want3 = (0.125 + 3.0 * asin / (4.0 * PI)).ln();
        for (got, want) in [
            (log_orthant_equicorr(rho, 2, 0).unwrap(), want2),
            (log_orthant_equicorr(rho, 1, 1).unwrap(), want2_mixed),
            (log_orthant_equicorr(rho, 3, 0).unwrap(), want3),
            (log_orthant_equicorr(rho, 0, 3).unwrap(), want3),
            (log_orthant_equicorr(rho, 1, 0).unwrap(), 0.5f64.ln()),
        ] {
            assert!((got - want).abs() < 1e-13, "ρ = {rho}: {got} vs {want}");
        }
    }
    assert_eq!(log_orthant_equicorr(0.0, 5, 5).unwrap(), -10.0 * 2f64.ln());
    assert!(log_orthant_equicorr(1.0, 1, 1).is_err());
}

#[test]
fn matches_mpmath_quadrature_to_1e_12_relative() {
    for line in include_str!("fixtures/equicorr_reference.txt").lines() {
        let v: Vec<&str> = line.split_whitespace().collect();
        let rho: f64 = v[0].parse().unwrap();
        let (np, nn): (usize, usize) = (v[1].parse().unwrap(), v[2].parse().unwrap());
        let want: f64 = v[3].parse().unwrap();
        let got = log_orthant_equicorr(rho, np, nn).unwrap();
        let e = (got - want).abs() / want.abs();
        assert!(
            e < 1e-12,
            "ρ={rho} n+={np} n−={nn}: {got} vs {want} ({e:e})"
        );
    }
}

fn labels(np: usize, nn: usize) -> Vec<f64> {
    (0..np + nn)
        .map(|i| if i < np { 1.0 } else { -1.0 })
        .collect()
}

/// EP's error against the exact value, for both likelihoods and both schedules. EP is an
/// approximation: the tolerances are its measured errors with a margin (printed with
/// --nocapture), small relative to |log P|.
#[test]
fn ep_error_against_exact_values() {
    let cases = [
        (0.5, 30, 20, 1e-4),
        (0.9, 50, 50, 1e-4),
        (0.3, 120, 80, 1e-4),
        (0.5, 300, 200, 1e-4),
        (0.8, 1400, 100, 1e-3),
    ];
    for (rho, np, nn, tol) in cases {
        let exact = log_orthant_equicorr(rho, np, nn).unwrap();
        let n = np + nn;
        let y = labels(np, nn);
        let s = (1.0 - rho) / 2.0;
        let forms = [
            (
                "probit K=Σ/s−I",
                Likelihood::Probit,
                equicorr_kernel(n, rho, 1.0 / s, -1.0),
            ),
            (
                "step K=Σ",
                Likelihood::Step,
                equicorr_kernel(n, rho, 1.0, 0.0),
            ),
        ];
        for (name, lik, k) in forms {
            for schedule in [EpSchedule::Parallel, EpSchedule::Sequential] {
                let cfg = EpConfig {
                    schedule,
                    epsilon: 1e-10,
                    ..EpConfig::default()
                };
                let r = ep(k.as_ref(), &y, lik, &cfg, None).unwrap();
                let err = r.estimate.log_p - exact;
                eprintln!(
                    "ρ={rho} n+={np} n−={nn} {name} {schedule:?}: EP {} exact {exact} error {err:+.3e}",
                    r.estimate.log_p
                );
                assert!(r.estimate.converged);
                assert!(err.abs() < tol, "{name}: error {err:e} over {tol}");
            }
        }
    }
}

/// The probit form with a nearly-step split (s → 0) approaches the step form.
#[test]
fn probit_on_scaled_kernel_approaches_step() {
    let (rho, np, nn) = (0.5, 40, 20);
    let n = np + nn;
    let y = labels(np, nn);
    let step = ep(
        equicorr_kernel(n, rho, 1.0, 0.0).as_ref(),
        &y,
        Likelihood::Step,
        &EpConfig::default(),
        None,
    )
    .unwrap()
    .estimate
    .log_p;
    let s = 1e-4 * (1.0 - rho);
    let k = equicorr_kernel(n, rho, 1.0 / s, -1.0);
    let probit = ep(
        k.as_ref(),
        &y,
        Likelihood::Probit,
        &EpConfig::default(),
        None,
    )
    .unwrap()
    .estimate
    .log_p;
    assert!(
        (step - probit).abs() < 1e-3,
        "step {step} vs probit(s→0) {probit}"
    );
}
