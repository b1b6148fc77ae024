//! The convolution's three products, on activations stored channel-major `[C, N, H, W]` (so
//! that a conv over the whole batch is one matrix product `[C_out, K] · [K, N·H·W]`):
//! the forward `y = W · unfold(x)`, the weight gradient `∇W += dy · unfold(x)ᵀ` and the input
//! gradient `dx += fold(Wᵀ · dy)`.
//!
//! `unfold` (im2col) writes the `K = C_in·k·k` shifted copies of the input as the rows of a
//! matrix; `fold` (col2im) is its adjoint, adding each entry back where it came from. A 1×1
//! conv with stride 1 and no padding reads its input as it is. Images are unfolded a group at
//! a time, so that the scratch matrix stays below [`UNFOLD_LIMIT`] values.

use basin_nn::Real;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::graph::{Conv, Shape};

/// The most values the unfolded input of one group of images may hold.
pub const UNFOLD_LIMIT: usize = 1 << 22;

/// The number of images unfolded at once for a conv with `k_rows` unfolded rows and `out`
/// output positions per image.
pub fn group_size(k_rows: usize, out: usize, nb: usize) -> usize {
    (UNFOLD_LIMIT / (k_rows * out).max(1)).clamp(1, nb.max(1))
}

/// The scratch length [`Products`] needs for `conv` on input `s` with batches of `nb`.
pub fn scratch_len(conv: &Conv, s: Shape, nb: usize) -> usize {
    if conv.is_pointwise() {
        return 0;
    }
    let out = conv.out_shape(s).spatial();
    conv.fan_in() * out * group_size(conv.fan_in(), out, nb)
}

/// A row-major `rows × cols` view.
fn view<T: Real>(s: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_row_major_slice(&s[..rows * cols], rows, cols)
}

/// A row-major `rows × cols` mutable view.
fn view_mut<T: Real>(s: &mut [T], rows: usize, cols: usize) -> MatMut<'_, T> {
    MatMut::from_row_major_slice_mut(&mut s[..rows * cols], rows, cols)
}

/// One conv's geometry on one batch, with the scratch it unfolds into.
pub struct Products<'a> {
    /// The conv.
    pub conv: &'a Conv,
    /// The input shape per example.
    pub input: Shape,
    /// Examples in the batch.
    pub nb: usize,
    /// The threads of the matrix products.
    pub par: Par,
}

