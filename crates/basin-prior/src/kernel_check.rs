//! The checks every estimator runs on a kernel before it uses it: n × n, finite, symmetric,
//! a positive diagonal and, where asked, a Cholesky factor, with the jitter ladder
//! (`JITTERS`) tried when it has none.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::{MatRef, Par};

use crate::PriorError;

/// The relative jitters (times the mean diagonal) tried in turn when a kernel's Cholesky
/// factorisation fails.
pub(crate) const JITTERS: [f64; 8] = [0.0, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6];

/// Checks a kernel for use with `n` labels and returns an owned copy: it must be n × n,
/// finite, symmetric (to 1e-9 of its largest diagonal entry) with a positive diagonal. With
/// `check_psd`, it must also have a Cholesky factor; when it has none, jitters of 1e-12 up to
/// 1e-6 times the mean diagonal are tried in turn, and the first that works is added to the
/// diagonal, named in a `tracing` warning and returned (0 when none was needed). The
/// factorisation is single-threaded ([`Par::Seq`]).
pub fn checked_kernel(
    kernel: MatRef<'_, f64>,
    n: usize,
    check_psd: bool,
) -> Result<(faer::Mat<f64>, f64), PriorError> {
    check_kernel(kernel, n)?;
    if !check_psd {
        return Ok((kernel.to_owned(), 0.0));
    }
    let (jitter, _) = cholesky_jitter(kernel)?;
    Ok((with_jitter(kernel, jitter), jitter))
}

/// The checks of [`checked_kernel`] without the Cholesky factorisation and without a copy:
/// n × n, finite, symmetric, with a positive diagonal. Returns whether it is exactly
/// symmetric (then a row-major kernel can be read as its column-major transpose).
pub(crate) fn check_kernel(kernel: MatRef<'_, f64>, n: usize) -> Result<bool, PriorError> {
    if kernel.nrows() != kernel.ncols() || kernel.nrows() != n {
        return Err(PriorError::KernelShape {
            rows: kernel.nrows(),
            cols: kernel.ncols(),
            labels: n,
        });
    }
    check_entries(kernel)
}

/// The correlation matrix of a kernel with a positive diagonal: Kᵢⱼ/(√Kᵢᵢ·√Kⱼⱼ), with a
/// diagonal of exactly 1. P(sign z = y) for z ~ N(0, K) is that of the correlation matrix
/// (the map z ↦ D⁻¹z, D = diag(√Kᵢᵢ), keeps every sign), so the step likelihood can run on it
/// whatever the spread of K's diagonal.
pub(crate) fn correlation(k: MatRef<'_, f64>) -> faer::Mat<f64> {
    let n = k.nrows();
    let root: Vec<f64> = (0..n).map(|i| k[(i, i)].sqrt()).collect();
    faer::Mat::from_fn(n, n, |i, j| {
        if i == j {
            1.0
        } else {
            k[(i, j)] / root[i] / root[j]
        }
    })
}

/// The largest diagonal entry over the smallest (≥ 1; the diagonal is positive).
pub(crate) fn diagonal_spread(k: MatRef<'_, f64>) -> f64 {
    let d = (0..k.nrows()).map(|i| k[(i, i)]);
    let (lo, hi) = d.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    hi / lo
}

/// `k` + `jitter`·I, owned.
pub(crate) fn with_jitter(k: MatRef<'_, f64>, jitter: f64) -> faer::Mat<f64> {
    let mut out = k.to_owned();
    for i in 0..out.nrows() {
        out[(i, i)] += jitter;
    }
    out
}

/// The smallest of [`JITTERS`] (times the mean diagonal) with which `k` has a Cholesky
/// factor, named in a `tracing` warning when it is not 0, and the buffer that holds the
/// factor; an error when even the largest fails. Single-threaded.
pub(crate) fn cholesky_jitter(k: MatRef<'_, f64>) -> Result<(f64, faer::Mat<f64>), PriorError> {
    let n = k.nrows();
    let mean_diag = (0..n).map(|i| k[(i, i)]).sum::<f64>() / n as f64;
    let mut trial = faer::Mat::<f64>::zeros(n, n);
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(
        n,
        Par::Seq,
        Default::default(),
    ));
    for rel in JITTERS {
        let jitter = rel * mean_diag;
        trial.copy_from_triangular_lower(k);
        for i in 0..n {
            trial[(i, i)] += jitter;
        }
        let factored = cholesky_in_place(
            trial.as_mut(),
            LltRegularization::default(),
            Par::Seq,
            MemStack::new(&mut mem),
            Default::default(),
        );
        if factored.is_ok() {
            if jitter > 0.0 {
                tracing::warn!(
                    "the kernel has no Cholesky factor; added jitter {jitter:e} \
                     ({rel:e} × mean diagonal) to its diagonal"
                );
            }
            return Ok((jitter, trial));
        }
    }
    Err(PriorError::NotPsd {
        jitter: JITTERS[JITTERS.len() - 1] * mean_diag,
    })
}

