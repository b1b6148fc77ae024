//! An experiment's data, loaded and split once: S, A and T, the network, S ∪ T and the
//! kernel on it (when the prior is measured): the one place that picks the kernel of the
//! experiment's network is [`experiment_kernel`].

use basin_data::{Augment, ChannelNorm, ClassMap, Corpus, DataSource, Dataset, Split, SplitSpec};
use basin_nn::{all_examples, derive_seed};
use basin_prior::faer::Mat;

use crate::error::LabError;
use crate::net::Net;
use crate::prior_kernel::{KernelCache, experiment_kernel};
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
    /// For an empirical kernel, the kernel without each block of its samples: the jackknife
    /// of each log P(f)'s Monte Carlo error (empty otherwise).
    pub jackknife_kernels: Vec<Mat<f64>>,
}

impl Prepared {
    /// Loads, binarises (and for CIFAR-10 normalises) and splits the spec's data; an
    /// empirical kernel is computed on one thread and not cached.
    pub fn new(spec: &ExperimentSpec) -> Result<Self, LabError> {
        Self::cached(spec, None)
    }

    /// [`Prepared::new`], with an empirical kernel cached (and computed) as `cache` says.
    pub fn cached(spec: &ExperimentSpec, cache: Option<KernelCache<'_>>) -> Result<Self, LabError> {
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
        Self::from_parts_cached(spec, net, split, cache)
    }

    /// The prepared experiment of a split made elsewhere: computes the kernel on S ∪ T (when
    /// the prior is measured).
    pub fn from_parts(spec: &ExperimentSpec, net: Net, split: Split) -> Result<Self, LabError> {
        Self::from_parts_cached(spec, net, split, None)
    }

    /// [`Prepared::from_parts`] with an empirical kernel cached as `cache` says.
    pub fn from_parts_cached(
        spec: &ExperimentSpec,
        net: Net,
        split: Split,
        cache: Option<KernelCache<'_>>,
    ) -> Result<Self, LabError> {
        let data_err = |source| LabError::Data {
            experiment: spec.name.clone(),
            source,
        };
        let s_and_t = Dataset::concat("S+T", &[&split.train, &split.test]).map_err(data_err)?;
        let kernel = experiment_kernel(spec, &net, &s_and_t, cache)?;
        let (kernel, jackknife_kernels) = match kernel {
            Some(k) => (Some(k.kernel), k.jackknife),
            None => (None, Vec::new()),
        };
        Ok(Self {
            spec: spec.clone(),
            net,
            split,
            s_and_t,
            kernel,
            jackknife_kernels,
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

impl Prepared {
    /// A setup error of this experiment.
    pub fn setup_err(&self, message: impl ToString) -> LabError {
        LabError::setup(&self.spec.name, message)
    }
}