impl Products<'_> {
    fn out(&self) -> Shape {
        self.conv.out_shape(self.input)
    }

    /// The images `n0..n0 + g` of `x`, unfolded into `col` (`K × g·HoWo`), or `x`'s own columns
    /// for a pointwise conv.
    fn unfolded<'c, T: Real>(
        &self,
        x: &'c [T],
        col: &'c mut [T],
        n0: usize,
        g: usize,
    ) -> MatRef<'c, T> {
        let hw = self.input.spatial();
        if self.conv.is_pointwise() {
            return view(x, self.conv.cin, self.nb * hw).subcols(n0 * hw, g * hw);
        }
        unfold(self.conv, self.input, self.nb, x, n0, g, col);
        view(col, self.conv.fan_in(), g * self.out().spatial())
    }

    fn groups(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let out = self.out().spatial();
        let g = if self.conv.is_pointwise() {
            self.nb
        } else {
            group_size(self.conv.fan_in(), out, self.nb)
        };
        let nb = self.nb;
        (0..nb).step_by(g).map(move |n0| (n0, g.min(nb - n0)))
    }

    /// `y (=|+=) w · unfold(x)`, then `+ b` per channel when `bias` is given.
    pub fn forward<T: Real>(
        &self,
        w: &[T],
        bias: Option<&[T]>,
        x: &[T],
        y: &mut [T],
        col: &mut [T],
        accum: Accum,
    ) {
        let (cout, k) = (self.conv.cout, self.conv.fan_in());
        let out = self.out().spatial();
        let m = self.nb * out;
        let wv = view(w, cout, k);
        for (n0, g) in self.groups() {
            let xcol = self.unfolded(x, col, n0, g);
            let dst = view_mut(y, cout, m).subcols_mut(n0 * out, g * out);
            matmul(dst, accum, wv, xcol, T::ONE, self.par);
        }
        if let Some(b) = bias {
            for (row, &bc) in y[..cout * m].chunks_exact_mut(m).zip(b) {
                row.iter_mut().for_each(|v| *v += bc);
            }
        }
    }

    /// `dw += dy · unfold(x)ᵀ`, and `db += Σ dy` per channel when `db` is given.
    pub fn weight_grad<T: Real>(
        &self,
        dy: &[T],
        x: &[T],
        dw: &mut [T],
        db: Option<&mut [T]>,
        col: &mut [T],
    ) {
        let (cout, k) = (self.conv.cout, self.conv.fan_in());
        let out = self.out().spatial();
        let m = self.nb * out;
        let dyv = view(dy, cout, m);
        for (n0, g) in self.groups() {
            let xcol = self.unfolded(x, col, n0, g);
            let dst = view_mut(dw, cout, k);
            matmul(
                dst,
                Accum::Add,
                dyv.subcols(n0 * out, g * out),
                xcol.transpose(),
                T::ONE,
                self.par,
            );
        }
        if let Some(db) = db {
            for (row, d) in dy[..cout * m].chunks_exact(m).zip(db) {
                *d += row.iter().copied().sum::<T>();
            }
        }
    }

    /// `dx += fold(wᵀ · dy)`.
    pub fn input_grad<T: Real>(&self, w: &[T], dy: &[T], dx: &mut [T], col: &mut [T]) {
        let (cout, k) = (self.conv.cout, self.conv.fan_in());
        let out = self.out().spatial();
        let m = self.nb * out;
        let wt = view(w, cout, k).transpose();
        let dyv = view(dy, cout, m);
        let hw = self.input.spatial();
        for (n0, g) in self.groups() {
            let src = dyv.subcols(n0 * out, g * out);
            if self.conv.is_pointwise() {
                let dst = view_mut(dx, k, self.nb * hw).subcols_mut(n0 * hw, g * hw);
                matmul(dst, Accum::Add, wt, src, T::ONE, self.par);
            } else {
                matmul(
                    view_mut(col, k, g * out),
                    Accum::Replace,
                    wt,
                    src,
                    T::ONE,
                    self.par,
                );
                fold(self.conv, self.input, self.nb, col, n0, g, dx);
            }
        }
    }
}

