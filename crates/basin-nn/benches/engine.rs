//! The FCN engine on the paper's setting: 784-40-40-1 ReLU on the first 500 embedded MNIST
//! digits. Times one training epoch (batch 32, f32, shuffled batches, SGD), and the exact
//! gradient and Hessian-vector product over all 500 examples in f64 and f32 (repeated at one
//! point, as in Lanczos, where the forward pass is reused; and at a new point each time).
//!
//! Peers (`bench/peers/nn`, same machine, single-threaded): JAX jit 1.5 ms/epoch idle
//! (2.2 ms with a busy neighbour); JAX jvp∘grad HVP 2.7 ms f64, 1.2 ms f32; gradient 2.1 / 1.0 ms.

use basin_data::{ClassMap, embedded};
use basin_nn::optim::{Sgd, SgdConfig};
use basin_nn::simd::Kernels;
use basin_nn::train::run_epoch;
use basin_nn::{FcnObjective, FcnSpec, Objective, all_examples};
use criterion::{Criterion, criterion_group, criterion_main};

fn objective<T: Kernels>() -> (FcnSpec, FcnObjective<T>, Vec<T>) {
    let data = ClassMap::mnist_low_high()
        .apply(&embedded::mnist().unwrap())
        .unwrap();
    let s = data.subset("S", &all_examples(500)).unwrap();
    let spec = FcnSpec::paper(784);
    let obj = FcnObjective::from_dataset(&spec, &s).unwrap();
    let theta = spec.init(1);
    (spec, obj, theta)
}

fn epoch(c: &mut Criterion) {
    let (spec, mut obj, mut theta) = objective::<f32>();
    let mut grad = vec![0.0f32; spec.n_params()];
    let order = basin_data::split::permutation(500, 3);
    let mut sgd = Sgd::new(&SgdConfig { lr: 0.01 }, spec.n_params());
    c.bench_function("epoch_784_40_40_1_s500_b32_f32", |b| {
        b.iter(|| run_epoch(&mut obj, &mut sgd, &mut theta, &order, 32, &mut grad))
    });
}

fn derivatives<T: Kernels>(c: &mut Criterion) {
    let (spec, mut obj, theta) = objective::<T>();
    let n = spec.n_params();
    let batch = all_examples(500);
    let v: Vec<T> = (0..n)
        .map(|i| T::from_f64(((i * 7919) % 1000) as f64 / 1000.0 - 0.5))
        .collect();
    let (mut g, mut hv) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    c.bench_function(&format!("gradient_s500_{}", T::NAME), |b| {
        b.iter(|| obj.loss_grad(&theta, &batch, &mut g))
    });
    c.bench_function(&format!("hvp_s500_{}", T::NAME), |b| {
        b.iter(|| obj.hvp(&theta, &batch, &v, &mut hv))
    });
    // Alternating between two points defeats the reuse of the forward pass: the cost of an
    // HVP at a new point (the JAX peer's jvp∘grad recomputes it every time).
    let other: Vec<T> = theta.iter().map(|&t| t * T::from_f64(1.001)).collect();
    let mut flip = false;
    c.bench_function(&format!("hvp_new_point_s500_{}", T::NAME), |b| {
        b.iter(|| {
            flip = !flip;
            obj.hvp(if flip { &theta } else { &other }, &batch, &v, &mut hv)
        })
    });
}

fn all(c: &mut Criterion) {
    epoch(c);
    derivatives::<f64>(c);
    derivatives::<f32>(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
