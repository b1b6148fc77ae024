//! `basin-py` is basin's Python module: the native part, `basin._native`, under the Python
//! package `basin` (`python/basin/`), which gives it its documented signatures, defaults and
//! result classes (see `ARCHITECTURE.md`).
//!
//! - [`prior`]: log P(f) by every estimator, and the NNGP kernel; [`empirical`]: the Monte
//!   Carlo kernel of any architecture;
//! - [`spectra`] and [`callbacks`]: Lanczos, the Hutchinson trace, the spectral density and
//!   Keskar sharpness ([`sharpness`]) of any model, through its Python callbacks;
//! - [`fcn`]: the fully-connected pipeline on NumPy arrays;
//! - [`lab`]: experiments (`reproduce`) and their stored runs;
//! - [`arrays`], [`errors`], [`interrupt`]: NumPy arguments, exceptions, and Ctrl-C while
//!   the GIL is released.

mod arrays;
mod callbacks;
mod empirical;
mod errors;
mod fcn;
mod interrupt;
mod lab;
mod prior;
mod sharpness;
mod spectra;

use pyo3::prelude::*;

/// Large blocks (kernels, factors, data) on transparent huge pages, as in the `basin` binary
/// ([`basin_data::huge_pages`]): EP at N = 1500 takes a tenth of the page faults.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: basin_data::huge_pages::HugePages = basin_data::huge_pages::HugePages;

/// basin's native functions; the package `basin` wraps them.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BasinError", m.py().get_type::<errors::BasinError>())?;
    m.add_class::<fcn::Fcn>()?;
    m.add_function(wrap_pyfunction!(prior::log_prior_json, m)?)?;
    m.add_function(wrap_pyfunction!(prior::nngp_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(empirical::empirical_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(spectra::lanczos_json, m)?)?;
    m.add_function(wrap_pyfunction!(spectra::hutchinson_json, m)?)?;
    m.add_function(wrap_pyfunction!(spectra::spectral_density_json, m)?)?;
    m.add_function(wrap_pyfunction!(spectra::keskar_json, m)?)?;
    m.add_function(wrap_pyfunction!(lab::reproduce_json, m)?)?;
    m.add_function(wrap_pyfunction!(lab::load_results_json, m)?)?;
    Ok(())
}
