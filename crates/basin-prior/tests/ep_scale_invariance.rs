//! EP is invariant to the kernel's scale: log P(f) under the step likelihood does not depend
//! on it, and EP (which runs on K/s, s a power of four near K's scale) gives the same value
//! from 1e-300 to 1e300 to 1e-8 relative, bit for bit under powers of four, and refuses a
//! kernel below f64's normal range. Under probit, Φ(y·z) on c·K tends to the step value as
//! c → ∞ and to N·log ½ as c → 0.

use std::path::PathBuf;

use basin_prior::PriorError;
use basin_prior::ep::{EpConfig, EpSchedule, ep};
use basin_prior::likelihood::Likelihood;
use faer::Mat;

/// The scales swept.
const SCALES: [f64; 13] = [
    1e-300, 1e-200, 1e-150, 1e-50, 1e-20, 1e-3, 1.0, 7.0, 1e17, 1e20, 1e50, 1e150, 1e300,
];

/// The relative tolerance of scale invariance.
const REL_TOL: f64 = 1e-8;

fn fixture(name: &str) -> Vec<f64> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gp")
        .join(name);
    basin_data::npy::read(&p)
        .expect("fixture readable")
        .data
        .to_f64()
}

/// GPy's 64-point NNGP kernel times `c`.
fn kernel(c: f64) -> Mat<f64> {
    let v = fixture("K_64.npy");
    Mat::from_fn(64, 64, |i, j| v[i * 64 + j] * c)
}

fn log_p(c: f64, lik: Likelihood, schedule: EpSchedule) -> f64 {
    let y = fixture("y_64.npy");
    let cfg = EpConfig {
        schedule,
        ..EpConfig::default()
    };
    let r = ep(kernel(c).as_ref(), &y, lik, &cfg, None).expect("EP runs");
    assert!(r.estimate.converged, "{lik:?} {schedule:?} at scale {c:e}");
    r.estimate.log_p
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

const SCHEDULES: [EpSchedule; 2] = [EpSchedule::Parallel, EpSchedule::Sequential];

#[test]
fn step_ep_is_scale_invariant_from_1e_minus_300_to_1e300() {
    for schedule in SCHEDULES {
        let unit = log_p(1.0, Likelihood::Step, schedule);
        for c in SCALES {
            let v = log_p(c, Likelihood::Step, schedule);
            assert!(
                rel(v, unit) < REL_TOL,
                "{schedule:?} at {c:e}: {v} against {unit} at scale 1"
            );
        }
    }
}

#[test]
fn step_ep_is_bit_for_bit_invariant_under_powers_of_four() {
    for schedule in SCHEDULES {
        let unit = log_p(1.0, Likelihood::Step, schedule);
        for k in [-400, -100, -1, 1, 100, 400] {
            let c = 4f64.powi(k);
            assert_eq!(log_p(c, Likelihood::Step, schedule), unit, "4^{k}");
        }
    }
}

#[test]
fn probit_ep_tends_to_the_step_value_and_to_n_log_half() {
    let n_log_half = 64.0 * 0.5f64.ln();
    for schedule in SCHEDULES {
        let step = log_p(1.0, Likelihood::Step, schedule);
        for c in SCALES {
            let v = log_p(c, Likelihood::Probit, schedule);
            if c >= 1e17 {
                assert!(
                    rel(v, step) < REL_TOL,
                    "{schedule:?} at {c:e}: {v} vs {step}"
                );
            } else if c <= 1e-20 {
                assert!(rel(v, n_log_half) < REL_TOL, "{schedule:?} at {c:e}: {v}");
            } else {
                assert!(v.is_finite() && v < 0.0, "{schedule:?} at {c:e}: {v}");
            }
        }
    }
}

#[test]
fn a_kernel_below_the_normal_range_is_refused() {
    let y = fixture("y_64.npy");
    let k = kernel(1e-309);
    let r = ep(k.as_ref(), &y, Likelihood::Step, &EpConfig::default(), None);
    let Err(e @ PriorError::KernelScale { .. }) = r else {
        panic!("not refused: {r:?}");
    };
    assert!(e.to_string().contains("multiply the kernel"), "{e}");
}

#[test]
fn sites_come_back_in_the_kernels_units_and_warm_starts_go_in_scaled() {
    let y = fixture("y_64.npy");
    let cfg = EpConfig::default();
    let unit = ep(kernel(1.0).as_ref(), &y, Likelihood::Step, &cfg, None).unwrap();
    let big = ep(kernel(1e40).as_ref(), &y, Likelihood::Step, &cfg, None).unwrap();
    for (a, b) in unit.sites.tau.iter().zip(&big.sites.tau) {
        assert!(rel(b * 1e40, *a) < 1e-6, "τ {a} vs {b}·1e40");
    }
    let warm = ep(
        kernel(1e40).as_ref(),
        &y,
        Likelihood::Step,
        &cfg,
        Some(&big.sites),
    )
    .unwrap();
    assert!(
        warm.estimate.iterations <= 3,
        "{}",
        warm.estimate.iterations
    );
    assert!(rel(warm.estimate.log_p, big.estimate.log_p) < REL_TOL);
}
