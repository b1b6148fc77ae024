//! The function a ReLU network computes on all 128 inputs of {0,1}^7, packed into a `u128`.
//!
//! Activations are stored transposed, one row of 128 inputs per unit, so that the products
//! are `(units × fan_in) · (fan_in × 128)` with the 128 inputs along the vector lanes. The
//! arithmetic is f32 with a fixed order of operations, the same in the AVX-512 kernels and in
//! the portable code (so both give the same bits):
//!
//! * **First layer**, unit `u` with weights `w₀…w₆` and bias `b`: input `i` has bits
//!   `xⱼ = (i >> (6 − j)) & 1`. Its pre-activation is `hi + lo`, where
//!   `hi = ((b ⊕ x₀w₀) ⊕ x₁w₁) ⊕ x₂w₂` and `lo = (((0 ⊕ x₃w₃) ⊕ x₄w₄) ⊕ x₅w₅) ⊕ x₆w₆`, `⊕ xw`
//!   meaning "add `w` if `x = 1`". The three high bits are constant over a vector of sixteen
//!   consecutive inputs, so the layer costs one add per vector instead of a 7-term product.
//! * **Other layers**: `acc = b_v`, then `acc ← fma(W[v, k], h[k, i], acc)` for the inputs `k`
//!   in ascending order, skipping units `k` that are zero on every input (dead ReLUs, about
//!   7% in the paper's net: their terms add exactly zero), then `max(acc, 0)`.
//! * **Output**: `z = b`, then `z ← fma(w_v, h[v, i], z)` for `v` ascending, fused into the
//!   last hidden layer's product so that layer is never stored.
//! * **Packing**: bit `i` of the result is `z_i > 0` (class 1 iff the logit is strictly
//!   positive, as in the golden files).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use basin_nn::{FcnSpec, Layer};

use crate::error::BooleanError;

/// Input bits of the Boolean cube.
pub const INPUT_BITS: usize = 7;
/// Inputs of the cube, 2⁷.
pub const N_INPUTS: usize = 1 << INPUT_BITS;

/// The layout of a ReLU network on the cube and its evaluation.
#[derive(Debug, Clone)]
pub struct CubeNet {
    layers: Vec<Layer>,
    n_params: usize,
    max_width: usize,
}

/// Per-thread buffers of [`CubeNet::function`]: two activation tables and their live units.
#[derive(Debug, Clone)]
pub struct Scratch {
    h: [Vec<f32>; 2],
    live: [Vec<u32>; 2],
    z: Vec<f32>,
}

impl CubeNet {
    /// The network of `spec`, which must have 7 inputs, at least one hidden layer and ReLU.
    pub fn new(spec: &FcnSpec) -> Result<Self, BooleanError> {
        spec.validate().map_err(BooleanError::InvalidNetwork)?;
        if spec.input_dim != INPUT_BITS {
            return Err(BooleanError::InputDim {
                input_dim: spec.input_dim,
            });
        }
        if spec.hidden.is_empty() {
            return Err(BooleanError::NoHiddenLayer);
        }
        if spec.activation != basin_nn::Activation::Relu {
            return Err(BooleanError::NotRelu {
                activation: spec.activation,
            });
        }
        Ok(Self {
            layers: spec.layers(),
            n_params: spec.n_params(),
            max_width: spec.hidden.iter().copied().max().unwrap_or(1),
        })
    }

    /// The number of parameters (the flat layout of `basin-nn`: per layer the weight
    /// `[out, in]` row-major, then the bias).
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// The layers with their offsets in the flat parameter vector.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Buffers for [`CubeNet::function`].
    pub fn scratch(&self) -> Scratch {
        let rows = self.max_width * N_INPUTS;
        Scratch {
            h: [vec![0.0; rows], vec![0.0; rows]],
            live: [
                Vec::with_capacity(self.max_width),
                Vec::with_capacity(self.max_width),
            ],
            z: vec![0.0; N_INPUTS],
        }
    }

