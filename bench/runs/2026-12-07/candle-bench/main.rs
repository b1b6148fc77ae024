//! Times basin-conv's im2col+faer conv products against candle-core's CPU conv.
//! Threads: set RAYON_NUM_THREADS=1 or 2 in the environment (candle reads it for its rayon pool
//! and its gemm parallelism; basin uses Par::Seq for 1 and Par::rayon(2) for 2 on the same pool).

use basin_conv::conv::{Products, scratch_len};
use basin_conv::graph::{Conv, Shape};
use basin_nn::Real;
use candle_core::{DType, Device, Tensor, WithDType};
use faer::{Accum, Mat, Par};
use std::time::Instant;

const N: usize = 128;
const REPS: usize = 5;

#[derive(Clone, Copy)]
struct Layer {
    cin: usize,
    cout: usize,
    hw: usize,
    stride: usize,
}

impl Layer {
    fn conv(&self) -> Conv {
        Conv { cin: self.cin, cout: self.cout, k: 3, stride: self.stride, pad: 1, w: 0, b: None }
    }
    fn shape(&self) -> Shape {
        Shape { c: self.cin, h: self.hw, w: self.hw }
    }
    fn ho(&self) -> usize {
        (self.hw + 2 - 3) / self.stride + 1
    }
    fn flops(&self, nb: usize) -> f64 {
        2.0 * (self.cout * self.cin * 9 * self.ho() * self.ho() * nb) as f64
    }
    fn name(&self) -> String {
        format!("{}→{} s{} {}²", self.cin, self.cout, self.stride, self.hw)
    }
}

const LAYERS: [Layer; 5] = [
    Layer { cin: 64, cout: 64, hw: 32, stride: 1 },
    Layer { cin: 128, cout: 128, hw: 16, stride: 1 },
    Layer { cin: 256, cout: 256, hw: 8, stride: 1 },
    Layer { cin: 512, cout: 512, hw: 4, stride: 1 },
    Layer { cin: 64, cout: 128, hw: 32, stride: 2 },
];

fn pseudo(n: usize, salt: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + salt) * 0.7548776662).fract() - 0.5).collect()
}

/// Median seconds of REPS runs after one warm-up.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..REPS)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[REPS / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

/// NCHW (candle) → [C, N, H, W] (basin).
fn nchw_to_cnhw(v: &[f64], n: usize, c: usize, hw: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for ni in 0..n {
        for ci in 0..c {
            out[(ci * n + ni) * hw..][..hw].copy_from_slice(&v[(ni * c + ci) * hw..][..hw]);
        }
    }
    out
}

fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| <T as Real>::from_f64(x)).collect()
}

fn row(layer: &str, engine: &str, prec: &str, threads: usize, product: &str, secs: f64, flops: f64) {
    println!(
        "| {layer} | {engine} | {prec} | {threads} | {product} | {:.1} | {:.1} | {:.2} |",
        N as f64 / secs,
        flops / secs / 1e9,
        secs * 1e3
    );
}

