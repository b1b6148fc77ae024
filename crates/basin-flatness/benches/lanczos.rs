//! Lanczos top-50 on a 784-40-40-1 net over the first 500 examples of the embedded MNIST
//! (digits 0–4 → 0, 5–9 → 1), at the peers' 100 steps and at the default; and one exact
//! Hessian-vector product, for scale. The net is trained briefly (SGD, full batch) from a
//! seeded init so that the ReLU pattern is that of a fitted net.

use basin_data::{ClassMap, embedded};
use basin_flatness::lanczos::DEFAULT_STEPS;
use basin_flatness::{LanczosConfig, lanczos};
use basin_nn::{FcnObjective, FcnSpec, Objective, all_examples};
use criterion::{Criterion, criterion_group, criterion_main};

fn mnist_net() -> (FcnObjective<f64>, Vec<f64>) {
    let data = ClassMap::mnist_low_high()
        .apply(&embedded::mnist().unwrap())
        .unwrap();
    let first: Vec<usize> = (0..500).collect();
    let data = data.subset("mnist[..500]", &first).unwrap();
    let spec = FcnSpec::paper(784);
    let mut obj = FcnObjective::<f64>::from_dataset(&spec, &data).unwrap();
    let mut theta = spec.init::<f64>(1);
    let (all, mut grad) = (all_examples(500), vec![0.0; theta.len()]);
    for _ in 0..50 {
        obj.loss_grad(&theta, &all, &mut grad);
        theta.iter_mut().zip(&grad).for_each(|(t, g)| *t -= 0.1 * g);
    }
    (obj, theta)
}

fn bench(c: &mut Criterion) {
    let (mut obj, theta) = mnist_net();
    let all = all_examples(500);
    let (v, mut out) = (vec![1e-2; theta.len()], vec![0.0; theta.len()]);
    let mut g = c.benchmark_group("mnist_784_40_40_1_n500");
    g.sample_size(10);
    g.bench_function("hvp", |b| b.iter(|| obj.hvp(&theta, &all, &v, &mut out)));
    for steps in [100, DEFAULT_STEPS] {
        let cfg = LanczosConfig {
            steps,
            ..LanczosConfig::default()
        };
        g.bench_function(format!("lanczos_top50_m{steps}"), |b| {
            b.iter(|| lanczos(&mut obj, &theta, &cfg).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
