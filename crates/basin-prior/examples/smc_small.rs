use basin_prior::equicorr::{equicorr_kernel, log_orthant_equicorr};
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::{SmcConfig, smc};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a[1].parse().unwrap();
    let np = n * 14 / 24;
    let y: Vec<f64> = (0..n).map(|i| if i < np { 1.0 } else { -1.0 }).collect();
    let rho: f64 = a[7].parse().unwrap();
    let k = equicorr_kernel(n, rho, 1.0, 0.0);
    let truth = log_orthant_equicorr(rho, np, n - np).unwrap();
    let mut zs = vec![];
    for seed in 0..a[5].parse::<u64>().unwrap() {
        let c = SmcConfig { particles: a[2].parse().unwrap(), replicates: a[3].parse().unwrap(), decorrelation: a[4].parse().unwrap(), precondition: a[6] != "0", moves: a[6].parse::<usize>().unwrap().max(1), seed, ..SmcConfig::default() };
        let r = smc(k.as_ref(), &y, Likelihood::Step, &c).unwrap();
        let z = (r.estimate.log_p - truth) / r.estimate.std_err.unwrap();
        zs.push(z);
        println!("truth {truth:.4} est {:.4} ± {:.4} z {z:+.2} spread {:.3} reps {:?} sweeps {}", r.estimate.log_p, r.estimate.std_err.unwrap(), r.diagnostics.log_z_spread, r.diagnostics.log_z_replicates.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>(), r.diagnostics.replicates[0].sweeps.iter().sum::<usize>());
    }
    println!("mean z {:.3}", zs.iter().sum::<f64>() / zs.len() as f64);
}
