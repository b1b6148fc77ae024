//! The conv engine's gradient and Hessian-vector product against central finite differences
//! in f64, the HVP's symmetry, an FCN through the conv engine against the FCN engine, and the
//! dense Hessian of a tiny conv net against a finite-difference one.

use basin_conv::{BlockKind, BnMode, BnState, ConvObjective, Graph, ResNetSpec};
use basin_nn::{Activation, FcnObjective, FcnSpec, Objective, dense_hessian};
use faer::Par;

mod common;
use common::{dot, pseudo, theta_of, tiny};

fn objective(graph: Graph, state: BnState, n: usize, chunk: usize) -> ConvObjective<f64> {
    let dim = graph.input_shape().len();
    let x = pseudo(n * dim, 0.05);
    let y: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 0)).collect();
    ConvObjective::new(graph, state, &x, &y, chunk, Par::Seq).unwrap()
}

fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    norm(&d) / norm(b).max(1e-300)
}

/// (f(θ + εv) − f(θ − εv)) / 2ε for the loss and the gradient.
fn central(
    obj: &mut ConvObjective<f64>,
    theta: &[f64],
    batch: &[usize],
    v: &[f64],
    eps: f64,
) -> (f64, Vec<f64>) {
    let n = theta.len();
    let plus: Vec<f64> = theta.iter().zip(v).map(|(t, d)| t + eps * d).collect();
    let minus: Vec<f64> = theta.iter().zip(v).map(|(t, d)| t - eps * d).collect();
    let (mut gp, mut gm) = (vec![0.0; n], vec![0.0; n]);
    let lp = obj.loss_grad(&plus, batch, &mut gp);
    let lm = obj.loss_grad(&minus, batch, &mut gm);
    let dg = gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * eps))
        .collect();
    ((lp - lm) / (2.0 * eps), dg)
}

#[test]
fn gradient_and_hvp_match_central_differences_in_eval_mode() {
    for (block, blocks, channels) in [
        (BlockKind::Basic, vec![1, 1], 1),
        (BlockKind::Bottleneck, vec![1, 2], 3),
    ] {
        let (graph, state) = tiny(block, blocks, Activation::Tanh, channels);
        let theta = theta_of(&graph, 3);
        let mut obj = objective(graph, state, 5, 3);
        let batch: Vec<usize> = (0..5).collect();
        let n = theta.len();
        let mut grad = vec![0.0; n];
        obj.loss_grad(&theta, &batch, &mut grad);
        let v = pseudo(n, 0.71);
        let (dl, dg) = central(&mut obj, &theta, &batch, &v, 1e-5);
        // Directional derivative: |gᵀv − FD| relative to |g||v|, and the HVP against the
        // gradient's central difference: 1e-6 relative (the FD's own error is ~ε² ≈ 1e-10).
        let gv = dot(&grad, &v);
        assert!(
            (gv - dl).abs() < 1e-6 * norm(&grad) * norm(&v),
            "{block:?}: gᵀv {gv} FD {dl}"
        );
        let mut hv = vec![0.0; n];
        obj.hvp(&theta, &batch, &v, &mut hv);
        let err = rel_err(&hv, &dg);
        assert!(err < 1e-6, "{block:?}: HVP relative error {err:e}");
        // Coordinatewise, for one weight of every tensor.
        let mut gi = vec![0.0; n];
        for p in &obj.graph().params.clone() {
            let i = p.offset + p.len() / 2;
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            let (fd, _) = central(&mut obj, &theta, &batch, &e, 1e-5);
            obj.loss_grad(&theta, &batch, &mut gi);
            assert!(
                (gi[i] - fd).abs() < 1e-6 * fd.abs().max(1e-3),
                "{}: {} vs {fd}",
                p.name,
                gi[i]
            );
        }
    }
}

