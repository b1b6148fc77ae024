//! The Boolean direct-sampling prior: the golden packings written by `bench/peers/nn/golden.py`
//! (`fixtures/boolean`), the kernels against the f64 engine of `basin-nn`, the AVX-512 paths
//! against the portable ones bit for bit, the normal draws against N(0, 1), reproducibility
//! across thread counts, and the constant functions' frequencies against the numpy peer.

use std::path::PathBuf;

use basin_boolean::chacha::ChaChaStream;
use basin_boolean::ziggurat::Ziggurat;
use basin_boolean::{BooleanSampler, CubeNet, N_INPUTS, wilson_interval};
use basin_nn::{FcnObjective, FcnSpec};
use basin_prior::normal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn fixture(name: &str) -> basin_data::npy::NpyArray {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/boolean")
        .join(name);
    basin_data::npy::read(&p).expect("fixture readable")
}

/// A golden net (`W` stored `(fan_in, fan_out)`) in basin's layout (`W` stored `[out, in]`).
fn to_basin_layout(golden: &[f64], widths: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(golden.len());
    let mut at = 0;
    for pair in widths.windows(2) {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let w = &golden[at..at + fan_in * fan_out];
        for o in 0..fan_out {
            out.extend((0..fan_in).map(|i| w[i * fan_out + o]));
        }
        at += fan_in * fan_out;
        out.extend_from_slice(&golden[at..at + fan_out]);
        at += fan_out;
    }
    out
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// The f64 logits of a net on the cube, from `basin-nn`'s engine.
fn engine_logits(spec: &FcnSpec, theta: &[f64]) -> Vec<f64> {
    let x = basin_data::boolean::cube_inputs(7).unwrap();
    let mut obj = FcnObjective::<f64>::new(spec, &x, &[0u8; N_INPUTS]).unwrap();
    let mut z = vec![0.0; N_INPUTS];
    obj.logits(theta, &basin_nn::all_examples(N_INPUTS), &mut z);
    z
}

#[test]
fn golden_nets_pack_to_the_golden_functions() {
    let nets = fixture("bool_sampler_nets_flat.npy");
    let fns = fixture("bool_sampler_fns_u64.npy");
    assert_eq!(nets.shape, [20, 2001]);
    let nets = nets.data.to_f64();
    let basin_data::npy::NpyData::U64(words) = fns.data else {
        panic!("functions are u64")
    };
    let spec = FcnSpec::paper(7);
    let net = CubeNet::new(&spec).unwrap();
    let mut scratch = net.scratch();
    for (k, golden) in nets.chunks(2001).enumerate() {
        let theta = f32s(&to_basin_layout(golden, &spec.widths()));
        let want = u128::from(words[2 * k]) | u128::from(words[2 * k + 1]) << 64;
        assert_eq!(net.function(&theta, &mut scratch), want, "net {k}");
        assert_eq!(net.function_portable(&theta, &mut scratch), want, "net {k}");
    }
}

/// The sampled nets' functions are the signs of the f64 engine's logits wherever the logit
/// is not within f32 round-off of zero (|z| > 1e-4; none closer occurred).
#[test]
fn sampled_functions_agree_with_the_f64_engine() {
    for hidden in [vec![40, 40], vec![13], vec![37, 5, 70]] {
        let spec = FcnSpec {
            hidden: hidden.clone(),
            ..FcnSpec::paper(7)
        };
        let sampler = BooleanSampler::new(&spec).unwrap();
        let fns = sampler.functions(11, 1020..1100);
        let mut checked = 0;
        for (k, &f) in fns.iter().enumerate() {
            let theta = sampler.network(11, 1020 + k as u64);
            let wide: Vec<f64> = theta.iter().map(|&t| f64::from(t)).collect();
            for (i, z) in engine_logits(&spec, &wide).into_iter().enumerate() {
                if z.abs() > 1e-4 {
                    assert_eq!(
                        f >> i & 1 == 1,
                        z > 0.0,
                        "{hidden:?} net {k} input {i}: z {z}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 80 * 120,
            "{hidden:?}: only {checked} logits checked"
        );
    }
}

#[test]
fn simd_and_portable_kernels_agree_bit_for_bit() {
    for hidden in [
        vec![40, 40],
        vec![1],
        vec![6],
        vec![7, 70],
        vec![37, 5, 70, 13],
    ] {
        let spec = FcnSpec {
            hidden: hidden.clone(),
            sigma_b: 0.3,
            ..FcnSpec::paper(7)
        };
        let sampler = BooleanSampler::new(&spec).unwrap();
        let mut scratch = sampler.net().scratch();
        for index in 0..200 {
            let theta = sampler.network(5, index);
            let a = sampler.net().function(&theta, &mut scratch);
            let b = sampler.net().function_portable(&theta, &mut scratch);
            assert_eq!(a, b, "{hidden:?} net {index}");
        }
    }
}

#[test]
fn parameters_have_the_init_scales() {
    let spec = FcnSpec::paper(7);
    let sampler = BooleanSampler::new(&spec).unwrap();
    let mut sums = vec![(0.0f64, 0usize); 6];
    for index in 0..400 {
        let theta = sampler.network(3, index);
        for (l, layer) in spec.layers().iter().enumerate() {
            for (slot, range) in [(2 * l, layer.w_range()), (2 * l + 1, layer.b_range())] {
                sums[slot].0 += theta[range.clone()]
                    .iter()
                    .map(|&t| f64::from(t).powi(2))
                    .sum::<f64>();
                sums[slot].1 += range.len();
            }
        }
    }
    let want = [2.0 / 7.0, 1.0, 2.0 / 40.0, 1.0, 2.0 / 40.0, 1.0];
    for (k, ((sum, n), w)) in sums.into_iter().zip(want).enumerate() {
        let var = sum / n as f64;
        // The variance estimate of n normals has relative sd √(2/n); allow 5 sd.
        let tol = 5.0 * (2.0 / n as f64).sqrt();
        assert!(
            (var / w - 1.0).abs() < tol,
            "group {k}: variance {var} vs {w}"
        );
    }
}

/// 2²¹ draws through the sampler's generator (ChaCha8 words, AVX-512 ziggurat): the
/// Kolmogorov–Smirnov distance to Φ below its 0.1% critical value 1.95/√n, the tail beyond R
/// (where the fallback draws) and the moments within 5 standard errors.
#[test]
fn normal_draws_are_standard_normal() {
    let n = 1 << 21;
    let stream = ChaChaStream::new(BooleanSampler::key(42), 0);
    let mut words = Vec::with_capacity(n);
    let mut batch = [0u32; 256];
    for c in 0..(n / 256) as u64 {
        stream.batch(16 * c, &mut batch);
        words.extend_from_slice(&batch);
    }
    let mut z = vec![0.0f32; n];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    Ziggurat::get().fill(&words, &mut z, &mut rng);
    let mut x: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let nf = n as f64;
    let mean = x.iter().sum::<f64>() / nf;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf;
    let kurt = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / nf / (var * var);
    assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
    assert!(
        (var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(),
        "variance {var}"
    );
    assert!(
        (kurt - 3.0).abs() < 5.0 * (24.0 / nf).sqrt(),
        "kurtosis {kurt}"
    );
    let r = basin_boolean::ziggurat::R;
    let p_tail = 2.0 * normal::cdf(-r);
    let tail = x.iter().filter(|v| v.abs() > r).count() as f64 / nf;
    assert!(
        (tail - p_tail).abs() < 5.0 * (p_tail / nf).sqrt(),
        "P(|z| > R) {tail} vs {p_tail}"
    );
    x.sort_by(f64::total_cmp);
    let d = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = normal::cdf(v);
            (c - i as f64 / nf)
                .abs()
                .max(((i + 1) as f64 / nf - c).abs())
        })
        .fold(0.0, f64::max);
    assert!(d < 1.95 / nf.sqrt(), "KS distance {d}");
}

#[test]
fn counts_do_not_depend_on_the_thread_count_and_extend_by_prefix() {
    let sampler = BooleanSampler::new(&FcnSpec::paper(7)).unwrap();
    let n = 2 * 1024 + 300;
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| sampler.sample(n, 77).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.sorted(), two.sorted());
    assert_eq!(one.total(), n);
    let mut sequential = basin_boolean::FunctionCounts::new();
    for f in sampler.functions(77, 0..n) {
        sequential.add(f);
    }
    assert_eq!(sequential.sorted(), one.sorted());
    let other_seed = sampler.sample(n, 78).unwrap();
    assert_ne!(other_seed.sorted(), one.sorted());
}

/// The constant functions' frequencies against the numpy peer's (`bench/peers/nn/boolean_sampling.py`,
/// 10,002,432 samples: 2,512,054 all-zeros and 2,509,022 all-ones). Each of basin's
/// frequencies over 400,000 samples must lie within 3.29 combined standard errors (99.9%) of
/// the peer's; by the symmetry f ↔ ¬f (negate the output layer) the two constants must also
/// agree with each other. A bug that moves P(constant) by 0.005 fails.
#[test]
fn constant_functions_match_the_numpy_peer() {
    let n = 400_000u64;
    let counts = BooleanSampler::new(&FcnSpec::paper(7))
        .unwrap()
        .sample(n, 2024)
        .unwrap();
    let peer_n = 10_002_432f64;
    for (f, peer_count) in [(0u128, 2_512_054f64), (u128::MAX, 2_509_022f64)] {
        let p_peer = peer_count / peer_n;
        let p = counts.count(f) as f64 / n as f64;
        let se = (p_peer * (1.0 - p_peer) * (1.0 / n as f64 + 1.0 / peer_n)).sqrt();
        assert!(
            (p - p_peer).abs() < 3.29 * se,
            "P({f:x}) = {p} vs peer {p_peer} (se {se})"
        );
        let (lo, hi) = wilson_interval(counts.count(f), n, 3.29);
        assert!(
            lo < p_peer && p_peer < hi,
            "peer value outside the 99.9% Wilson interval"
        );
    }
    let (c0, c1) = (counts.count(0) as f64, counts.count(u128::MAX) as f64);
    assert!(
        (c0 - c1).abs() < 3.29 * (c0 + c1).sqrt(),
        "constants {c0} vs {c1}"
    );
}

#[test]
fn bad_specs_are_refused_with_reasons() {
    let msg = |spec: FcnSpec| BooleanSampler::new(&spec).unwrap_err().to_string();
    assert!(msg(FcnSpec::paper(6)).contains("input_dim to 7"));
    assert!(
        msg(FcnSpec {
            hidden: vec![],
            ..FcnSpec::paper(7)
        })
        .contains("hidden layer")
    );
    assert!(
        msg(FcnSpec {
            activation: basin_nn::Activation::Tanh,
            ..FcnSpec::paper(7)
        })
        .contains("ReLU")
    );
    let sampler = BooleanSampler::new(&FcnSpec::paper(7)).unwrap();
    assert!(
        sampler
            .sample(0, 1)
            .unwrap_err()
            .to_string()
            .contains("--samples")
    );
}
