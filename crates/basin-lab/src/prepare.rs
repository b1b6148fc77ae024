//! An experiment's data, loaded and split once: S, A and T, the network, S ∪ T and the
//! kernel on it (when the prior is measured): the one place that picks the kernel of the
//! experiment's network is [`experiment_kernel`].

use basin_data::{Augment, ChannelNorm, ClassMap, Corpus, DataSource, Dataset, Split, SplitSpec};
use basin_nn::{FcnSpec, all_examples, derive_seed};
use basin_prior::faer::Mat;
use basin_prior::kernel_check::checked_kernel;

use crate::error::LabError;
use crate::net::Net;
use crate::spec::ExperimentSpec;

/// The data of an experiment, loaded and split once: S, the largest A (smaller attack sets
/// are its prefixes) and T.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The spec.
    pub spec: ExperimentSpec,
    /// The network.
    pub net: Net,
    /// S, A for the largest attack size, T.
    pub split: Split,
    /// S then T: the inputs of the function whose prior is measured.
    pub s_and_t: Dataset,
    /// The kernel of the network on S then T, computed once (when the prior is measured).
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
        let net = Net::new(spec, &split.train)?;
        Self::from_parts(spec, net, split)
    }

    /// The prepared experiment of a split made elsewhere: computes the kernel on S ∪ T (when
    /// the prior is measured).
    pub fn from_parts(spec: &ExperimentSpec, net: Net, split: Split) -> Result<Self, LabError> {
        let data_err = |source| LabError::Data {
            experiment: spec.name.clone(),
            source,
        };
        let s_and_t = Dataset::concat("S+T", &[&split.train, &split.test]).map_err(data_err)?;
        let kernel = experiment_kernel(spec, &net, &s_and_t)?;
        Ok(Self {
            spec: spec.clone(),
            net,
            split,
            s_and_t,
            kernel,
        })
    }

    /// The augmentation of the training images (`training.augment`): the paper's crop and
    /// flip, its padding the 0 pixel as normalisation maps it when the data are normalised
    /// (the paper's code crops before it normalises).
    pub fn augmentation(&self) -> Option<Augment> {
        let normalised = self.spec.data.normalize;
        self.spec.training.augment.then(|| match normalised {
            true => Augment::normalised(&ChannelNorm::PAPER),
            false => Augment::default(),
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

/// The kernel on S ∪ T of the experiment's network when `[measures.prior]` is given (`None`
/// otherwise), checked: the analytic NNGP kernel of a fully-connected net. A ResNet's prior
/// needs its Monte Carlo empirical NNGP kernel, which this function does not compute: for a
/// ResNet with `[measures.prior]` it returns a setup error that says so.
pub fn experiment_kernel(
    spec: &ExperimentSpec,
    net: &Net,
    s_and_t: &Dataset,
) -> Result<Option<Mat<f64>>, LabError> {
    if spec.measures.prior.is_none() {
        return Ok(None);
    }
    match net {
        Net::Fcn(fcn) => checked_nngp(spec, fcn, s_and_t).map(Some),
        Net::ResNet { .. } => Err(LabError::setup(
            &spec.name,
            format!(
                "measures.prior: the prior of {} needs the Monte Carlo empirical NNGP kernel \
                 on S ∪ T, which the lab does not compute for a ResNet; remove \
                 [measures.prior] and [measures.bounds] to measure the rest",
                net.describe()
            ),
        )),
    }
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
