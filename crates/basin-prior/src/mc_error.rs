//! The Monte Carlo error of anything computed from an empirical kernel, log P(f) above all:
//! the delete-one-block jackknife over the kernel's interleaved sample blocks
//! ([`crate::mc_kernel::McSums`]). With `B` blocks and `θ_b` the value on the kernel without
//! block `b`, the standard error is `√((B − 1)/B · Σ_b (θ_b − θ̄)²)`, with `B − 1` degrees of
//! freedom. It tells whether `M` samples are enough: the paper's M = 0.1·N never came with one.

use faer::MatRef;

use crate::error::PriorError;
use crate::mc_kernel::McSums;

/// A value computed on the full Monte Carlo kernel, with its jackknife standard error.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Jackknife {
    /// The value on the kernel of all samples.
    pub value: f64,
    /// The jackknife standard error.
    pub std_err: f64,
    /// The values without each block, in block order.
    pub leave_one_out: Vec<f64>,
}

/// The jackknife standard error of `values` (one per left-out block), `None` with fewer
/// than 2 or any value not finite.
pub fn jackknife_std_err(values: &[f64]) -> Option<f64> {
    let b = values.len();
    if b < 2 || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mean = values.iter().sum::<f64>() / b as f64;
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    Some(((b as f64 - 1.0) / b as f64 * ss).sqrt())
}

/// `statistic` on `sums`' kernel (`value`, computed already by the caller on
/// `sums.kernel()`), and on each leave-one-block-out kernel, with the jackknife error. Needs
/// at least 2 blocks.
pub fn jackknife(
    sums: &McSums,
    value: f64,
    mut statistic: impl FnMut(MatRef<'_, f64>) -> Result<f64, PriorError>,
) -> Result<Jackknife, PriorError> {
    if sums.meta.blocks < 2 {
        return Err(PriorError::McSettings(format!(
            "the kernel has {} block: its error needs at least 2 (--blocks)",
            sums.meta.blocks
        )));
    }
    let leave_one_out = (0..sums.meta.blocks)
        .map(|b| statistic(sums.kernel_without(Some(b))?.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let std_err = jackknife_std_err(&leave_one_out).ok_or_else(|| {
        PriorError::McSettings("a leave-one-block-out value is not finite".into())
    })?;
    Ok(Jackknife {
        value,
        std_err,
        leave_one_out,
    })
}
