//! The Monte Carlo (empirical) NNGP kernel of any network basin has, on NumPy inputs: a
//! fully-connected net of any activation, or a ResNet of the pytorch-cifar family on images,
//! as `basin kernel --method mc` computes it.

use basin_conv::{ArchName, Graph};
use basin_data::{Dataset, ImageShape};
use basin_nn::Precision;
use basin_prior::faer::Par;
use basin_prior::kernel::into_row_major;
use basin_prior::mc_kernel::{
    ConvFeatures, FcnFeatures, FeatureExtractor, McConfig, McSums, SampleShard, inputs_fingerprint,
    mc_sums_parallel,
};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::Matrix;
use crate::errors::{basin_error, parse_name, value_error};
use crate::interrupt::interruptible;
use crate::prior::fcn_spec;

/// A kernel (or its standard errors) as a NumPy matrix.
type Kernel<'py> = Bound<'py, PyArray2<f64>>;

/// The network whose kernel is wanted.
pub struct Architecture {
    /// A ResNet (`resnet18`, …, or `KIND:BLOCKS:WIDTH`), or a fully-connected net when `None`.
    pub arch: Option<String>,
    /// Hidden widths of the fully-connected net.
    pub hidden: Vec<usize>,
    /// The activation.
    pub activation: String,
    /// Weight init scale.
    pub sigma_w: f64,
    /// Bias init scale.
    pub sigma_b: f64,
}

/// The empirical kernel of the architecture on `x` from `samples` random networks drawn from
/// `seed` (`threads` at a time), with each entry's Monte Carlo standard error when
/// `with_std_err`: a ResNet takes images `(n, C, H, W)`, a fully-connected net rows `(n, d)`.
#[pyfunction]
#[pyo3(signature = (x, arch, hidden, activation, sigma_w, sigma_b, samples, seed, precision, threads, with_std_err))]
#[allow(clippy::too_many_arguments)]
pub fn empirical_kernel<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    arch: Option<String>,
    hidden: Vec<usize>,
    activation: &str,
    sigma_w: f64,
    sigma_b: f64,
    samples: usize,
    seed: u64,
    precision: &str,
    threads: Option<usize>,
    with_std_err: bool,
) -> PyResult<(Kernel<'py>, Option<Kernel<'py>>)> {
    let precision: Precision = parse_name("precision", precision)?;
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(value_error("threads", "must be at least 1"));
    }
    let config = McConfig {
        samples,
        seed,
        blocks: 1,
        shard: SampleShard::WHOLE,
    };
    let net = Architecture {
        arch,
        hidden,
        activation: activation.to_owned(),
        sigma_w,
        sigma_b,
    };
    let sums = match &net.arch {
        Some(name) => resnet_sums(py, x, name, &net, &config, precision, threads)?,
        None => fcn_sums(py, x, &net, &config, threads)?,
    };
    let n = sums.meta.n;
    let kernel = sums.kernel().map_err(basin_error)?;
    let kernel = PyArray1::from_vec(py, into_row_major(kernel)).reshape([n, n])?;
    let std_err = match with_std_err {
        false => None,
        true => match sums.std_err().map_err(basin_error)? {
            Some(se) => Some(PyArray1::from_vec(py, into_row_major(se)).reshape([n, n])?),
            None => {
                return Err(value_error(
                    "samples",
                    "a standard error needs at least 2 samples",
                ));
            }
        },
    };
    Ok((kernel, std_err))
}

/// The sums of a fully-connected net on the rows of `x`.
fn fcn_sums(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    net: &Architecture,
    config: &McConfig,
    threads: usize,
) -> PyResult<McSums> {
    let x = Matrix::extract(x, "X")?;
    let (n, d) = x.shape();
    let spec = fcn_spec(
        d,
        net.hidden.clone(),
        &net.activation,
        net.sigma_w,
        net.sigma_b,
    )?;
    let rows = x.row_major();
    let description = format!(
        "fully connected {:?}, {n} points of {}",
        spec.hidden,
        inputs_fingerprint(rows.iter().copied())
    );
    let features = FcnFeatures::new(&spec, &rows, n).map_err(basin_error)?;
    let mut workers = vec![features; threads.min(config.samples)];
    sums(py, &mut workers, config, &description)
}

