//! The finite-width bias of the empirical NNGP kernel of the paper's FCN (784-w-w-1 ReLU,
//! σ_w = √2, σ_b = 1) on MNIST: the Monte Carlo kernel against the analytic one on the first
//! `N` embedded digits, for several widths, with each difference's Monte Carlo standard error.
//!
//! `cargo run --release -p basin-prior --example finite_width_bias -- [N] [M at width 40]`
//! prints a Markdown table: width, M, the mean relative difference of the diagonal and of the
//! off-diagonal entries, each ± its standard error.

use basin_nn::{Activation, FcnSpec};
use basin_prior::kernel::nngp_f64;
use basin_prior::mc_kernel::{FcnFeatures, McConfig, SampleShard, mc_sums};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100);
    let m40 = args.get(1).copied().unwrap_or(20_000);
    let data = basin_data::embedded::mnist().expect("the embedded MNIST");
    let x: Vec<f64> = data.features()[..n * 784]
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    println!("| width | M | diagonal: mean (K_mc − K)/K | off-diagonal: mean (K_mc − K)/K |");
    println!("|---|---|---|---|");
    for (width, samples) in [(40, m40), (100, m40 / 2), (400, m40 / 8), (2000, m40 / 40)] {
        let spec = FcnSpec {
            input_dim: 784,
            hidden: vec![width, width],
            activation: Activation::Relu,
            sigma_w: std::f64::consts::SQRT_2,
            sigma_b: 1.0,
        };
        let exact = nngp_f64(&spec, &x, n).expect("the analytic kernel");
        let mut features = FcnFeatures::new(&spec, &x, n).expect("the feature map");
        let cfg = McConfig {
            samples,
            seed: 2021,
            blocks: 8,
            shard: SampleShard::WHOLE,
        };
        let sums = mc_sums(&mut features, &cfg, "bias", |_, _| {}).expect("the sums");
        let k = sums.kernel().expect("the kernel");
        // The mean relative difference over a set of entries, and its jackknife error over
        // the sample blocks.
        let mean_rel = |k: &basin_prior::faer::Mat<f64>, diag: bool| {
            let mut total = (0.0, 0usize);
            for j in 0..n {
                for i in j..n {
                    if (i == j) == diag {
                        total.0 += (k[(i, j)] - exact[(i, j)]) / exact[(i, j)];
                        total.1 += 1;
                    }
                }
            }
            total.0 / total.1 as f64
        };
        let cell = |diag: bool| {
            let value = mean_rel(&k, diag);
            let loo: Vec<f64> = (0..8)
                .map(|b| mean_rel(&sums.kernel_without(Some(b)).expect("a kernel"), diag))
                .collect();
            let se = basin_prior::mc_error::jackknife_std_err(&loo).unwrap_or(f64::NAN);
            format!("{:+.3}% ± {:.3}%", 100.0 * value, 100.0 * se)
        };
        println!("| {width} | {samples} | {} | {} |", cell(true), cell(false));
    }
}