    /// The function of the network with parameters `theta`: bit `i` is 1 iff its logit on
    /// input `i` is > 0. AVX-512 where the CPU has it; the same bits as
    /// [`CubeNet::function_portable`] either way.
    pub fn function(&self, theta: &[f32], scratch: &mut Scratch) -> u128 {
        self.check(theta);
        #[cfg(target_arch = "x86_64")]
        if basin_nn::simd::has_avx512() {
            // SAFETY: AVX-512F is present; the shapes were checked.
            return unsafe { self.function_avx512(theta, scratch) };
        }
        self.function_portable(theta, scratch)
    }

    /// [`CubeNet::function`] in plain Rust (the reference of the AVX-512 kernels).
    pub fn function_portable(&self, theta: &[f32], scratch: &mut Scratch) -> u128 {
        self.check(theta);
        #[cfg(target_arch = "x86_64")]
        if basin_nn::simd::Isa::detect().fma {
            // SAFETY: FMA is present; the same code, compiled to use it for mul_add.
            return unsafe { self.portable_fma(theta, scratch) };
        }
        self.portable(theta, scratch)
    }

    /// The hidden layers after the first and before the last, whose outputs are stored
    /// (the last hidden layer is fused with the output).
    fn middle_layers(&self) -> &[Layer] {
        let n_hidden = self.layers.len() - 1;
        if n_hidden >= 2 {
            &self.layers[1..n_hidden - 1]
        } else {
            &[]
        }
    }

    fn check(&self, theta: &[f32]) {
        assert_eq!(theta.len(), self.n_params, "parameter vector length");
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "fma")]
    fn portable_fma(&self, theta: &[f32], scratch: &mut Scratch) -> u128 {
        self.portable(theta, scratch)
    }

    #[inline(always)]
    fn portable(&self, theta: &[f32], s: &mut Scratch) -> u128 {
        let [h0, h1] = &mut s.h;
        let [live0, live1] = &mut s.live;
        let (mut h_in, mut h_out) = (h0, h1);
        let (mut live_in, mut live_out) = (live0, live1);
        first_layer_portable(theta, &self.layers[0], h_in, live_in);
        let n_hidden = self.layers.len() - 1;
        for layer in self.middle_layers() {
            hidden_layer_portable(theta, layer, h_in, live_in, h_out, live_out);
            std::mem::swap(&mut h_in, &mut h_out);
            std::mem::swap(&mut live_in, &mut live_out);
        }
        let out = &self.layers[n_hidden];
        let z = &mut s.z;
        z.fill(theta[out.b]);
        if n_hidden == 1 {
            for v in 0..out.fan_in {
                let w = theta[out.w + v];
                for (zi, &h) in z.iter_mut().zip(&h_in[v * N_INPUTS..(v + 1) * N_INPUTS]) {
                    *zi = w.mul_add(h, *zi);
                }
            }
        } else {
            let last = &self.layers[n_hidden - 1];
            let mut acc = [0.0f32; N_INPUTS];
            for v in 0..last.fan_out {
                acc.fill(theta[last.b + v]);
                let row = &theta[last.w + v * last.fan_in..][..last.fan_in];
                for &k in live_in.iter() {
                    let w = row[k as usize];
                    let hk = &h_in[k as usize * N_INPUTS..][..N_INPUTS];
                    for (a, &h) in acc.iter_mut().zip(hk) {
                        *a = w.mul_add(h, *a);
                    }
                }
                let w_out = theta[out.w + v];
                for (zi, &a) in z.iter_mut().zip(&acc) {
                    *zi = w_out.mul_add(a.max(0.0), *zi);
                }
            }
        }
        pack(z)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn function_avx512(&self, theta: &[f32], s: &mut Scratch) -> u128 {
        let [h0, h1] = &mut s.h;
        let [live0, live1] = &mut s.live;
        let (mut h_in, mut h_out) = (h0, h1);
        let (mut live_in, mut live_out) = (live0, live1);
        first_layer_avx512(theta, &self.layers[0], h_in, live_in);
        let n_hidden = self.layers.len() - 1;
        for layer in self.middle_layers() {
            // SAFETY: AVX-512F is present; the buffers hold max_width rows of 128.
            unsafe {
                product_avx512(
                    theta,
                    layer,
                    h_in,
                    live_in,
                    Epilogue::Store(h_out, live_out),
                )
            };
            std::mem::swap(&mut h_in, &mut h_out);
            std::mem::swap(&mut live_in, &mut live_out);
        }
        let out = &self.layers[n_hidden];
        let z = &mut s.z;
        z.fill(theta[out.b]);
        if n_hidden == 1 {
            for v in 0..out.fan_in {
                let w = _mm512_set1_ps(theta[out.w + v]);
                for c in 0..N_INPUTS / 16 {
                    // SAFETY: row v of h_in and z hold 128 floats.
                    unsafe {
                        let h = _mm512_loadu_ps(h_in.as_ptr().add(v * N_INPUTS + 16 * c));
                        let zp = z.as_mut_ptr().add(16 * c);
                        _mm512_storeu_ps(zp, _mm512_fmadd_ps(w, h, _mm512_loadu_ps(zp)));
                    }
                }
            }
        } else {
            let w_out = &theta[out.w..out.w + out.fan_in];
            // SAFETY: as above.
            unsafe {
                product_avx512(
                    theta,
                    &self.layers[n_hidden - 1],
                    h_in,
                    live_in,
                    Epilogue::Output(z, w_out),
                )
            };
        }
        let mut bits = 0u128;
        for c in 0..N_INPUTS / 16 {
            // SAFETY: z holds 128 floats.
            let zc = unsafe { _mm512_loadu_ps(z.as_ptr().add(16 * c)) };
            let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(zc, _mm512_setzero_ps());
            bits |= u128::from(m) << (16 * c);
        }
        bits
    }
}

