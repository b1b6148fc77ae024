//! α-scaling of BatchNorm nets in f64 on small ResNets: the BatchNorm form (γ, β times α, the
//! next conv's weight times 1/α) leaves the eval-mode logits unchanged while the Hessian
//! changes by exactly the predicted factors; the FCN form changes the logits of a BatchNorm
//! net; bad layers, α and activations are refused with errors that name the problem.

use basin_conv::{
    BlockKind, BnMode, BnScaleError, BnState, ConvObjective, Graph, alpha_scale_bn,
    alpha_scaled_bn_as, bn_scaling, scalable_bns,
};
use basin_nn::{Activation, FcnSpec, Objective};
use faer::Par;

mod common;
use common::{dot, pseudo, theta_of, tiny};

/// The two nets of these tests: Basic [1, 1] on 1 channel, Bottleneck [1, 2] on 3.
fn nets(act: Activation) -> [(Graph, BnState); 2] {
    [
        tiny(BlockKind::Basic, vec![1, 1], act, 1),
        tiny(BlockKind::Bottleneck, vec![1, 2], act, 3),
    ]
}

/// The net's block kind, for the messages.
fn kind(graph: &Graph) -> &'static str {
    if graph.param("layer1.0.conv3.weight").is_some() {
        "bottleneck"
    } else {
        "basic"
    }
}

const N: usize = 6;

fn objective(graph: Graph, state: BnState) -> ConvObjective<f64> {
    let dim = graph.input_shape().len();
    let x = pseudo(N * dim, 0.05);
    let y: Vec<u8> = (0..N).map(|i| u8::from(i % 3 == 0)).collect();
    ConvObjective::new(graph, state, &x, &y, N, Par::Seq).unwrap()
}

fn batch() -> Vec<usize> {
    (0..N).collect()
}

/// max |a − b| / max |b|.
fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let d = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    d / b.iter().fold(0.0f64, |m, y| m.max(y.abs())).max(1e-300)
}

/// vᵀH(θ)v.
fn quad(obj: &mut ConvObjective<f64>, theta: &[f64], v: &[f64]) -> f64 {
    let mut hv = vec![0.0; v.len()];
    obj.hvp(theta, &batch(), v, &mut hv);
    dot(v, &hv)
}

/// `v` zero outside `ranges`.
fn restricted(v: &[f64], ranges: &[&std::ops::Range<usize>]) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for r in ranges {
        out[(*r).clone()].copy_from_slice(&v[(*r).clone()]);
    }
    out
}

const ALPHAS: [f64; 2] = [0.2, 5.9];

#[test]
fn scalable_bns_are_the_in_block_ones_before_a_conv() {
    let [(basic, _), (bottleneck, _)] = nets(Activation::Relu);
    assert_eq!(scalable_bns(&basic), ["layer1.0.bn1", "layer2.0.bn1"]);
    assert_eq!(
        scalable_bns(&bottleneck),
        [
            "layer1.0.bn1",
            "layer1.0.bn2",
            "layer2.0.bn1",
            "layer2.0.bn2",
            "layer2.1.bn1",
            "layer2.1.bn2"
        ]
    );
    for (graph, _) in nets(Activation::Linear) {
        assert!(!scalable_bns(&graph).is_empty());
    }
    for act in [Activation::Tanh, Activation::Erf] {
        for (graph, _) in nets(act) {
            assert!(scalable_bns(&graph).is_empty(), "{act}");
        }
    }
    let s = bn_scaling(&basic, "layer2.0.bn1").unwrap();
    assert_eq!(s.conv_weight, "layer2.0.conv2.weight");
    assert_eq!(s.gamma, basic.param("layer2.0.bn1.weight").unwrap().range());
    assert_eq!(s.beta, basic.param("layer2.0.bn1.bias").unwrap().range());
    assert_eq!(
        s.conv_range,
        basic.param("layer2.0.conv2.weight").unwrap().range()
    );
    let s = bn_scaling(&bottleneck, "layer2.1.bn2").unwrap();
    assert_eq!(s.conv_weight, "layer2.1.conv3.weight");
}

