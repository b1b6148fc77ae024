//! The Hessian estimators across scales: a Hessian c·D (D diagonal with a known spectrum) for
//! c from 1e-300 to 1e300. Each estimator gives c times its unit-scale answer (to the
//! stated relative tolerance) with the same convergence flags: the Krylov recurrence runs on
//! H divided by a power of two near its scale, and Hutchinson's variance is formed in two
//! scaled passes.

use basin_flatness::{LanczosConfig, SlqConfig, hutchinson, lanczos, spectral_density};

mod common;
use common::Diagonal;

/// The scales swept.
const SCALES: [f64; 11] = [
    1e-300, 1e-200, 1e-100, 1e-20, 1e-3, 1.0, 7.0, 1e20, 1e100, 1e200, 1e300,
];

/// The Hessian c·diag([`spectrum`]).
fn scaled(c: f64) -> Diagonal {
    Diagonal {
        d: spectrum(),
        c,
        nan: false,
    }
}

/// 200 eigenvalues spread over [−1, 3], with a gap at the top.
fn spectrum() -> Vec<f64> {
    (0..200)
        .map(|i| match i {
            0 => 3.0,
            1 => 2.5,
            _ => -1.0 + 3.0 * (i as f64 / 200.0),
        })
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn lanczos_scales_with_the_hessian_and_keeps_its_flags() {
    let cfg = LanczosConfig {
        top_k: 5,
        ..LanczosConfig::default()
    };
    let theta = vec![0.0; 200];
    let mut unit_obj = scaled(1.0);
    let unit = lanczos(&mut unit_obj, &theta, &cfg).unwrap();
    for c in SCALES {
        let mut obj = scaled(c);
        let s = lanczos(&mut obj, &theta, &cfg).unwrap_or_else(|e| panic!("at {c:e}: {e}"));
        assert_eq!(s.top.converged, unit.top.converged, "flags at {c:e}");
        for (a, b) in s.top.eigenvalues.iter().zip(&unit.top.eigenvalues) {
            assert!(rel(a / c, *b) < 1e-10, "{a:e} at {c:e} vs {b}");
        }
        assert!(
            rel(s.spectral_norm / c, unit.spectral_norm) < 1e-10,
            "{c:e}"
        );
        for (r, u) in s.top.residuals.iter().zip(&unit.top.residuals) {
            assert!(
                r.is_finite() && (r / c - u).abs() <= 1e-10 * unit.spectral_norm,
                "{c:e}"
            );
        }
    }
}

#[test]
fn hutchinson_scales_with_the_hessian() {
    let theta = vec![0.0; 200];
    let unit = hutchinson(&mut scaled(1.0), &theta, 30, 3).unwrap();
    for c in SCALES {
        let t =
            hutchinson(&mut scaled(c), &theta, 30, 3).unwrap_or_else(|e| panic!("at {c:e}: {e}"));
        assert!(rel(t.trace / c, unit.trace) < 1e-12, "{} at {c:e}", t.trace);
        // A diagonal Hessian's zᵀHz is its trace for every Rademacher z: no spread.
        assert!(
            t.std_err.is_finite() && t.std_err <= 1e-12 * t.trace.abs(),
            "{c:e}: {}",
            t.std_err
        );
    }
}

#[test]
fn slq_scales_with_the_hessian() {
    let theta = vec![0.0; 200];
    let cfg = SlqConfig {
        probes: 4,
        steps: 30,
        seed: 1,
        ..SlqConfig::default()
    };
    let unit = spectral_density(&mut scaled(1.0), &theta, &cfg).unwrap();
    for c in SCALES {
        let d = spectral_density(&mut scaled(c), &theta, &cfg)
            .unwrap_or_else(|e| panic!("at {c:e}: {e}"));
        assert!(
            rel(d.mean / c, unit.mean) < 1e-10,
            "mean {} at {c:e}",
            d.mean
        );
        assert!(d.sigma.is_finite() && d.sigma > 0.0, "{c:e}");
        assert!(
            d.grid.iter().chain(&d.density).all(|v| v.is_finite()),
            "{c:e}"
        );
        for (a, b) in d.nodes.iter().zip(&unit.nodes) {
            assert!((a / c - b).abs() < 1e-10 * 3.0, "{a:e} at {c:e} vs {b}");
        }
    }
}
