//! The cost and spread of annealed SMC (`basin_prior::smc`) on the step likelihood, for the
//! README's Benchmarks: `cargo run --release -p basin-prior --example smc_cost -- N P M R D [ep]`
//! with N points (64 or 300: the golden kernels and true labels of `tests/fixtures/gp`;
//! otherwise the paper's NNGP kernel on the first N embedded MNIST digits, labels digit ≥ 5),
//! P particles, M minimum sweeps per level, R replicates, decorrelation threshold D, and `ep`
//! to print EP's step value first. Prints the estimate, each replicate's log Ẑ, levels, sweeps,
//! EP-refit seconds and wall time.

use basin_prior::estimator::Estimator;
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::SmcConfig;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a[1].parse().unwrap();
    let p = format!("{}/tests/fixtures/gp/", env!("CARGO_MANIFEST_DIR"));
    let (k, y) = if n == 64 || n == 300 {
        let kv = basin_data::npy::read(std::path::Path::new(&format!("{p}K_{n}.npy")))
            .unwrap()
            .data
            .to_f64();
        let y = basin_data::npy::read(std::path::Path::new(&format!("{p}y_{n}.npy")))
            .unwrap()
            .data
            .to_f64();
        (faer::Mat::from_fn(n, n, |i, j| kv[i * n + j]), y)
    } else {
        let data = basin_data::embedded::mnist().unwrap();
        let idx: Vec<usize> = (0..n).collect();
        let set = data.subset("bench", &idx).unwrap();
        let spec = basin_nn::FcnSpec::paper(set.dim());
        let k = basin_prior::kernel::nngp(&spec, set.features(), n).unwrap();
        let y = set
            .labels()
            .unwrap()
            .iter()
            .map(|&d| if d >= 5 { 1.0 } else { -1.0 })
            .collect();
        (k, y)
    };
    if a.len() > 6 {
        let e = basin_prior::ep::ep(k.as_ref(), &y, Likelihood::Step, &Default::default(), None)
            .unwrap();
        println!("EP step {}", e.estimate.log_p);
    }
    let c = SmcConfig {
        particles: a[2].parse().unwrap(),
        moves: a[3].parse().unwrap(),
        replicates: a[4].parse().unwrap(),
        refit_ratio: 1.0,
        decorrelation: a[5].parse().unwrap(),
        seed: 1,
        ..SmcConfig::default()
    };
    let r = c.estimate(k.as_ref(), &y, Likelihood::Step).unwrap();
    println!(
        "est {:.4} ± {:.4} probit {:?} spread {:.3} wall {:.2}",
        r.estimate.log_p,
        r.estimate.std_err.unwrap(),
        r.diagnostics.probit,
        r.diagnostics.log_z_spread,
        r.diagnostics.wall_s
    );
    for run in &r.diagnostics.replicates {
        println!(
            "log_z {:.3} probit {:?} tries {:.2} cap {} levels {} ep_fits {} fail {} ep_s {:.2} wall {:.2} sweeps {}",
            run.log_z,
            run.log_z_probit,
            run.mean_tries,
            run.cap_hits,
            run.noise_levels.len(),
            run.ep_fits,
            run.ep_failures,
            run.ep_s,
            run.wall_s,
            run.sweeps.iter().sum::<usize>()
        );
    }
    let run = &r.diagnostics.replicates[0];
    println!(
        "  s {:?}",
        run.noise_levels
            .iter()
            .map(|s| format!("{s:.2e}"))
            .collect::<Vec<_>>()
    );
}
