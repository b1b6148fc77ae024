//! `ep_vs_tilting` on GPy's golden N = 64 set: on the probit likelihood EP agrees with tilting
//! within its error bar; on the step likelihood EP is off by about −0.1 nats (GPy's EP
//! −39.537 against the Genz–Bretz value −39.438 ± 0.011), which the comparison resolves.

use std::path::PathBuf;

use basin_prior::ep_accuracy::{ComparisonConfig, ep_vs_tilting};
use basin_prior::likelihood::Likelihood;
use faer::Mat;

fn fixture(name: &str) -> Vec<f64> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gp")
        .join(name);
    basin_data::npy::read(&p).expect("fixture").data.to_f64()
}

#[test]
fn ep_bias_on_the_golden_n_64_set() {
    let v = fixture("K_64.npy");
    let k = Mat::from_fn(64, 64, |i, j| v[i * 64 + j]);
    let y = fixture("y_64.npy");
    let cfg = ComparisonConfig::default();
    let probit = ep_vs_tilting(k.as_ref(), &y, Likelihood::Probit, &cfg).unwrap();
    let step = ep_vs_tilting(k.as_ref(), &y, Likelihood::Step, &cfg).unwrap();
    for c in [&probit, &step] {
        eprintln!(
            "{:?}: EP {:.5}, tilting {:.5} ± {:.5}, bias {:+.5} ({:+.1} s.e.), reliable {}",
            c.likelihood, c.ep.log_p, c.reference.log_p, c.bias_std_err, c.bias, c.z, c.reliable
        );
        assert!(c.reliable && c.issues.is_empty() && c.n == 64);
        assert_eq!(c.bias, c.ep.log_p - c.reference.log_p);
        assert_eq!(Some(c.bias_std_err), c.reference.std_err);
    }
    assert!(probit.z.abs() < 3.0, "probit EP within the error bar");
    // Step: the Genz value puts EP's error at −0.099 ± 0.004 (3 s.e. 0.011).
    assert!(step.z < -5.0 && (step.bias + 0.099).abs() < 3.0 * step.bias_std_err + 0.011);
    // The record serialises (for the study's store) and reads back.
    let json = serde_json::to_string(&step).unwrap();
    let back: basin_prior::ep_accuracy::EpVsTilting = serde_json::from_str(&json).unwrap();
    assert_eq!(back, step);
}
