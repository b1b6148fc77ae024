//! The Monte Carlo sums behind the empirical kernel: shards merged equal one run, each
//! entry's standard error equals a brute-force computation, the jackknife reduces to its
//! closed form on a linear statistic, the sums file round-trips (and is plain safetensors),
//! and bad settings, shards and files are errors that say what to do.

use basin_nn::{Activation, FcnSpec};
use basin_prior::PriorError;
use basin_prior::mc_error::{jackknife, jackknife_std_err};
use basin_prior::mc_file;
use basin_prior::mc_kernel::{
    FcnFeatures, FeatureExtractor, McConfig, McSums, SampleShard, mc_sums, sample_seed,
};
use faer::Mat;

fn features() -> FcnFeatures {
    let (n, d) = (25, 5);
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i * 7919) % 113) as f64 / 56.0 - 1.0)
        .collect();
    let spec = FcnSpec {
        input_dim: d,
        hidden: vec![64, 32],
        activation: Activation::Relu,
        sigma_w: std::f64::consts::SQRT_2,
        sigma_b: 0.7,
    };
    FcnFeatures::new(&spec, &x, n).unwrap()
}

fn config(samples: usize, blocks: usize, shard: SampleShard) -> McConfig {
    McConfig {
        samples,
        seed: 5,
        blocks,
        shard,
    }
}

fn sums(samples: usize, blocks: usize, shard: SampleShard) -> McSums {
    mc_sums(
        &mut features(),
        &config(samples, blocks, shard),
        "test",
        |_, _| {},
    )
    .unwrap()
}

/// max |a − b| / max |b|.
fn rel_diff(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for j in 0..b.ncols() {
        for i in 0..b.nrows() {
            num = num.max((a[(i, j)] - b[(i, j)]).abs());
            den = den.max(b[(i, j)].abs());
        }
    }
    num / den
}

#[test]
fn shards_merged_equal_one_run_to_1e_12() {
    let whole = sums(37, 4, SampleShard::WHOLE);
    let shard = |index| sums(37, 4, SampleShard { index, count: 3 });
    let parts = vec![shard(3), shard(1), shard(2)];
    assert_eq!(
        parts.iter().map(McSums::count).collect::<Vec<_>>(),
        [12, 13, 12]
    );
    assert!(!parts[0].is_complete());
    let merged = McSums::merge(parts).unwrap();
    assert!(merged.is_complete());
    assert_eq!(merged.block_counts(), whole.block_counts());
    let unsharded = basin_prior::mc_kernel::McMeta {
        shards: 1,
        shards_held: vec![1],
        ..merged.meta.clone()
    };
    assert_eq!(unsharded, whole.meta);
    let (k, k1) = (merged.kernel().unwrap(), whole.kernel().unwrap());
    assert!(rel_diff(&k, &k1) < 1e-12, "{}", rel_diff(&k, &k1));
    let (s, s1) = (
        merged.std_err().unwrap().unwrap(),
        whole.std_err().unwrap().unwrap(),
    );
    assert!(rel_diff(&s, &s1) < 1e-10, "{}", rel_diff(&s, &s1));
    for b in 0..4 {
        let (a, w) = (
            merged.kernel_without(Some(b)).unwrap(),
            whole.kernel_without(Some(b)).unwrap(),
        );
        assert!(rel_diff(&a, &w) < 1e-12);
    }
}

#[test]
fn the_kernel_and_each_entrys_standard_error_match_brute_force() {
    let (samples, seed) = (9, 5);
    let got = sums(samples, 3, SampleShard::WHOLE);
    let mut f = features();
    let (n, width) = (f.n_points(), f.width());
    let alpha = 2.0 / width as f64;
    let mut phi = Mat::<f64>::zeros(n, width);
    let mut kernels = Vec::new();
    for m in 0..samples {
        f.features(sample_seed(seed, m), phi.as_mut()).unwrap();
        kernels.push(Mat::from_fn(n, n, |i, j| {
            alpha * (0..width).map(|c| phi[(i, c)] * phi[(j, c)]).sum::<f64>()
        }));
    }
    let mf = samples as f64;
    let mean = Mat::from_fn(n, n, |i, j| {
        kernels.iter().map(|k| k[(i, j)]).sum::<f64>() / mf
    });
    let se = Mat::from_fn(n, n, |i, j| {
        let var = kernels
            .iter()
            .map(|k| (k[(i, j)] - mean[(i, j)]).powi(2))
            .sum::<f64>()
            / (mf - 1.0);
        (var / mf).sqrt()
    });
    let want = Mat::from_fn(n, n, |i, j| mean[(i, j)] + 0.49);
    let k = got.kernel().unwrap();
    assert!(rel_diff(&k, &want) < 1e-13, "{}", rel_diff(&k, &want));
    let s = got.std_err().unwrap().unwrap();
    // The one-pass variance (Σg² − (Σg)²/M) loses a few digits to cancellation.
    assert!(rel_diff(&s, &se) < 1e-8, "{}", rel_diff(&s, &se));
    // Block b holds the networks m ≡ b (mod 3).
    let k0 = got.kernel_without(Some(0)).unwrap();
    let rest = Mat::from_fn(n, n, |i, j| {
        (0..samples)
            .filter(|m| m % 3 != 0)
            .map(|m| kernels[m][(i, j)])
            .sum::<f64>()
            / 6.0
            + 0.49
    });
    assert!(rel_diff(&k0, &rest) < 1e-13);
}

