//! The generalization bounds against hand-computed values and edge cases.

use basin_prior::bounds::{marginal_likelihood_bound, occam_bound};

#[test]
fn occam_bound_hand_values() {
    // (ln 1/P + ln 1/δ)/m with ln P = −100, δ = 0.05, m = 500: (100 + 2.995732273553991)/500.
    let b = occam_bound(-100.0, 500, 0.05).unwrap();
    assert!((b - 0.205_991_464_547_108).abs() < 1e-14, "{b}");
    // P = 1, δ = 1/e, m = 1: exactly 1.
    assert!((occam_bound(0.0, 1, (-1.0f64).exp()).unwrap() - 1.0).abs() < 1e-15);
    assert_eq!(
        occam_bound(f64::NEG_INFINITY, 10, 0.1).unwrap(),
        f64::INFINITY
    );
}

#[test]
fn marginal_likelihood_bound_hand_values() {
    // ln P(S) = −100, m = 500, δ = 0.05: c = (100 + ln 20000)/499 = 0.2202475…;
    // ε̄ = 1 − e^{−c} = 0.1976798….
    let c: f64 = (100.0 + 20000f64.ln()) / 499.0;
    let want = 1.0 - (-c).exp();
    let b = marginal_likelihood_bound(-100.0, 500, 0.05).unwrap();
    assert!(
        (b - want).abs() < 1e-15 && (b - 0.197_679_8).abs() < 1e-7,
        "{b}"
    );
    // A huge −ln P(S) approaches 1 but stays below it.
    let b = marginal_likelihood_bound(-1e5, 100, 0.05).unwrap();
    assert!(b <= 1.0 && b > 0.999_999);
}

#[test]
fn bad_arguments_are_errors() {
    assert!(occam_bound(0.5, 10, 0.1).is_err());
    assert!(occam_bound(f64::NAN, 10, 0.1).is_err());
    assert!(occam_bound(-1.0, 0, 0.1).is_err());
    assert!(occam_bound(-1.0, 10, 0.0).is_err());
    assert!(occam_bound(-1.0, 10, 1.0).is_err());
    assert!(marginal_likelihood_bound(-1.0, 1, 0.1).is_err());
}
