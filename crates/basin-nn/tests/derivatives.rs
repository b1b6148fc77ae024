//! Exactness of the engine's derivatives on smooth nets (tanh, erf) against central finite
//! differences in f64, symmetry of the Hessian, f32 against f64, and independence from how a
//! batch is chunked or ordered. Tolerances are stated per assertion.

mod common;

use basin_nn::{Activation, FcnObjective, FcnSpec, Objective, all_examples};
use common::rel_err;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn smooth_net(act: Activation, n: usize, seed: u64) -> (FcnSpec, FcnObjective<f64>, Vec<f64>) {
    let spec = FcnSpec {
        input_dim: 6,
        hidden: vec![9, 7],
        activation: act,
        sigma_w: 1.5,
        sigma_b: 0.5,
    };
    let (x, y) = random_data(n, seed);
    let obj = FcnObjective::new(&spec, &x, &y).unwrap();
    let theta = spec.init(seed);
    (spec, obj, theta)
}

fn random_data(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * 6).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<u8> = (0..n).map(|_| rng.random_range(0..2u8)).collect();
    (x, y)
}

fn random_dir(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn gradient_and_hvp_match_central_differences() {
    for act in [Activation::Tanh, Activation::Erf] {
        let (spec, mut obj, theta) = smooth_net(act, 40, 1);
        let batch = all_examples(40);
        let n = spec.n_params();
        let mut grad = vec![0.0; n];
        obj.loss_grad(&theta, &batch, &mut grad);
        let h = 1e-6;
        let mut t = theta.clone();
        let fd: Vec<f64> = (0..n)
            .map(|i| {
                t[i] = theta[i] + h;
                let up = obj.loss(&t, &batch);
                t[i] = theta[i] - h;
                let down = obj.loss(&t, &batch);
                t[i] = theta[i];
                (up - down) / (2.0 * h)
            })
            .collect();
        // Central differences in f64 with h = 1e-6: truncation ~1e-12, round-off ~1e-10.
        assert!(
            rel_err(&grad, &fd) < 1e-6,
            "{act}: gradient {:e}",
            rel_err(&grad, &fd)
        );

        let v = random_dir(n, 2);
        let mut hv = vec![0.0; n];
        obj.hvp(&theta, &batch, &v, &mut hv);
        let shifted = |s: f64, obj: &mut FcnObjective<f64>| {
            let tp: Vec<f64> = theta.iter().zip(&v).map(|(a, b)| a + s * b).collect();
            let mut g = vec![0.0; n];
            obj.loss_grad(&tp, &batch, &mut g);
            g
        };
        let (gp, gm) = (shifted(h, &mut obj), shifted(-h, &mut obj));
        let fd_hv: Vec<f64> = gp
            .iter()
            .zip(&gm)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect();
        assert!(
            rel_err(&hv, &fd_hv) < 1e-6,
            "{act}: Hv {:e}",
            rel_err(&hv, &fd_hv)
        );
    }
}

#[test]
fn hessian_is_symmetric() {
    for act in [Activation::Relu, Activation::Tanh, Activation::Erf] {
        let (spec, mut obj, theta) = smooth_net(act, 30, 3);
        let batch = all_examples(30);
        let n = spec.n_params();
        let (u, v) = (random_dir(n, 4), random_dir(n, 5));
        let (mut hu, mut hv) = (vec![0.0; n], vec![0.0; n]);
        obj.hvp(&theta, &batch, &u, &mut hu);
        obj.hvp(&theta, &batch, &v, &mut hv);
        let (a, b) = (dot(&u, &hv), dot(&v, &hu));
        // uᵀ(Hv) = vᵀ(Hu) to 1e-10 relative.
        assert!(
            (a - b).abs() <= 1e-10 * a.abs().max(b.abs()),
            "{act}: {a} vs {b}"
        );
    }
}

#[test]
fn f32_agrees_with_f64() {
    let (spec, mut obj64, theta) = smooth_net(Activation::Tanh, 50, 6);
    let batch = all_examples(50);
    let (x, y) = random_data(50, 6);
    let mut obj32 = FcnObjective::<f32>::new(&spec, &x, &y).unwrap();
    let theta32: Vec<f32> = theta.iter().map(|&t| t as f32).collect();
    let n = spec.n_params();
    let (mut g64, mut g32) = (vec![0.0f64; n], vec![0.0f32; n]);
    let l64 = obj64.loss_grad(&theta, &batch, &mut g64);
    let l32 = obj32.loss_grad(&theta32, &batch, &mut g32);
    // f32 round-off: ~1e-6 relative.
    assert!(((f64::from(l32) - l64) / l64).abs() < 1e-5);
    let g32: Vec<f64> = g32.iter().map(|&g| f64::from(g)).collect();
    assert!(rel_err(&g32, &g64) < 1e-5, "{:e}", rel_err(&g32, &g64));
}

#[test]
fn chunking_and_order_do_not_change_the_result() {
    let n_ex = 1300; // three chunks of at most 512
    let (spec, mut obj, theta) = smooth_net(Activation::Erf, n_ex, 7);
    let n = spec.n_params();
    let ordered = all_examples(n_ex);
    let mut shuffled = ordered.clone();
    shuffled.reverse();
    shuffled.swap(3, 700);
    let v = random_dir(n, 8);
    let mut results = Vec::new();
    for batch in [&ordered, &shuffled] {
        let (mut g, mut hv) = (vec![0.0; n], vec![0.0; n]);
        let l = obj.loss_grad(&theta, batch, &mut g);
        obj.hvp(&theta, batch, &v, &mut hv);
        results.push((l, g, hv));
    }
    let (a, b) = (&results[0], &results[1]);
    // Only the summation order differs: 1e-12 relative.
    assert!(((a.0 - b.0) / a.0).abs() < 1e-12);
    assert!(rel_err(&a.1, &b.1) < 1e-12 && rel_err(&a.2, &b.2) < 1e-12);
    // The mean over a batch is the weighted mean of its halves.
    let (lo, hi) = ordered.split_at(600);
    let whole = obj.loss(&theta, &ordered);
    let parts = (obj.loss(&theta, lo) * 600.0 + obj.loss(&theta, hi) * 700.0) / 1300.0;
    assert!(((whole - parts) / whole).abs() < 1e-12);
}

#[test]
fn repeated_hvps_reuse_the_forward_pass_only_when_valid() {
    let (spec, mut obj, theta) = smooth_net(Activation::Tanh, 60, 9);
    let n = spec.n_params();
    let fresh = obj.clone();
    let batch = all_examples(60);
    let other_batch: Vec<usize> = (0..60).rev().collect();
    let theta2: Vec<f64> = theta.iter().map(|t| t * 1.01).collect();
    let v = random_dir(n, 10);
    let expect = |t: &[f64], b: &[usize]| {
        let mut o = fresh.clone();
        let mut hv = vec![0.0; n];
        o.hvp(t, b, &v, &mut hv);
        hv
    };
    let mut hv = vec![0.0; n];
    // Same point three times (the second and third reuse), then a new point, a new batch, and
    // a call in between that overwrites the buffers: every result equals a fresh computation
    // exactly.
    let calls: [(&[f64], &[usize], bool); 6] = [
        (&theta, &batch, false),
        (&theta, &batch, false),
        (&theta, &batch, false),
        (&theta2, &batch, false),
        (&theta2, &other_batch, false),
        (&theta2, &other_batch, true),
    ];
    for (t, b, loss_first) in calls {
        if loss_first {
            obj.loss(&theta, &batch);
        }
        obj.hvp(t, b, &v, &mut hv);
        assert_eq!(hv, expect(t, b));
    }
}
