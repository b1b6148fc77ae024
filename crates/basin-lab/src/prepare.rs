//! An experiment's data, loaded and split once: S, A and T, the network, S ∪ T and the NNGP
//! kernel on it (when the prior is measured).

use basin_data::{ChannelNorm, ClassMap, Corpus, DataSource, Dataset, Split, SplitSpec};
use basin_nn::{FcnSpec, all_examples, derive_seed};
use basin_prior::faer::Mat;
use basin_prior::kernel_check::checked_kernel;

use crate::error::LabError;
use crate::spec::ExperimentSpec;

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
        let mode = spec.data.split.mode(
            derive_seed(spec.seed, 0),
            spec.data
                .test_offset
                .or_else(|| source.default_test_offset()),
        );
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
        fcn.validate().map_err(|e| LabError::setup(&spec.name, e))?;
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

impl Prepared {
    /// A setup error of this experiment.
    pub fn setup_err(&self, message: impl ToString) -> LabError {
        LabError::setup(&self.spec.name, message)
    }
}