#[test]
fn the_jackknife_of_an_entry_is_the_standard_error_of_its_block_means() {
    let s = sums(32, 4, SampleShard::WHOLE);
    let entry = |k: faer::MatRef<'_, f64>| Ok(k[(3, 7)]);
    let full = s.kernel().unwrap()[(3, 7)];
    let jk = jackknife(&s, full, entry).unwrap();
    // (Entry (7, 3) of the lower triangle, stored column-major.) With equal blocks the delete-one-block jackknife of a mean is the standard error of
    // the block means: √(Σ (m_b − m̄)² / (B (B − 1))).
    let means: Vec<f64> = (0..4)
        .map(|b| s.block_sum(b)[3 * 25 + 7] / 8.0 + 0.49)
        .collect();
    let mbar = means.iter().sum::<f64>() / 4.0;
    let want = (means.iter().map(|m| (m - mbar).powi(2)).sum::<f64>() / 12.0).sqrt();
    assert!(
        (jk.std_err - want).abs() < 1e-12 * want,
        "{} vs {want}",
        jk.std_err
    );
    assert_eq!(jk.leave_one_out.len(), 4);
    assert_eq!(jackknife_std_err(&[1.0]), None);
    assert_eq!(jackknife_std_err(&[1.0, f64::NAN]), None);
    assert!((jackknife_std_err(&[1.0, 3.0]).unwrap() - 1.0).abs() < 1e-15);
    let one_block = sums(4, 1, SampleShard::WHOLE);
    let e = jackknife(&one_block, 0.0, entry).unwrap_err();
    assert!(e.to_string().contains("--blocks"), "{e}");
}

#[test]
fn sums_files_round_trip_and_are_plain_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part.safetensors");
    let s = sums(10, 3, SampleShard { index: 2, count: 2 });
    mc_file::write(&s, &path).unwrap();
    let back = mc_file::read(&path).unwrap();
    assert_eq!(back, s);
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor("block.1").unwrap();
    assert_eq!(t.shape(), [25, 25]);
    let v = |i: usize, j: usize| {
        f64::from_le_bytes(t.data()[(i * 25 + j) * 8..][..8].try_into().unwrap())
    };
    assert_eq!(v(3, 9), v(9, 3), "stored symmetric");
    assert_eq!(v(9, 3), s.block_sum(1)[3 * 25 + 9]);
}

#[test]
fn bad_merges_and_files_are_errors_that_say_what_to_do() {
    let part = |index, seed| {
        let mut c = config(12, 2, SampleShard { index, count: 3 });
        c.seed = seed;
        mc_sums(&mut features(), &c, "test", |_, _| {}).unwrap()
    };
    let e = McSums::merge(vec![part(1, 5), part(1, 5)]).unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
    let e = McSums::merge(vec![part(1, 5), part(2, 6)]).unwrap_err();
    assert!(e.to_string().contains("different estimates"), "{e}");
    let partial = McSums::merge(vec![part(1, 5), part(3, 5)]).unwrap();
    let e = partial.kernel().unwrap_err();
    assert!(e.to_string().contains("2/3"), "{e}");
    assert!(e.to_string().contains("basin kernel merge"), "{e}");
    assert!(McSums::merge(Vec::new()).is_err());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    mc_file::write(&part(1, 5), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let e = mc_file::read(&path).unwrap_err();
    assert!(matches!(e, PriorError::McFile { .. }), "{e}");
    std::fs::write(&path, b"not a file of sums").unwrap();
    let e = mc_file::read(&path).unwrap_err();
    assert!(e.to_string().contains("not a Monte Carlo sums file"), "{e}");
    let e = mc_file::read(&dir.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("cannot open"), "{e}");
}

#[test]
fn impossible_settings_are_refused() {
    let check = |samples, blocks, index, count| {
        config(samples, blocks, SampleShard { index, count })
            .check()
            .map_err(|e| e.to_string())
    };
    assert!(check(8, 8, 1, 1).is_ok());
    assert!(check(4, 5, 1, 1).unwrap_err().contains("--blocks"));
    assert!(check(4, 0, 1, 1).unwrap_err().contains("--blocks"));
    assert!(check(4, 2, 0, 3).unwrap_err().contains("K/N"));
    assert!(check(4, 2, 4, 3).unwrap_err().contains("K/N"));
    assert!(check(4, 2, 1, 5).unwrap_err().contains("K/N"));
    assert!(check(0, 1, 1, 1).unwrap_err().contains("--samples"));
}

#[test]
fn workers_drawing_networks_at_once_give_the_same_sums_bit_for_bit() {
    let config = config(11, 3, SampleShard::WHOLE);
    let one = mc_sums(&mut features(), &config, "test", |_, _| {}).unwrap();
    let mut workers = vec![features(); 3];
    let mut calls = Vec::new();
    let three = basin_prior::mc_kernel::mc_sums_parallel(&mut workers, &config, "test", |d, t| {
        calls.push((d, t))
    })
    .unwrap();
    assert_eq!(three, one);
    assert_eq!(calls.len(), 11);
    assert_eq!(calls.last(), Some(&(11, 11)));
}
