//! Minimax tilting on the NNGP kernel of the paper's FCN (two hidden ReLU layers, σ_w² = 2,
//! σ_b² = 1) over the first N embedded MNIST digits, labels digit ≥ 5: the whole estimate
//! (reordered Cholesky, Newton, sampling) at N = 64, 300 and 1500 with 2048 samples, probit.
//!
//! With `BASIN_TILTING_SWEEP=1` it first prints, for N = 64, 300, 1500, both likelihoods and
//! 1024 / 10240 / 102400 samples, the estimate, its standard error, the effective sample size
//! and the time of each stage, on rayon's pool (the README's table), and EP's value beside it.

use std::hint::black_box;
use std::time::Instant;

use basin_prior::ep::{EpConfig, ep};
use basin_prior::estimator::Estimator;
use basin_prior::faer::Mat;
use basin_prior::likelihood::Likelihood;
use basin_prior::tilting::TiltingConfig;
use criterion::{Criterion, criterion_group, criterion_main};

fn problem(n: usize) -> (Mat<f64>, Vec<f64>) {
    let data = basin_data::embedded::mnist().expect("embedded MNIST");
    let idx: Vec<usize> = (0..n).collect();
    let set = data.subset("bench", &idx).expect("subset");
    let spec = basin_nn::FcnSpec::paper(set.dim());
    let k = basin_prior::kernel::nngp(&spec, set.features(), n).expect("NNGP kernel");
    let y = set
        .labels()
        .expect("labels")
        .iter()
        .map(|&d| if d >= 5 { 1.0 } else { -1.0 })
        .collect();
    (k, y)
}

fn sweep() {
    for n in [64, 300, 1500] {
        let (k, y) = problem(n);
        for lik in [Likelihood::Probit, Likelihood::Step] {
            let ep_v = ep(k.as_ref(), &y, lik, &EpConfig::default(), None)
                .expect("EP")
                .estimate
                .log_p;
            for samples in [1024, 10_240, 102_400] {
                let cfg = TiltingConfig {
                    samples,
                    ..TiltingConfig::default()
                };
                let t = Instant::now();
                let r = cfg.estimate(k.as_ref(), &y, lik).expect("tilting");
                let d = &r.diagnostics;
                eprintln!(
                    "N={n} {lik:?} samples={samples}: {:.4} ± {:.4} (EP {ep_v:.4}), ESS {:.0}, \
                     converged {}, Cholesky {:.2} s, Newton {:.2} s ({} steps), sampling {:.2} s, \
                     total {:.2} s",
                    r.estimate.log_p,
                    r.estimate.std_err.unwrap_or(f64::NAN),
                    d.ess,
                    r.estimate.converged,
                    d.cholesky_s,
                    d.newton_s,
                    d.newton_iterations,
                    d.sampling_s,
                    t.elapsed().as_secs_f64()
                );
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    if std::env::var("BASIN_TILTING_SWEEP").is_ok() {
        sweep();
    }
    let mut g = c.benchmark_group("tilting_probit_2048");
    g.sample_size(10);
    for n in [64, 300, 1500] {
        let (k, y) = problem(n);
        let cfg = TiltingConfig {
            samples: 2048,
            ..TiltingConfig::default()
        };
        g.bench_function(format!("n{n}"), |b| {
            b.iter(|| {
                black_box(
                    cfg.estimate(k.as_ref(), &y, Likelihood::Probit)
                        .expect("tilting")
                        .estimate
                        .log_p,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
