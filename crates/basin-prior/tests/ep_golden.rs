//! EP against GPy 1.15 (`fixtures/gp`, produced by `bench/peers/gp/golden.py`): the probit
//! values to 1e-6 nats, the Heaviside (step) values to 1e-4 nats, GPy's converged sites, and
//! the Genz-Bretz QMC values of the exact probabilities.

use std::path::PathBuf;

use basin_prior::ep::{EpConfig, EpPrecision, EpResult, EpSchedule, ep};
use basin_prior::likelihood::Likelihood;
use faer::Mat;

fn fixture(name: &str) -> basin_data::npy::NpyArray {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gp")
        .join(name);
    basin_data::npy::read(&p).expect("fixture readable")
}

fn kernel(n: usize) -> Mat<f64> {
    let a = fixture(&format!("K_{n}.npy"));
    assert_eq!(a.shape, vec![n, n]);
    let v = a.data.to_f64();
    Mat::from_fn(n, n, |i, j| v[i * n + j])
}

fn labels(n: usize, flip: bool) -> Vec<f64> {
    let name = if flip { "yflip" } else { "y" };
    fixture(&format!("{name}_{n}.npy")).data.to_f64()
}

fn golden(n: usize) -> Vec<f64> {
    fixture(&format!("logp_{n}.npy")).data.to_f64()
}

fn run(n: usize, flip: bool, lik: Likelihood, cfg: &EpConfig) -> EpResult {
    ep(kernel(n).as_ref(), &labels(n, flip), lik, cfg, None).expect("EP runs")
}

const CASES: [(usize, bool); 4] = [(64, false), (64, true), (300, false), (300, true)];

#[test]
fn parallel_probit_matches_gpy_default_run_to_1e_6_nats() {
    for precision in [EpPrecision::Mixed, EpPrecision::F64] {
        let cfg = EpConfig {
            precision,
            ..EpConfig::default()
        };
        for (n, flip) in CASES {
            let r = run(n, flip, Likelihood::Probit, &cfg);
            let want = golden(n)[usize::from(flip)];
            let err = (r.estimate.log_p - want).abs();
            eprintln!(
                "{precision:?} N={n} flip={flip}: rust {} gpy {want} |Δ| = {err:e}",
                r.estimate.log_p
            );
            assert!(err < 1e-6, "N={n} flip={flip}: |Δ| = {err:e}");
            assert!(r.estimate.converged);
            assert_eq!(
                r.estimate.iterations, 4,
                "GPy needed 4 sweeps (values.json)"
            );
        }
    }
}

/// Mixed precision (the default) against all-f64 arithmetic on GPy's kernels, probit and step,
/// undamped and damped (0.7), ε = 10⁻⁶ and 10⁻⁹: the same number of sweeps, and log Z within
/// 10⁻¹¹ nats for probit (measured ≤ 6·10⁻¹³) and 5·10⁻¹⁰ for step (measured ≤ 6·10⁻¹¹),
/// with at least one f32 posterior in every run.
#[test]
fn mixed_precision_takes_the_same_sweeps_and_value_as_f64() {
    for (n, flip) in CASES {
        for (lik, tol) in [(Likelihood::Probit, 1e-11), (Likelihood::Step, 5e-10)] {
            for (damping, epsilon) in [(1.0, 1e-6), (0.7, 1e-6), (1.0, 1e-9)] {
                let f64_cfg = EpConfig {
                    damping,
                    epsilon,
                    precision: EpPrecision::F64,
                    ..EpConfig::default()
                };
                let mixed_cfg = EpConfig {
                    precision: EpPrecision::Mixed,
                    ..f64_cfg
                };
                let exact = run(n, flip, lik, &f64_cfg);
                let mixed = run(n, flip, lik, &mixed_cfg);
                let err = (mixed.estimate.log_p - exact.estimate.log_p).abs();
                eprintln!(
                    "N={n} flip={flip} {lik:?} δ={damping} ε={epsilon:e}: |Δ| = {err:e}, \
                     {} sweeps, {} in f32, {} redone",
                    mixed.estimate.iterations,
                    mixed.diagnostics.f32_factorisations,
                    mixed.diagnostics.redone_sweeps
                );
                assert_eq!(mixed.estimate.iterations, exact.estimate.iterations);
                assert!(err < tol, "N={n} flip={flip} {lik:?}: |Δ| = {err:e}");
                assert!(
                    mixed.diagnostics.f32_factorisations >= 1
                        && exact.diagnostics.f32_factorisations == 0
                );
            }
        }
    }
}

