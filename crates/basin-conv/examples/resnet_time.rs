//! basin's side of the conv timing protocol of `bench/peers/conv/resnet_jax.py time`, in f32
//! on random 3×32×32 images, He-normal init:
//!
//! 1. ResNet-18, batch 128: one SGD step (lr 0.01) of the mean sigmoid cross-entropy with
//!    BatchNorm on batch statistics; 1 warm-up step, then STEPS timed steps.
//! 2. ResNet-50, batch 256: the eval-mode forward pass (in passes of 64 images); 1 warm-up,
//!    then STEPS timed.
//! 3. ResNet-18, batch 32, eval mode: the gradient against the exact Hessian-vector product
//!    (forward and backward included, nothing cached), STEPS timed each.
//!
//! 4. ResNet-50, batch 128: the training step of 1., for its time and peak memory.
//!
//! One part per process, so that the peak resident memory is the part's own. Prints one JSON
//! object: the times, images per second (median), the achieved GFLOP/s (the training step
//! counted as 3 forward passes), the HVP/gradient ratio of the medians, and the peak resident
//! memory. Usage: `cargo run --release -p basin-conv --example resnet_time -- PART [THREADS]
//! [STEPS]`, PART one of train18, forward50, hvp18, train50 (THREADS defaults to every CPU,
//! STEPS to 5).

use std::time::Instant;

use basin_conv::graph::Op;
use basin_conv::{BnMode, BnState, ConvObjective, Graph, ResNetSpec};
use basin_nn::Objective;
use faer::Par;

/// Multiply-adds of one image's forward pass (the convs and the linear layer), times 2.
fn forward_flops(graph: &Graph) -> f64 {
    graph
        .nodes
        .iter()
        .map(|n| match n.op {
            Op::Conv(c) => 2.0 * (c.cout * c.fan_in() * n.shape.spatial()) as f64,
            _ => 0.0,
        })
        .sum()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// The peak resident memory so far, MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn objective(
    name: &str,
    batch: usize,
    chunk: usize,
    par: Par,
) -> (ConvObjective<f32>, Vec<f32>, Graph) {
    let spec = ResNetSpec::preset(name, 3).expect("a preset");
    let graph = Graph::resnet(&spec, 32, 32);
    let x: Vec<f32> = (0..batch * 3 * 32 * 32)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let y: Vec<u8> = (0..batch).map(|i| (i % 2) as u8).collect();
    let state = BnState::fresh(&graph);
    let obj = ConvObjective::new(graph.clone(), state, &x, &y, chunk, par).expect("fits");
    let theta = graph.init(1);
    (obj, theta, graph)
}

fn timed(reps: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect()
}

/// Times `steps` SGD steps (lr 0.01, BatchNorm on batch statistics) of preset `name` at
/// `batch`, after one warm-up step.
fn train(name: &str, batch: usize, steps: usize, par: Par) -> serde_json::Value {
    let (mut obj, mut theta, graph) = objective(name, batch, batch, par);
    obj.set_mode(BnMode::Train);
    let all: Vec<usize> = (0..batch).collect();
    let mut grad = vec![0.0f32; theta.len()];
    let mut step = || {
        obj.loss_grad(&theta, &all, &mut grad);
        theta
            .iter_mut()
            .zip(&grad)
            .for_each(|(t, g)| *t -= 0.01 * g);
    };
    step();
    let times = timed(steps, &mut step);
    let m = median(times.clone());
    serde_json::json!({
        "times_s": times, "median_s": m, "images_per_s_median": batch as f64 / m,
        "gflops_per_s": 3.0 * forward_flops(&graph) * batch as f64 / m / 1e9,
        "forward_gflop_per_image": forward_flops(&graph) / 1e9,
    })
}

/// Times the eval-mode forward pass of preset `name` at `batch`, after one warm-up.
fn forward(name: &str, batch: usize, reps: usize, par: Par) -> serde_json::Value {
    // Passes of 64: ResNet-50's activations for 256 images (12 GB per copy in f32) would not
    // fit beside the backward buffers on a 24 GB machine.
    let (mut obj, theta, graph) = objective(name, batch, 64, par);
    let all: Vec<usize> = (0..batch).collect();
    obj.loss(&theta, &all);
    let times = timed(reps, || {
        obj.loss(&theta, &all);
    });
    let m = median(times.clone());
    serde_json::json!({
        "times_s": times, "median_s": m, "images_per_s_median": batch as f64 / m,
        "gflops_per_s": forward_flops(&graph) * batch as f64 / m / 1e9,
        "forward_gflop_per_image": forward_flops(&graph) / 1e9,
    })
}

/// Times the eval-mode gradient against the exact Hessian-vector product of ResNet-18 at
/// batch 32 (nothing cached between calls).
fn grad_vs_hvp(steps: usize, par: Par) -> serde_json::Value {
    let (mut obj, theta, _) = objective("resnet18", 32, 32, par);
    let all: Vec<usize> = (0..32).collect();
    let mut g = vec![0.0f32; theta.len()];
    let v: Vec<f32> = (0..theta.len())
        .map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5)
        .collect();
    let mut hv = vec![0.0f32; theta.len()];
    obj.loss_grad(&theta, &all, &mut g);
    let grad_t = timed(steps, || {
        obj.loss_grad(&theta, &all, &mut g);
    });
    let mut shifted = theta.clone();
    let hvp_t = timed(steps, || {
        // A fresh point each time, so that no forward pass is reused.
        shifted[0] += 1e-6;
        obj.hvp(&shifted, &all, &v, &mut hv);
    });
    let (gm, hm) = (median(grad_t.clone()), median(hvp_t.clone()));
    serde_json::json!({ "grad_times_s": grad_t, "hvp_times_s": hvp_t, "grad_median_s": gm,
        "hvp_median_s": hm, "ratio": hm / gm })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let part = args.first().map_or("train18", String::as_str);
    let num =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = num(1, cpus);
    let steps = num(2, 5);
    let par = if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    let result = match part {
        "train18" => train("resnet18", 128, steps, par),
        "train50" => train("resnet50", 128, steps, par),
        "forward50" => forward("resnet50", 256, steps, par),
        "hvp18" => grad_vs_hvp(steps, par),
        other => {
            eprintln!("unknown part {other:?}: train18, train50, forward50 or hvp18");
            std::process::exit(2);
        }
    };
    let out = serde_json::json!({
        "part": part, "threads": threads, "result": result, "peak_rss_mib": peak_rss_mib(),
    });
    println!("{out}");
}