/// Bit `i` = `z[i] > 0`.
fn pack(z: &[f32]) -> u128 {
    z.iter()
        .enumerate()
        .fold(0u128, |acc, (i, &zi)| acc | (u128::from(zi > 0.0) << i))
}

/// The high-bit partial sums of one first-layer unit, one per vector of sixteen inputs:
/// `((b ⊕ x₀w₀) ⊕ x₁w₁) ⊕ x₂w₂` for the 8 values of `(x₀, x₁, x₂)` = the block index.
#[inline(always)]
fn high_sums(w: &[f32], b: f32) -> [f32; 8] {
    std::array::from_fn(|blk| {
        let mut s = b;
        for (j, &wj) in w[..3].iter().enumerate() {
            if (blk >> (2 - j)) & 1 == 1 {
                s += wj;
            }
        }
        s
    })
}

/// The low-bit partial sums, one per lane: `(((0 ⊕ x₃w₃) ⊕ x₄w₄) ⊕ x₅w₅) ⊕ x₆w₆`.
#[inline(always)]
fn low_sums(w: &[f32]) -> [f32; 16] {
    std::array::from_fn(|lane| {
        let mut s = 0.0f32;
        for (j, &wj) in w.iter().enumerate().skip(3) {
            if (lane >> (6 - j)) & 1 == 1 {
                s += wj;
            }
        }
        s
    })
}

#[inline(always)]
fn first_layer_portable(theta: &[f32], layer: &Layer, h: &mut [f32], live: &mut Vec<u32>) {
    live.clear();
    for u in 0..layer.fan_out {
        let w = &theta[layer.w + u * INPUT_BITS..][..INPUT_BITS];
        let (hi, lo) = (high_sums(w, theta[layer.b + u]), low_sums(w));
        let row = &mut h[u * N_INPUTS..][..N_INPUTS];
        let mut any = false;
        for (i, out) in row.iter_mut().enumerate() {
            let pre = hi[i >> 4] + lo[i & 15];
            any |= pre > 0.0;
            *out = pre.max(0.0);
        }
        if any {
            live.push(u as u32);
        }
    }
}

