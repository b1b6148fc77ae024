//! The AVX-512 kernels of the engine's products, one module per element type (`f32x16`,
//! `f64x8`), on row-major slices. All loads and stores are bounds-checked against the shapes
//! on entry, and tails are handled with masked loads and stores.
//!
//! * `nt`: `C (m × n) ⟵ A (m × k) · Bᵀ`, `B` stored `n × k`: blocks of 4 × 4 dot products,
//!   each accumulated in one vector register along `k`, then reduced.
//! * `rows` (`nn` / `tn`): `C (m × n) ⟵ coef · B`, `B` stored `k × n`, where `coef(r, j)` is
//!   `A[r, j]` (`A` stored `m × k`) or `A[j, r]` (`A` stored `k × m`): blocks of 4 rows × 4
//!   vectors of columns, one broadcast coefficient times one row of `B` per step.
//! * `csr_times` / `csc_delta_t`: the sparse first-layer products of [`crate::sparse`].

use std::arch::x86_64::*;

use super::rows::RowMap;
use crate::csr::{COL_BLOCK, SparseRows};

macro_rules! kernels {
    ($modname:ident, $t:ty, $v:ty, $lanes:expr, $mask:ty,
     $loadu:ident, $maskz_loadu:ident, $mask_storeu:ident,
     $fmadd:ident, $add:ident, $set1:ident, $setzero:ident, $reduce:ident, $reduce16:ident) => {
        /// AVX-512 kernels for this element type.
        pub mod $modname {
            use super::*;

            const L: usize = $lanes;

            #[inline(always)]
            fn tail_mask(len: usize) -> $mask {
                ((1u32 << len) - 1) as $mask
            }

            /// `C[i0..i0+R, j0..j0+C] (+)= A[i0.., :] · B[j0.., :]ᵀ`.
            #[inline(always)]
            unsafe fn nt_block<const R: usize, const C: usize>(
                c: &mut [$t],
                (a, arows): (&[$t], RowMap<'_>),
                b: &[$t],
                (n, k): (usize, usize),
                (i0, j0): (usize, usize),
                acc_into: bool,
            ) {
                unsafe {
                    let mut acc = [[$setzero(); C]; R];
                    let full = k - k % L;
                    let ap: [*const $t; R] =
                        std::array::from_fn(|r| a.as_ptr().add(arows.get(i0 + r) * k));
                    let bp: [*const $t; C] = std::array::from_fn(|q| b.as_ptr().add((j0 + q) * k));
                    let mut p = 0;
                    while p < full {
                        let bv: [$v; C] = std::array::from_fn(|q| $loadu(bp[q].add(p)));
                        for r in 0..R {
                            let av = $loadu(ap[r].add(p));
                            for q in 0..C {
                                acc[r][q] = $fmadd(av, bv[q], acc[r][q]);
                            }
                        }
                        p += L;
                    }
                    if full < k {
                        let m = tail_mask(k - full);
                        let bv: [$v; C] = std::array::from_fn(|q| $maskz_loadu(m, bp[q].add(full)));
                        for r in 0..R {
                            let av = $maskz_loadu(m, ap[r].add(full));
                            for q in 0..C {
                                acc[r][q] = $fmadd(av, bv[q], acc[r][q]);
                            }
                        }
                    }
                    let sums: [[$t; C]; R] = if R == 4 && C == 4 {
                        // One transpose-and-add network for all sixteen sums.
                        let flat: [$v; 16] = std::array::from_fn(|e| acc[e / 4 % R][e % 4 % C]);
                        let all = $reduce16(flat);
                        std::array::from_fn(|r| std::array::from_fn(|q| all[4 * r + q]))
                    } else {
                        std::array::from_fn(|r| std::array::from_fn(|q| $reduce(acc[r][q])))
                    };
                    for r in 0..R {
                        for q in 0..C {
                            let s = sums[r][q];
                            let dst = &mut c[(i0 + r) * n + j0 + q];
                            *dst = if acc_into { *dst + s } else { s };
                        }
                    }
                }
            }

            #[target_feature(enable = "avx512f")]
            unsafe fn nt_avx512(
                c: &mut [$t],
                (a, arows): (&[$t], RowMap<'_>),
                b: &[$t],
                (m, n, k): (usize, usize, usize),
                acc_into: bool,
            ) {
                let (m4, n4) = (m - m % 4, n - n % 4);
                unsafe {
                    for i in (0..m4).step_by(4) {
                        for j in (0..n4).step_by(4) {
                            nt_block::<4, 4>(c, (a, arows), b, (n, k), (i, j), acc_into);
                        }
                        for j in n4..n {
                            nt_block::<4, 1>(c, (a, arows), b, (n, k), (i, j), acc_into);
                        }
                    }
                    for i in m4..m {
                        for j in (0..n4).step_by(4) {
                            nt_block::<1, 4>(c, (a, arows), b, (n, k), (i, j), acc_into);
                        }
                        for j in n4..n {
                            nt_block::<1, 1>(c, (a, arows), b, (n, k), (i, j), acc_into);
                        }
                    }
                }
            }

            /// Rows `i0..i0+R` of `C`, columns `col..col+w` (`w ≤ V·L`).
            #[inline(always)]
            unsafe fn rows_block<const R: usize, const V: usize>(
                c: &mut [$t],
                a: &[$t],
                (rs, js): (usize, usize),
                (b, brows): (&[$t], RowMap<'_>),
                (n, j0, j1): (usize, usize, usize),
                (i0, col, w): (usize, usize, usize),
                acc_into: bool,
            ) {
                unsafe {
                    let masks: [$mask; V] =
                        std::array::from_fn(|v| tail_mask(w.saturating_sub(v * L).min(L)));
                    let offs: [usize; V] = std::array::from_fn(|v| (v * L).min(w));
                    let mut acc = [[$setzero(); V]; R];
                    for j in j0..j1 {
                        let row = b.as_ptr().add(brows.get(j) * n + col);
                        let bv: [$v; V] =
                            std::array::from_fn(|v| $maskz_loadu(masks[v], row.add(offs[v])));
                        for r in 0..R {
                            let coef = $set1(*a.get_unchecked((i0 + r) * rs + j * js));
                            for v in 0..V {
                                acc[r][v] = $fmadd(coef, bv[v], acc[r][v]);
                            }
                        }
                    }
                    for r in 0..R {
                        let dst = c.as_mut_ptr().add((i0 + r) * n + col);
                        for v in 0..V {
                            let mut x = acc[r][v];
                            if acc_into {
                                x = $add(x, $maskz_loadu(masks[v], dst.add(offs[v])));
                            }
                            $mask_storeu(dst.add(offs[v]), masks[v], x);
                        }
                    }
                }
            }

            /// All rows of `C` for the column tile `col..col+w` and the `k` range `j0..j1`,
            /// with `V` vectors per tile row.
            #[inline(always)]
            unsafe fn rows_tile<const V: usize>(
                c: &mut [$t],
                a: &[$t],
                strides: (usize, usize),
                (b, brows): (&[$t], RowMap<'_>),
                (m, n): (usize, usize),
                (j0, j1, col, w): (usize, usize, usize, usize),
                acc_into: bool,
            ) {
                let mut i = 0;
                unsafe {
                    while i + 4 <= m {
                        rows_block::<4, V>(
                            c,
                            a,
                            strides,
                            (b, brows),
                            (n, j0, j1),
                            (i, col, w),
                            acc_into,
                        );
                        i += 4;
                    }
                    while i < m {
                        rows_block::<1, V>(
                            c,
                            a,
                            strides,
                            (b, brows),
                            (n, j0, j1),
                            (i, col, w),
                            acc_into,
                        );
                        i += 1;
                    }
                }
            }

            #[target_feature(enable = "avx512f")]
            unsafe fn rows_avx512(
                c: &mut [$t],
                a: &[$t],
                strides: (usize, usize),
                (b, brows): (&[$t], RowMap<'_>),
                (m, n, k): (usize, usize, usize),
                acc_into: bool,
            ) {
                // Blocks of KC rows of B stay in L1 while every row of C passes over them; a
                // narrow C (up to 6 vectors) is one tile, a wide one is cut into 4-vector tiles.
                const KC: usize = 64;
                let mut j0 = 0;
                unsafe {
                    loop {
                        let j1 = (j0 + KC).min(k);
                        let into = acc_into || j0 > 0;
                        let mut col = 0;
                        while col < n {
                            let rest = n - col;
                            let w = if rest <= 6 * L { rest } else { 4 * L };
                            let dims = (m, n);
                            let range = (j0, j1, col, w);
                            match w.div_ceil(L) {
                                1 => rows_tile::<1>(c, a, strides, (b, brows), dims, range, into),
                                2 => rows_tile::<2>(c, a, strides, (b, brows), dims, range, into),
                                3 => rows_tile::<3>(c, a, strides, (b, brows), dims, range, into),
                                4 => rows_tile::<4>(c, a, strides, (b, brows), dims, range, into),
                                5 => rows_tile::<5>(c, a, strides, (b, brows), dims, range, into),
                                _ => rows_tile::<6>(c, a, strides, (b, brows), dims, range, into),
                            }
                            col += w;
                        }
                        if j1 >= k {
                            break;
                        }
                        j0 = j1;
                    }
                }
            }

            /// Vectors `v0..v0+V` of one output row: `crow (+)= Σ_nz x_j · wt[j]`, over the
            /// row's nonzeros in two interleaved accumulator sets.
            #[inline(always)]
            unsafe fn csr_row_block<const V: usize>(
                crow: *mut $t,
                (cols, vals): (&[u32], &[$t]),
                (wt, stride): (*const $t, usize),
                (v0, n): (usize, usize),
                acc_into: bool,
            ) {
                unsafe {
                    let mut a0 = [$setzero(); V];
                    let mut a1 = [$setzero(); V];
                    let pairs = cols.len() / 2;
                    for p in 0..pairs {
                        let (j0, j1) = (*cols.get_unchecked(2 * p), *cols.get_unchecked(2 * p + 1));
                        let x0 = $set1(*vals.get_unchecked(2 * p));
                        let x1 = $set1(*vals.get_unchecked(2 * p + 1));
                        let w0 = wt.add(j0 as usize * stride + v0 * L);
                        let w1 = wt.add(j1 as usize * stride + v0 * L);
                        for v in 0..V {
                            a0[v] = $fmadd(x0, $loadu(w0.add(v * L)), a0[v]);
                            a1[v] = $fmadd(x1, $loadu(w1.add(v * L)), a1[v]);
                        }
                    }
                    if cols.len() % 2 == 1 {
                        let last = cols.len() - 1;
                        let x = $set1(*vals.get_unchecked(last));
                        let w = wt.add(*cols.get_unchecked(last) as usize * stride + v0 * L);
                        for v in 0..V {
                            a0[v] = $fmadd(x, $loadu(w.add(v * L)), a0[v]);
                        }
                    }
                    for v in 0..V {
                        let at = (v0 + v) * L;
                        let mask = tail_mask(n.saturating_sub(at).min(L));
                        let mut sum = $add(a0[v], a1[v]);
                        if acc_into {
                            sum = $add(sum, $maskz_loadu(mask, crow.add(at)));
                        }
                        $mask_storeu(crow.add(at), mask, sum);
                    }
                }
            }

            /// How many column blocks of the sparse rows to visit together, so that their
            /// rows of the transposed weights (`stride` entries each) fit in 32 KiB of L1.
            fn blocks_per_group(stride: usize) -> usize {
                let cols = (32 * 1024 / (stride * std::mem::size_of::<$t>())).max(1);
                (cols / COL_BLOCK).max(1)
            }

            #[target_feature(enable = "avx512f")]
            unsafe fn csr_times_avx512(
                c: &mut [$t],
                (x, rows): (&SparseRows<$t>, &[usize]),
                (wt, stride): (&[$t], usize),
                n: usize,
                acc_into: bool,
            ) {
                let nv = n.div_ceil(L);
                let (nb, group) = (x.n_blocks(), blocks_per_group(stride));
                let w = (wt.as_ptr(), stride);
                unsafe {
                    for b0 in (0..nb).step_by(group) {
                        let blocks = b0..(b0 + group).min(nb);
                        let into = acc_into || b0 > 0;
                        for (i, &r) in rows.iter().enumerate() {
                            let nz = x.row_blocks(r, blocks.clone());
                            let crow = c.as_mut_ptr().add(i * n);
                            let mut v0 = 0;
                            while v0 < nv {
                                let at = (v0, n);
                                match nv - v0 {
                                    1 => csr_row_block::<1>(crow, nz, w, at, into),
                                    2 => csr_row_block::<2>(crow, nz, w, at, into),
                                    3 => csr_row_block::<3>(crow, nz, w, at, into),
                                    _ => csr_row_block::<4>(crow, nz, w, at, into),
                                }
                                v0 += 4;
                            }
                        }
                    }
                }
            }

            /// `C (b × n) (+)= X[rows] · wtᵀ`-style product of the sparse rows with the
            /// transposed weights `wt` (`k` rows of stride `stride`, a multiple of 16, zero
            /// beyond `n`). Panics if the CPU lacks AVX-512 or a shape is wrong.
            pub fn csr_times(
                c: &mut [$t],
                (x, rows): (&SparseRows<$t>, &[usize]),
                (wt, stride): (&[$t], usize),
                n: usize,
                acc_into: bool,
            ) {
                assert!(stride % 16 == 0 && stride >= n, "csr stride");
                assert!(
                    wt.len() >= x.dim() * stride && c.len() >= rows.len() * n,
                    "csr shapes"
                );
                assert!(rows.iter().all(|&r| r < x.n_rows()), "csr rows");
                assert!(
                    crate::simd::isa::has_avx512(),
                    "AVX-512 kernels on a CPU without AVX-512"
                );
                // SAFETY: AVX-512F is present; every column index of `x` is below its `dim`, so
                // every `wt` read is within `dim · stride`; rows and `c` checked above.
                unsafe { csr_times_avx512(c, (x, rows), (wt, stride), n, acc_into) }
            }

            /// Vectors `v0..v0+V` of `gt[j] += Σ x_rj Δ_{r − first}` over one column's
            /// nonzeros, in two interleaved accumulator sets.
            #[inline(always)]
            unsafe fn csc_column_block<const V: usize>(
                g: *mut $t,
                (rows, vals): (&[u32], &[$t]),
                (delta, first): (*const $t, usize),
                (v0, n): (usize, usize),
            ) {
                unsafe {
                    let masks: [$mask; V] =
                        std::array::from_fn(|v| tail_mask(n.saturating_sub((v0 + v) * L).min(L)));
                    let mut a0 = [$setzero(); V];
                    let mut a1 = [$setzero(); V];
                    let pairs = rows.len() / 2;
                    for p in 0..pairs {
                        let r0 = *rows.get_unchecked(2 * p) as usize - first;
                        let r1 = *rows.get_unchecked(2 * p + 1) as usize - first;
                        let x0 = $set1(*vals.get_unchecked(2 * p));
                        let x1 = $set1(*vals.get_unchecked(2 * p + 1));
                        let (d0, d1) = (delta.add(r0 * n + v0 * L), delta.add(r1 * n + v0 * L));
                        for v in 0..V {
                            a0[v] = $fmadd(x0, $maskz_loadu(masks[v], d0.add(v * L)), a0[v]);
                            a1[v] = $fmadd(x1, $maskz_loadu(masks[v], d1.add(v * L)), a1[v]);
                        }
                    }
                    if rows.len() % 2 == 1 {
                        let last = rows.len() - 1;
                        let r = *rows.get_unchecked(last) as usize - first;
                        let x = $set1(*vals.get_unchecked(last));
                        let d = delta.add(r * n + v0 * L);
                        for v in 0..V {
                            a0[v] = $fmadd(x, $maskz_loadu(masks[v], d.add(v * L)), a0[v]);
                        }
                    }
                    for v in 0..V {
                        let at = g.add((v0 + v) * L);
                        let sum = $add($add(a0[v], a1[v]), $loadu(at));
                        $mask_storeu(at, !0, sum);
                    }
                }
            }

            #[target_feature(enable = "avx512f")]
            unsafe fn csc_delta_t_avx512(
                gt: &mut [$t],
                (x, rows): (&SparseRows<$t>, std::ops::Range<usize>),
                delta: &[$t],
                (n, stride): (usize, usize),
            ) {
                let nv = n.div_ceil(L);
                // Groups of rows whose Δ rows fit in 32 KiB of L1.
                let group = (32 * 1024 / (n.max(1) * std::mem::size_of::<$t>())).max(1);
                unsafe {
                    let mut g0 = rows.start;
                    while g0 < rows.end {
                        let g1 = (g0 + group).min(rows.end);
                        let d = (delta.as_ptr(), rows.start);
                        for j in 0..x.dim() {
                            let nz = x.column(j, g0..g1);
                            if nz.0.is_empty() {
                                continue;
                            }
                            let g = gt.as_mut_ptr().add(j * stride);
                            let mut v0 = 0;
                            while v0 < nv {
                                match nv - v0 {
                                    1 => csc_column_block::<1>(g, nz, d, (v0, n)),
                                    2 => csc_column_block::<2>(g, nz, d, (v0, n)),
                                    3 => csc_column_block::<3>(g, nz, d, (v0, n)),
                                    _ => csc_column_block::<4>(g, nz, d, (v0, n)),
                                }
                                v0 += 4;
                            }
                        }
                        g0 = g1;
                    }
                }
            }

            /// `gt[j] += Σ_r x_rj · Δ_{r − rows.start}` for every column `j`, over the
            /// consecutive sparse rows `rows`, `Δ` stored `rows.len() × n`; `gt` has `dim`
            /// rows of stride `stride` (a multiple of 16). Panics as [`nt`] does.
            pub fn csc_delta_t(
                gt: &mut [$t],
                (x, rows): (&SparseRows<$t>, std::ops::Range<usize>),
                delta: &[$t],
                (n, stride): (usize, usize),
            ) {
                assert!(stride % 16 == 0 && stride >= n, "csc stride");
                assert!(rows.end <= x.n_rows() && rows.start <= rows.end, "csc rows");
                assert!(
                    gt.len() >= x.dim() * stride && delta.len() >= rows.len() * n,
                    "csc shapes"
                );
                assert!(
                    crate::simd::isa::has_avx512(),
                    "AVX-512 kernels on a CPU without AVX-512"
                );
                // SAFETY: AVX-512F is present; `column` returns rows within `rows`, so every Δ
                // read is within `rows.len() · n` (masked to `n` per row); every column index
                // is below `dim`, so every `gt` access is within `dim · stride`.
                unsafe { csc_delta_t_avx512(gt, (x, rows), delta, (n, stride)) }
            }

            /// `C (m × n) (+)= A (m × k) · Bᵀ` (`B` stored `n × k`), row `i` of `A` being
            /// stored row `arows(i)`. Panics if the CPU lacks AVX-512 or a shape is wrong.
            pub fn nt(
                c: &mut [$t],
                (a, arows): (&[$t], RowMap<'_>),
                b: &[$t],
                dims: (usize, usize, usize),
                acc_into: bool,
            ) {
                let (m, n, k) = dims;
                let a_ok = k == 0 || arows.check(m, a.len() / k);
                assert!(c.len() >= m * n && a_ok && b.len() >= n * k, "nt shapes");
                assert!(
                    crate::simd::isa::has_avx512(),
                    "AVX-512 kernels on a CPU without AVX-512"
                );
                // SAFETY: AVX-512F is present (asserted) and every access is within the
                // lengths asserted above.
                unsafe { nt_avx512(c, (a, arows), b, dims, acc_into) }
            }

            /// `C (m × n) (+)= coef · B` (`B` stored `k × n`, row `j` of `B` being stored row
            /// `brows(j)`; `coef(r, j) = a[r·rs + j·js]`). Panics as [`nt`] does.
            pub fn rows(
                c: &mut [$t],
                a: &[$t],
                strides: (usize, usize),
                (b, brows): (&[$t], RowMap<'_>),
                dims: (usize, usize, usize),
                acc_into: bool,
            ) {
                let (m, n, k) = dims;
                let (rs, js) = strides;
                let b_ok = n == 0 || brows.check(k, b.len() / n);
                assert!(c.len() >= m * n && b_ok, "rows shapes");
                assert!(
                    m == 0 || k == 0 || a.len() > (m - 1) * rs + (k - 1) * js,
                    "rows coefficient shape"
                );
                assert!(
                    crate::simd::isa::has_avx512(),
                    "AVX-512 kernels on a CPU without AVX-512"
                );
                // SAFETY: as for `nt`.
                unsafe { rows_avx512(c, a, strides, (b, brows), dims, acc_into) }
            }
        }
    };
}

/// The lane sums of sixteen f32 vectors, in order, by a transpose-and-add network (three
/// shuffle levels) instead of sixteen separate horizontal reductions.
#[inline(always)]
unsafe fn reduce16_ps(v: [__m512; 16]) -> [f32; 16] {
    // Within 128-bit lanes: pairs, then quadruples (positions 0..4 hold four vectors' sums).
    macro_rules! pair {
        ($a:expr, $b:expr) => {
            _mm512_add_ps(_mm512_unpacklo_ps($a, $b), _mm512_unpackhi_ps($a, $b))
        };
    }
    macro_rules! quad {
        ($x:expr, $y:expr) => {{
            let (xd, yd) = (_mm512_castps_pd($x), _mm512_castps_pd($y));
            _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(xd, yd)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(xd, yd)),
            )
        }};
    }
    // Across the four 128-bit lanes.
    macro_rules! lanes {
        ($p:expr, $q:expr) => {
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>($p, $q),
                _mm512_shuffle_f32x4::<0b11_01_11_01>($p, $q),
            )
        };
    }
    unsafe {
        let u0 = quad!(pair!(v[0], v[1]), pair!(v[2], v[3]));
        let u1 = quad!(pair!(v[4], v[5]), pair!(v[6], v[7]));
        let u2 = quad!(pair!(v[8], v[9]), pair!(v[10], v[11]));
        let u3 = quad!(pair!(v[12], v[13]), pair!(v[14], v[15]));
        let total = lanes!(lanes!(u0, u1), lanes!(u2, u3));
        let mut out = [0.0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), total);
        out
    }
}

/// The lane sums of sixteen f64 vectors, in order (two halves of eight).
#[inline(always)]
unsafe fn reduce16_pd(v: [__m512d; 16]) -> [f64; 16] {
    macro_rules! pair {
        ($a:expr, $b:expr) => {
            _mm512_add_pd(_mm512_unpacklo_pd($a, $b), _mm512_unpackhi_pd($a, $b))
        };
    }
    macro_rules! lanes {
        ($p:expr, $q:expr) => {
            _mm512_add_pd(
                _mm512_shuffle_f64x2::<0b10_00_10_00>($p, $q),
                _mm512_shuffle_f64x2::<0b11_01_11_01>($p, $q),
            )
        };
    }
    unsafe {
        let mut out = [0.0f64; 16];
        for h in 0..2 {
            let b = 8 * h;
            let (p0, p1) = (pair!(v[b], v[b + 1]), pair!(v[b + 2], v[b + 3]));
            let (p2, p3) = (pair!(v[b + 4], v[b + 5]), pair!(v[b + 6], v[b + 7]));
            let total = lanes!(lanes!(p0, p1), lanes!(p2, p3));
            _mm512_storeu_pd(out.as_mut_ptr().add(b), total);
        }
        out
    }
}

kernels!(
    f32x16,
    f32,
    __m512,
    16,
    u16,
    _mm512_loadu_ps,
    _mm512_maskz_loadu_ps,
    _mm512_mask_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_set1_ps,
    _mm512_setzero_ps,
    _mm512_reduce_add_ps,
    reduce16_ps
);
kernels!(
    f64x8,
    f64,
    __m512d,
    8,
    u8,
    _mm512_loadu_pd,
    _mm512_maskz_loadu_pd,
    _mm512_mask_storeu_pd,
    _mm512_fmadd_pd,
    _mm512_add_pd,
    _mm512_set1_pd,
    _mm512_setzero_pd,
    _mm512_reduce_add_pd,
    reduce16_pd
);
