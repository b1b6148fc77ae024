//! EP at N = 1500 (500 train + 1000 test, the paper's size) on the NNGP kernel of the paper's
//! FCN (two hidden ReLU layers, σ_w² = 2, σ_b² = 1) over the first 1500 embedded MNIST digits,
//! labels digit ≥ 5. With `BASIN_EP_BENCH_K=K.npy BASIN_EP_BENCH_Y=y.npy` it uses that kernel
//! and labels instead (e.g. the ones `bench/peers/gp/common.py` builds, for a same-value check
//! against GPy). Variants: mixed f32/f64 (the default), GPy's all-f64 arithmetic, and faer's
//! rayon parallelism.

use std::hint::black_box;

use basin_prior::ep::{EpConfig, EpPrecision, ep};
use basin_prior::faer::{Mat, Par};
use basin_prior::likelihood::Likelihood;
use criterion::{Criterion, criterion_group, criterion_main};

const N: usize = 1500;

fn problem() -> (Mat<f64>, Vec<f64>) {
    if let (Ok(k), Ok(y)) = (
        std::env::var("BASIN_EP_BENCH_K"),
        std::env::var("BASIN_EP_BENCH_Y"),
    ) {
        let ka = basin_data::npy::read(k.as_ref()).expect("kernel npy");
        let n = ka.shape[0];
        let kv = ka.data.to_f64();
        let y = basin_data::npy::read(y.as_ref())
            .expect("labels npy")
            .data
            .to_f64();
        return (Mat::from_fn(n, n, |i, j| kv[i * n + j]), y);
    }
    let data = basin_data::embedded::mnist().expect("embedded MNIST");
    let idx: Vec<usize> = (0..N).collect();
    let set = data.subset("bench", &idx).expect("subset");
    let spec = basin_nn::FcnSpec::paper(set.dim());
    let k = basin_prior::kernel::nngp(&spec, set.features(), N).expect("NNGP kernel");
    let labels = set.labels().expect("labels");
    let y = labels
        .iter()
        .map(|&d| if d >= 5 { 1.0 } else { -1.0 })
        .collect();
    (k, y)
}

fn bench(c: &mut Criterion) {
    let (k, y) = problem();
    let mut g = c.benchmark_group("ep_n1500");
    g.sample_size(10);
    let variants = [
        ("mixed_seq", EpPrecision::Mixed, Par::Seq),
        ("f64_seq", EpPrecision::F64, Par::Seq),
        ("mixed_rayon2", EpPrecision::Mixed, Par::rayon(2)),
    ];
    for (name, precision, par) in variants {
        let cfg = EpConfig {
            precision,
            par,
            check_psd: false,
            ..EpConfig::default()
        };
        let r = ep(k.as_ref(), &y, Likelihood::Probit, &cfg, None).expect("EP");
        eprintln!(
            "{name}: log Z = {:.12} ({} sweeps, {} posteriors in f32, {} redone)",
            r.estimate.log_p,
            r.estimate.iterations,
            r.diagnostics.f32_factorisations,
            r.diagnostics.redone_sweeps
        );
        g.bench_function(name, |b| {
            b.iter(|| ep(black_box(k.as_ref()), &y, Likelihood::Probit, &cfg, None).expect("EP"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