#[inline(always)]
fn hidden_layer_portable(
    theta: &[f32],
    layer: &Layer,
    h_in: &[f32],
    live_in: &[u32],
    h_out: &mut [f32],
    live_out: &mut Vec<u32>,
) {
    live_out.clear();
    for v in 0..layer.fan_out {
        let row = &theta[layer.w + v * layer.fan_in..][..layer.fan_in];
        let out = &mut h_out[v * N_INPUTS..][..N_INPUTS];
        out.fill(theta[layer.b + v]);
        for &k in live_in {
            let w = row[k as usize];
            for (a, &h) in out
                .iter_mut()
                .zip(&h_in[k as usize * N_INPUTS..][..N_INPUTS])
            {
                *a = w.mul_add(h, *a);
            }
        }
        let mut any = false;
        for a in out.iter_mut() {
            any |= *a > 0.0;
            *a = a.max(0.0);
        }
        if any {
            live_out.push(v as u32);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn first_layer_avx512(theta: &[f32], layer: &Layer, h: &mut [f32], live: &mut Vec<u32>) {
    // Lanes whose input has bit j set, for the four low bits j = 3..6.
    let lane_masks: [u16; 4] = std::array::from_fn(|q| {
        let j = 3 + q;
        (0..16u16)
            .filter(|lane| (lane >> (6 - j)) & 1 == 1)
            .fold(0u16, |m, lane| m | (1 << lane))
    });
    live.clear();
    let zero = _mm512_setzero_ps();
    for u in 0..layer.fan_out {
        let w = &theta[layer.w + u * INPUT_BITS..][..INPUT_BITS];
        let hi = high_sums(w, theta[layer.b + u]);
        let mut lo = zero;
        for (q, &m) in lane_masks.iter().enumerate() {
            lo = _mm512_mask_add_ps(lo, m, lo, _mm512_set1_ps(w[3 + q]));
        }
        let mut any = 0u16;
        let row = &mut h[u * N_INPUTS..][..N_INPUTS];
        for (blk, &s) in hi.iter().enumerate() {
            let pre = _mm512_add_ps(_mm512_set1_ps(s), lo);
            any |= _mm512_cmp_ps_mask::<_CMP_GT_OQ>(pre, zero);
            // SAFETY: the row holds 128 floats; block blk is 16blk..16blk+16.
            unsafe { _mm512_storeu_ps(row.as_mut_ptr().add(16 * blk), _mm512_max_ps(pre, zero)) };
        }
        if any != 0 {
            live.push(u as u32);
        }
    }
}

/// What happens to a layer's pre-activations.
#[cfg(target_arch = "x86_64")]
enum Epilogue<'a> {
    /// Store `max(acc, 0)` and the list of live units.
    Store(&'a mut [f32], &'a mut Vec<u32>),
    /// Accumulate `fma(w_out[v], max(acc, 0), z)` into the logits.
    Output(&'a mut [f32], &'a [f32]),
}

/// Rows per register tile, and 16-lane vectors per tile (half of the 128 inputs).
#[cfg(target_arch = "x86_64")]
const TILE_ROWS: usize = 6;
#[cfg(target_arch = "x86_64")]
const TILE_VECS: usize = 4;

/// `pre = b + W · h_in` over the live inputs, in tiles of rows × 64 inputs, then the epilogue.
///
/// # Safety
/// AVX-512F must be present; `h_in` holds `fan_in` rows of 128, the epilogue's buffers
/// `fan_out` rows of 128 (or 128 logits and `fan_out` output weights).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn product_avx512(
    theta: &[f32],
    layer: &Layer,
    h_in: &[f32],
    live_in: &[u32],
    mut epilogue: Epilogue<'_>,
) {
    let fan_out = layer.fan_out;
    let mut any = [0u16; 64];
    let mut any_big = if fan_out > any.len() {
        vec![0u16; fan_out]
    } else {
        Vec::new()
    };
    let any_flags: &mut [u16] = if fan_out > any.len() {
        &mut any_big
    } else {
        &mut any[..fan_out]
    };
    for half in 0..N_INPUTS / (16 * TILE_VECS) {
        let c0 = half * 16 * TILE_VECS;
        let mut v0 = 0;
        while v0 < fan_out {
            let rows = (fan_out - v0).min(TILE_ROWS);
            let t = Tile {
                theta,
                layer,
                h_in,
                live_in,
                v0,
                c0,
            };
            // SAFETY: forwarded from the caller.
            unsafe {
                match rows {
                    6 => t.run::<6>(&mut epilogue, any_flags),
                    5 => t.run::<5>(&mut epilogue, any_flags),
                    4 => t.run::<4>(&mut epilogue, any_flags),
                    3 => t.run::<3>(&mut epilogue, any_flags),
                    2 => t.run::<2>(&mut epilogue, any_flags),
                    _ => t.run::<1>(&mut epilogue, any_flags),
                }
            }
            v0 += rows;
        }
    }
    if let Epilogue::Store(_, live_out) = epilogue {
        live_out.clear();
        live_out.extend((0..fan_out as u32).filter(|&v| any_flags[v as usize] != 0));
    }
}

/// One register tile of a layer's product: rows `v0..v0+R`, inputs `c0..c0+64`.
#[cfg(target_arch = "x86_64")]
struct Tile<'a> {
    theta: &'a [f32],
    layer: &'a Layer,
    h_in: &'a [f32],
    live_in: &'a [u32],
    v0: usize,
    c0: usize,
}