#[test]
fn converged_parallel_probit_matches_gpy_eps_1e_12() {
    let cfg = EpConfig {
        epsilon: 1e-12,
        ..EpConfig::default()
    };
    for (n, flip) in CASES {
        let r = run(n, flip, Likelihood::Probit, &cfg);
        let want = golden(n)[2 + usize::from(flip)];
        let err = (r.estimate.log_p - want).abs();
        eprintln!(
            "eps1e-12 N={n} flip={flip}: |Δ| = {err:e} ({} sweeps)",
            r.estimate.iterations
        );
        assert!(err < 1e-6, "N={n} flip={flip}: |Δ| = {err:e}");
    }
}

#[test]
fn sequential_probit_matches_gpy_sequential() {
    let cfg = EpConfig {
        schedule: EpSchedule::Sequential,
        ..EpConfig::default()
    };
    for (n, flip) in CASES {
        let r = run(n, flip, Likelihood::Probit, &cfg);
        let want = golden(n)[4 + usize::from(flip)];
        let err = (r.estimate.log_p - want).abs();
        eprintln!(
            "sequential N={n} flip={flip}: |Δ| = {err:e} ({} sweeps)",
            r.estimate.iterations
        );
        assert!(err < 1e-6, "N={n} flip={flip}: |Δ| = {err:e}");
        assert!(r.estimate.converged);
    }
}

#[test]
fn heaviside_matches_gpy_to_1e_4_nats() {
    for (n, flip) in CASES {
        let r = run(n, flip, Likelihood::Step, &EpConfig::default());
        let want = golden(n)[6 + usize::from(flip)];
        let err = (r.estimate.log_p - want).abs();
        eprintln!(
            "step N={n} flip={flip}: rust {} gpy {want} |Δ| = {err:e}",
            r.estimate.log_p
        );
        assert!(err < 1e-4, "N={n} flip={flip}: |Δ| = {err:e}");
        let seq = EpConfig {
            schedule: EpSchedule::Sequential,
            ..EpConfig::default()
        };
        let s = run(n, flip, Likelihood::Step, &seq);
        let err = (s.estimate.log_p - want).abs();
        eprintln!("step sequential N={n} flip={flip}: |Δ| = {err:e}");
        assert!(err < 1e-4, "sequential N={n} flip={flip}: |Δ| = {err:e}");
    }
}

/// GPy's final sites and last cavities: to 10⁻⁹ of their scale in f64 arithmetic (measured
/// 10⁻¹³), and to 5·10⁻⁸ with the f32 early posteriors of mixed precision (measured 1.1·10⁻⁸:
/// after four sweeps their errors have been damped by one or two f64 sweeps only, while
/// log Z, stationary at EP's fixed point, moves by less than 10⁻¹²).
#[test]
fn converged_sites_and_cavities_match_gpy() {
    for (precision, tol) in [(EpPrecision::F64, 1e-9), (EpPrecision::Mixed, 5e-8)] {
        let cfg = EpConfig {
            precision,
            ..EpConfig::default()
        };
        for (n, flip) in CASES {
            let r = run(n, flip, Likelihood::Probit, &cfg);
            let name = if flip { "yflip" } else { "y" };
            let g = fixture(&format!("ep_sites_{n}_{name}.npy")).data.to_f64();
            let rows = [&r.sites.tau, &r.sites.nu, &r.cavities.tau, &r.cavities.nu];
            for (row, ours) in rows.iter().enumerate() {
                let theirs = &g[row * n..(row + 1) * n];
                let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let worst = ours
                    .iter()
                    .zip(theirs)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                eprintln!(
                    "{precision:?} N={n} {name} row {row}: max |Δ| = {worst:e} (scale {scale:e})"
                );
                assert!(
                    worst < tol * scale,
                    "{precision:?} N={n} {name} row {row}: max |Δ| = {worst:e}"
                );
            }
        }
    }
}

/// EP is an approximation: against the Genz QMC values of the exact orthant probabilities
/// (N = 64, ±err_est from values.json), the probit EP error is ~2e-4 nats and the step EP
/// error ~0.1 nats. The tolerances bound EP's error plus three QMC error estimates.
#[test]
fn ep_against_genz_exact_values_n64() {
    let g = golden(64);
    let err_probit = [1.6680423275020257e-4, 1.462372150710342e-4];
    let err_step = [0.010976996098432222, 0.02434151953076047];
    for flip in [false, true] {
        let f = usize::from(flip);
        let p = run(64, flip, Likelihood::Probit, &EpConfig::default());
        let d = p.estimate.log_p - g[8 + f];
        eprintln!(
            "probit EP − Genz (N=64, flip={flip}) = {d:e} ± {:e}",
            err_probit[f]
        );
        assert!(d.abs() < 5e-4 + 3.0 * err_probit[f]);
        let s = run(64, flip, Likelihood::Step, &EpConfig::default());
        let d = s.estimate.log_p - g[10 + f];
        eprintln!(
            "step EP − Genz (N=64, flip={flip}) = {d:e} ± {:e}",
            err_step[f]
        );
        assert!(d.abs() < 0.15 + 3.0 * err_step[f]);
    }
}

