//! The kernel on S ∪ T of an experiment's network, computed once per experiment: the analytic
//! NNGP kernel of a fully-connected net, or the Monte Carlo empirical kernel
//! (`[measures.prior.mc_kernel]`) of any network, ResNets included. The empirical kernel comes
//! with its leave-one-block-out kernels, for the jackknife error of each log P(f). Its sums
//! are cached in the output folder (`kernels/<hash>.safetensors`) under the hash of what they
//! depend on: the inputs, the network, σ_w, σ_b, M, the blocks, the precision and the seed, so
//! every run and every rerun reuses them.

use std::path::{Path, PathBuf};

use basin_conv::ConvRun;
use basin_data::Dataset;
use basin_nn::{FcnSpec, Precision, derive_seed};
use basin_prior::faer::Mat;
use basin_prior::kernel_check::checked_kernel;
use basin_prior::mc_kernel::{
    ConvFeatures, FcnFeatures, FeatureExtractor, McConfig, McSums, SampleShard, inputs_fingerprint,
    mc_sums_parallel,
};
use sha2::{Digest, Sha256};

use crate::error::LabError;
use crate::net::Net;
use crate::spec::{ExperimentSpec, McKernelSpec};

/// The seed stream of the empirical kernel's networks, when the spec gives no seed.
const KERNEL_SEED_STREAM: u64 = 0x6B65_726E;

/// Where an experiment caches its empirical kernel, and the threads that compute it.
#[derive(Debug, Clone, Copy)]
pub struct KernelCache<'a> {
    /// The experiment's cache folder (the kernels go to its `kernels/` folder).
    pub out: &'a Path,
    /// Networks drawn at once, one per thread.
    pub threads: usize,
}

/// The kernel of the prior, checked, and for an empirical kernel the leave-one-block-out
/// kernels (checked too) of the jackknife.
#[derive(Debug, Clone)]
pub struct PriorKernel {
    /// The kernel on S then T.
    pub kernel: Mat<f64>,
    /// The kernel without each block of samples, in block order (empty when analytic).
    pub jackknife: Vec<Mat<f64>>,
}

/// The kernel on S ∪ T of the experiment's network when `[measures.prior]` is given (`None`
/// otherwise): the analytic NNGP kernel of a fully-connected net, or the empirical kernel
/// that `[measures.prior.mc_kernel]` asks for (cached under `cache` when given).
pub fn experiment_kernel(
    spec: &ExperimentSpec,
    net: &Net,
    s_and_t: &Dataset,
    cache: Option<KernelCache<'_>>,
) -> Result<Option<PriorKernel>, LabError> {
    let Some(prior) = &spec.measures.prior else {
        return Ok(None);
    };
    let kernel = match (&prior.mc_kernel, net) {
        (Some(mc), _) => empirical(spec, net, s_and_t, mc, cache)?,
        (None, Net::Fcn(fcn)) => PriorKernel {
            kernel: checked(spec, analytic(spec, fcn, s_and_t)?, s_and_t.len())?,
            jackknife: Vec::new(),
        },
        (None, Net::ResNet { .. }) => {
            return Err(LabError::setup(
                &spec.name,
                format!(
                    "measures.prior.mc_kernel: the prior of {} needs its Monte Carlo empirical \
                     kernel: add [measures.prior.mc_kernel] with samples = M",
                    net.describe()
                ),
            ));
        }
    };
    Ok(Some(kernel))
}

fn setup(spec: &ExperimentSpec, e: impl std::fmt::Display) -> LabError {
    LabError::Setup {
        experiment: spec.name.clone(),
        message: format!("the kernel on S ∪ T: {e}"),
    }
}

/// The analytic NNGP kernel.
fn analytic(spec: &ExperimentSpec, fcn: &FcnSpec, s_and_t: &Dataset) -> Result<Mat<f64>, LabError> {
    basin_prior::kernel::nngp(fcn, s_and_t.features(), s_and_t.len()).map_err(|e| setup(spec, e))
}

/// A kernel checked once for the whole experiment: finite, symmetric, with a Cholesky factor
/// (or the smallest jitter that gives one, named in a warning), so the runs' estimators need
/// not check it again.
fn checked(spec: &ExperimentSpec, k: Mat<f64>, n: usize) -> Result<Mat<f64>, LabError> {
    Ok(checked_kernel(k.as_ref(), n, true)
        .map_err(|e| setup(spec, e))?
        .0)
}

