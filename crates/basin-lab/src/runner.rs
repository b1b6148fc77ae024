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
#[derive(Debug)]
pub struct Prepared {
    /// The spec.
    pub spec: ExperimentSpec,
    /// The network.
    pub fcn: FcnSpec,
    /// S, A for the largest attack size, T.
    pub split: Split,
    /// S then T: the inputs of the function whose prior is measured.
    pub s_and_t: Dataset,
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
        fcn.validate().map_err(|message| LabError::Setup {
            experiment: spec.name.clone(),
            message,
        })?;
        let s_and_t = Dataset::concat("S+T", &[&split.train, &split.test]).map_err(data_err)?;
        Ok(Self {
            spec: spec.clone(),
            fcn,
            split,
            s_and_t,
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

/// Runs the spec's runs that `out`'s store lacks (this shard's only, with a shard), `jobs` at
/// a time, appending each record as it finishes; `progress(done, total)` is called after each.
pub fn run(
    prep: &Prepared,
    out: &Path,
    opts: RunOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RunOutcome, LabError> {
    let (store, stored) = Store::open(out)?;
    let keys: Vec<RunKey> = prep
        .spec
        .runs()
        .into_iter()
        .filter(|k| opts.shard.is_none_or(|s| s.holds(&k.id)))
        .collect();
    let todo: Vec<&RunKey> = keys.iter().filter(|k| !store.contains(&k.id)).collect();
    let skipped = keys.len() - todo.len();
    let store = Mutex::new(store);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| LabError::Setup {
            experiment: prep.spec.name.clone(),
            message: format!("cannot start {} worker threads: {e}", opts.jobs),
        })?;
    let results: Vec<Result<RunRecord, LabError>> = pool.install(|| {
        todo.par_iter()
            .map(|key| {
                let record = run_one(prep, key)?;
                let value = serde_json::to_value(&record).expect("a record serialises");
                store
                    .lock()
                    .expect("no panics hold the lock")
                    .append(&value)?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                progress(n, todo.len());
                Ok(record)
            })
            .collect()
    });
    let mut records: Vec<RunRecord> = stored
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let computed = results.len();
    for r in results {
        records.push(r?);
    }
    Ok(RunOutcome {
        records,
        computed,
        skipped,
    })
}

/// Trains and measures one network.
pub fn run_one(prep: &Prepared, key: &RunKey) -> Result<RunRecord, LabError> {
    match prep.spec.training.precision {
        PrecisionSpec::F32 => run_typed::<f32>(prep, key),
        PrecisionSpec::F64 => run_typed::<f64>(prep, key),
    }
}

fn setup_err(prep: &Prepared, message: impl ToString) -> LabError {
    LabError::Setup {
        experiment: prep.spec.name.clone(),
        message: message.to_string(),
    }
}

fn run_typed<T: Real>(prep: &Prepared, key: &RunKey) -> Result<RunRecord, LabError> {
    let t = &prep.spec.training;
    let mut stage_s = BTreeMap::new();
    let start = Instant::now();
    let train_data = prep
        .training_set(key.attack_size)
        .map_err(|e| setup_err(prep, e))?;
    let mut obj =
        FcnObjective::<T>::from_dataset(&prep.fcn, &train_data).map_err(|e| setup_err(prep, e))?;
    let mut opt = t.optimizer.build::<T>(prep.fcn.n_params());
    let mut theta: Vec<T> = prep.fcn.init(derive_seed(key.seed, 0));
    let cfg = TrainConfig {
        batch_size: t.batch_size,
        order: t.order,
        max_epochs: t.max_epochs,
        overtrain_epochs: t.overtrain_epochs,
        seed: derive_seed(key.seed, 1),
        ..TrainConfig::default()
    };
    let n_train = prep.split.train.len();
    let report = basin_nn::train(
        &mut obj,
        opt.as_mut(),
        &mut theta,
        &cfg,
        t.optimizer.full_batch(),
        n_train,
        &mut |_, _| basin_nn::HookAction::Continue,
    );
    stage_s.insert("train".to_owned(), start.elapsed().as_secs_f64());
    let errors = errors_of(prep, &theta, key.attack_size)?;
    let mut record = RunRecord {
        id: key.id.clone(),
        experiment: prep.spec.name.clone(),
        attack_size: key.attack_size,
        replicate: key.replicate,
        seed: key.seed,
        status: report.status,
        epochs: report.epochs,
        train_error: errors[0],
        attack_error: errors[1],
        test_error: errors[2],
        function_hash: function_hash(prep, &theta)?,
        measures: BTreeMap::new(),
        notes: BTreeMap::new(),
        stage_s,
    };
    measure_sharpness(prep, &theta, &mut record)?;
    measure_hessian(prep, &basin_nn::real::convert(&theta), key, &mut record)?;
    Ok(record)
}

/// Errors on S, A (the run's prefix, against its flipped labels) and T.
fn errors_of<T: Real>(prep: &Prepared, theta: &[T], a: usize) -> Result<[f64; 3], LabError> {
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

fn function_hash<T: Real>(prep: &Prepared, theta: &[T]) -> Result<String, LabError> {
    let f = predicted_function(prep, theta)?;
    Ok(Sha256::digest(&f)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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
    let cfg = KeskarConfig {
        epsilon: s.epsilon,
        lr: s.lr,
        epochs: s.epochs,
        batch_size: s.batch_size,
        order: AscentOrder::Fixed,
    };
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

fn sharpness_on<T: Real>(
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
