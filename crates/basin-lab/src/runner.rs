//! The runner: loads and splits the data once, expands the spec into runs, skips the runs
//! already stored, and trains and measures the rest in parallel (one thread per run), storing
//! each record as it finishes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use basin_data::{ChannelNorm, ClassMap, Corpus, DataSource, Dataset, Split, SplitMode, SplitSpec};
use basin_flatness::keskar::{AscentOrder, KeskarConfig, sharpness_sgd};
use basin_flatness::lanczos::{DEFAULT_STEPS, LanczosConfig, lanczos};
use basin_nn::{FcnObjective, FcnSpec, Objective, Real, TrainConfig, all_examples, derive_seed};
use basin_prior::bounds::{marginal_likelihood_bound, occam_bound};
use basin_prior::dispatch::Estimators;
use basin_prior::ep::{EpConfig, EpSchedule, Sites, UNDAMPED_SWEEPS, ep_to_fixed_point};
use basin_prior::estimate::{Method, issues_note};
use basin_prior::estimator::Estimator;
use basin_prior::faer::Mat;
use basin_prior::kernel_check::checked_kernel;
use basin_prior::likelihood::Likelihood;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::record::RunRecord;
use crate::spec::{ExperimentSpec, PrecisionSpec, RunKey, Shard, SplitKindSpec};
use crate::store::{Store, StoreError};

/// An error that stops an experiment (a failing run is recorded, not raised).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The data could not be loaded or split.
    #[error("data for experiment {experiment}: {source}")]
    Data {
        /// The experiment.
        experiment: String,
        /// The cause.
        source: basin_data::DataError,
    },
    /// The spec does not fit the data.
    #[error("experiment {experiment}: {message}")]
    Setup {
        /// The experiment.
        experiment: String,
        /// What does not fit.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The data of an experiment, loaded and split once: S, the largest A (smaller attack sets
/// are its prefixes) and T.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The spec.
    pub spec: ExperimentSpec,
    /// The network.
    pub fcn: FcnSpec,
    /// S, A for the largest attack size, T.
    pub split: Split,
    /// S then T: the inputs of the function whose prior is measured.
    pub s_and_t: Dataset,
    /// The NNGP kernel of the network on S then T, computed once (when the prior is measured).
    pub kernel: Option<Mat<f64>>,
}

impl Prepared {
    /// Loads, binarises (and for CIFAR-10 normalises) and splits the spec's data.
    pub fn new(spec: &ExperimentSpec) -> Result<Self, LabError> {
        let data_err = |source| LabError::Data {
            experiment: spec.name.clone(),
            source,
        };
        let source: DataSource = spec.data.source.parse().map_err(data_err)?;
        let corpus = binarised(spec, &source).map_err(data_err)?;
        let mode = match spec.data.split {
            SplitKindSpec::Ordered => SplitMode::Ordered {
                test_offset: spec
                    .data
                    .test_offset
                    .or_else(|| source.default_test_offset()),
            },
            SplitKindSpec::Seeded => SplitMode::Seeded {
                seed: derive_seed(spec.seed, 0),
            },
        };
        let split = SplitSpec {
            train: spec.data.train_size,
            attack: *spec.data.attack_sizes.last().expect("validated non-empty"),
            test: spec.data.test_size,
            mode,
        }
        .apply(&corpus.pool, corpus.test.as_ref())
        .map_err(data_err)?;
        let fcn = FcnSpec {
            input_dim: split.train.dim(),
            hidden: spec.network.hidden.clone(),
            activation: spec.network.activation,
            sigma_w: spec.network.sigma_w,
            sigma_b: spec.network.sigma_b,
        };
        Self::from_parts(spec, fcn, split)
    }

    /// The prepared experiment of a split made elsewhere: checks the network and computes the
    /// kernel on S ∪ T (when the prior is measured).
    pub fn from_parts(spec: &ExperimentSpec, fcn: FcnSpec, split: Split) -> Result<Self, LabError> {
        let data_err = |source| LabError::Data {
            experiment: spec.name.clone(),
            source,
        };
        fcn.validate().map_err(|message| LabError::Setup {
            experiment: spec.name.clone(),
            message,
        })?;
        let s_and_t = Dataset::concat("S+T", &[&split.train, &split.test]).map_err(data_err)?;
        let kernel = match spec.measures.prior {
            Some(_) => Some(checked_nngp(spec, &fcn, &s_and_t)?),
            None => None,
        };
        Ok(Self {
            spec: spec.clone(),
            fcn,
            split,
            s_and_t,
            kernel,
        })
    }