#[test]
fn bn_alpha_scaling_leaves_the_logits_unchanged() {
    let mut worst = 0.0f64;
    for act in [Activation::Relu, Activation::Linear] {
        for (graph, state) in nets(act) {
            let theta = theta_of(&graph, 3);
            let bns = scalable_bns(&graph);
            let mut obj = objective(graph.clone(), state.clone());
            let before = obj.logits(&theta, &batch());
            for bn in &bns {
                for alpha in ALPHAS {
                    let mut scaled = theta.clone();
                    alpha_scale_bn(&graph, &mut scaled, bn, alpha).unwrap();
                    assert_ne!(scaled, theta);
                    assert_eq!(
                        alpha_scaled_bn_as::<f64>(&graph, &theta, bn, alpha).unwrap(),
                        scaled
                    );
                    let after = obj.logits(&scaled, &batch());
                    let err = max_rel(&after, &before);
                    worst = worst.max(err);
                    assert!(err < 1e-10, "{act} {bn} α {alpha}: logits moved by {err:e}");
                    // Training mode too: the scaled layer's input and every other activation
                    // are unchanged, so are the batch statistics and the loss.
                    let mut train = objective(graph.clone(), state.clone());
                    train.set_mode(BnMode::Train);
                    let mut g = vec![0.0; theta.len()];
                    let l0 = train.loss_grad(&theta, &batch(), &mut g);
                    train.set_state(state.clone());
                    let l1 = train.loss_grad(&scaled, &batch(), &mut g);
                    assert!(
                        (l1 - l0).abs() < 1e-10 * l0.abs(),
                        "{act} {bn} α {alpha}: train loss {l0} → {l1}"
                    );
                }
            }
        }
    }
    eprintln!("largest relative change of the eval-mode logits: {worst:.3e}");
}

#[test]
fn bn_alpha_scaling_changes_the_hessian_by_the_predicted_factors() {
    // L(Dθ) = L(θ) for every θ, with D = α on γ, β and 1/α on the conv weight, so
    // H(Dθ) = D⁻¹ H(θ) D⁻¹: vᵀHv along the conv weight grows by α², along γ, β by 1/α².
    for (graph, state) in nets(Activation::Relu) {
        let theta = theta_of(&graph, 3);
        let n = theta.len();
        let mut obj = objective(graph.clone(), state);
        let v = pseudo(n, 0.71);
        let q_all = quad(&mut obj, &theta, &v);
        for (b, bn) in scalable_bns(&graph).iter().enumerate() {
            let s = bn_scaling(&graph, bn).unwrap();
            let vw = restricted(&v, &[&s.conv_range]);
            let vg = restricted(&v, &[&s.gamma, &s.beta]);
            let (qw, qg) = (quad(&mut obj, &theta, &vw), quad(&mut obj, &theta, &vg));
            // The trace of the Hessian block of the conv weight, exactly (one HVP per entry),
            // for the first scalable layer.
            let trace = |obj: &mut ConvObjective<f64>, t: &[f64]| -> f64 {
                s.conv_range
                    .clone()
                    .map(|i| {
                        let mut e = vec![0.0; n];
                        e[i] = 1.0;
                        quad(obj, t, &e)
                    })
                    .sum()
            };
            let tr = if b == 0 { trace(&mut obj, &theta) } else { 0.0 };
            for alpha in ALPHAS {
                let mut scaled = theta.clone();
                alpha_scale_bn(&graph, &mut scaled, bn, alpha).unwrap();
                let (qw1, qg1) = (quad(&mut obj, &scaled, &vw), quad(&mut obj, &scaled, &vg));
                let q_all1 = quad(&mut obj, &scaled, &v);
                eprintln!(
                    "{} {bn} α {alpha}: vᵀHv on {} {qw:.6e} → {qw1:.6e} (×{:.4}), on γ,β {qg:.6e} → \
                     {qg1:.6e} (×{:.4}), on all θ {q_all:.6e} → {q_all1:.6e}",
                    kind(&graph),
                    s.conv_weight,
                    qw1 / qw,
                    qg1 / qg
                );
                let a2 = alpha * alpha;
                assert!(
                    (qw1 - a2 * qw).abs() < 1e-8 * (a2 * qw).abs(),
                    "{bn} α {alpha}: {qw} → {qw1}"
                );
                assert!(
                    (qg1 - qg / a2).abs() < 1e-8 * (qg / a2).abs(),
                    "{bn} α {alpha}: {qg} → {qg1}"
                );
                // Well above round-off: the change is a factor 0.04 or 34.81.
                assert!((qw1 - qw).abs() > 0.5 * qw.abs() && (qg1 - qg).abs() > 0.5 * qg.abs());
                assert!(
                    (q_all1 - q_all).abs() > 1e-3 * q_all.abs(),
                    "{bn} α {alpha}: {q_all} → {q_all1}"
                );
                if b == 0 {
                    let tr1 = trace(&mut obj, &scaled);
                    eprintln!(
                        "{bn} α {alpha}: tr H on {} {tr:.6e} → {tr1:.6e}",
                        s.conv_weight
                    );
                    assert!(
                        (tr1 - a2 * tr).abs() < 1e-8 * (a2 * tr).abs(),
                        "{bn} α {alpha}: trace {tr} → {tr1}"
                    );
                }
            }
        }
    }
}

