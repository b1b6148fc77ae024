//! The analytic NNGP kernel of the paper's network (two hidden ReLU layers, σ_w = √2, σ_b = 1)
//! on the first N digits of the embedded MNIST, N = 1500 (the paper's 500 + 1000) and 5000:
//! the same computation as the numpy peer `bench/peers/gp/nngp.py` times.

use basin_data::embedded;
use basin_nn::FcnSpec;
use basin_prior::kernel::nngp;
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let data = embedded::mnist().expect("the embedded MNIST loads");
    let spec = FcnSpec::paper(data.dim());
    let mut g = c.benchmark_group("nngp_relu_2x_mnist");
    g.sample_size(10);
    for n in [1500, 5000] {
        let x = &data.features()[..n * data.dim()];
        g.bench_function(format!("n{n}"), |b| {
            b.iter(|| nngp(&spec, x, n).expect("the kernel computes"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
