//! Row-major matrix products on flat slices, through faer, single-threaded.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::real::Real;

/// How a product combines with the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `dst = product`.
    Replace,
    /// `dst += product`.
    Add,
}

/// A row-major `rows × cols` view of a slice.
#[inline]
pub fn view<T: Real>(s: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_row_major_slice(&s[..rows * cols], rows, cols)
}

/// A row-major `rows × cols` mutable view of a slice.
#[inline]
pub fn view_mut<T: Real>(s: &mut [T], rows: usize, cols: usize) -> MatMut<'_, T> {
    MatMut::from_row_major_slice_mut(&mut s[..rows * cols], rows, cols)
}

/// `dst (m × n) ⟵ a (m × k) · b (k × n)`, all operands given as views.
#[inline]
pub fn gemm<T: Real>(dst: MatMut<'_, T>, mode: Mode, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    let accum = match mode {
        Mode::Replace => Accum::Replace,
        Mode::Add => Accum::Add,
    };
    matmul(dst, accum, a, b, T::ONE, Par::Seq);
}