#[test]
fn hvp_is_symmetric() {
    let (graph, state) = tiny(BlockKind::Basic, vec![1, 1], Activation::Tanh, 2);
    let theta = theta_of(&graph, 5);
    let mut obj = objective(graph, state, 6, 4);
    let batch: Vec<usize> = (0..6).collect();
    let n = theta.len();
    let (u, v) = (pseudo(n, 0.13), pseudo(n, 0.47));
    let (mut hu, mut hv) = (vec![0.0; n], vec![0.0; n]);
    obj.hvp(&theta, &batch, &u, &mut hu);
    obj.hvp(&theta, &batch, &v, &mut hv);
    let (a, b) = (dot(&u, &hv), dot(&v, &hu));
    assert!((a - b).abs() < 1e-10 * a.abs(), "uᵀHv {a} vᵀHu {b}");
}

#[test]
fn relu_resnet_gradient_matches_central_differences() {
    let (graph, state) = tiny(BlockKind::Basic, vec![1, 1], Activation::Relu, 1);
    let theta = theta_of(&graph, 9);
    let mut obj = objective(graph, state, 4, 4);
    let batch: Vec<usize> = (0..4).collect();
    let n = theta.len();
    let mut grad = vec![0.0; n];
    obj.loss_grad(&theta, &batch, &mut grad);
    let v = pseudo(n, 0.33);
    // A step of 1e-7 crosses no ReLU kink for this net and input (checked: the central
    // difference agrees at 1e-6 and 1e-7).
    let (dl, dg) = central(&mut obj, &theta, &batch, &v, 1e-7);
    assert!((dot(&grad, &v) - dl).abs() < 1e-6 * norm(&grad) * norm(&v));
    let mut hv = vec![0.0; n];
    obj.hvp(&theta, &batch, &v, &mut hv);
    assert!(rel_err(&hv, &dg) < 1e-5, "{:e}", rel_err(&hv, &dg));
}

#[test]
fn training_mode_gradient_matches_central_differences_and_updates_running_stats() {
    let (graph, state) = tiny(BlockKind::Basic, vec![1, 1], Activation::Tanh, 1);
    let theta = theta_of(&graph, 4);
    let mut obj = objective(graph, state.clone(), 6, 6);
    obj.set_mode(BnMode::Train);
    let batch: Vec<usize> = (0..6).collect();
    let n = theta.len();
    let mut grad = vec![0.0; n];
    obj.loss_grad(&theta, &batch, &mut grad);
    let after = obj.state().clone();
    assert_eq!(after.layers[0].batches, 1);
    // running = 0.9·old + 0.1·batch, with the batch variance unbiased.
    assert!(
        after.layers[0]
            .mean
            .iter()
            .zip(&state.layers[0].mean)
            .any(|(a, b)| a != b)
    );
    let v = pseudo(n, 0.21);
    let eps = 1e-5;
    let loss_at = |obj: &mut ConvObjective<f64>, t: &[f64]| {
        let mut g = vec![0.0; t.len()];
        obj.set_state(state.clone());
        obj.set_mode(BnMode::Train);
        obj.loss_grad(t, &batch, &mut g)
    };
    let plus: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t + eps * d).collect();
    let minus: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t - eps * d).collect();
    let fd = (loss_at(&mut obj, &plus) - loss_at(&mut obj, &minus)) / (2.0 * eps);
    let gv = dot(&grad, &v);
    assert!(
        (gv - fd).abs() < 1e-6 * norm(&grad) * norm(&v),
        "train-mode gᵀv {gv} FD {fd}"
    );
}