    /// The training set of a run: S then the first `a` examples of A.
    pub fn training_set(&self, a: usize) -> Result<Dataset, basin_data::DataError> {
        let attack = self.split.attack.subset("A", &all_examples(a))?;
        Dataset::concat("S+A", &[&self.split.train, &attack])
    }
}

fn binarised(spec: &ExperimentSpec, source: &DataSource) -> basin_data::Result<Corpus> {
    let mut corpus = source.load()?;
    let map = match spec.data.class_map.as_str() {
        "default" => source.default_class_map(),
        "none" => None,
        other => Some(other.parse::<ClassMap>()?),
    };
    if let Some(map) = map {
        corpus = Corpus {
            pool: map.apply(&corpus.pool)?,
            test: corpus.test.map(|t| map.apply(&t)).transpose()?,
        };
    }
    if spec.data.normalize {
        corpus = Corpus {
            pool: ChannelNorm::PAPER.apply(corpus.pool)?,
            test: corpus
                .test
                .map(|t| ChannelNorm::PAPER.apply(t))
                .transpose()?,
        };
    }
    Ok(corpus)
}

/// How to run an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Runs in parallel.
    pub jobs: usize,
    /// Only this shard's runs.
    pub shard: Option<Shard>,
}

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Every record in the store afterwards.
    pub records: Vec<RunRecord>,
    /// Runs computed now.
    pub computed: usize,
    /// Runs skipped because the store held them.
    pub skipped: usize,
}

/// The runs that share one training run: one optimizer, attack size and replicate, measured
/// at each of its checkpoints (ascending overtraining epochs).
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The runs, one per checkpoint, in order of overtraining epochs.
    pub keys: Vec<RunKey>,
}

impl TrainJob {
    /// Groups a spec's runs (as [`ExperimentSpec::runs`] orders them) into training runs.
    pub fn group(keys: Vec<RunKey>) -> Vec<Self> {
        let mut jobs: Vec<Self> = Vec::new();
        for key in keys {
            match jobs.last_mut() {
                Some(job) if job.shares_training(&key) => job.keys.push(key),
                _ => jobs.push(Self { keys: vec![key] }),
            }
        }
        jobs
    }

    fn shares_training(&self, key: &RunKey) -> bool {
        let first = &self.keys[0];
        (first.optimizer.name(), first.attack_size, first.replicate)
            == (key.optimizer.name(), key.attack_size, key.replicate)
            && first.alpha == key.alpha
    }

    /// The first run, which names the job (its seed, optimizer and attack size are all the
    /// runs').
    pub fn first(&self) -> &RunKey {
        &self.keys[0]
    }
}

/// Runs the spec's runs that `out`'s store lacks (this shard's only, with a shard), `jobs`
/// training runs at a time, appending each record as it finishes; `progress(done, total)` is
/// called after each training run. A shard holds whole training runs (all their checkpoints).
pub fn run(
    prep: &Prepared,
    out: &Path,
    opts: RunOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RunOutcome, LabError> {
    if prep.spec.ep_accuracy.is_some() {
        return crate::ep_accuracy::run_ep_accuracy(prep, out, opts, progress);
    }
    let jobs = TrainJob::group(prep.spec.runs());
    run_jobs(
        &prep.spec.name,
        out,
        opts,
        jobs,
        &|job| run_job(prep, job),
        progress,
    )
}

/// Computes the records of one job.
pub type Compute<'a> = dyn Fn(&TrainJob) -> Result<Vec<RunRecord>, LabError> + Sync + 'a;

/// Runs the `jobs` (this shard's only) whose runs `out`'s store lacks with `compute`,
/// `opts.jobs` at a time, storing each record as its job finishes; `experiment` names the
/// experiment in errors.
pub fn run_jobs(
    experiment: &str,
    out: &Path,
    opts: RunOptions,
    jobs: Vec<TrainJob>,
    compute: &Compute<'_>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RunOutcome, LabError> {
    let (store, stored) = Store::open(out)?;
    let jobs: Vec<TrainJob> = jobs
        .into_iter()
        .filter(|j| opts.shard.is_none_or(|s| s.holds(&j.first().id)))
        .collect();
    let n_keys: usize = jobs.iter().map(|j| j.keys.len()).sum();
    let todo: Vec<&TrainJob> = jobs
        .iter()
        .filter(|j| j.keys.iter().any(|k| !store.contains(&k.id)))
        .collect();
    let store = Mutex::new(store);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| LabError::Setup {
            experiment: experiment.to_owned(),
            message: format!("cannot start {} worker threads: {e}", opts.jobs),
        })?;
    let results: Vec<Result<Vec<RunRecord>, LabError>> = pool.install(|| {
        todo.par_iter()
            .map(|job| {
                let records = compute(job)?;
                let mut store = store.lock().expect("no panics hold the lock");
                let fresh: Vec<RunRecord> = records
                    .into_iter()
                    .filter(|r| !store.contains(&r.id))
                    .collect();
                for record in &fresh {
                    let value = serde_json::to_value(record).expect("a record serialises");
                    store.append(&value)?;
                }
                drop(store);
                let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                progress(n, todo.len());
                Ok(fresh)
            })
            .collect()
    });
    let mut records: Vec<RunRecord> = stored
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let mut computed = 0;
    for r in results {
        let fresh = r?;
        computed += fresh.len();
        records.extend(fresh);
    }
    Ok(RunOutcome {
        records,
        computed,
        skipped: n_keys - computed,
    })
}

