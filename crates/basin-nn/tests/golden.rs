//! The FCN engine against golden values computed independently with JAX in float64 (and
//! cross-checked with PyTorch): loss, gradient, exact Hessian-vector product and logits of a
//! 784-40-40-1 MLP on 100 MNIST digits and of the 7-40-40-1 Boolean net on all 128 inputs, and
//! the full dense Hessian spectrum of the Boolean net. Tolerances are stated per assertion.

mod common;

use basin_nn::{FcnObjective, FcnSpec, Objective, all_examples, dense_hessian};
use common::{golden, golden_to_basin, max_rel_err, rel_err};

struct Case {
    spec: FcnSpec,
    obj: FcnObjective<f64>,
    theta: Vec<f64>,
    batch: Vec<usize>,
}

fn case(prefix: &str, input_dim: usize) -> Case {
    let spec = FcnSpec::paper(input_dim);
    let x = golden(&format!("{prefix}_x"));
    let y: Vec<u8> = golden(&format!("{prefix}_y"))
        .iter()
        .map(|&v| v as u8)
        .collect();
    let obj = FcnObjective::<f64>::new(&spec, &x, &y).unwrap();
    let theta = golden_to_basin(&spec, &golden(&format!("{prefix}_params_flat")));
    Case {
        batch: all_examples(y.len()),
        spec,
        obj,
        theta,
    }
}

fn check_loss_grad_hvp(prefix: &str, input_dim: usize) {
    let Case {
        spec,
        mut obj,
        theta,
        batch,
    } = case(prefix, input_dim);
    let n = spec.n_params();
    let mut logits = vec![0.0; batch.len()];
    obj.logits(&theta, &batch, &mut logits);
    // 1e-12 relative: same formulas in f64, different summation order.
    assert!(rel_err(&logits, &golden(&format!("{prefix}_logits"))) < 1e-12);
    let loss_golden = golden(&format!("{prefix}_loss"))[0];
    let loss = obj.loss(&theta, &batch);
    assert!(
        ((loss - loss_golden) / loss_golden).abs() < 1e-12,
        "{loss} vs {loss_golden}"
    );
    let mut grad = vec![0.0; n];
    let loss2 = obj.loss_grad(&theta, &batch, &mut grad);
    assert_eq!(loss, loss2);
    let grad_golden = golden_to_basin(&spec, &golden(&format!("{prefix}_grad")));
    let (e, m) = (
        rel_err(&grad, &grad_golden),
        max_rel_err(&grad, &grad_golden),
    );
    assert!(e < 1e-10 && m < 1e-10, "{prefix} gradient: {e:e} {m:e}");
    let v = golden_to_basin(&spec, &golden(&format!("{prefix}_v")));
    let mut hv = vec![0.0; n];
    obj.hvp(&theta, &batch, &v, &mut hv);
    let hv_golden = golden_to_basin(&spec, &golden(&format!("{prefix}_hv")));
    let (e, m) = (rel_err(&hv, &hv_golden), max_rel_err(&hv, &hv_golden));
    assert!(e < 1e-10 && m < 1e-10, "{prefix} Hv: {e:e} {m:e}");
}

#[test]
fn mlp_784_40_40_1_matches_jax() {
    check_loss_grad_hvp("mlp", 784);
}

#[test]
fn boolean_7_40_40_1_matches_jax() {
    check_loss_grad_hvp("bool", 7);
}

#[test]
fn boolean_dense_hessian_spectrum_matches_jax() {
    let Case {
        spec,
        mut obj,
        theta,
        batch,
    } = case("bool", 7);
    let n = spec.n_params();
    let (h, asymmetry) = dense_hessian(&mut obj, &theta, &batch);
    assert!(asymmetry < 1e-12, "asymmetry {asymmetry:e}");
    let diag_golden = golden_to_basin(&spec, &golden("bool_hessian_diag"));
    let diag: Vec<f64> = (0..n).map(|i| h[i * n + i]).collect();
    assert!(max_rel_err(&diag, &diag_golden) < 1e-10);
    let m = faer::MatRef::from_row_major_slice(&h, n, n);
    let mut eigs = m.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    eigs.sort_by(f64::total_cmp);
    let golden_eigs = golden("bool_hessian_eigs");
    // 1e-8 relative to the spectral norm, for every one of the 2,001 eigenvalues.
    let err = max_rel_err(&eigs, &golden_eigs);
    assert!(err < 1e-8, "eigenvalues: {err:e}");
}
