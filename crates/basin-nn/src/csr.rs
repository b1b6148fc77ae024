//! The input matrix in compressed sparse row and column form, for the sparse first-layer
//! products of [`crate::sparse`] and their AVX-512 kernels in [`crate::simd`].

use crate::real::Real;

/// The data density (fraction of nonzero inputs) up to which the sparse path is used.
pub const MAX_DENSITY: f64 = 0.5;

/// Columns per block of the row index: the kernels visit the columns in groups of whole
/// blocks, so that the transposed weights of a group stay in L1.
pub const COL_BLOCK: usize = 64;

/// The input matrix in compressed sparse row form, with each row's nonzeros also indexed by
/// column block, and in compressed sparse column form. Every column index is below `dim`, the
/// columns of a row ascend and the rows of a column ascend.
#[derive(Debug, Clone)]
pub struct SparseRows<T> {
    dim: usize,
    /// `dim + 1` entries: where each column's nonzeros start in `col_rows`/`col_vals`.
    col_offsets: Vec<usize>,
    col_rows: Vec<u32>,
    col_vals: Vec<T>,
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
        let n_rows = x.len() / dim.max(1);
        let fits = u32::try_from(dim).is_ok() && u32::try_from(n_rows).is_ok();
        if dim == 0 || x.is_empty() || !sparse_enough || !fits {
            return None;
        }
        let n_blocks = dim.div_ceil(COL_BLOCK);
        let mut s = Self {
            dim,
            col_offsets: Vec::new(),
            col_rows: Vec::new(),
            col_vals: Vec::new(),
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
        s.build_columns();
        Some(s)
    }

    /// Fills the column form from the row form (a counting sort by column).
    fn build_columns(&mut self) {
        let mut counts = vec![0usize; self.dim + 1];
        for &j in &self.cols {
            counts[j as usize + 1] += 1;
        }
        for j in 0..self.dim {
            counts[j + 1] += counts[j];
        }
        let mut col_rows = vec![0; self.cols.len()];
        let mut col_vals = vec![T::ZERO; self.cols.len()];
        self.col_offsets = counts.clone();
        for r in 0..self.n_rows() {
            let (cols, vals) = self.row(r);
            for (&j, &v) in cols.iter().zip(vals) {
                let at = &mut counts[j as usize];
                col_rows[*at] = r as u32;
                col_vals[*at] = v;
                *at += 1;
            }
        }
        self.col_rows = col_rows;
        self.col_vals = col_vals;
    }

    /// The rows in `rows` (ascending) holding a nonzero in column `j`, and the values.
    #[inline(always)]
    pub fn column(&self, j: usize, rows: std::ops::Range<usize>) -> (&[u32], &[T]) {
        let (a, b) = (self.col_offsets[j], self.col_offsets[j + 1]);
        let all = &self.col_rows[a..b];
        let lo = all.partition_point(|&r| (r as usize) < rows.start);
        let hi = all.partition_point(|&r| (r as usize) < rows.end);
        (&all[lo..hi], &self.col_vals[a + lo..a + hi])
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