/// The NNGP kernel on S ∪ T, checked once for the whole experiment: finite, symmetric, with a
/// Cholesky factor (or the smallest jitter that gives one, named in a warning), so the runs'
/// estimators need not check it again.
fn checked_nngp(
    spec: &ExperimentSpec,
    fcn: &FcnSpec,
    s_and_t: &Dataset,
) -> Result<Mat<f64>, LabError> {
    let setup = |e: basin_prior::PriorError| LabError::Setup {
        experiment: spec.name.clone(),
        message: format!("the NNGP kernel on S ∪ T: {e}"),
    };
    let k = basin_prior::kernel::nngp(fcn, s_and_t.features(), s_and_t.len()).map_err(setup)?;
    Ok(checked_kernel(k.as_ref(), s_and_t.len(), true)
        .map_err(setup)?
        .0)
}

/// Trains one network and measures it at each of the job's checkpoints.
/// A temporal run's job holds that run alone.
pub fn run_job(prep: &Prepared, job: &TrainJob) -> Result<Vec<RunRecord>, LabError> {
    if job.first().alpha.is_some() {
        return match prep.spec.training.precision {
            PrecisionSpec::F32 => crate::temporal::run_temporal::<f32>(prep, job.first()),
            PrecisionSpec::F64 => crate::temporal::run_temporal::<f64>(prep, job.first()),
        }
        .map(|r| vec![r]);
    }
    match prep.spec.training.precision {
        PrecisionSpec::F32 => run_typed::<f32>(prep, job),
        PrecisionSpec::F64 => run_typed::<f64>(prep, job),
    }
}

pub(crate) fn setup_err(prep: &Prepared, message: impl ToString) -> LabError {
    spec_err(&prep.spec, message)
}

/// A setup error of the experiment `spec`.
pub(crate) fn spec_err(spec: &ExperimentSpec, message: impl ToString) -> LabError {
    LabError::Setup {
        experiment: spec.name.clone(),
        message: message.to_string(),
    }
}

/// The parameters at one checkpoint, and the wall time of training up to it.
struct Snapshot<T> {
    theta: Vec<T>,
    train_s: f64,
}

