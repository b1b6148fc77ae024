//! Sparse first-layer products, for inputs that are mostly zeros (MNIST digits have about 19%
//! nonzero pixels).
//!
//! The first layer dominates the FCN's cost (784 × 40 of the paper's 33,081 weights). Its
//! product with the input, `X Wᵀ` (forward and R-forward), skips the zero entries of `X` here:
//! each nonzero `x_rj` adds `x_rj` times row `j` of a transposed copy of the weights to the
//! output row, in registers (AVX-512 kernel in [`crate::simd`], a scalar loop elsewhere), with
//! the columns visited in groups whose weights stay in L1. On 500 MNIST digits this takes
//! about half the time of the dense AVX-512 product in f32 and in f64 (`cargo bench --bench
//! products -- mnist_`). The weight gradient `Δᵀ X` stays dense: its sparse form, a
//! read-modify-write of a weight row per nonzero, measured no faster. On small minibatches
//! (below [`MIN_ROWS`] rows) the transpose would dominate, so those stay dense too, as does
//! everything on CPUs without AVX-512 (the portable loop here is the reference form).
//!
//! The sums run in a different order than the dense products', so results agree with them to
//! round-off, not bit for bit.

use crate::gemm::Mode;
use crate::real::Real;

/// The data density (fraction of nonzero inputs) up to which the sparse path is used.
pub const MAX_DENSITY: f64 = 0.5;

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

/// Columns per block of the row index: the kernels visit the columns in groups of whole
/// blocks, so that the transposed weights of a group stay in L1.
pub const COL_BLOCK: usize = 64;

/// The input matrix in compressed sparse row form, with each row's nonzeros also indexed by
/// column block. Every column index is below `dim`, and the columns of a row ascend.
#[derive(Debug, Clone)]
pub struct SparseRows<T> {
    dim: usize,
    /// `n_blocks + 1` entries per row: the position of the row's first nonzero in column
    /// block `b` (the last entry is the row's end).
    block_offsets: Vec<usize>,
    cols: Vec<u32>,
    vals: Vec<T>,
}

impl<T: Real> SparseRows<T> {
    /// The CSR form of `x` (`n × dim`, row-major) if at most [`MAX_DENSITY`] of its entries are
    /// nonzero, else `None`.
    pub fn of(x: &[T], dim: usize) -> Option<Self> {
        let nnz = x.iter().filter(|&&v| v != T::ZERO).count();
        let sparse_enough = nnz as f64 <= MAX_DENSITY * x.len() as f64;
        if dim == 0 || x.is_empty() || !sparse_enough || u32::try_from(dim).is_err() {
            return None;
        }
        let n_blocks = dim.div_ceil(COL_BLOCK);
        let mut s = Self {
            dim,
            block_offsets: Vec::with_capacity((x.len() / dim) * (n_blocks + 1)),
            cols: Vec::with_capacity(nnz),
            vals: Vec::with_capacity(nnz),
        };
        for row in x.chunks_exact(dim) {
            for block in row.chunks(COL_BLOCK).enumerate() {
                s.block_offsets.push(s.cols.len());
                for (j, &v) in block.1.iter().enumerate() {
                    if v != T::ZERO {
                        s.cols.push((block.0 * COL_BLOCK + j) as u32);
                        s.vals.push(v);
                    }
                }
            }
            s.block_offsets.push(s.cols.len());
        }
        Some(s)
    }

    /// The number of column blocks.
    pub fn n_blocks(&self) -> usize {
        self.dim.div_ceil(COL_BLOCK)
    }

    /// The column indices and values of stored row `i` in column blocks `blocks`.
    #[inline(always)]
    pub fn row_blocks(&self, i: usize, blocks: std::ops::Range<usize>) -> (&[u32], &[T]) {
        let base = i * (self.n_blocks() + 1);
        let (a, b) = (
            self.block_offsets[base + blocks.start],
            self.block_offsets[base + blocks.end],
        );
        (&self.cols[a..b], &self.vals[a..b])
    }

    /// The column indices and values of stored row `i`.
    #[inline(always)]
    pub fn row(&self, i: usize) -> (&[u32], &[T]) {
        self.row_blocks(i, 0..self.n_blocks())
    }

    /// The number of stored rows.
    pub fn n_rows(&self) -> usize {
        self.block_offsets.len() / (self.n_blocks() + 1)
    }

    /// The number of columns (the input dimension).
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// `c (b × n) (+)= X[rows] · wᵀ`, `w` stored `n × k`; `wt` is scratch of at least
/// [`scratch_len`]`(n, k)`.
pub fn times_wt<T: Real>(
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
    if !T::simd_csr_times(c, (x, rows), (wt, stride(n)), n, acc) {
        times_wt_scalar(x, rows, c, (wt, stride(n)), n, acc);
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
    use crate::gemm::nt;

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

    /// The product agrees with the dense one (to 1e-13 relative in f64, 1e-5 in f32), in both
    /// modes, for output widths below, at and across vector and block boundaries.
    fn sparse_products_match_dense<T: Real>(tol: f64) {
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

    /// The portable loop agrees with the dense product too (it runs where AVX-512 is absent).
    #[test]
    fn portable_loop_matches_dense() {
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