/// The sums of a ResNet on the images `x` (n, C, H, W), in `precision`.
fn resnet_sums(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    name: &str,
    net: &Architecture,
    config: &McConfig,
    precision: Precision,
    threads: usize,
) -> PyResult<McSums> {
    let data = images(x)?;
    let shape = data
        .require_image_shape()
        .map_err(|e| value_error("X", e))?;
    let arch: ArchName = name.parse().map_err(|e| value_error("arch", e))?;
    let mut spec = arch.with_channels(shape.channels);
    spec.activation = net
        .activation
        .parse()
        .map_err(|e| value_error("activation", e))?;
    spec.sigma_w = net.sigma_w;
    spec.sigma_b = net.sigma_b;
    spec.validate().map_err(|e| value_error("arch", e))?;
    let graph = Graph::resnet(&spec, shape.height, shape.width);
    let description = format!(
        "ResNet {spec} in {precision:?}, {} images of {}",
        data.len(),
        inputs_fingerprint(data.features().iter().map(|&v| v.into()))
    );
    let workers = threads.min(config.samples);
    let conv = ConvSums {
        graph: &graph,
        data: &data,
        workers,
        config,
        description: &description,
    };
    match precision {
        Precision::F32 => conv.draw::<f32>(py),
        Precision::F64 => conv.draw::<f64>(py),
    }
}

/// A ResNet's sums to draw: the network, its images, the workers and the estimate.
struct ConvSums<'a> {
    graph: &'a Graph,
    data: &'a Dataset,
    workers: usize,
    config: &'a McConfig,
    description: &'a str,
}

impl ConvSums<'_> {
    /// The sums with the forward passes in `T`, in chunks that fit basin's memory budget.
    fn draw<T: basin_nn::Real>(&self, py: Python<'_>) -> PyResult<McSums> {
        let run = basin_conv::ConvRun {
            chunk: 0,
            threads: 1,
            curvature: false,
        };
        let chunk = run.chunk_for::<T>(self.graph, self.data.len());
        let mut features = (0..self.workers)
            .map(|_| ConvFeatures::<T>::new(self.graph.clone(), self.data, chunk, Par::Seq))
            .collect::<Result<Vec<_>, _>>()
            .map_err(basin_error)?;
        sums(py, &mut features, self.config, self.description)
    }
}

/// The sums drawn by `workers`, the GIL released.
fn sums<F: FeatureExtractor + Send>(
    py: Python<'_>,
    workers: &mut [F],
    config: &McConfig,
    description: &str,
) -> PyResult<McSums> {
    interruptible(py, |_| {
        mc_sums_parallel(workers, config, description, |_, _| {})
    })?
    .map_err(basin_error)
}

/// Images `(n, C, H, W)` (float32 or float64; used in float32, as basin's data are) as a
/// dataset with their image shape.
fn images(x: &Bound<'_, PyAny>) -> PyResult<Dataset> {
    let untyped = x
        .cast::<PyUntypedArray>()
        .map_err(|_| value_error("X", "expected a NumPy array of images (n, C, H, W)"))?;
    let shape = untyped.shape().to_vec();
    let [n, c, h, w] = shape[..] else {
        return Err(value_error(
            "X",
            format!("a ResNet takes images of shape (n, C, H, W), got shape {shape:?}"),
        ));
    };
    let np = x.py().import("numpy")?;
    let flat = np
        .getattr("ascontiguousarray")?
        .call1((x, "float32"))?
        .call_method1("reshape", ((n * c * h * w) as i64,))?;
    let flat = flat
        .cast_into::<PyArray1<f32>>()
        .map_err(|_| value_error("X", "expected float values"))?;
    let values = flat.readonly().as_slice()?.to_vec();
    let shape = ImageShape {
        channels: c,
        height: h,
        width: w,
    };
    Dataset::new("images", c * h * w, values, None, None)
        .and_then(|d| d.with_image_shape(shape))
        .map_err(|e| value_error("X", e))
}