fn run_typed<T: Real>(prep: &Prepared, job: &TrainJob) -> Result<Vec<RunRecord>, LabError> {
    let first = job.first();
    let t = &prep.spec.training;
    let start = Instant::now();
    let train_data = prep
        .training_set(first.attack_size)
        .map_err(|e| setup_err(prep, e))?;
    let mut obj =
        FcnObjective::<T>::from_dataset(&prep.fcn, &train_data).map_err(|e| setup_err(prep, e))?;
    let mut opt = first.optimizer.build::<T>(prep.fcn.n_params());
    let mut theta: Vec<T> = prep.fcn.init(derive_seed(first.seed, 0));
    let checkpoints: Vec<usize> = job.keys.iter().map(|k| k.overtrain_epochs).collect();
    let cfg = TrainConfig {
        batch_size: t.batch_size,
        order: t.order,
        max_epochs: t.max_epochs,
        overtrain_epochs: *checkpoints.last().expect("a job has a run"),
        seed: derive_seed(first.seed, 1),
        ..TrainConfig::default()
    };
    let mut snapshots: Vec<Snapshot<T>> = Vec::new();
    let report = basin_nn::train(
        &mut obj,
        opt.as_mut(),
        &mut theta,
        &cfg,
        first.optimizer.full_batch(),
        prep.split.train.len(),
        &mut |info, theta| {
            if let Some(at) = info.converged_at
                && checkpoints.get(snapshots.len()) == Some(&(info.epoch - at))
            {
                snapshots.push(Snapshot {
                    theta: theta.to_vec(),
                    train_s: start.elapsed().as_secs_f64(),
                });
            }
            basin_nn::HookAction::Continue
        },
    );
    // A checkpoint at 0 overtraining epochs is the converged epoch itself, which the hook saw;
    // a run that never converged (or diverged) is measured where it stopped, at every
    // checkpoint alike.
    let train_s = start.elapsed().as_secs_f64();
    while snapshots.len() < job.keys.len() {
        snapshots.push(Snapshot {
            theta: theta.clone(),
            train_s,
        });
    }
    job.keys
        .iter()
        .zip(&snapshots)
        .map(|(key, snap)| measure_run(prep, key, &report, snap))
        .collect()
}

/// The record of one run: its errors and function, then every measure of the spec.
fn measure_run<T: Real>(
    prep: &Prepared,
    key: &RunKey,
    report: &basin_nn::TrainReport,
    snap: &Snapshot<T>,
) -> Result<RunRecord, LabError> {
    let theta = &snap.theta;
    let errors = errors_of(prep, theta, key.attack_size)?;
    let function = predicted_function(prep, theta)?;
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
        train_error: errors[0],
        attack_error: errors[1],
        test_error: errors[2],
        function_hash: function_hash(&function),
        measures: BTreeMap::new(),
        notes: BTreeMap::new(),
        stage_s: BTreeMap::from([("train".to_owned(), snap.train_s)]),
        trajectory: Vec::new(),
    };
    measure_sharpness(prep, theta, &mut record)?;
    measure_hessian(prep, &basin_nn::real::convert(theta), key, &mut record)?;
    measure_prior(prep, &function, &mut record);
    Ok(record)
}

/// Errors on S, A (the run's prefix, against its flipped labels) and T.
pub(crate) fn errors_of<T: Real>(
    prep: &Prepared,
    theta: &[T],
    a: usize,
) -> Result<[f64; 3], LabError> {
    let attack = prep
        .split
        .attack
        .subset("A", &all_examples(a))
        .map_err(|e| setup_err(prep, e))?;
    let mut out = [0.0; 3];
    for (o, data) in out
        .iter_mut()
        .zip([&prep.split.train, &attack, &prep.split.test])
    {
        if !data.is_empty() {
            let mut obj =
                FcnObjective::<T>::from_dataset(&prep.fcn, data).map_err(|e| setup_err(prep, e))?;
            *o = obj.count_errors(theta, &all_examples(data.len())) as f64 / data.len() as f64;
        }
    }
    Ok(out)
}

/// The predicted labels on S then T.
pub fn predicted_function<T: Real>(prep: &Prepared, theta: &[T]) -> Result<Vec<u8>, LabError> {
    let n = prep.s_and_t.len();
    let mut obj = FcnObjective::<T>::from_dataset(&prep.fcn, &prep.s_and_t)
        .map_err(|e| setup_err(prep, e))?;
    let mut logits = vec![T::ZERO; n];
    obj.logits(theta, &all_examples(n), &mut logits);
    Ok(logits.into_iter().map(basin_nn::loss::predict).collect())
}