#[cfg(target_arch = "x86_64")]
impl Tile<'_> {
    /// # Safety
    /// As [`product_avx512`]; `v0 + R ≤ fan_out`.
    #[inline(always)]
    unsafe fn run<const R: usize>(&self, epilogue: &mut Epilogue<'_>, any: &mut [u16]) {
        // SAFETY (whole body): inlined into `product_avx512`, which has AVX-512F. Every k in
        // live_in is < fan_in, every row v0 + r < fan_out, so the weight reads stay in the
        // layer's weight; h_in, h_out and z rows hold 128 floats and c0 + 64 <= 128.
        unsafe {
            let layer = self.layer;
            let wp = self.theta[layer.w..layer.w + layer.fan_in * layer.fan_out].as_ptr();
            let hp = self.h_in.as_ptr();
            let mut acc = [[_mm512_setzero_ps(); TILE_VECS]; R];
            for (r, row) in acc.iter_mut().enumerate() {
                *row = [_mm512_set1_ps(self.theta[layer.b + self.v0 + r]); TILE_VECS];
            }
            for &k in self.live_in {
                let k = k as usize;
                let hk = hp.add(k * N_INPUTS + self.c0);
                let b: [__m512; TILE_VECS] =
                    std::array::from_fn(|c| _mm512_loadu_ps(hk.add(16 * c)));
                for (r, row) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*wp.add((self.v0 + r) * layer.fan_in + k));
                    for (cell, &bc) in row.iter_mut().zip(&b) {
                        *cell = _mm512_fmadd_ps(a, bc, *cell);
                    }
                }
            }
            let zero = _mm512_setzero_ps();
            match epilogue {
                Epilogue::Store(h_out, _) => {
                    for (r, row) in acc.iter().enumerate() {
                        let v = self.v0 + r;
                        let out = h_out.as_mut_ptr().add(v * N_INPUTS + self.c0);
                        for (c, &cell) in row.iter().enumerate() {
                            any[v] |= _mm512_cmp_ps_mask::<_CMP_GT_OQ>(cell, zero);
                            _mm512_storeu_ps(out.add(16 * c), _mm512_max_ps(cell, zero));
                        }
                    }
                }
                Epilogue::Output(z, w_out) => {
                    let zp = z.as_mut_ptr().add(self.c0);
                    let mut zs: [__m512; TILE_VECS] =
                        std::array::from_fn(|c| _mm512_loadu_ps(zp.add(16 * c)));
                    for (r, row) in acc.iter().enumerate() {
                        let wo = _mm512_set1_ps(w_out[self.v0 + r]);
                        for (zc, &cell) in zs.iter_mut().zip(row) {
                            *zc = _mm512_fmadd_ps(wo, _mm512_max_ps(cell, zero), *zc);
                        }
                    }
                    for (c, zc) in zs.iter().enumerate() {
                        _mm512_storeu_ps(zp.add(16 * c), *zc);
                    }
                }
            }
        }
    }
}