#[test]
fn an_fcn_through_the_conv_engine_matches_the_fcn_engine() {
    for act in [Activation::Relu, Activation::Tanh] {
        let spec = FcnSpec {
            activation: act,
            ..FcnSpec {
                hidden: vec![7, 5],
                ..FcnSpec::paper(6)
            }
        };
        let graph = Graph::fcn(&spec);
        let theta: Vec<f64> = graph.init(2);
        let x = pseudo(9 * 6, 0.4);
        let y: Vec<u8> = (0..9).map(|i| u8::from(i % 2 == 0)).collect();
        let mut conv = ConvObjective::new(graph, BnState::default(), &x, &y, 4, Par::Seq).unwrap();
        let mut fcn: FcnObjective<f64> = FcnObjective::new(&spec, &x, &y).unwrap();
        let batch: Vec<usize> = vec![0, 3, 4, 8, 1, 2, 7];
        let n = theta.len();
        let (mut g1, mut g2) = (vec![0.0; n], vec![0.0; n]);
        let (l1, l2) = (
            conv.loss_grad(&theta, &batch, &mut g1),
            fcn.loss_grad(&theta, &batch, &mut g2),
        );
        assert!((l1 - l2).abs() < 1e-10 * l2.abs());
        assert!(rel_err(&g1, &g2) < 1e-10);
        let v = pseudo(n, 0.8);
        let (mut h1, mut h2) = (vec![0.0; n], vec![0.0; n]);
        conv.hvp(&theta, &batch, &v, &mut h1);
        fcn.hvp(&theta, &batch, &v, &mut h2);
        assert!(rel_err(&h1, &h2) < 1e-10, "{act}: {:e}", rel_err(&h1, &h2));
        assert_eq!(
            conv.count_errors(&theta, &batch),
            fcn.count_errors(&theta, &batch)
        );
    }
}

#[test]
fn dense_hessian_is_symmetric_and_its_spectrum_matches_finite_differences() {
    let mut spec = ResNetSpec::general(BlockKind::Basic, vec![1], 2, 1);
    spec.activation = Activation::Tanh;
    let graph = Graph::resnet(&spec, 4, 4);
    let theta = theta_of(&graph, 6);
    let state = BnState::fresh(&graph);
    let mut obj = objective(graph, state, 3, 3);
    let batch: Vec<usize> = (0..3).collect();
    let n = theta.len();
    let (h, asym) = dense_hessian(&mut obj, &theta, &batch);
    let scale = h.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(asym < 1e-12 * scale, "asymmetry {asym:e} of {scale:e}");
    let mut fd = vec![0.0; n * n];
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        let (_, col) = central(&mut obj, &theta, &batch, &e, 1e-5);
        for i in 0..n {
            fd[i * n + j] = col[i];
        }
    }
    let sym = |m: &[f64]| -> Vec<f64> {
        let mut s = m.to_vec();
        for i in 0..n {
            for j in 0..n {
                s[i * n + j] = 0.5 * (m[i * n + j] + m[j * n + i]);
            }
        }
        s
    };
    let eig = |m: &[f64]| -> Vec<f64> {
        let mat = faer::Mat::from_fn(n, n, |i, j| m[i * n + j]);
        let mut e: Vec<f64> = mat.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
        e.sort_by(f64::total_cmp);
        e
    };
    let (a, b) = (eig(&h), eig(&sym(&fd)));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-6 * scale, "eigenvalue {x} vs FD {y}");
    }
}

#[test]
fn the_finite_difference_hvp_option_approximates_the_exact_one() {
    let (graph, state) = tiny(BlockKind::Bottleneck, vec![1, 1], Activation::Tanh, 1);
    let theta = theta_of(&graph, 8);
    let mut obj = objective(graph, state, 4, 4);
    let batch: Vec<usize> = (0..4).collect();
    let v = pseudo(theta.len(), 0.61);
    let mut exact = vec![0.0; theta.len()];
    obj.hvp(&theta, &batch, &v, &mut exact);
    let mut fd = vec![0.0; theta.len()];
    basin_nn::FiniteDifferenceHvp::new(&mut obj, 1e-5).hvp(&theta, &batch, &v, &mut fd);
    let err = rel_err(&fd, &exact);
    // O(ε²) truncation and O(u/ε) round-off: about 1e-9 here; 1e-6 allowed.
    assert!(err < 1e-6 && err > 0.0, "{err:e}");
}
