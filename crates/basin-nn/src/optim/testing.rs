//! Shared fixtures for the optimizer tests: a small parameter vector, a fixed sequence of
//! gradients, trajectory runners in f64 and f32, and a relative-error assertion.

use super::Optimizer;

/// The starting parameters θ₀.
pub const THETA0: [f64; 3] = [1.0, -2.0, 0.5];

/// The gradients fed to the first, second and third updates.
pub const GRADS: [[f64; 3]; 3] = [[0.1, -0.3, 2.0], [-0.2, 0.4, 1.0], [0.05, 0.5, -1.5]];

/// Asserts |a − e| ≤ tol·|e| elementwise (relative error, `e` nonzero).
pub fn assert_rel(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len());
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let rel = (a - e).abs() / e.abs();
        assert!(
            rel <= tol,
            "[{i}]: got {a:e}, expected {e:e}, relative error {rel:e} > {tol:e}"
        );
    }
}

/// θ after each of the first `steps` updates from [`THETA0`] with [`GRADS`], in f64.
pub fn trajectory_f64(opt: &mut dyn Optimizer<f64>, steps: usize) -> Vec<Vec<f64>> {
    let mut theta = THETA0;
    let mut out = Vec::new();
    for g in &GRADS[..steps] {
        opt.update(&mut theta, g);
        out.push(theta.to_vec());
    }
    out
}

/// θ after each of the first `steps` updates, computed in f32 and widened to f64.
pub fn trajectory_f32(opt: &mut dyn Optimizer<f32>, steps: usize) -> Vec<Vec<f64>> {
    let mut theta = THETA0.map(|x| x as f32);
    let mut out = Vec::new();
    for g in &GRADS[..steps] {
        opt.update(&mut theta, &g.map(|x| x as f32));
        out.push(theta.iter().map(|&x| f64::from(x)).collect());
    }
    out
}

/// Checks an optimizer's first updates against `expected` (exact values evaluated at 40
/// digits and rounded to f64): the f64 run to 1e-15 relative, the f32 run to 1e-6 relative
/// (a few f32 ulps).
pub fn check_hand_values(
    f64_opt: &mut dyn Optimizer<f64>,
    f32_opt: &mut dyn Optimizer<f32>,
    expected: &[[f64; 3]],
) {
    let n = expected.len();
    for (got, want) in trajectory_f64(f64_opt, n).iter().zip(expected) {
        assert_rel(got, want, 1e-15);
    }
    for (got, want) in trajectory_f32(f32_opt, n).iter().zip(expected) {
        assert_rel(got, want, 1e-6);
    }
}
