//! The prior side of figure 2 on the Boolean system: each sampled function's labels and data
//! set on the cube, and its log P(f) under the NNGP of the 128 inputs.

use basin_nn::FcnSpec;
use basin_prior::boolean::{
    BooleanSampler, cube_kernel, function_dataset, function_labels, top_function_priors,
};
use basin_prior::estimate::{Method, log_prior};
use basin_prior::kernel::nngp;
use basin_prior::likelihood::Likelihood;

#[test]
fn labels_and_data_sets_follow_the_packing() {
    let f = 0x96u128 | 1 << 127;
    let labels = function_labels(f);
    let data = function_dataset(f).unwrap();
    assert_eq!(data.len(), 128);
    let y = data.labels().unwrap();
    for i in 0..128 {
        assert_eq!(f64::from(y[i]), labels[i], "input {i}");
        assert_eq!(y[i] == 1, (f >> i) & 1 == 1, "input {i}");
        // Input i is i in binary, most significant bit first.
        let x = &data.features()[7 * i..7 * i + 7];
        let back = x.iter().fold(0, |acc, &b| acc << 1 | b as usize);
        assert_eq!(back, i);
    }
}

/// The GP values are those of the estimator on the data set's own kernel and labels, and
/// they respect the symmetry f ↔ ¬f of a zero-mean prior with the probit likelihood.
#[test]
fn gp_priors_of_the_top_functions() {
    let spec = FcnSpec::paper(7);
    let counts = BooleanSampler::new(&spec)
        .unwrap()
        .sample(50_000, 4)
        .unwrap();
    let rows = top_function_priors(&spec, &counts, 8, Likelihood::Probit, Method::Ep).unwrap();
    assert_eq!(rows.len(), 8);
    let kernel = cube_kernel(&spec).unwrap();
    for r in &rows {
        assert_eq!(r.count, counts.count(r.function));
        assert!((r.log_p_sampled - (r.count as f64 / 50_000.0).ln()).abs() < 1e-12);
        assert!(r.log_p_sampled_ci.0 < r.log_p_sampled && r.log_p_sampled < r.log_p_sampled_ci.1);
        let data = function_dataset(r.function).unwrap();
        let k = nngp(&spec, data.features(), 128).unwrap();
        assert!((&k - &kernel).norm_max() == 0.0);
        let y: Vec<f64> = data
            .labels()
            .unwrap()
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let direct = log_prior(k.as_ref(), &y, Likelihood::Probit, Method::Ep).unwrap();
        assert_eq!(direct.log_p, r.gp.log_p);
        let negated: Vec<f64> = y.iter().map(|v| 1.0 - v).collect();
        let mirror = log_prior(k.as_ref(), &negated, Likelihood::Probit, Method::Ep).unwrap();
        assert!((mirror.log_p - r.gp.log_p).abs() < 1e-9, "P(f) vs P(¬f)");
    }
}
