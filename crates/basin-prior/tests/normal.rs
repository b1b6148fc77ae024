//! log Φ, Φ, φ/Φ and erfcx against 50-digit mpmath values from z = −40 to 26
//! (`fixtures/normal_reference.py` wrote `fixtures/normal_reference.txt`).

use basin_prior::normal::{cdf, erfcx, inv_mills, log_cdf, log_pdf, pdf};

fn rel(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / b.abs() }
}

/// Rows of (z, Φ, log Φ, φ/Φ, erfcx).
fn table() -> Vec<[f64; 5]> {
    include_str!("fixtures/normal_reference.txt")
        .lines()
        .map(|l| {
            let v: Vec<f64> = l
                .split(',')
                .map(|s| s.trim().parse().expect("number"))
                .collect();
            [v[0], v[1], v[2], v[3], v[4]]
        })
        .collect()
}

#[test]
fn log_cdf_is_accurate_down_to_minus_40() {
    let t = table();
    assert!(t.len() >= 39 && t[0][0] == -40.0);
    for r in &t {
        // 1e-14, plus ε·z² where log Φ ≈ −Φ(−z) ∝ exp(−z²/2) (z > 0).
        let e = rel(log_cdf(r[0]), r[2]);
        assert!(
            e < 1e-14 + 2.2e-16 * r[0].max(0.0).powi(2),
            "z = {}: log Φ rel err {e:e}",
            r[0]
        );
    }
}

#[test]
fn cdf_and_inverse_mills_ratio_are_accurate() {
    for r in table() {
        if r[1] > 1e-300 {
            // exp(−z²/2) carries the rounding of its argument: a relative error ~ε·z²/2.
            let e = rel(cdf(r[0]), r[1]);
            assert!(
                e < 5e-15 + 2.2e-16 * r[0] * r[0],
                "z = {}: Φ rel err {e:e}",
                r[0]
            );
        }
        let e = rel(inv_mills(r[0]), r[3]);
        assert!(
            e < 5e-15 + 2.2e-16 * r[0] * r[0],
            "z = {}: φ/Φ rel err {e:e}",
            r[0]
        );
    }
}

#[test]
fn erfcx_is_accurate_where_finite() {
    for r in table() {
        if r[4] < 1e300 {
            let e = rel(erfcx(r[0]), r[4]);
            assert!(e < 5e-15, "x = {}: erfcx rel err {e:e}", r[0]);
        }
    }
    assert_eq!(erfcx(-30.0), f64::INFINITY);
}

#[test]
fn density_and_special_values() {
    assert!((pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-16);
    assert!((log_pdf(2.0) - (-2.0 - 0.918_938_533_204_672_8)).abs() < 1e-15);
    assert_eq!(cdf(0.0), 0.5);
    assert!(log_cdf(f64::NAN).is_nan() && inv_mills(f64::NAN).is_nan());
    assert_eq!(log_cdf(f64::NEG_INFINITY), f64::NEG_INFINITY);
    assert_eq!(log_cdf(f64::INFINITY), 0.0);
}