fn bench<T: Real + WithDType>(prec: &str, dtype: DType, threads: usize, layers: &[Layer]) {
    let par = if threads == 1 { Par::Seq } else { Par::rayon(threads) };
    let dev = Device::Cpu;
    for l in layers {
        let conv = l.conv();
        let s = l.shape();
        let ho = l.ho();
        let fl = l.flops(N);
        let name = l.name();
        // Data generated in NCHW, transposed for basin so that both see the same numbers.
        let x64 = pseudo(N * l.cin * l.hw * l.hw, 0.3);
        let w64: Vec<f64> = pseudo(l.cout * l.cin * 9, 0.1).iter().map(|v| v * 0.1).collect();
        let dy64 = pseudo(N * l.cout * ho * ho, 0.9);

        // ---- basin ----
        let x: Vec<T> = cast(&nchw_to_cnhw(&x64, N, l.cin, l.hw * l.hw));
        let w: Vec<T> = cast(&w64);
        let dy: Vec<T> = cast(&nchw_to_cnhw(&dy64, N, l.cout, ho * ho));
        let mut col = vec![T::ZERO; scratch_len(&conv, s, N)];
        let mut y = vec![T::ZERO; N * l.cout * ho * ho];
        let mut dx = vec![T::ZERO; x.len()];
        let mut dw = vec![T::ZERO; w.len()];
        let p = Products { conv: &conv, input: s, nb: N, par };
        let t = time(|| p.forward(&w, None, &x, &mut y, &mut col, Accum::Replace));
        row(&name, "basin", prec, threads, "forward", t, fl);
        let ti = time(|| {
            dx.fill(T::ZERO);
            p.input_grad(&w, &dy, &mut dx, &mut col)
        });
        row(&name, "basin", prec, threads, "input grad", ti, fl);
        let tw = time(|| {
            dw.fill(T::ZERO);
            p.weight_grad(&dy, &x, &mut dw, None, &mut col)
        });
        row(&name, "basin", prec, threads, "weight grad", tw, fl);
        row(&name, "basin", prec, threads, "backward (ig+wg)", ti + tw, 2.0 * fl);
        drop((x, dx, y, col));
        if std::env::var("BENCH_ENGINE").is_ok_and(|e| e == "basin") {
            continue;
        }

        // ---- candle ----
        let xc = Tensor::from_vec(x64.clone(), (N, l.cin, l.hw, l.hw), &dev).unwrap().to_dtype(dtype).unwrap();
        let wc = Tensor::from_vec(w64.clone(), (l.cout, l.cin, 3, 3), &dev).unwrap().to_dtype(dtype).unwrap();
        let dyc = Tensor::from_vec(dy64.clone(), (N, l.cout, ho, ho), &dev).unwrap().to_dtype(dtype).unwrap();
        let t = time(|| {
            let y = xc.conv2d(&wc, 1, l.stride, 1, 1).unwrap();
            std::hint::black_box(y);
        });
        row(&name, "candle", prec, threads, "forward", t, fl);
        // As candle-core 0.11.1 backprop.rs does for Op::Conv2D.
        let out_size = (ho - 1) * l.stride + 2 + 1 - 2;
        let out_padding = l.hw - out_size;
        let ti = time(|| {
            let gx = dyc.conv_transpose2d(&wc, 1, out_padding, l.stride, 1).unwrap();
            std::hint::black_box(gx);
        });
        row(&name, "candle", prec, threads, "input grad", ti, fl);
        let tw = time(|| {
            let gk = xc
                .transpose(0, 1).unwrap()
                .conv2d(&dyc.transpose(0, 1).unwrap(), 1, 1, l.stride, 1).unwrap()
                .transpose(0, 1).unwrap();
            let (_, _, g0, g1) = gk.dims4().unwrap();
            let gk = if g0 != 3 || g1 != 3 { gk.narrow(2, 0, 3).unwrap().narrow(3, 0, 3).unwrap() } else { gk };
            std::hint::black_box(gk);
        });
        row(&name, "candle", prec, threads, "weight grad", tw, fl);
        row(&name, "candle", prec, threads, "backward (ig+wg)", ti + tw, 2.0 * fl);
        let _ = dw;
    }
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let m = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    d / m
}

/// Compares candle's products (via the backprop formulas and via Var + backward) to basin's.
fn check<T: Real + WithDType>(prec: &str, dtype: DType, l: Layer, nb: usize) {
    let dev = Device::Cpu;
    let conv = l.conv();
    let s = l.shape();
    let ho = l.ho();
    let x64 = pseudo(nb * l.cin * l.hw * l.hw, 0.3);
    let w64: Vec<f64> = pseudo(l.cout * l.cin * 9, 0.1).iter().map(|v| v * 0.1).collect();
    let x: Vec<T> = cast(&nchw_to_cnhw(&x64, nb, l.cin, l.hw * l.hw));
    let w: Vec<T> = cast(&w64);
    let mut col = vec![T::ZERO; scratch_len(&conv, s, nb)];
    let mut y = vec![T::ZERO; nb * l.cout * ho * ho];
    let p = Products { conv: &conv, input: s, nb, par: Par::Seq };
    p.forward(&w, None, &x, &mut y, &mut col, Accum::Replace);
    // loss = <r, y> with a pseudo-random r, so dy = r.
    let r64 = pseudo(nb * l.cout * ho * ho, 0.9);
    let dy: Vec<T> = cast(&nchw_to_cnhw(&r64, nb, l.cout, ho * ho));
    let mut dx = vec![T::ZERO; x.len()];
    let mut dw = vec![T::ZERO; w.len()];
    p.input_grad(&w, &dy, &mut dx, &mut col);
    p.weight_grad(&dy, &x, &mut dw, None, &mut col);
    let to64 = |v: &[T]| v.iter().map(|a| Real::to_f64(*a)).collect::<Vec<f64>>();

    let xv = candle_core::Var::from_tensor(
        &Tensor::from_vec(x64.clone(), (nb, l.cin, l.hw, l.hw), &dev).unwrap().to_dtype(dtype).unwrap(),
    )
    .unwrap();
    let wv = candle_core::Var::from_tensor(
        &Tensor::from_vec(w64.clone(), (l.cout, l.cin, 3, 3), &dev).unwrap().to_dtype(dtype).unwrap(),
    )
    .unwrap();
    let yc = xv.conv2d(&wv, 1, l.stride, 1, 1).unwrap();
    let yc64: Vec<f64> = yc.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let rc = Tensor::from_vec(r64.clone(), (nb, l.cout, ho, ho), &dev).unwrap().to_dtype(dtype).unwrap();
    let grads = yc.mul(&rc).unwrap().sum_all().unwrap().backward().unwrap();
    let gx: Vec<f64> = grads.get(&xv).unwrap().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let gw: Vec<f64> = grads.get(&wv).unwrap().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let e_y = rel_err(&nchw_to_cnhw(&yc64, nb, l.cout, ho * ho), &to64(&y));
    let e_x = rel_err(&nchw_to_cnhw(&gx, nb, l.cin, l.hw * l.hw), &to64(&dx));
    let e_w = rel_err(&gw, &to64(&dw));
    println!(
        "check {prec} {} batch {nb}: forward max|Δ|/max|y| = {e_y:.2e}; input grad {e_x:.2e}; weight grad {e_w:.2e}",
        l.name()
    );
}

