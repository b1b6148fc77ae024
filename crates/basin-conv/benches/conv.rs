//! The conv engine on a CPU-sized ResNet (`basic:1,1:8`, one basic block in each of two
//! stages, base width 8) on the first 128 embedded MNIST digits, single-threaded: a training
//! step at batch 32 (BatchNorm on batch statistics), the eval-mode gradient, and the exact
//! Hessian-vector product (at a new point each time, and repeated at one point, as in
//! Lanczos, where the forward and backward passes are reused), in f32 and f64.
//!
//! The paper-sized ResNets (ResNet-18 training step at batch 128, ResNet-50 eval forward at
//! batch 256) are timed against the JAX peer by `examples/resnet_time.rs` and
//! `bench/peers/conv/resnet_jax.py time` in one sitting (`BENCHMARKS.md`).

use basin_conv::{ArchName, BnMode, BnState, ConvObjective, Graph};
use basin_data::{ClassMap, embedded};
use basin_nn::{Objective, Real, all_examples};
use criterion::{Criterion, criterion_group, criterion_main};
use faer::Par;

fn objective<T: Real>() -> (ConvObjective<T>, Vec<T>) {
    let data = ClassMap::mnist_low_high()
        .apply(&embedded::mnist().unwrap())
        .unwrap();
    let s = data.subset("S", &all_examples(128)).unwrap();
    let arch: ArchName = "basic:1,1:8".parse().unwrap();
    let graph = Graph::resnet(&arch.with_channels(1), 28, 28);
    let theta = graph.init(1);
    let state = BnState::fresh(&graph);
    let obj = ConvObjective::from_dataset(graph, state, &s, 32, Par::Seq).unwrap();
    (obj, theta)
}

fn derivatives<T: Real>(c: &mut Criterion) {
    let (mut obj, theta) = objective::<T>();
    let n = theta.len();
    let batch = all_examples(32);
    let mut grad = vec![T::ZERO; n];
    let name = |what: &str| format!("basic_1_1_8_mnist_b32_{what}_{}", T::NAME);
    obj.set_mode(BnMode::Train);
    c.bench_function(&name("train_step"), |b| {
        b.iter(|| obj.loss_grad(&theta, &batch, &mut grad))
    });
    obj.set_mode(BnMode::Eval);
    c.bench_function(&name("gradient"), |b| {
        b.iter(|| obj.loss_grad(&theta, &batch, &mut grad))
    });
    let v: Vec<T> = grad.clone();
    let mut hv = vec![T::ZERO; n];
    c.bench_function(&name("hvp_repeated"), |b| {
        b.iter(|| obj.hvp(&theta, &batch, &v, &mut hv))
    });
    let mut moving = theta.clone();
    c.bench_function(&name("hvp_new_point"), |b| {
        b.iter(|| {
            moving[0] += T::from_f64(1e-6);
            obj.hvp(&moving, &batch, &v, &mut hv)
        })
    });
}

fn benches(c: &mut Criterion) {
    derivatives::<f32>(c);
    derivatives::<f64>(c);
}

criterion_group!(conv, benches);
criterion_main!(conv);
