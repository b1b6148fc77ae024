//! The engine's matrix products alone, on the shapes of the 784-40-40-1 net over 500
//! examples: `Z = X Wᵀ` (nt), `ΔW = Δᵀ X` (tn) and `dA = Δ W` (nn), in f64 and f32.

use basin_nn::Real;
use basin_nn::csr::SparseRows;
use basin_nn::gemm::{Mode, nn, nt, portable, tn};
use basin_nn::real::convert;
use basin_nn::simd::Kernels;
use basin_nn::sparse;
use criterion::{Criterion, criterion_group, criterion_main};

fn data<T: Real>(len: usize) -> Vec<T> {
    (0..len)
        .map(|i| T::from_f64(((i * 7919) % 1013) as f64 / 1013.0 - 0.5))
        .collect()
}

fn products<T: Kernels>(c: &mut Criterion) {
    let (b, fi, fo) = (500, 784, 40);
    let (x, w, d) = (data::<T>(b * fi), data::<T>(fo * fi), data::<T>(b * fo));
    let (mut z, mut gw, mut da) = (
        vec![T::ZERO; b * fo],
        vec![T::ZERO; fo * fi],
        vec![T::ZERO; b * fi],
    );
    c.bench_function(&format!("nt_500x40x784_{}", T::NAME), |bn| {
        bn.iter(|| nt(&mut z, &x, &w, (b, fo, fi), Mode::Replace))
    });
    c.bench_function(&format!("tn_40x784x500_{}", T::NAME), |bn| {
        bn.iter(|| tn(&mut gw, &d, &x, (fo, fi, b), Mode::Replace))
    });
    c.bench_function(&format!("nn_500x784x40_{}", T::NAME), |bn| {
        bn.iter(|| nn(&mut da, &d, &w, (b, fi, fo), Mode::Replace))
    });
    c.bench_function(&format!("faer_nt_500x40x784_{}", T::NAME), |bn| {
        bn.iter(|| portable::nt(&mut z, &x, &w, (b, fo, fi), Mode::Replace))
    });
    c.bench_function(&format!("faer_tn_40x784x500_{}", T::NAME), |bn| {
        bn.iter(|| portable::tn(&mut gw, &d, &x, (fo, fi, b), Mode::Replace))
    });
    let (h, wh) = (data::<T>(b * fo), data::<T>(fo * fo));
    let mut zh = vec![T::ZERO; b * fo];
    let mut gh = vec![T::ZERO; fo * fo];
    c.bench_function(&format!("nt_500x40x40_{}", T::NAME), |bn| {
        bn.iter(|| nt(&mut zh, &h, &wh, (b, fo, fo), Mode::Replace))
    });
    c.bench_function(&format!("tn_40x40x500_{}", T::NAME), |bn| {
        bn.iter(|| tn(&mut gh, &d, &h, (fo, fo, b), Mode::Replace))
    });
    c.bench_function(&format!("nn_500x40x40_{}", T::NAME), |bn| {
        bn.iter(|| nn(&mut zh, &d, &wh, (b, fo, fo), Mode::Replace))
    });
    let mut z32 = vec![T::ZERO; 32 * fo];
    c.bench_function(&format!("nt_32x40x784_{}", T::NAME), |bn| {
        bn.iter(|| nt(&mut z32, &x[..32 * fi], &w, (32, fo, fi), Mode::Replace))
    });
    c.bench_function(&format!("tn_40x784x32_{}", T::NAME), |bn| {
        bn.iter(|| {
            tn(
                &mut gw,
                &d[..32 * fo],
                &x[..32 * fi],
                (fo, fi, 32),
                Mode::Add,
            )
        })
    });
    sparse_products::<T>(c);
    let (n, mut big) = (512, vec![T::ZERO; 512 * 512]);
    let sq = data::<T>(n * n);
    c.bench_function(&format!("faer_nt_512cubed_{}", T::NAME), |bn| {
        bn.iter(|| portable::nt(&mut big, &sq, &sq, (n, n, n), Mode::Replace))
    });
}

/// The first layer's products on the first 500 embedded MNIST digits (19% nonzero), dense
/// and sparse (see `basin_nn::sparse`).
fn sparse_products<T: Kernels>(c: &mut Criterion) {
    let (b, fi, fo) = (500, 784, 40);
    let mnist = basin_data::embedded::mnist().expect("embedded MNIST");
    let x: Vec<T> = convert(&mnist.features()[..b * fi]);
    let sp = SparseRows::of(&x, fi).expect("MNIST is sparse");
    let rows: Vec<usize> = (0..b).collect();
    let w = data::<T>(fo * fi);
    let mut z = vec![T::ZERO; b * fo];
    let mut scratch = vec![T::ZERO; sparse::scratch_len(fo, fi)];
    c.bench_function(&format!("mnist_dense_nt_500x40x784_{}", T::NAME), |bn| {
        bn.iter(|| nt(&mut z, &x, &w, (b, fo, fi), Mode::Replace))
    });
    c.bench_function(&format!("mnist_sparse_nt_500x40x784_{}", T::NAME), |bn| {
        bn.iter(|| {
            let dims = (b, fo, fi);
            sparse::times_wt(&sp, &rows, &mut z, &w, dims, Mode::Replace, &mut scratch)
        })
    });
    let (d, mut gw) = (data::<T>(b * fo), vec![T::ZERO; fo * fi]);
    c.bench_function(&format!("mnist_dense_tn_40x784x500_{}", T::NAME), |bn| {
        bn.iter(|| tn(&mut gw, &d, &x, (fo, fi, b), Mode::Replace))
    });
    c.bench_function(&format!("mnist_sparse_tn_40x784x500_{}", T::NAME), |bn| {
        bn.iter(|| {
            let dims = (fo, fi, b);
            sparse::delta_t_times(&sp, 0, &mut gw, &d, dims, Mode::Replace, &mut scratch)
        })
    });
}

fn all(c: &mut Criterion) {
    products::<f64>(c);
    products::<f32>(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
