//! Sparse first-layer products, for inputs that are mostly zeros (MNIST digits have about 19%
//! nonzero pixels).
//!
//! The first layer dominates the FCN's cost (784 × 40 of the paper's 33,081 weights). Its
//! product with the input, `X Wᵀ` (forward and R-forward), skips the zero entries of `X` here:
//! each nonzero `x_rj` adds `x_rj` times row `j` of a transposed copy of the weights to the
//! output row, in registers (AVX-512 kernel in [`crate::simd`], a scalar loop elsewhere), with
//! the columns visited in groups whose weights stay in L1. The weight gradient `Δᵀ X`
//! (backward and R-backward) of consecutive rows uses the column form of `X`: column `j` of
//! the gradient is summed in registers over the rows with a nonzero in column `j`. On 500
//! MNIST digits each takes about half the time of the dense AVX-512 product, in f32 and f64
//! (`cargo bench --bench products -- mnist_`). Small minibatches (below [`MIN_ROWS`] rows)
//! stay dense, since the transposes would dominate; so do shuffled chunks for the gradient
//! (no column form of an arbitrary row set), and everything on CPUs without AVX-512 (the
//! portable loops here are the reference forms).
//!
//! The sums run in a different order than the dense products', so results agree with them to
//! round-off, not bit for bit.

use crate::csr::SparseRows;
use crate::gemm::Mode;
use crate::real::Real;
use crate::simd::Kernels;

/// The fewest rows of a chunk for which the sparse path is used.
pub const MIN_ROWS: usize = 64;

/// The row stride of the transposed weights: `n` rounded up to a multiple of 16 (a whole
/// number of AVX-512 vectors in f32 and in f64), zero-padded.
fn stride(n: usize) -> usize {
    n.next_multiple_of(16)
}

/// The scratch length the products need for `n` outputs of input dimension `k`.
pub fn scratch_len(n: usize, k: usize) -> usize {
    k * stride(n)
}

/// `c (b × n) (+)= X[rows] · wᵀ`, `w` stored `n × k`; `wt` is scratch of at least
/// [`scratch_len`]`(n, k)`.
pub fn times_wt<T: Kernels>(
    x: &SparseRows<T>,
    rows: &[usize],
    c: &mut [T],
    w: &[T],
    (b, n, k): (usize, usize, usize),
    mode: Mode,
    wt: &mut [T],
) {
    assert!(k == x.dim() && rows.len() >= b && c.len() >= b * n && w.len() >= n * k);
    assert!(wt.len() >= scratch_len(n, k));
    let rows = &rows[..b];
    transpose_padded(w, (n, k), wt);
    let acc = mode == Mode::Add;
    if !T::csr_times(c, (x, rows), (wt, stride(n)), n, acc) {
        times_wt_scalar(x, rows, c, (wt, stride(n)), n, acc);
    }
}

/// `c (n × k) (+)= Δᵀ · X[first..first + b]`, `Δ` stored `b × n`, for consecutive rows (the
/// column form lets each column's sum stay in registers); `gt` is scratch of at least
/// [`scratch_len`]`(n, k)`.
pub fn delta_t_times<T: Kernels>(
    x: &SparseRows<T>,
    first: usize,
    c: &mut [T],
    delta: &[T],
    (n, k, b): (usize, usize, usize),
    mode: Mode,
    gt: &mut [T],
) {
    assert!(k == x.dim() && first + b <= x.n_rows() && c.len() >= n * k && delta.len() >= b * n);
    assert!(gt.len() >= scratch_len(n, k));
    let st = stride(n);
    gt[..k * st].fill(T::ZERO);
    if !T::csc_delta_t(gt, (x, first..first + b), delta, (n, st)) {
        delta_t_scalar(x, first..first + b, delta, (n, st), gt);
    }
    for (o, crow) in c[..n * k].chunks_exact_mut(k).enumerate() {
        let column = gt.iter().skip(o).step_by(st);
        match mode {
            Mode::Replace => crow.iter_mut().zip(column).for_each(|(c, &g)| *c = g),
            Mode::Add => crow.iter_mut().zip(column).for_each(|(c, &g)| *c += g),
        }
    }
}

/// The portable form of the AVX-512 `csc_delta_t`: `gt[j] += Σ_r x_rj Δ_r`.
fn delta_t_scalar<T: Real>(
    x: &SparseRows<T>,
    rows: std::ops::Range<usize>,
    delta: &[T],
    (n, st): (usize, usize),
    gt: &mut [T],
) {
    for j in 0..x.dim() {
        let (rs, vals) = x.column(j, rows.clone());
        let g = &mut gt[j * st..j * st + n];
        for (&r, &v) in rs.iter().zip(vals) {
            let d = &delta[(r as usize - rows.start) * n..][..n];
            g.iter_mut().zip(d).for_each(|(g, &d)| *g += v * d);
        }
    }
}

/// `wt = wᵀ` for `w` stored `n × k`: `k` rows of stride [`stride`]`(n)`, zero-padded.
fn transpose_padded<T: Real>(w: &[T], (n, k): (usize, usize), wt: &mut [T]) {
    let st = stride(n);
    for row in wt[..k * st].chunks_exact_mut(st) {
        row[n..].fill(T::ZERO);
    }
    for (o, wrow) in w[..n * k].chunks_exact(k).enumerate() {
        for (j, &v) in wrow.iter().enumerate() {
            wt[j * st + o] = v;
        }
    }
}

