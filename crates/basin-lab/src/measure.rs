//! The measurement stages of a trained network: its errors on S, A and T, its predicted
//! function on S ∪ T, Keskar sharpness, the Hessian spectrum, log P(f) and the bounds. Each
//! stage writes its measures, notes and wall time into the run's record; a measure that fails
//! is a note, not an error.

use std::collections::BTreeMap;
use std::time::Instant;

use basin_data::Dataset;
use basin_flatness::FlatnessError;
use basin_flatness::keskar::{AscentOrder, KeskarConfig, sharpness_sgd};
use basin_flatness::lanczos::{DEFAULT_STEPS, LanczosConfig, lanczos};
use basin_nn::{Kernels, all_examples, derive_seed};
use basin_prior::bounds::{marginal_likelihood_bound, occam_bound};
use basin_prior::dispatch::Estimators;
use basin_prior::ep::{EpConfig, EpSchedule, Sites, UNDAMPED_SWEEPS, ep_to_fixed_point};
use basin_prior::estimate::{Method, issues_note};
use basin_prior::estimator::Estimator;
use basin_prior::likelihood::Likelihood;
use sha2::{Digest, Sha256};

use crate::error::LabError;
use crate::net::NetState;
use crate::prepare::Prepared;
use crate::record::RunRecord;
use crate::spec::{RunKey, SharpnessSpec};
use basin_nn::Precision;

/// The record of one run, trained for `train_s` seconds to the parameters `theta` with the
/// network's `state`: its errors and function, then every measure of the spec.
pub fn measure_run<T: Kernels>(
    prep: &Prepared,
    key: &RunKey,
    report: &basin_nn::TrainReport,
    theta: &[T],
    state: &NetState,
    train_s: f64,
) -> Result<RunRecord, LabError> {
    let errors = errors_of(prep, theta, state, key.attack_size)?;
    let function = predicted_function(prep, theta, state)?;
    let mut record = RunRecord {
        id: key.id.clone(),
        experiment: prep.spec.name.clone(),
        variant: key.variant.clone(),
        optimizer: key.optimizer.name().to_owned(),
        overtrain_epochs: key.overtrain_epochs,
        attack_size: key.attack_size,
        replicate: key.replicate,
        seed: key.seed,
        status: report.status,
        epochs: report.epochs,
        train_error: errors.train,
        attack_error: errors.attack,
        test_error: errors.test,
        function_hash: function_hash(&function),
        measures: BTreeMap::new(),
        notes: BTreeMap::new(),
        stage_s: BTreeMap::from([("train".to_owned(), train_s)]),
        trajectory: Vec::new(),
    };
    measure_sharpness(prep, theta, state, &mut record)?;
    measure_hessian(
        prep,
        &basin_nn::real::convert(theta),
        state,
        key,
        &mut record,
    )?;
    measure_prior(prep, &function, &mut record);
    Ok(record)
}

/// A network's error rates on S, A and T.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetErrors {
    /// Error on S.
    pub train: f64,
    /// Error on A, against its flipped labels; `None` when A is empty (no rate exists).
    pub attack: Option<f64>,
    /// Error on T; `None` when T is empty (the Boolean experiment's whole cube is S).
    pub test: Option<f64>,
}

/// Errors on S, A (the run's prefix of `a` examples, against its flipped labels) and T of the
/// network with `theta` and `state`. S must not be empty (the spec's checks ensure it); an
/// empty A or T has no rate.
pub fn errors_of<T: Kernels>(
    prep: &Prepared,
    theta: &[T],
    state: &NetState,
    a: usize,
) -> Result<SetErrors, LabError> {
    let attack = prep
        .split
        .attack
        .subset("A", &all_examples(a))
        .map_err(|e| prep.setup_err(e))?;
    let rate = |data: &Dataset| -> Result<Option<f64>, LabError> {
        if data.is_empty() {
            return Ok(None);
        }
        let mut obj = prep
            .net
            .objective::<T>(data, state, false)
            .map_err(|e| prep.setup_err(e))?;
        Ok(Some(
            obj.count_errors(theta, &all_examples(data.len())) as f64 / data.len() as f64,
        ))
    };
    let train = rate(&prep.split.train)?
        .ok_or_else(|| prep.setup_err("the training set S is empty: it has no error rate"))?;
    Ok(SetErrors {
        train,
        attack: rate(&attack)?,
        test: rate(&prep.split.test)?,
    })
}

