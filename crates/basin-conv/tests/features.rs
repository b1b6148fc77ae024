//! The penultimate features of random networks: the readout applied to them gives the
//! network's logits, chunking and threads do not change them, and a seed gives one network.

mod common;

use basin_conv::{BlockKind, BnMode, BnState, ConvObjective, FeatureMap, Graph};
use basin_data::{Dataset, ImageShape};
use basin_nn::Activation;
use common::{pseudo, tiny};
use faer::Par;

fn images(graph: &Graph, n: usize) -> Dataset {
    let s = graph.input_shape();
    let x: Vec<f32> = pseudo(n * s.len(), 0.17)
        .iter()
        .map(|&v| v as f32)
        .collect();
    Dataset::new("images", s.len(), x, Some(vec![0; n]), None)
        .unwrap()
        .with_image_shape(ImageShape::new(s.c, s.h, s.w))
        .unwrap()
}

fn features_of(graph: &Graph, data: &Dataset, seed: u64, chunk: usize, par: Par) -> Vec<f64> {
    let mut map = FeatureMap::<f64>::new(graph.clone(), data, chunk, par).unwrap();
    let mut out = vec![0.0; map.n_points() * map.width()];
    map.features(seed, &mut out, map.n_points());
    out
}

#[test]
fn the_readout_of_the_features_is_the_networks_logit() {
    for block in [BlockKind::Basic, BlockKind::Bottleneck] {
        let (graph, _) = tiny(block, vec![1, 1], Activation::Relu, 2);
        let n = 7;
        let data = images(&graph, n);
        let seed = 11;
        let phi = features_of(&graph, &data, seed, 3, Par::Seq);
        let theta: Vec<f64> = graph.init(seed);
        let mut obj = ConvObjective::<f64>::new(
            graph.clone(),
            BnState::fresh(&graph),
            data.features(),
            data.labels().unwrap(),
            4,
            Par::Seq,
        )
        .unwrap();
        obj.set_mode(BnMode::Eval);
        let logits = obj.logits(&theta, &(0..n).collect::<Vec<_>>());
        let (w, b) = (
            graph.param("linear.weight").unwrap(),
            graph.param("linear.bias").unwrap(),
        );
        let d = w.len();
        assert_eq!(d, phi.len() / n);
        for i in 0..n {
            let z: f64 = (0..d)
                .map(|j| theta[w.offset + j] * phi[j * n + i])
                .sum::<f64>()
                + theta[b.offset];
            assert!(
                (z - logits[i]).abs() < 1e-12 * (1.0 + z.abs()),
                "{block:?} image {i}: {z} vs {}",
                logits[i]
            );
        }
    }
}

#[test]
fn chunks_and_threads_do_not_change_the_features() {
    let (graph, _) = tiny(BlockKind::Basic, vec![1, 2], Activation::Relu, 3);
    let data = images(&graph, 9);
    let whole = features_of(&graph, &data, 4, 9, Par::Seq);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&whole),
        bits(&features_of(&graph, &data, 4, 2, Par::Seq))
    );
    assert_eq!(
        bits(&whole),
        bits(&features_of(&graph, &data, 4, 9, Par::rayon(2)))
    );
    assert_ne!(
        bits(&whole),
        bits(&features_of(&graph, &data, 5, 9, Par::Seq))
    );
    assert!(
        whole.iter().all(|v| v.is_finite() && *v >= 0.0),
        "pooled ReLUs"
    );
}

#[test]
fn images_of_the_wrong_shape_are_refused() {
    let (graph, _) = tiny(BlockKind::Basic, vec![1], Activation::Relu, 3);
    let other = tiny(BlockKind::Basic, vec![1], Activation::Relu, 1).0;
    let e = FeatureMap::<f32>::new(graph, &images(&other, 2), 2, Par::Seq).unwrap_err();
    assert!(e.to_string().contains("values per example"), "{e}");
}