/// SHA-256 (hex) of a function's labels.
pub(crate) fn function_hash(f: &[u8]) -> String {
    Sha256::digest(f)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keskar sharpness on S, in the spec's precision; a failure is a note, not an error.
fn measure_sharpness<T: Real>(
    prep: &Prepared,
    theta: &[T],
    record: &mut RunRecord,
) -> Result<(), LabError> {
    let Some(s) = &prep.spec.measures.sharpness else {
        return Ok(());
    };
    let start = Instant::now();
    let cfg = keskar_config(s);
    let result = match s.precision {
        PrecisionSpec::F32 => sharpness_on::<f32>(prep, &basin_nn::real::convert(theta), &cfg),
        PrecisionSpec::F64 => sharpness_on::<f64>(prep, &basin_nn::real::convert(theta), &cfg),
    }?;
    match result {
        Ok(v) => {
            record.measures.insert("sharpness".into(), Some(v));
        }
        Err(note) => {
            record.measures.insert("sharpness".into(), None);
            record.notes.insert("sharpness".into(), note);
        }
    }
    record
        .stage_s
        .insert("sharpness".into(), start.elapsed().as_secs_f64());
    Ok(())
}

/// The Keskar settings of a spec's sharpness section (fixed batch order, as the paper's code).
pub(crate) fn keskar_config(s: &crate::spec::SharpnessSpec) -> KeskarConfig {
    KeskarConfig {
        epsilon: s.epsilon,
        lr: s.lr,
        epochs: s.epochs,
        batch_size: s.batch_size,
        order: AscentOrder::Fixed,
    }
}

pub(crate) fn sharpness_on<T: Real>(
    prep: &Prepared,
    theta: &[T],
    cfg: &KeskarConfig,
) -> Result<Result<f64, String>, LabError> {
    let mut obj = FcnObjective::<T>::from_dataset(&prep.fcn, &prep.split.train)
        .map_err(|e| setup_err(prep, e))?;
    Ok(sharpness_sgd(&mut obj, theta, cfg)
        .map(|r| r.sharpness.sharpness)
        .map_err(|e| e.to_string()))
}

/// λmax and the log-product of the top-k Hessian eigenvalues on S, by Lanczos in f64. Top-k
/// values that did not converge are named in a note.
fn measure_hessian(
    prep: &Prepared,
    theta: &[f64],
    key: &RunKey,
    record: &mut RunRecord,
) -> Result<(), LabError> {
    let Some(h) = &prep.spec.measures.hessian else {
        return Ok(());
    };
    let start = Instant::now();
    let mut obj = FcnObjective::<f64>::from_dataset(&prep.fcn, &prep.split.train)
        .map_err(|e| setup_err(prep, e))?;
    let cfg = LanczosConfig {
        steps: h.lanczos_steps.unwrap_or(DEFAULT_STEPS),
        top_k: h.top_k,
        seed: derive_seed(key.seed, 3),
        ..LanczosConfig::default()
    };
    let product = format!("log_product_top{}", h.top_k);
    match lanczos(&mut obj, theta, &cfg) {
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

/// log P(f) of the predicted function on S ∪ T for each likelihood, and the bounds: Occam's
/// from the first likelihood's log P(f), the PAC-Bayes one from the marginal likelihood of
/// the labels on S (EP on the S block of the kernel, same likelihood). An estimator that fails
/// or does not converge leaves a note.
fn measure_prior(prep: &Prepared, function: &[u8], record: &mut RunRecord) {
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
        let value = if method == Method::Ep {
            let (value, sites) = ep_estimate(
                kernel.as_ref(),
                &labels,
                likelihood,
                warm.as_ref(),
                key,
                record,
            );
            warm = sites;
            value
        } else {
            estimate(kernel.as_ref(), &labels, likelihood, method, key, record)
        };
        record.measures.insert(key.into(), value);
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
/// where undamped EP oscillates ([`ep_to_fixed_point`], with a note); returns the value
/// (`None` with a note on failure) and the final sites.
fn ep_estimate(
    kernel: basin_prior::faer::MatRef<'_, f64>,
    labels: &[f64],
    likelihood: Likelihood,
    warm: Option<&Sites>,
    key: &str,
    record: &mut RunRecord,
) -> (Option<f64>, Option<Sites>) {
    let cfg = EpConfig {
        schedule: EpSchedule::Parallel,
        check_psd: false,
        ..EpConfig::default()
    };
    match ep_to_fixed_point(kernel, labels, likelihood, &cfg, warm) {
        Ok((r, damping)) => {
            note_unconverged(&r.estimate, key, record);
            if damping < 1.0 && r.estimate.converged {
                let note = format!(
                    "undamped EP did not converge in {UNDAMPED_SWEEPS} sweeps; EP with \
                     damping {damping} converged in {}",
                    r.estimate.iterations
                );
                record.notes.insert(key.into(), note);
            }
            (Some(r.estimate.log_p), Some(r.sites))
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