/// The predicted labels on S then T of the network with `theta` and `state`.
pub fn predicted_function<T: Kernels>(
    prep: &Prepared,
    theta: &[T],
    state: &NetState,
) -> Result<Vec<u8>, LabError> {
    let logits = prep
        .net
        .logits(theta, state, &prep.s_and_t)
        .map_err(|e| prep.setup_err(e))?;
    Ok(logits.into_iter().map(basin_nn::loss::predict).collect())
}

/// SHA-256 (hex) of a function's labels.
pub fn function_hash(f: &[u8]) -> String {
    Sha256::digest(f)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keskar sharpness on S, in the spec's precision; a failure is a note, not an error.
fn measure_sharpness<T: Kernels>(
    prep: &Prepared,
    theta: &[T],
    state: &NetState,
    record: &mut RunRecord,
) -> Result<(), LabError> {
    let Some(s) = &prep.spec.measures.sharpness else {
        return Ok(());
    };
    let start = Instant::now();
    let result = sharpness_of(prep, theta, state, s)?;
    match result {
        Ok(v) => {
            record.measures.insert("sharpness".into(), Some(v));
        }
        Err(note) => {
            record.measures.insert("sharpness".into(), None);
            record.notes.insert("sharpness".into(), note.to_string());
        }
    }
    record
        .stage_s
        .insert("sharpness".into(), start.elapsed().as_secs_f64());
    Ok(())
}

/// Keskar sharpness on S of the network with `theta` and `state`, in the precision of `s`
/// (fixed batch order, as the paper's code); the inner `Err` says why the ascent failed (a
/// note on the run, not an error).
pub fn sharpness_of<T: Kernels>(
    prep: &Prepared,
    theta: &[T],
    state: &NetState,
    s: &SharpnessSpec,
) -> Result<Result<f64, FlatnessError>, LabError> {
    let cfg = KeskarConfig {
        epsilon: s.epsilon,
        lr: s.lr,
        epochs: s.epochs,
        batch_size: s.batch_size,
        order: AscentOrder::Fixed,
    };
    match s.precision {
        Precision::F32 => sharpness_on::<f32>(prep, &basin_nn::real::convert(theta), state, &cfg),
        Precision::F64 => sharpness_on::<f64>(prep, &basin_nn::real::convert(theta), state, &cfg),
    }
}

fn sharpness_on<T: Kernels>(
    prep: &Prepared,
    theta: &[T],
    state: &NetState,
    cfg: &KeskarConfig,
) -> Result<Result<f64, FlatnessError>, LabError> {
    let mut obj = prep
        .net
        .objective::<T>(&prep.split.train, state, false)
        .map_err(|e| prep.setup_err(e))?;
    Ok(sharpness_sgd(obj.as_mut(), theta, cfg).map(|r| r.sharpness.sharpness))
}

/// λmax and the log-product of the top-k Hessian eigenvalues on S, by Lanczos in f64. Top-k
/// values that did not converge are named in a note.
fn measure_hessian(
    prep: &Prepared,
    theta: &[f64],
    state: &NetState,
    key: &RunKey,
    record: &mut RunRecord,
) -> Result<(), LabError> {
    let Some(h) = &prep.spec.measures.hessian else {
        return Ok(());
    };
    let start = Instant::now();
    let mut obj = prep
        .net
        .objective::<f64>(&prep.split.train, state, true)
        .map_err(|e| prep.setup_err(e))?;
    let cfg = LanczosConfig {
        steps: h.lanczos_steps.unwrap_or(DEFAULT_STEPS),
        top_k: h.top_k,
        seed: derive_seed(key.seed, 3),
        ..LanczosConfig::default()
    };
    let product = format!("log_product_top{}", h.top_k);
    match lanczos(obj.as_mut(), theta, &cfg) {
        Ok(spec) => {
            record
                .measures
                .insert("lambda_max".into(), Some(spec.lambda_max));
            record
                .measures
                .insert("spectral_norm".into(), Some(spec.spectral_norm));
            record
                .measures
                .insert(product, Some(spec.log_product_top_k));
            if !spec.top.all_converged() {
                let note = format!(
                    "{} of the top {} Ritz values converged after {} Lanczos steps",
                    spec.top.n_converged(),
                    spec.top.eigenvalues.len(),
                    spec.steps
                );
                record.notes.insert("hessian".into(), note);
            }
        }
        Err(e) => {
            record.measures.insert("lambda_max".into(), None);
            record.measures.insert(product, None);
            record.notes.insert("hessian".into(), e.to_string());
        }
    }
    record
        .stage_s
        .insert("hessian".into(), start.elapsed().as_secs_f64());
    Ok(())
}

/// The prior stage: log P(f) of the predicted function on S ∪ T for each likelihood, and the bounds: Occam's
/// from the first likelihood's log P(f), the PAC-Bayes one from the marginal likelihood of
/// the labels on S (EP on the S block of the kernel, same likelihood). An estimator that fails
/// or does not converge leaves a note.
pub fn measure_prior(prep: &Prepared, function: &[u8], record: &mut RunRecord) {
    let (Some(p), Some(kernel)) = (&prep.spec.measures.prior, &prep.kernel) else {
        return;
    };
    let start = Instant::now();
    let labels: Vec<f64> = function
        .iter()
        .map(|&b| if b == 1 { 1.0 } else { -1.0 })
        .collect();
    let method = p.method;
    // With parallel EP, each likelihood after the first starts from the previous one's
    // sites: a nearby fixed point, so fewer sweeps; the order is fixed, so runs stay
    // reproducible.
    let mut warm: Option<Sites> = None;
    for lik in &p.likelihoods {
        let (likelihood, key) = (*lik, prior_key(*lik));
        let mut damping = 1.0;
        let value = if method == Method::Ep {
            let (value, end) = ep_estimate(
                kernel.as_ref(),
                &labels,
                likelihood,
                (warm.as_ref(), 1.0),
                key,
                record,
            );
            (warm, damping) = end.map_or((None, 1.0), |(s, d)| (Some(s), d));
            value
        } else {
            estimate(kernel.as_ref(), &labels, likelihood, method, key, record)
        };
        record.measures.insert(key.into(), value);
        if value.is_some() && !prep.jackknife_kernels.is_empty() {
            let start = (warm.as_ref(), damping);
            let mc = mc_std_err(prep, &labels, likelihood, method, start, record);
            record.measures.insert(format!("{key}_mc_std_err"), mc);
        }
    }
    if let Some(r) = &p.reference {
        measure_smc_reference(kernel.as_ref(), &labels, r, record);
    }
    if let Some(b) = &prep.spec.measures.bounds {
        let m = prep.split.train.len();
        let first = (p.likelihoods[0], prior_key(p.likelihoods[0]));
        let occam = record
            .measure(first.1)
            .and_then(|lp| occam_bound(lp, m, b.delta).ok());
        record.measures.insert("bound_occam".into(), occam);
        let k_s = kernel.as_ref().submatrix(0, 0, m, m);
        let log_p_s = estimate(k_s, &labels[..m], first.0, method, "log_marginal_s", record);
        record.measures.insert("log_marginal_s".into(), log_p_s);
        let pac = log_p_s.and_then(|lp| marginal_likelihood_bound(lp, m, b.delta).ok());
        record.measures.insert("bound_pac_bayes".into(), pac);
    }
    record
        .stage_s
        .insert("prior".into(), start.elapsed().as_secs_f64());
}

/// The Monte Carlo error of log P(f) on an empirical kernel: the jackknife over the kernels
/// without each block of samples, each estimate by `method` (EP warm-started from the full
/// kernel's sites, at the damping that reached its fixed point, as the kernels are close).
/// `None` with a note when an estimate fails.
fn mc_std_err(
    prep: &Prepared,
    labels: &[f64],
    likelihood: Likelihood,
    method: Method,
    start: (Option<&Sites>, f64),
    record: &mut RunRecord,
) -> Option<f64> {
    let key = format!("{}_mc_std_err", prior_key(likelihood));
    let values: Option<Vec<f64>> = prep
        .jackknife_kernels
        .iter()
        .map(|k| match method {
            Method::Ep => ep_estimate(k.as_ref(), labels, likelihood, start, &key, record).0,
            _ => estimate(k.as_ref(), labels, likelihood, method, &key, record),
        })
        .collect();
    values.and_then(|v| basin_prior::mc_error::jackknife_std_err(&v))
}

/// The reference: the step likelihood's log P(f) by annealed SMC, with its standard error
/// (`log_prior_step_smc`, `log_prior_step_smc_std_err`) and its wall time (stage
/// `prior_smc`); issues or an error go to the note `log_prior_step_smc`. Seeded from the run.
fn measure_smc_reference(
    kernel: basin_prior::faer::MatRef<'_, f64>,
    labels: &[f64],
    r: &crate::spec::SmcSpec,
    record: &mut RunRecord,
) {
    let start = Instant::now();
    let key = "log_prior_step_smc";
    let cfg = r.config(basin_nn::derive_seed(record.seed, 0x5AC));
    match cfg.estimate(kernel, labels, Likelihood::Step) {
        Ok(res) => {
            record.measures.insert(key.into(), Some(res.estimate.log_p));
            record.measures.insert(
                format!("{key}_std_err"),
                Some(res.estimate.std_err.unwrap_or(f64::INFINITY)),
            );
            if !res.issues.is_empty() {
                record.notes.insert(key.into(), issues_note(&res.issues));
            }
        }
        Err(e) => {
            record.measures.insert(key.into(), None);
            record.notes.insert(key.into(), e.to_string());
        }
    }
    record
        .stage_s
        .insert("prior_smc".into(), start.elapsed().as_secs_f64());
}

/// The measure of log P(f) with likelihood `lik`.
fn prior_key(lik: Likelihood) -> &'static str {
    match lik {
        Likelihood::Probit => "log_prior_probit",
        Likelihood::Step => "log_prior_step",
    }
}

