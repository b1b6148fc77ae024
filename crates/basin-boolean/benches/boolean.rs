//! The Boolean direct-sampling prior of the paper's 7-40-40-1 net: samples per second on one
//! thread and on all threads (draw, evaluate, count), its parts (the 2,001 normals of a net,
//! by basin's ChaCha8 + AVX-512 ziggurat and by `rand_distr`'s `StandardNormal`; the function
//! of one net), and the machine's f32 GEMM peak measured in the same run (faer, 512³, one
//! thread and all threads), which the README's efficiency figure divides by.
//!
//! Each sample costs 2 · 128 · (7·40 + 40·40 + 40) = 491,520 flops as a dense product.
//!
//! Every group is timed twice: by wall clock (criterion's default) and by the CPU time of the
//! process (`*_cpu`, `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`), which a busy shared machine
//! disturbs much less; on several threads the CPU time is their sum, so its throughput is per
//! CPU-second.

use basin_boolean::BooleanSampler;
use basin_boolean::chacha::ChaChaStream;
use basin_boolean::ziggurat::Ziggurat;
use basin_nn::FcnSpec;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Samples per timed call of the sampler.
const SAMPLES: u64 = 16 * 1024;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

fn sampler<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let sampler = BooleanSampler::new(&FcnSpec::paper(7)).expect("the paper's net");
    let mut g = c.benchmark_group(format!("boolean_sample{suffix}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(SAMPLES));
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, all] {
        let pool = pool(threads);
        let mut seed = 0;
        g.bench_function(format!("threads{threads}"), |b| {
            b.iter(|| {
                seed += 1;
                pool.install(|| sampler.sample(SAMPLES, seed).expect("samples"))
            })
        });
    }
    g.finish();
}

fn parts<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let sampler = BooleanSampler::new(&FcnSpec::paper(7)).expect("the paper's net");
    let p = sampler.net().n_params();
    let mut g = c.benchmark_group(format!("boolean_parts{suffix}"));
    g.throughput(Throughput::Elements(1));
    let stream = ChaChaStream::new(BooleanSampler::key(1), 0);
    let mut words = vec![[0u32; 256]; p.div_ceil(256)];
    let mut z = vec![0.0f32; p];
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut counter = 0u64;
    g.bench_function("normals_chacha8_ziggurat", |b| {
        b.iter(|| {
            for batch in words.iter_mut() {
                stream.batch(counter, batch);
                counter += 16;
            }
            Ziggurat::get().fill(&words.as_flattened()[..p], &mut z, &mut rng);
            z[0]
        })
    });
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    g.bench_function("normals_rand_distr", |b| {
        b.iter(|| {
            for v in z.iter_mut() {
                *v = StandardNormal.sample(&mut rng);
            }
            z[0]
        })
    });
    let theta = sampler.network(4, 0);
    let mut scratch = sampler.net().scratch();
    g.bench_function("function", |b| {
        b.iter(|| sampler.net().function(&theta, &mut scratch))
    });
    g.bench_function("function_portable", |b| {
        b.iter(|| sampler.net().function_portable(&theta, &mut scratch))
    });
    g.finish();
}

fn gemm_peak<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let n = 512;
    let a = Mat::<f32>::from_fn(n, n, |i, j| ((i * 7 + j * 3) % 11) as f32 - 5.0);
    let b = Mat::<f32>::from_fn(n, n, |i, j| ((i * 5 + j) % 13) as f32 - 6.0);
    let mut out = Mat::<f32>::zeros(n, n);
    let mut g = c.benchmark_group(format!("gemm_f32_512{suffix}"));
    g.sample_size(20);
    g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (name, par) in [
        ("threads1".to_string(), Par::Seq),
        (format!("threads{all}"), Par::rayon(all)),
    ] {
        g.bench_function(name, |bch| {
            bch.iter(|| {
                matmul(
                    out.as_mut(),
                    Accum::Replace,
                    a.as_ref(),
                    b.as_ref(),
                    1.0,
                    par,
                )
            })
        });
    }
    g.finish();
}

fn wall(c: &mut Criterion<WallTime>) {
    sampler(c, "");
    parts(c, "");
    gemm_peak(c, "");
}

fn cpu(c: &mut Criterion<CpuTime>) {
    sampler(c, "_cpu");
    parts(c, "_cpu");
    gemm_peak(c, "_cpu");
}

/// CPU time of the whole process, in nanoseconds.
struct CpuTime;

fn process_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

impl Measurement for CpuTime {
    type Intermediate = f64;
    type Value = f64;

    fn start(&self) -> f64 {
        process_cpu_ns()
    }

    fn end(&self, start: f64) -> f64 {
        process_cpu_ns() - start
    }

    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, v: &f64) -> f64 {
        *v
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats CPU nanoseconds as µs (CPU) and throughputs as elements per CPU-second.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e3);
        "µs (CPU)"
    }

    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let per = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n,
            Throughput::Bits(n) => *n,
            _ => 1,
        } as f64;
        values.iter_mut().for_each(|v| *v = per * 1e9 / *v);
        "elem/s (CPU)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

criterion_group!(wall_benches, wall);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = cpu
}
criterion_main!(wall_benches, cpu_benches);
