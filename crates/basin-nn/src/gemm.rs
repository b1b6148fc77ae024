//! Row-major matrix products on flat slices, single-threaded: the AVX-512 kernels of
//! [`crate::simd`] where the CPU has AVX-512, faer elsewhere.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::real::Real;
use crate::simd::{Kernels, RowMap};

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

/// `C (m × n) (+)= A (m × k) · Bᵀ`, `B` stored `n × k` row-major.
pub fn nt<T: Kernels>(c: &mut [T], a: &[T], b: &[T], dims: (usize, usize, usize), mode: Mode) {
    if !T::nt(c, (a, RowMap(None)), b, dims, mode == Mode::Add) {
        portable::nt(c, a, b, dims, mode);
    }
}

/// `C (m × n) (+)= A (m × k) · B (k × n)`.
pub fn nn<T: Kernels>(c: &mut [T], a: &[T], b: &[T], dims: (usize, usize, usize), mode: Mode) {
    if !T::rows(
        c,
        a,
        (dims.2, 1),
        (b, RowMap(None)),
        dims,
        mode == Mode::Add,
    ) {
        portable::nn(c, a, b, dims, mode);
    }
}

/// `C (m × n) (+)= Aᵀ · B`, `A` stored `k × m`, `B` stored `k × n`.
pub fn tn<T: Kernels>(c: &mut [T], a: &[T], b: &[T], dims: (usize, usize, usize), mode: Mode) {
    if !T::rows(
        c,
        a,
        (1, dims.0),
        (b, RowMap(None)),
        dims,
        mode == Mode::Add,
    ) {
        portable::tn(c, a, b, dims, mode);
    }
}

/// [`nt`] with row `i` of `A` read from stored row `rows[i]` (a minibatch in place). Returns
/// false, doing nothing, where the AVX-512 kernels are unavailable: gather the rows then.
#[must_use]
pub fn nt_indexed<T: Kernels>(
    c: &mut [T],
    (a, rows): (&[T], &[usize]),
    b: &[T],
    dims: (usize, usize, usize),
    mode: Mode,
) -> bool {
    T::nt(c, (a, RowMap(Some(rows))), b, dims, mode == Mode::Add)
}

/// [`tn`] with row `j` of `B` read from stored row `rows[j]`. Returns false, doing nothing,
/// where the AVX-512 kernels are unavailable.
#[must_use]
pub fn tn_indexed<T: Kernels>(
    c: &mut [T],
    a: &[T],
    (b, rows): (&[T], &[usize]),
    dims: (usize, usize, usize),
    mode: Mode,
) -> bool {
    T::rows(
        c,
        a,
        (1, dims.0),
        (b, RowMap(Some(rows))),
        dims,
        mode == Mode::Add,
    )
}

/// The same three products through faer, for CPUs without AVX-512.
pub mod portable {
    use super::*;

    /// `C (m × n) (+)= A (m × k) · Bᵀ`.
    pub fn nt<T: Real>(
        c: &mut [T],
        a: &[T],
        b: &[T],
        (m, n, k): (usize, usize, usize),
        mode: Mode,
    ) {
        gemm(
            view_mut(c, m, n),
            mode,
            view(a, m, k),
            view(b, n, k).transpose(),
        );
    }

    /// `C (m × n) (+)= A (m × k) · B (k × n)`.
    pub fn nn<T: Real>(
        c: &mut [T],
        a: &[T],
        b: &[T],
        (m, n, k): (usize, usize, usize),
        mode: Mode,
    ) {
        gemm(view_mut(c, m, n), mode, view(a, m, k), view(b, k, n));
    }