/// The range of output columns `ox` whose input column `ox·s + kj − p` lies in `0..w`.
#[inline]
fn valid_range(out_w: usize, w: usize, s: usize, kj: usize, p: usize) -> (usize, usize) {
    let lo = if kj >= p { 0 } else { (p - kj).div_ceil(s) };
    let hi = if w + p > kj {
        ((w + p - kj - 1) / s + 1).min(out_w)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Writes the unfolded images `n0..n0 + g` of `x` (`[C, N, H, W]`) into `col`
/// (`[C·k·k, g·Ho·Wo]`).
fn unfold<T: Real>(conv: &Conv, s: Shape, nb: usize, x: &[T], n0: usize, g: usize, col: &mut [T]) {
    let o = conv.out_shape(s);
    let (k, st, p) = (conv.k, conv.stride, conv.pad);
    let row_len = g * o.spatial();
    for ci in 0..conv.cin {
        for ki in 0..k {
            for kj in 0..k {
                let r = (ci * k + ki) * k + kj;
                let row = &mut col[r * row_len..(r + 1) * row_len];
                let (lo, hi) = valid_range(o.w, s.w, st, kj, p);
                for nn in 0..g {
                    let img = &x[(ci * nb + n0 + nn) * s.spatial()..][..s.spatial()];
                    for oy in 0..o.h {
                        let dst = &mut row[(nn * o.h + oy) * o.w..][..o.w];
                        let iy = (oy * st + ki).wrapping_sub(p);
                        if iy >= s.h {
                            dst.fill(T::ZERO);
                            continue;
                        }
                        let src = &img[iy * s.w..][..s.w];
                        dst[..lo].fill(T::ZERO);
                        dst[hi..].fill(T::ZERO);
                        if st == 1 {
                            let start = lo + kj - p;
                            dst[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                        } else {
                            for ox in lo..hi {
                                dst[ox] = src[ox * st + kj - p];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`unfold`]: adds each entry of `col` into `dx` where `unfold` read it.
fn fold<T: Real>(conv: &Conv, s: Shape, nb: usize, col: &[T], n0: usize, g: usize, dx: &mut [T]) {
    let o = conv.out_shape(s);
    let (k, st, p) = (conv.k, conv.stride, conv.pad);
    let row_len = g * o.spatial();
    for ci in 0..conv.cin {
        for ki in 0..k {
            for kj in 0..k {
                let r = (ci * k + ki) * k + kj;
                let row = &col[r * row_len..(r + 1) * row_len];
                let (lo, hi) = valid_range(o.w, s.w, st, kj, p);
                for nn in 0..g {
                    let img = &mut dx[(ci * nb + n0 + nn) * s.spatial()..][..s.spatial()];
                    for oy in 0..o.h {
                        let iy = (oy * st + ki).wrapping_sub(p);
                        if iy >= s.h {
                            continue;
                        }
                        let src = &row[(nn * o.h + oy) * o.w..][..o.w];
                        let dst = &mut img[iy * s.w..][..s.w];
                        if st == 1 {
                            let start = lo + kj - p;
                            for (d, v) in dst[start..start + hi - lo].iter_mut().zip(&src[lo..hi]) {
                                *d += *v;
                            }
                        } else {
                            for ox in lo..hi {
                                dst[ox * st + kj - p] += src[ox];
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct definition of the conv on `[C, N, H, W]`.
    fn direct(conv: &Conv, s: Shape, nb: usize, w: &[f64], x: &[f64]) -> Vec<f64> {
        let o = conv.out_shape(s);
        let mut y = vec![0.0; conv.cout * nb * o.spatial()];
        for co in 0..conv.cout {
            for n in 0..nb {
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let mut acc = 0.0;
                        for ci in 0..conv.cin {
                            for ki in 0..conv.k {
                                for kj in 0..conv.k {
                                    let iy = (oy * conv.stride + ki) as isize - conv.pad as isize;
                                    let ix = (ox * conv.stride + kj) as isize - conv.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((ci * nb + n) * s.h + iy as usize) * s.w + ix as usize];
                                    acc +=
                                        w[((co * conv.cin + ci) * conv.k + ki) * conv.k + kj] * xv;
                                }
                            }
                        }
                        y[((co * nb + n) * o.h + oy) * o.w + ox] = acc;
                    }
                }
            }
        }
        y
    }

    fn pseudo(n: usize, salt: f64) -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 + salt) * 0.7548776662).fract() - 0.5)
            .collect()
    }

    #[test]
    fn products_match_the_definition_and_are_adjoint() {
        for (k, stride, pad, h, w) in [
            (3, 1, 1, 5, 6),
            (3, 2, 1, 7, 6),
            (1, 2, 0, 6, 5),
            (1, 1, 0, 4, 4),
            (3, 1, 0, 5, 5),
        ] {
            let conv = Conv {
                cin: 3,
                cout: 4,
                k,
                stride,
                pad,
                w: 0,
                b: None,
            };
            let s = Shape { c: 3, h, w };
            let nb = 3;
            let o = conv.out_shape(s);
            let wt = pseudo(conv.cout * conv.fan_in(), 0.1);
            let x = pseudo(s.len() * nb, 0.3);
            let mut col = vec![0.0; scratch_len(&conv, s, nb)];
            let prod = Products {
                conv: &conv,
                input: s,
                nb,
                par: Par::Seq,
            };
            let mut y = vec![0.0; o.len() * nb];
            prod.forward(&wt, None, &x, &mut y, &mut col, Accum::Replace);
            let want = direct(&conv, s, nb, &wt, &x);
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{k} {stride} {pad}: {a} {b}");
            }
            // ⟨dy, W·unfold(x)⟩ = ⟨fold(Wᵀ dy), x⟩ = ⟨dy·unfold(x)ᵀ, W⟩.
            let dy = pseudo(o.len() * nb, 0.9);
            let lhs: f64 = dy.iter().zip(&y).map(|(a, b)| a * b).sum();
            let mut dx = vec![0.0; x.len()];
            prod.input_grad(&wt, &dy, &mut dx, &mut col);
            let via_x: f64 = dx.iter().zip(&x).map(|(a, b)| a * b).sum();
            let mut dw = vec![0.0; wt.len()];
            prod.weight_grad(&dy, &x, &mut dw, None, &mut col);
            let via_w: f64 = dw.iter().zip(&wt).map(|(a, b)| a * b).sum();
            assert!(
                (lhs - via_x).abs() < 1e-12 * lhs.abs().max(1.0),
                "{lhs} {via_x}"
            );
            assert!(
                (lhs - via_w).abs() < 1e-12 * lhs.abs().max(1.0),
                "{lhs} {via_w}"
            );
        }
    }
}