/// Rows and columns of the tiles in which [`check_entries`] compares K with Kᵀ.
const SYMMETRY_TILE: usize = 64;

/// Entries (i, j) and (j, i) finite and equal to `tol`; returns whether they are exactly equal.
fn check_pair(k: MatRef<'_, f64>, i: usize, j: usize, tol: f64) -> Result<bool, PriorError> {
    let (a, b) = (k[(i, j)], k[(j, i)]);
    if !(a.is_finite() && b.is_finite()) {
        return Err(PriorError::KernelNotFinite { row: i, col: j });
    }
    if (a - b).abs() > tol {
        return Err(PriorError::KernelAsymmetric {
            row: i,
            col: j,
            value: a,
            mirror: b,
        });
    }
    Ok(a == b)
}

/// Finite entries, a positive diagonal and symmetry; returns whether the symmetry is exact.
fn check_entries(k: MatRef<'_, f64>) -> Result<bool, PriorError> {
    let n = k.nrows();
    let mut max_diag = 0.0f64;
    for i in 0..n {
        let d = k[(i, i)];
        if !(d.is_finite() && d > 0.0) {
            return Err(PriorError::KernelDiagonal { index: i, value: d });
        }
        max_diag = max_diag.max(d);
    }
    let tol = 1e-9 * max_diag;
    let contiguous = if k.row_stride() == 1 {
        Some(k)
    } else if k.col_stride() == 1 {
        Some(k.transpose())
    } else {
        None
    };
    if let Some(cols) = contiguous
        && let Some(exact) = symmetry_of_columns(cols, tol)
    {
        return Ok(exact);
    }
    let mut exact = true;
    // Tile by tile, so that the transposed reads stay in cache.
    for (i0, j0) in lower_tiles(n) {
        for j in j0..(j0 + SYMMETRY_TILE).min(n) {
            for i in i0.max(j)..(i0 + SYMMETRY_TILE).min(n) {
                exact &= check_pair(k, i, j, tol)?;
            }
        }
    }
    Ok(exact)
}

/// The tiles (first row, first column) of [`SYMMETRY_TILE`] rows and columns that cover the
/// lower triangle of an n × n matrix.
fn lower_tiles(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(SYMMETRY_TILE)
        .flat_map(move |j0| (j0..n).step_by(SYMMETRY_TILE).map(move |i0| (i0, j0)))
}

/// The fast path of [`check_entries`] for a matrix with contiguous columns (K or, as the
/// check is the same for Kᵀ, its transpose): `Some(exactly symmetric)` when every entry is
/// finite and symmetric to `tol`, `None` when some pair is not (the caller then finds it and
/// names it).
fn symmetry_of_columns(k: MatRef<'_, f64>, tol: f64) -> Option<bool> {
    let n = k.nrows();
    let col = |j: usize| {
        k.col(j)
            .try_as_col_major()
            .map(|c| c.as_slice())
            .expect("the columns are contiguous")
    };
    let (mut exact, mut fine) = (true, true);
    for (i0, j0) in lower_tiles(n) {
        for j in j0..(j0 + SYMMETRY_TILE).min(n) {
            let (lo, hi) = (i0.max(j), (i0 + SYMMETRY_TILE).min(n));
            for (i, &a) in (lo..hi).zip(&col(j)[lo..hi]) {
                let b = col(i)[j];
                exact &= a == b;
                fine &= (a - b).abs() <= tol;
            }
        }
    }
    // A NaN or infinity fails `|a − b| ≤ tol` (its difference is NaN or infinite).
    fine.then_some(exact)
}