#[test]
fn fcn_style_scaling_changes_the_logits_of_a_bn_net() {
    for (graph, state) in nets(Activation::Relu) {
        let theta = theta_of(&graph, 3);
        let mut obj = objective(graph.clone(), state);
        let before = obj.logits(&theta, &batch());
        let (w1, w2) = (
            graph.param("layer1.0.conv1.weight").unwrap().range(),
            graph.param("layer1.0.conv2.weight").unwrap().range(),
        );
        let bn = bn_scaling(&graph, "layer1.0.bn1").unwrap();
        for alpha in ALPHAS {
            // The FCN's form across BatchNorm: conv1 times α, conv2 times 1/α. Eval-mode
            // BatchNorm, γ(αx − μ)/σ + β, is not α times its value at x.
            let mut naive = theta.clone();
            naive[w1.clone()].iter_mut().for_each(|t| *t *= alpha);
            naive[w2.clone()].iter_mut().for_each(|t| *t /= alpha);
            let moved = max_rel(&obj.logits(&naive, &batch()), &before);
            eprintln!(
                "FCN-style α {alpha} across layer1.0.bn1: logits move by {moved:.3e} relative"
            );
            assert!(moved > 1e-3, "α {alpha}: {moved:e}");
            // The BatchNorm form without β is not invariant either.
            let mut gamma_only = theta.clone();
            gamma_only[bn.gamma.clone()]
                .iter_mut()
                .for_each(|t| *t *= alpha);
            gamma_only[bn.conv_range.clone()]
                .iter_mut()
                .for_each(|t| *t /= alpha);
            let moved = max_rel(&obj.logits(&gamma_only, &batch()), &before);
            assert!(
                moved > 1e-3,
                "α {alpha}: γ alone moves the logits by only {moved:e}"
            );
        }
    }
}

