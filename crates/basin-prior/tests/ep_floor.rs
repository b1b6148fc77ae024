//! EP's second stopping rule, the sites' rounding floor. On a nearly constant kernel (1 plus
//! 0.7–5% of an RBF on a few inputs, as a ResNet's kernel at init is) the step likelihood
//! drives site precisions to 10⁴…10⁵, and parallel EP's mean squared site change stops
//! falling above ε while log Z has settled. Such a run stops at the floor, and its log Z is
//! the fixed point that sequential EP reaches by GPy's own rule, to 10⁻⁶ nats. A run that
//! oscillates is not stopped by the floor rule: it stays unconverged, and damping reaches
//! the same fixed point.

use basin_prior::ep::{EpConfig, EpSchedule, FALLBACK_DAMPINGS, ep, ep_to_fixed_point};
use basin_prior::likelihood::Likelihood;
use faer::Mat;
use rand::{RngExt, SeedableRng};

/// How far a floor stop's log Z may be from sequential EP's (nats).
const TOL: f64 = 1e-6;

/// n inputs uniform in [−1, 1]^d; K = 1 + amp·exp(−|x − x′|²/2); labels by a fixed plane.
fn nearly_constant(n: usize, amp: f64, d: usize) -> (Mat<f64>, Vec<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let x: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let k = Mat::from_fn(n, n, |i, j| {
        let d2: f64 = x[i].iter().zip(&x[j]).map(|(a, b)| (a - b) * (a - b)).sum();
        1.0 + amp * (-d2 / 2.0).exp()
    });
    let y = x
        .iter()
        .map(|v| if v[0] + 0.3 * v[1] > 0.0 { 1.0 } else { -1.0 })
        .collect();
    (k, y)
}

fn config(schedule: EpSchedule) -> EpConfig {
    EpConfig {
        schedule,
        max_sweeps: 400,
        ..EpConfig::default()
    }
}

/// Asserts that `log_p` is within [`TOL`] of sequential EP's log Z, converged by GPy's rule
/// (not at the floor); returns that reference.
fn assert_at_sequential_fixed_point(log_p: f64, k: &Mat<f64>, y: &[f64], what: &str) -> f64 {
    let reference = sequential_reference(k, y);
    let gap = (log_p - reference).abs();
    assert!(gap < TOL, "{what} {log_p} vs sequential {reference}");
    reference
}

/// Sequential EP's log Z, converged by GPy's rule (not at the floor).
fn sequential_reference(k: &Mat<f64>, y: &[f64]) -> f64 {
    let r = ep(
        k.as_ref(),
        y,
        Likelihood::Step,
        &config(EpSchedule::Sequential),
        None,
    )
    .unwrap();
    assert!(r.estimate.converged && !r.diagnostics.stopped_at_floor);
    r.estimate.log_p
}

#[test]
fn parallel_ep_stops_at_the_rounding_floor_at_sequential_eps_fixed_point() {
    let (k, y) = nearly_constant(300, 0.007, 5);
    let r = ep(
        k.as_ref(),
        &y,
        Likelihood::Step,
        &config(EpSchedule::Parallel),
        None,
    )
    .unwrap();
    let tau_max = r.sites.tau.iter().cloned().fold(0.0, f64::max);
    assert!(tau_max > 1e3, "the sites reach large precisions: {tau_max}");
    assert!(r.estimate.converged && r.diagnostics.stopped_at_floor);
    assert!(
        r.estimate.iterations < 60,
        "{} sweeps",
        r.estimate.iterations
    );
    assert_at_sequential_fixed_point(r.estimate.log_p, &k, &y, "floor stop");
}

#[test]
fn an_oscillating_run_is_not_stopped_at_the_floor_and_damping_reaches_the_fixed_point() {
    let (k, y) = nearly_constant(200, 0.01, 3);
    let cfg = config(EpSchedule::Parallel);
    let undamped = ep(k.as_ref(), &y, Likelihood::Step, &cfg, None).unwrap();
    assert!(!undamped.estimate.converged && !undamped.diagnostics.stopped_at_floor);
    let (damped, damping) =
        ep_to_fixed_point(k.as_ref(), &y, Likelihood::Step, &cfg, None).unwrap();
    assert!(damped.estimate.converged);
    assert!(FALLBACK_DAMPINGS.contains(&damping));
    let reference = assert_at_sequential_fixed_point(damped.estimate.log_p, &k, &y, "damped");
    let gap_undamped = (undamped.estimate.log_p - reference).abs();
    assert!(
        gap_undamped > 0.1,
        "the oscillating run is elsewhere: {gap_undamped}"
    );
}