/// Parallel EP (GPy's settings, the kernel already checked) from `warm` sites, if given, damped
/// where undamped EP oscillates ([`ep_to_fixed_point`], with a note), starting at the
/// damping of `start` (1: none) from its sites; returns the value (`None` with a note on
/// failure), and the final sites with the damping that reached them.
fn ep_estimate(
    kernel: basin_prior::faer::MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    start: (Option<&Sites>, f64),
    key: &str,
    record: &mut RunRecord,
) -> (Option<f64>, Option<(Sites, f64)>) {
    let (warm, damping) = start;
    let cfg = EpConfig {
        schedule: EpSchedule::Parallel,
        check_psd: false,
        damping,
        ..EpConfig::default()
    };
    match ep_to_fixed_point(kernel, labels, likelihood, &cfg, warm) {
        Ok((r, damping)) => {
            note_unconverged(&r.estimate, key, record);
            if damping < cfg.damping && r.estimate.converged {
                let first = if cfg.damping == 1.0 {
                    format!("undamped EP did not converge in {UNDAMPED_SWEEPS} sweeps")
                } else {
                    let d = cfg.damping;
                    format!(
                        "EP with damping {d} did not converge in {} sweeps",
                        cfg.max_sweeps
                    )
                };
                let note = format!(
                    "{first}; EP with damping {damping} converged in {}",
                    r.estimate.iterations
                );
                record.notes.insert(key.into(), note);
            }
            (Some(r.estimate.log_p), Some((r.sites, damping)))
        }
        Err(e) => {
            record.notes.insert(key.into(), e.to_string());
            (None, None)
        }
    }
}

fn note_unconverged(est: &basin_prior::estimate::Estimate, key: &str, record: &mut RunRecord) {
    if !est.converged {
        let note = format!(
            "{} did not converge in {} iterations (last iterate kept)",
            est.method.name(),
            est.iterations
        );
        record.notes.insert(key.into(), note);
    }
}

/// One estimate of log P(f); `None` with a note when it fails, the value with a note when the
/// estimator stopped unconverged.
fn estimate(
    kernel: basin_prior::faer::MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    method: Method,
    key: &str,
    record: &mut RunRecord,
) -> Option<f64> {
    match Estimators::default().estimate(method, kernel, labels, likelihood) {
        Ok(outcome) => {
            note_unconverged(&outcome.estimate, key, record);
            Some(outcome.estimate.log_p)
        }
        Err(e) => {
            record.notes.insert(key.into(), e.to_string());
            None
        }
    }
}