#[test]
fn bad_layers_alphas_and_activations_are_refused_with_the_scalable_list() {
    let [(basic, _), (bottleneck, _)] = nets(Activation::Relu);
    let theta = theta_of(&basic, 3);
    let mut t = theta.clone();
    let err = |t: &mut Vec<f64>, name: &str, alpha: f64| {
        alpha_scale_bn(&basic, t, name, alpha).unwrap_err()
    };

    for name in ["bn1", "layer1.0.bn2", "layer2.0.bn2", "layer2.0.shortcut.1"] {
        let e = err(&mut t, name, 2.0);
        assert!(
            matches!(e, BnScaleError::NotScalable { .. }),
            "{name}: {e:?}"
        );
        let text = e.to_string();
        assert!(text.contains(&format!("BatchNorm {name} cannot")), "{text}");
        assert!(text.contains("residual add"), "{text}");
        assert!(
            text.contains("the scalable ones in this network are layer1.0.bn1, layer2.0.bn1"),
            "{text}"
        );
    }
    let text = err(&mut t, "bn1", 2.0).to_string();
    assert!(
        text.contains(
            "its activation is read by 2 nodes (conv layer1.0.conv1.weight, a residual add)"
        ),
        "{text}"
    );
    // In the Bottleneck net the stem's activation feeds two convs (conv1 and the shortcut).
    let e = alpha_scale_bn(&bottleneck, &mut theta_of(&bottleneck, 3), "bn1", 2.0).unwrap_err();
    assert!(
        e.to_string().contains("conv layer1.0.shortcut.0.weight"),
        "{e}"
    );
    let e = alpha_scale_bn(
        &bottleneck,
        &mut theta_of(&bottleneck, 3),
        "layer2.1.bn3",
        2.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("layer1.0.bn2, layer2.0.bn1"), "{e}");

    for name in ["layer9.0.bn1", "layer1.0.conv1", "", "layer1.0.bn1.weight"] {
        let e = err(&mut t, name, 2.0);
        assert!(matches!(e, BnScaleError::UnknownBn { .. }), "{name}: {e:?}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("no BatchNorm layer is named {name:?}")),
            "{text}"
        );
        assert!(text.contains("layer1.0.bn1, layer2.0.bn1"), "{text}");
    }

    for alpha in [0.0, -1.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = err(&mut t, "layer1.0.bn1", alpha);
        assert!(matches!(e, BnScaleError::BadAlpha(_)), "{alpha}: {e:?}");
        assert!(e.to_string().contains("must be finite and positive"), "{e}");
    }

    let e = alpha_scale_bn(&basic, &mut theta[1..].to_vec(), "layer1.0.bn1", 2.0).unwrap_err();
    assert_eq!(
        e,
        BnScaleError::ParamCount {
            given: theta.len() - 1,
            expected: theta.len()
        }
    );

    for act in [Activation::Tanh, Activation::Erf] {
        let [(graph, _), _] = nets(act);
        let mut th = theta_of(&graph, 3);
        let before = th.clone();
        let e = alpha_scale_bn(&graph, &mut th, "layer1.0.bn1", 2.0).unwrap_err();
        assert!(
            matches!(e, BnScaleError::NotHomogeneous { activation, .. } if activation == act),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!("BatchNorm layer1.0.bn1 feeds {act}")),
            "{text}"
        );
        assert!(text.contains("only through relu or linear"), "{text}");
        assert!(
            text.contains("this network has no scalable BatchNorm layer"),
            "{text}"
        );
        assert_eq!(th, before);
    }

    // An FCN through the conv engine has no BatchNorm at all.
    let fcn = Graph::fcn(&FcnSpec::paper(5));
    let e = alpha_scale_bn(&fcn, &mut fcn.init::<f64>(1), "bn1", 2.0).unwrap_err();
    assert!(e.to_string().contains("no scalable BatchNorm layer"), "{e}");

    assert_eq!(t, theta, "failed calls leave θ untouched");
}

#[test]
fn an_alpha_that_over_or_underflows_the_parameters_is_refused() {
    let [(graph, _), _] = nets(Activation::Relu);
    let theta = theta_of(&graph, 3);
    // In f64, 1e-300 fits: γ × 1e-300 and w × 1e300 are finite and nonzero.
    assert!(alpha_scaled_bn_as::<f64>(&graph, &theta, "layer1.0.bn1", 1e-300).is_ok());
    // Stored as f32, γ underflows to 0 (and the conv weight overflows).
    let e = alpha_scaled_bn_as::<f32>(&graph, &theta, "layer1.0.bn1", 1e-300).unwrap_err();
    assert!(
        matches!(
            e,
            BnScaleError::OutOfRange {
                precision: "f32",
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("over/underflows the parameters: layer1.0.bn1.weight[0]"),
        "{text}"
    );
    assert!(text.contains("choose an α nearer 1"), "{text}");
    // In place in f32: the conv weight times 1/α overflows.
    let mut narrow: Vec<f32> = theta.iter().map(|&x| x as f32).collect();
    let before = narrow.clone();
    let e = alpha_scale_bn(&graph, &mut narrow, "layer1.0.bn1", 1e-39).unwrap_err();
    assert!(
        e.to_string().contains("layer1.0.conv2.weight[0, 0, 0, 0]"),
        "{e}"
    );
    assert_eq!(narrow, before, "a refused α leaves θ untouched");
    assert!(alpha_scaled_bn_as::<f32>(&graph, &theta, "layer1.0.bn1", 5.9).is_ok());
}