    /// `C (m × n) (+)= Aᵀ · B`.
    pub fn tn<T: Real>(
        c: &mut [T],
        a: &[T],
        b: &[T],
        (m, n, k): (usize, usize, usize),
        mode: Mode,
    ) {
        gemm(
            view_mut(c, m, n),
            mode,
            view(a, k, m).transpose(),
            view(b, k, n),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(
        a: &[f64],
        b: &[f64],
        (m, n, k): (usize, usize, usize),
        at: bool,
        bt: bool,
    ) -> Vec<f64> {
        let ga = |i: usize, p: usize| if at { a[p * m + i] } else { a[i * k + p] };
        let gb = |p: usize, j: usize| if bt { b[j * k + p] } else { b[p * n + j] };
        (0..m * n)
            .map(|ij| (0..k).map(|p| ga(ij / n, p) * gb(p, ij % n)).sum())
            .collect()
    }

    fn data(len: usize, seed: usize) -> Vec<f64> {
        (0..len)
            .map(|i| (((i + seed) * 7919 % 1013) as f64 / 1013.0) - 0.5)
            .collect()
    }

    type Product = fn(&mut [f64], &[f64], &[f64], (usize, usize, usize), Mode);

    #[test]
    fn products_match_the_triple_loop_on_ragged_shapes() {
        let shapes = [
            (70, 40, 784),
            (64, 3, 5),
            (1, 1, 1),
            (3, 5, 7),
            (4, 4, 16),
            (33, 40, 784),
            (5, 33, 17),
            (32, 1, 40),
            (7, 70, 3),
            (9, 16, 8),
        ];
        for &(m, n, k) in &shapes {
            let (a, b, c0) = (data(m * k, 1), data(k * n, 2), data(m * n, 3));
            let cases: [(Product, bool, bool); 6] = [
                (nt, false, true),
                (nn, false, false),
                (tn, true, false),
                (portable::nt, false, true),
                (portable::nn, false, false),
                (portable::tn, true, false),
            ];
            for (f, at, bt) in cases {
                let want = reference(&a, &b, (m, n, k), at, bt);
                let mut c = c0.clone();
                f(&mut c, &a, &b, (m, n, k), Mode::Add);
                // Summation order differs: 1e-13 · k absolute on entries of size ≲ k/12.
                let tol = 1e-13 * k as f64;
                assert!(
                    (0..m * n).all(|i| (c[i] - c0[i] - want[i]).abs() < tol),
                    "{m} {n} {k} {at} {bt}"
                );
                f(&mut c, &a, &b, (m, n, k), Mode::Replace);
                assert!(
                    c.iter().zip(&want).all(|(x, y)| (x - y).abs() < tol),
                    "{m} {n} {k}"
                );
            }
        }
    }

    #[test]
    fn indexed_rows_equal_gathered_rows() {
        if !crate::simd::has_avx512() {
            return;
        }
        let (m, n, k, stored) = (37, 40, 100, 90);
        let rows: Vec<usize> = (0..m).map(|i| (i * 53) % stored).collect();
        let (x, w, d) = (data(stored * k, 6), data(n * k, 7), data(m * n, 8));
        let gathered: Vec<f64> = rows
            .iter()
            .flat_map(|&r| x[r * k..(r + 1) * k].to_vec())
            .collect();
        let (mut c1, mut c2) = (vec![0.5; m * n], vec![0.5; m * n]);
        assert!(nt_indexed(&mut c1, (&x, &rows), &w, (m, n, k), Mode::Add));
        nt(&mut c2, &gathered, &w, (m, n, k), Mode::Add);
        assert_eq!(c1, c2);
        let (mut g1, mut g2) = (vec![0.0; n * k], vec![0.0; n * k]);
        assert!(tn_indexed(
            &mut g1,
            &d,
            (&x, &rows),
            (n, k, m),
            Mode::Replace
        ));
        tn(&mut g2, &d, &gathered, (n, k, m), Mode::Replace);
        assert_eq!(g1, g2);
    }

    #[test]
    #[should_panic(expected = "shapes")]
    fn out_of_range_indices_are_refused() {
        if !crate::simd::has_avx512() {
            panic!("shapes (no AVX-512 here: nothing to check)");
        }
        let x = data(10 * 4, 1);
        let mut c = vec![0.0; 2];
        let _ = nt_indexed(&mut c, (&x, &[3, 10]), &x[..4], (2, 1, 4), Mode::Replace);
    }

    #[test]
    fn f32_products_agree_with_f64() {
        let (m, n, k) = (9, 40, 100);
        let (a, b) = (data(m * k, 4), data(n * k, 5));
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        let (mut c, mut c32) = (vec![0.0f64; m * n], vec![0.0f32; m * n]);
        nt(&mut c, &a, &b, (m, n, k), Mode::Replace);
        nt(&mut c32, &a32, &b32, (m, n, k), Mode::Replace);
        assert!(
            c.iter()
                .zip(&c32)
                .all(|(x, y)| (x - f64::from(*y)).abs() < 1e-5)
        );
    }
}