/// The empirical kernel and its jackknife kernels, from the cache or computed (and cached).
fn empirical(
    spec: &ExperimentSpec,
    net: &Net,
    s_and_t: &Dataset,
    mc: &McKernelSpec,
    cache: Option<KernelCache<'_>>,
) -> Result<PriorKernel, LabError> {
    let description = describe(net, s_and_t, mc);
    let config = McConfig {
        samples: mc.samples,
        seed: mc
            .seed
            .unwrap_or(derive_seed(spec.seed, KERNEL_SEED_STREAM)),
        blocks: mc.blocks,
        shard: SampleShard::WHOLE,
    };
    let path = cache.map(|c| cache_path(c.out, &description, &config));
    let cached = path
        .as_deref()
        .and_then(|p| read_cached(p, &description, &config));
    let sums = match cached {
        Some(sums) => sums,
        None => {
            let threads = cache.map_or(1, |c| c.threads);
            let sums = compute(spec, net, s_and_t, mc, &config, &description, threads)?;
            if let Some(p) = &path {
                write_cached(p, &sums).map_err(|e| setup(spec, e))?;
            }
            sums
        }
    };
    let n = s_and_t.len();
    let kernel = checked(spec, sums.kernel().map_err(|e| setup(spec, e))?, n)?;
    let jackknife = (0..mc.blocks)
        .map(|b| {
            let k = sums.kernel_without(Some(b)).map_err(|e| setup(spec, e))?;
            checked(spec, k, n)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PriorKernel { kernel, jackknife })
}

/// What the kernel depends on besides M, the blocks and the seed: the network, the
/// precision and the inputs.
fn describe(net: &Net, s_and_t: &Dataset, mc: &McKernelSpec) -> String {
    let inputs = inputs_fingerprint(s_and_t.features().iter().map(|&v| f64::from(v)));
    let (sigma_w, sigma_b) = match net {
        Net::Fcn(f) => (f.sigma_w, f.sigma_b),
        Net::ResNet { spec, .. } => (spec.sigma_w, spec.sigma_b),
    };
    format!(
        "{}, σ_w {sigma_w}, σ_b {sigma_b}, in {:?}, {} points of {inputs}",
        net.describe(),
        mc.precision,
        s_and_t.len()
    )
}

/// `<out>/kernels/<16 hex digits of the SHA-256 of the description and the settings>`.
fn cache_path(out: &Path, description: &str, config: &McConfig) -> PathBuf {
    let key = format!(
        "{description} | M {} | blocks {} | seed {}",
        config.samples, config.blocks, config.seed
    );
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    out.join("kernels").join(format!("{hex}.safetensors"))
}

/// The cached sums at `path` if they are the ones asked for (a stale or unreadable file is
/// recomputed, with a warning).
fn read_cached(path: &Path, description: &str, config: &McConfig) -> Option<McSums> {
    if !path.exists() {
        return None;
    }
    match basin_prior::mc_file::read(path) {
        Ok(s)
            if s.meta.description == description
                && s.meta.samples == config.samples
                && s.meta.seed == config.seed
                && s.meta.blocks == config.blocks
                && s.is_complete() =>
        {
            tracing::info!("the empirical kernel from the cache {}", path.display());
            Some(s)
        }
        Ok(_) => {
            tracing::warn!(
                "{}: not the kernel asked for; computing it again",
                path.display()
            );
            None
        }
        Err(e) => {
            tracing::warn!("{e}; computing the kernel again");
            None
        }
    }
}

fn write_cached(path: &Path, sums: &McSums) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        basin_data::atomic::create_dir(dir).map_err(|e| e.to_string())?;
    }
    basin_prior::mc_file::write(sums, path).map_err(|e| e.to_string())
}

/// The sums of the network's features on S ∪ T.
fn compute(
    spec: &ExperimentSpec,
    net: &Net,
    s_and_t: &Dataset,
    mc: &McKernelSpec,
    config: &McConfig,
    description: &str,
    threads: usize,
) -> Result<McSums, LabError> {
    let err = |e: basin_prior::PriorError| setup(spec, e);
    match net {
        Net::Fcn(fcn) => {
            let x: Vec<f64> = s_and_t.features().iter().map(|&v| f64::from(v)).collect();
            let f = FcnFeatures::new(fcn, &x, s_and_t.len()).map_err(err)?;
            sums_logged(&mut vec![f; threads], config, description).map_err(err)
        }
        Net::ResNet { graph, .. } => match mc.precision {
            Precision::F32 => {
                let mut f = conv_workers::<f32>(graph, s_and_t, threads).map_err(err)?;
                sums_logged(&mut f, config, description).map_err(err)
            }
            Precision::F64 => {
                let mut f = conv_workers::<f64>(graph, s_and_t, threads).map_err(err)?;
                sums_logged(&mut f, config, description).map_err(err)
            }
        },
    }
}

/// One single-threaded feature map of the conv net per worker, in passes of at most 2 GiB.
fn conv_workers<T: basin_nn::Real>(
    graph: &basin_conv::Graph,
    s_and_t: &Dataset,
    workers: usize,
) -> Result<Vec<ConvFeatures<T>>, basin_prior::PriorError> {
    let run = ConvRun {
        chunk: 0,
        threads: 1,
        curvature: false,
    };
    let chunk = run.chunk_for::<T>(graph, s_and_t.len());
    (0..workers.max(1))
        .map(|_| ConvFeatures::<T>::new(graph.clone(), s_and_t, chunk, run.par()))
        .collect()
}

/// [`mc_sums_parallel`] over the `f` workers, logging its progress every tenth of the
/// samples.
fn sums_logged<F: FeatureExtractor + Send>(
    f: &mut [F],
    config: &McConfig,
    description: &str,
) -> Result<McSums, basin_prior::PriorError> {
    let start = std::time::Instant::now();
    mc_sums_parallel(f, config, description, |done, total| {
        if done * 10 / total != (done - 1) * 10 / total || done == total {
            tracing::info!(
                "empirical kernel: {done}/{total} networks in {:.0} s",
                start.elapsed().as_secs_f64()
            );
        }
    })
}