/// The portable form of the AVX-512 `csr_times`.
fn times_wt_scalar<T: Real>(
    x: &SparseRows<T>,
    rows: &[usize],
    c: &mut [T],
    (wt, st): (&[T], usize),
    n: usize,
    acc: bool,
) {
    for (crow, &r) in c.chunks_exact_mut(n).zip(rows) {
        if !acc {
            crow.fill(T::ZERO);
        }
        let (cols, vals) = x.row(r);
        for (&j, &v) in cols.iter().zip(vals) {
            let j = j as usize;
            for (cv, &w) in crow.iter_mut().zip(&wt[j * st..j * st + n]) {
                *cv += v * w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::{nt, tn};

    /// A 70 × 13 matrix, one entry in three nonzero.
    fn data<T: Real>() -> (Vec<T>, usize, usize) {
        let (n, dim) = (70, 13);
        let x = (0..n * dim)
            .map(|i| {
                let v = if i % 3 == 0 { (i as f64).sin() } else { 0.0 };
                T::from_f64(v)
            })
            .collect();
        (x, n, dim)
    }

    /// Both products agree with the dense ones (to 1e-13 relative in f64, 1e-5 in f32), in
    /// both modes, for output widths below, at and across vector and block boundaries.
    fn sparse_products_match_dense<T: Kernels>(tol: f64) {
        let (x, rows_n, dim) = data::<T>();
        let sp = SparseRows::of(&x, dim).expect("a third nonzero");
        let rows: Vec<usize> = (0..rows_n).rev().step_by(2).collect();
        let b = rows.len();
        let gathered: Vec<T> = rows
            .iter()
            .flat_map(|&r| x[r * dim..(r + 1) * dim].to_vec())
            .collect();
        for n in [1, 5, 8, 16, 40, 70] {
            let w: Vec<T> = (0..n * dim)
                .map(|i| T::from_f64((i as f64 * 0.7).cos()))
                .collect();
            let mut scratch = vec![T::ZERO; scratch_len(n, dim)];
            for mode in [Mode::Replace, Mode::Add] {
                let (mut c1, mut c2) = (vec![T::ONE; b * n], vec![T::ONE; b * n]);
                times_wt(&sp, &rows, &mut c1, &w, (b, n, dim), mode, &mut scratch);
                nt(&mut c2, &gathered, &w, (b, n, dim), mode);
                close(&c1, &c2, tol);
                let (mut g1, mut g2) = (vec![T::ONE; n * dim], vec![T::ONE; n * dim]);
                let delta: Vec<T> = (0..b * n)
                    .map(|i| T::from_f64((i as f64 * 0.3).sin()))
                    .collect();
                let (first, block) = (7, &x[7 * dim..(7 + b) * dim]);
                delta_t_times(&sp, first, &mut g1, &delta, (n, dim, b), mode, &mut scratch);
                tn(&mut g2, &delta, block, (n, dim, b), mode);
                close(&g1, &g2, tol);
            }
        }
    }

    #[test]
    fn sparse_products_match_dense_f64() {
        sparse_products_match_dense::<f64>(1e-13);
    }

    #[test]
    fn sparse_products_match_dense_f32() {
        sparse_products_match_dense::<f32>(1e-5);
    }

    /// The portable loops agree with the dense products too (they run where AVX-512 is absent).
    #[test]
    fn portable_loops_match_dense() {
        let (x, rows_n, dim) = data::<f64>();
        let sp = SparseRows::of(&x, dim).unwrap();
        let rows: Vec<usize> = (0..rows_n).collect();
        let n = 40;
        let w: Vec<f64> = (0..n * dim).map(|i| (i as f64).cos()).collect();
        let mut wt = vec![0.0; scratch_len(n, dim)];
        transpose_padded(&w, (n, dim), &mut wt);
        let (mut c1, mut c2) = (vec![0.0; rows_n * n], vec![0.0; rows_n * n]);
        times_wt_scalar(&sp, &rows, &mut c1, (&wt, stride(n)), n, false);
        nt(&mut c2, &x, &w, (rows_n, n, dim), Mode::Replace);
        close(&c1, &c2, 1e-13);
        let mut gt = vec![0.0; scratch_len(n, dim)];
        delta_t_scalar(&sp, 0..rows_n, &c2, (n, stride(n)), &mut gt);
        let mut g = vec![0.0; n * dim];
        tn(&mut g, &c2, &x, (n, dim, rows_n), Mode::Replace);
        for o in 0..n {
            for j in 0..dim {
                let (p, q) = (gt[j * stride(n) + o], g[o * dim + j]);
                assert!((p - q).abs() <= 1e-13 * q.abs().max(1.0), "{p} vs {q}");
            }
        }
    }

    fn close<T: Real>(a: &[T], b: &[T], tol: f64) {
        for (p, q) in a.iter().zip(b) {
            let (p, q) = (p.to_f64(), q.to_f64());
            assert!((p - q).abs() <= tol * q.abs().max(1.0), "{p} vs {q}");
        }
    }

    #[test]
    fn dense_data_has_no_sparse_form() {
        assert!(SparseRows::of(&[1.0, 2.0, 0.0, 4.0], 2).is_none());
        assert!(SparseRows::<f32>::of(&[], 2).is_none());
    }
}
