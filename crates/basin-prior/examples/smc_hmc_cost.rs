//! The cost and spread of annealed SMC (`basin_prior::smc`) with either mover, for the
//! README's Benchmarks:
//! `cargo run --release -p basin-prior --example smc_hmc_cost -- [key=value ...]` with keys
//! `kernel=K.npy labels=y.npy` (0/1 or ±1 labels; `n=M` keeps the first M points) or
//! `equicorr=ρ,n_pos,n_neg`; `mover=hmc|slice`, `lik=step|probit`, `p` (particles), `r`
//! (replicates), `moves`, `max_moves`, `dec` (decorrelation), `ess`, `time` (HMC trajectory
//! time), `pilot=0|1` (fix the levels by a pilot replicate), `seed`, `ep=1` (print EP's value
//! for the same likelihood and probit first).
//! Prints the estimate, the probit checkpoint, and per replicate log Ẑ, levels, sweeps,
//! bounces and wall time.

use std::collections::HashMap;

use basin_prior::equicorr::{equicorr_kernel, log_orthant_equicorr};
use basin_prior::estimator::Estimator;
use basin_prior::likelihood::Likelihood;
use basin_prior::smc::{SmcConfig, SmcMover};

fn main() {
    let args: HashMap<String, String> = std::env::args()
        .skip(1)
        .filter_map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let get = |k: &str, d: &str| args.get(k).cloned().unwrap_or_else(|| d.to_string());
    let (k, y) = if let Some(e) = args.get("equicorr") {
        let v: Vec<f64> = e.split(',').map(|x| x.parse().unwrap()).collect();
        let (np, nn) = (v[1] as usize, v[2] as usize);
        println!(
            "equicorr exact {}",
            log_orthant_equicorr(v[0], np, nn).unwrap()
        );
        let y = (0..np + nn)
            .map(|i| if i < np { 1.0 } else { -1.0 })
            .collect::<Vec<f64>>();
        (equicorr_kernel(np + nn, v[0], 1.0, 0.0), y)
    } else {
        let kf = basin_data::npy::read(std::path::Path::new(&get("kernel", ""))).unwrap();
        let full = kf.shape[0];
        let kv = kf.data.to_f64();
        let yv = basin_data::npy::read(std::path::Path::new(&get("labels", "")))
            .unwrap()
            .data
            .to_f64();
        let n: usize = get("n", &full.to_string()).parse().unwrap();
        (
            faer::Mat::from_fn(n, n, |i, j| kv[i * full + j]),
            yv[..n].to_vec(),
        )
    };
    let lik = if get("lik", "step") == "probit" {
        Likelihood::Probit
    } else {
        Likelihood::Step
    };
    if get("ep", "0") == "1" {
        for l in [lik, Likelihood::Probit] {
            let e = basin_prior::ep::ep(k.as_ref(), &y, l, &Default::default(), None).unwrap();
            println!("EP {l:?} {}", e.estimate.log_p);
        }
    }
    let d = SmcConfig::default();
    let c = SmcConfig {
        particles: get("p", "256").parse().unwrap(),
        replicates: get("r", "4").parse().unwrap(),
        moves: get("moves", &d.moves.to_string()).parse().unwrap(),
        max_moves: get("max_moves", &d.max_moves.to_string()).parse().unwrap(),
        decorrelation: get("dec", &d.decorrelation.to_string()).parse().unwrap(),
        ess_fraction: get("ess", &d.ess_fraction.to_string()).parse().unwrap(),
        trajectory_time: get("time", &d.trajectory_time.to_string()).parse().unwrap(),
        pilot_schedule: get("pilot", if d.pilot_schedule { "1" } else { "0" }) == "1",
        seed: get("seed", "1").parse().unwrap(),
        mover: if get("mover", "hmc") == "hmc" {
            SmcMover::ExactHmc
        } else {
            SmcMover::EllipticalSlice
        },
        ..d
    };
    let r = c.estimate(k.as_ref(), &y, lik).unwrap();
    let dg = &r.diagnostics;
    println!(
        "est {:.4} ± {:.4} probit {:?} spread {:.3} levels {:.1} bounces {:.1} caps {} viol {} \
         wall {:.2} (factor {:.2})",
        r.estimate.log_p,
        r.estimate.std_err.unwrap(),
        dg.probit,
        dg.log_z_spread,
        dg.mean_temperatures,
        dg.mean_bounces,
        dg.cap_hits,
        dg.violations,
        dg.wall_s,
        dg.cholesky_s
    );
    for run in &dg.replicates {
        let sweeps: usize = run.sweeps.iter().sum();
        println!(
            "  log_z {:.3} probit {:?} levels {} sweeps {} ({:.1}/level, max {}) bounces {:.1} \
             wall {:.2}",
            run.log_z,
            run.log_z_probit,
            run.noise_levels.len(),
            sweeps,
            sweeps as f64 / run.sweeps.len().max(1) as f64,
            run.sweeps.iter().max().unwrap_or(&0),
            run.mean_bounces,
            run.wall_s
        );
    }
    for issue in &r.issues {
        println!("  issue: {issue}");
    }
}
