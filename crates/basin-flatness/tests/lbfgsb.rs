//! L-BFGS-B against problems with known solutions, and the L-BFGS-B Keskar sharpness against
//! its closed form for a linear loss.

mod common;

use basin_flatness::keskar::{KeskarConfig, sharpness_sgd};
use basin_flatness::lbfgsb::{LbfgsbConfig, LbfgsbStatus, minimize, sharpness_lbfgsb};
use basin_nn::{FcnObjective, FcnSpec, Objective};
use common::{golden, golden_to_basin};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn converge() -> LbfgsbConfig {
    LbfgsbConfig {
        max_iter: 1000,
        pgtol: 1e-8,
        factr: 0.0,
        ..LbfgsbConfig::default()
    }
}

/// A seeded SPD matrix A = QᵀQ/n + I/2 and a vector b.
fn quadratic(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let q: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|k| q[k * n + i] * q[k * n + j]).sum::<f64>() / n as f64;
        }
        a[i * n + i] += 0.5;
    }
    let b = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
    (a, b)
}

fn grad_quadratic(a: &[f64], b: &[f64], x: &[f64], g: &mut [f64]) -> f64 {
    let n = x.len();
    let mut f = 0.0;
    for i in 0..n {
        g[i] = (0..n).map(|j| a[i * n + j] * x[j]).sum::<f64>() - b[i];
        f += 0.5 * x[i] * (g[i] - b[i]);
    }
    f
}

/// The box-constrained convex quadratic: L-BFGS-B's answer satisfies the KKT conditions to
/// 1e-8 and agrees with projected gradient descent (an independent method) to 1e-8.
#[test]
fn box_constrained_quadratic_reaches_the_kkt_point() {
    let n = 30;
    let (a, b) = quadratic(n, 11);
    let lo = vec![-1.0; n];
    let hi = vec![0.5; n];
    let mut x = vec![0.0; n];
    let mut f = |x: &[f64], g: &mut [f64]| grad_quadratic(&a, &b, x, g);
    let rep = minimize(&mut f, &mut x, &lo, &hi, &converge()).unwrap();
    assert_eq!(rep.status, LbfgsbStatus::ProjectedGradient, "{rep:?}");
    let mut g = vec![0.0; n];
    grad_quadratic(&a, &b, &x, &mut g);
    let mut active = 0;
    for i in 0..n {
        if x[i] == lo[i] {
            assert!(g[i] >= -1e-8, "{i}: {}", g[i]);
            active += 1;
        } else if x[i] == hi[i] {
            assert!(g[i] <= 1e-8, "{i}: {}", g[i]);
            active += 1;
        } else {
            assert!(g[i].abs() < 1e-8, "{i}: {}", g[i]);
        }
    }
    assert!(
        active > 3 && active < n,
        "a useful test has active and free bounds: {active}"
    );
    // Projected gradient descent with step 1/L (L ≤ trace A) from the same start.
    let lip: f64 = (0..n).map(|i| a[i * n + i]).sum();
    let mut z = vec![0.0; n];
    for _ in 0..200_000 {
        grad_quadratic(&a, &b, &z, &mut g);
        for i in 0..n {
            z[i] = (z[i] - g[i] / lip).clamp(lo[i], hi[i]);
        }
    }
    let err = x
        .iter()
        .zip(&z)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-8, "{err}");
}

fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
    let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
    g[0] = -2.0 * a - 400.0 * x[0] * b;
    g[1] = 200.0 * b;
    a * a + 100.0 * b * b
}