fn gemm_peak<T: Real + WithDType + faer::traits::ComplexField>(prec: &str, threads: usize) {
    let n = 2048;
    let par = if threads == 1 { Par::Seq } else { Par::rayon(threads) };
    let a = Mat::<T>::from_fn(n, n, |i, j| <T as Real>::from_f64(((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5));
    let b = Mat::<T>::from_fn(n, n, |i, j| <T as Real>::from_f64(((i * 5 + j * 11) % 19) as f64 / 19.0 - 0.5));
    let mut c = Mat::<T>::zeros(n, n);
    let t = time(|| faer::linalg::matmul::matmul(c.as_mut(), Accum::Replace, a.as_ref(), b.as_ref(), T::ONE, par));
    let fl = 2.0 * (n * n * n) as f64;
    println!("| faer | {prec} | {threads} | {:.1} | {:.1} |", fl / t / 1e9, t * 1e3);
    // candle's own matmul (gemm 0.19) for comparison.
    let dev = Device::Cpu;
    let dt = <T as WithDType>::DTYPE;
    let ac = Tensor::from_vec(pseudo(n * n, 0.2), (n, n), &dev).unwrap().to_dtype(dt).unwrap();
    let bc = Tensor::from_vec(pseudo(n * n, 0.4), (n, n), &dev).unwrap().to_dtype(dt).unwrap();
    let t = time(|| {
        std::hint::black_box(ac.matmul(&bc).unwrap());
    });
    println!("| candle matmul | {prec} | {threads} | {:.1} | {:.1} |", fl / t / 1e9, t * 1e3);
}

fn main() {
    let threads: usize = std::env::var("RAYON_NUM_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    eprintln!(
        "threads {threads}; candle get_num_threads {}; rayon {}; loadavg {}",
        candle_core::utils::get_num_threads(),
        rayon::current_num_threads(),
        loadavg()
    );
    if what == "check" || what == "all" {
        check::<f32>("f32", DType::F32, LAYERS[4], N);
        check::<f32>("f32", DType::F32, LAYERS[0], 8);
        check::<f64>("f64", DType::F64, LAYERS[4], 8);
        check::<f64>("f64", DType::F64, LAYERS[0], 8);
    }
    if what == "gemm" || what == "all" {
        println!("| GEMM 2048³ | precision | threads | GFLOP/s | ms |\n|---|---|---|---|---|");
        gemm_peak::<f32>("f32", threads);
        gemm_peak::<f64>("f64", threads);
    }
    if what == "conv" || what == "all" {
        println!("| layer (N=128) | engine | precision | threads | product | img/s | GFLOP/s | ms |");
        println!("|---|---|---|---|---|---|---|---|");
        if std::env::var("BENCH_PREC").map_or(true, |p| p == "f32") {
            bench::<f32>("f32", DType::F32, threads, &LAYERS);
        }
        if std::env::var("BENCH_PREC").map_or(true, |p| p == "f64") {
            bench::<f64>("f64", DType::F64, threads, &LAYERS);
        }
    }
    eprintln!("done; loadavg {}", loadavg());
}