/// Two threads (a parallel Cholesky, diag(Σ) in two halves, and the kernel's Cholesky check
/// running alongside the first sweeps) against one: the same sweeps and log Z within 1e-12
/// relative (measured: equal to the last digit) on GPy's kernels, both likelihoods; the same
/// holds for a transposed view of the kernel, which EP reads without copying when it is
/// column-major and copies otherwise.
#[test]
fn two_threads_and_strided_kernels_give_the_one_thread_value() {
    for (n, flip) in CASES {
        for lik in [Likelihood::Probit, Likelihood::Step] {
            let one = run(n, flip, lik, &EpConfig::default());
            let two_cfg = EpConfig {
                par: faer::Par::rayon(2),
                ..EpConfig::default()
            };
            let two = run(n, flip, lik, &two_cfg);
            let k = kernel(n);
            let strided = ep(
                k.transpose(),
                &labels(n, flip),
                lik,
                &EpConfig::default(),
                None,
            )
            .expect("EP runs on a transposed view");
            for (name, r) in [("two threads", &two), ("transposed", &strided)] {
                let rel = (r.estimate.log_p - one.estimate.log_p).abs() / one.estimate.log_p.abs();
                eprintln!("N={n} flip={flip} {lik:?} {name}: relative |Δ| = {rel:e}");
                assert!(rel < 1e-12, "N={n} flip={flip} {lik:?} {name}: {rel:e}");
                assert_eq!(r.estimate.iterations, one.estimate.iterations);
                assert_eq!(r.estimate.jitter, 0.0);
            }
        }
    }
}

/// A singular kernel (11ᵀ) needs a jitter: with two threads the EP run that
/// started alongside the check is redone on the jittered kernel, so jitter and value are the
/// one-thread path's.
#[test]
fn two_threads_redo_the_run_on_a_kernel_that_needs_jitter() {
    let n = 40;
    let k = Mat::<f64>::from_fn(n, n, |_, _| 1.0);
    let y: Vec<f64> = (0..n)
        .map(|i| if i % 3 == 0 { 1.0 } else { -1.0 })
        .collect();
    let one = ep(
        k.as_ref(),
        &y,
        Likelihood::Probit,
        &EpConfig::default(),
        None,
    )
    .unwrap();
    let two_cfg = EpConfig {
        par: faer::Par::rayon(2),
        ..EpConfig::default()
    };
    let two = ep(k.as_ref(), &y, Likelihood::Probit, &two_cfg, None).unwrap();
    assert!(one.estimate.jitter > 0.0, "11ᵀ has no Cholesky factor");
    assert_eq!(two.estimate.jitter, one.estimate.jitter);
    let rel = (two.estimate.log_p - one.estimate.log_p).abs() / one.estimate.log_p.abs();
    assert!(rel < 1e-12, "relative |Δ| = {rel:e}");
}

/// An exactly symmetric kernel seen row-major (as an .npy file is) is read as its column-major
/// transpose, with no copy: the same bits as the column-major kernel. A kernel symmetric only
/// to round-off is copied instead and gives the same value to 1e-12 relative. Two runs on two
/// threads give the same bits (which factorisation runs alone while the kernel check runs
/// alongside is fixed by position, not by timing).
#[test]
fn row_major_kernels_and_repeated_two_thread_runs_give_the_same_value() {
    let n = 300;
    let k0 = kernel(n);
    let sym = Mat::<f64>::from_fn(n, n, |i, j| if i >= j { k0[(i, j)] } else { k0[(j, i)] });
    let y = labels(n, false);
    let two = EpConfig {
        par: faer::Par::rayon(2),
        ..EpConfig::default()
    };
    for lik in [Likelihood::Probit, Likelihood::Step] {
        let col = ep(sym.as_ref(), &y, lik, &two, None).unwrap();
        let again = ep(sym.as_ref(), &y, lik, &two, None).unwrap();
        assert_eq!(again.estimate.log_p.to_bits(), col.estimate.log_p.to_bits());
        let row = ep(sym.transpose(), &y, lik, &two, None).unwrap();
        assert_eq!(row.estimate.log_p.to_bits(), col.estimate.log_p.to_bits());
        let nudged = Mat::<f64>::from_fn(n, n, |i, j| {
            sym[(i, j)] * if i < j { 1.0 + 1e-15 } else { 1.0 }
        });
        let copied = ep(nudged.transpose(), &y, lik, &two, None).unwrap();
        let rel = (copied.estimate.log_p - col.estimate.log_p).abs() / col.estimate.log_p.abs();
        assert!(rel < 1e-12, "{lik:?}: relative |Δ| = {rel:e}");
    }
}