/// Unbounded Rosenbrock from (−1.2, 1): the minimum (1, 1) to 1e-6.
#[test]
fn unbounded_rosenbrock() {
    let mut x = vec![-1.2, 1.0];
    let inf = f64::INFINITY;
    let rep = minimize(&mut rosenbrock, &mut x, &[-inf; 2], &[inf; 2], &converge()).unwrap();
    assert!(
        (x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6,
        "{x:?} {rep:?}"
    );
}

/// Rosenbrock with x₀ ≤ 0.5: the minimum is on the bound, at (0.5, 0.25), to 1e-6.
#[test]
fn rosenbrock_with_an_active_bound() {
    let mut x = vec![-1.2, 1.0];
    let rep = minimize(
        &mut rosenbrock,
        &mut x,
        &[-2.0, -2.0],
        &[0.5, 2.0],
        &converge(),
    )
    .unwrap();
    assert_eq!(x[0], 0.5, "{rep:?}");
    assert!((x[1] - 0.25).abs() < 1e-6, "{x:?}");
}

#[test]
fn limits_and_bad_problems() {
    let mut x = vec![-1.2, 1.0];
    let cfg = LbfgsbConfig {
        max_iter: 3,
        ..LbfgsbConfig::default()
    };
    let rep = minimize(&mut rosenbrock, &mut x, &[-2.0; 2], &[2.0; 2], &cfg).unwrap();
    assert_eq!(
        (rep.status, rep.iterations),
        (LbfgsbStatus::MaxIterations, 3)
    );
    assert!(minimize(&mut rosenbrock, &mut x, &[1.0, 0.0], &[0.0, 1.0], &cfg).is_err());
    assert!(minimize(&mut rosenbrock, &mut x, &[0.0], &[1.0], &cfg).is_err());
    let mut nan = |_: &[f64], _: &mut [f64]| f64::NAN;
    let err = minimize(&mut nan, &mut x, &[-2.0; 2], &[2.0; 2], &cfg).unwrap_err();
    assert!(err.to_string().contains("evaluation 0"), "{err}");
}

/// L(θ) = cᵀθ/n_examples summed over examples, i.e. mean of cᵀθ: linear, so the box's maximum
/// is at the corner θ + sign(c)·ε(|θ| + 1), with rise Σ|c_i| ε(|θ_i| + 1).
struct Linear {
    c: Vec<f64>,
}

impl Objective<f64> for Linear {
    fn n_params(&self) -> usize {
        self.c.len()
    }
    fn n_examples(&self) -> usize {
        4
    }
    fn loss(&mut self, theta: &[f64], _: &[usize]) -> f64 {
        self.c.iter().zip(theta).map(|(c, t)| c * t).sum()
    }
    fn loss_grad(&mut self, theta: &[f64], batch: &[usize], grad: &mut [f64]) -> f64 {
        grad.copy_from_slice(&self.c);
        self.loss(theta, batch)
    }
    fn hvp(&mut self, _: &[f64], _: &[usize], _: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn count_errors(&mut self, _: &[f64], _: &[usize]) -> usize {
        0
    }
}

/// Both ascents reach the exact corner of a linear loss: sharpness to 1e-12 relative.
#[test]
fn linear_loss_sharpness_has_its_closed_form() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 50;
    let c: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let theta: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
    let eps = 1e-3;
    let l0: f64 = c.iter().zip(&theta).map(|(c, t)| c * t).sum();
    let rise: f64 = c
        .iter()
        .zip(&theta)
        .map(|(c, t)| c.abs() * eps * (t.abs() + 1.0))
        .sum();
    let exact = 100.0 * rise / (1.0 + l0);
    let mut obj = Linear { c };
    let (s, rep) = sharpness_lbfgsb(&mut obj, &theta, eps, &LbfgsbConfig::default()).unwrap();
    assert!(
        (s.sharpness - exact).abs() < 1e-12 * exact,
        "{} vs {exact} {rep:?}",
        s.sharpness
    );
    let cfg = KeskarConfig {
        epsilon: eps,
        lr: 1.0,
        epochs: 5,
        ..KeskarConfig::paper()
    };
    let sgd = sharpness_sgd(&mut obj, &theta, &cfg).unwrap();
    let s = sgd.sharpness.sharpness;
    assert!((s - exact).abs() < 1e-12 * exact, "{s} vs {exact}");
}

/// On the golden MLP, L-BFGS-B stays in the box and rises at least as far as its first
/// projected-gradient step; with 10 iterations it finds a higher loss than 12 SGD steps.
#[test]
fn lbfgsb_sharpness_on_the_golden_mlp() {
    let spec = FcnSpec::paper(784);
    let x = golden("mlp_x");
    let y: Vec<u8> = golden("mlp_y").iter().map(|&v| v as u8).collect();
    let mut obj = FcnObjective::<f64>::new(&spec, &x, &y).unwrap();
    let theta = golden_to_basin(&spec, &golden("mlp_params_flat"));
    let (s, rep) = sharpness_lbfgsb(&mut obj, &theta, 1e-4, &LbfgsbConfig::default()).unwrap();
    assert!(rep.iterations >= 1 && rep.iterations <= 10, "{rep:?}");
    assert!((s.loss - 0.8057434563163764).abs() < 1e-12);
    // The golden SGD ascent reached 0.8121949256476496 in 12 steps.
    assert!(s.max_loss > 0.8121949256476496, "{s:?}");
    assert!(s.sharpness > 0.357, "{s:?}");
}
