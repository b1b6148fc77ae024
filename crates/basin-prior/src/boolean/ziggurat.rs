//! Standard normal draws from 32-bit words by the ziggurat method (Marsaglia & Tsang 2000,
//! "The ziggurat method for generating random variables", J. Stat. Softw. 5(8)), with the
//! 256-layer tables of Doornik's ZIGNOR that `rand_distr` also uses (R = 3.6541528853610088,
//! layer area V = 0.00492867323399).
//!
//! One word gives one draw on the fast path: its low 8 bits choose the layer `i`, its high 24
//! bits (signed) an odd multiple of 2⁻²⁴, `u ∈ (−1, 1)`. If `|u| < x[i+1]/x[i]` the point
//! lies inside the layer's inner rectangle and the draw is `u · x[i]`, in f32. That happens
//! for about 99% of words, and sixteen at a time on AVX-512 (two table gathers, a compare
//! and a multiply). Otherwise [`Ziggurat::fallback`] finishes the same trial in f64 with
//! extra uniforms from a second generator: the tail beyond R by Marsaglia's method (layer 0),
//! the wedge test against the density (other layers), and, when the wedge rejects, a fresh
//! exact N(0, 1) draw (`rand_distr`'s). Any exact sampler may replace the retries: one trial
//! of a rejection sampler accepts `x` with density `p·φ(x)`, so "trial, else a fresh N(0,1)"
//! is exactly N(0, 1).
//!
//! The fast path compares `|u|` with the ratio rounded to f32, and the output is rounded to
//! f32: both shift probabilities by about 1e-7 relative, far below any sampling error here.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Open01, StandardNormal};

/// The number of layers.
pub const LAYERS: usize = 256;
/// The start of the tail, x[1].
pub const R: f64 = 3.654_152_885_361_008_8;
/// The area of each layer (and of the base strip with the tail).
pub const V: f64 = 0.004_928_673_233_99;

/// The ziggurat's tables.
#[derive(Debug, Clone)]
pub struct Ziggurat {
    /// Layer edges x[0] = V/f(R) > x[1] = R > … > x[256] = 0.
    x: [f64; LAYERS + 1],
    /// f(x[i]) = exp(−x[i]²/2).
    f: [f64; LAYERS + 1],
    /// x[i] in f32, the fast path's scale.
    x32: [f32; LAYERS],
    /// x[i+1]/x[i] in f32, the fast path's acceptance bound on |u|.
    ratio32: [f32; LAYERS],
}

/// The unnormalised density exp(−x²/2).
fn density(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

impl Ziggurat {
    fn build() -> Self {
        let mut x = [0.0; LAYERS + 1];
        x[0] = V / density(R);
        x[1] = R;
        for i in 2..LAYERS {
            // The layer above x[i−1] has area V: x[i−1]·(f(x[i]) − f(x[i−1])) = V.
            let fx = V / x[i - 1] + density(x[i - 1]);
            x[i] = (-2.0 * fx.ln()).sqrt();
        }
        x[LAYERS] = 0.0;
        let f = x.map(density);
        let x32 = std::array::from_fn(|i| x[i] as f32);
        let ratio32 = std::array::from_fn(|i| (x[i + 1] / x[i]) as f32);
        Self { x, f, x32, ratio32 }
    }

    /// The shared tables, built on first use.
    pub fn get() -> &'static Self {
        static TABLES: OnceLock<Ziggurat> = OnceLock::new();
        TABLES.get_or_init(Self::build)
    }

    /// The layer edges x[0..=256].
    pub fn edges(&self) -> &[f64; LAYERS + 1] {
        &self.x
    }

    /// The fast path of one word: `Some(u · x[i])` when the point falls in the layer's inner
    /// rectangle, `None` when [`Ziggurat::fallback`] must finish the trial.
    #[inline(always)]
    pub fn fast(&self, word: u32) -> Option<f32> {
        let (i, u) = layer_and_u(word);
        (u.abs() < self.ratio32[i]).then(|| u * self.x32[i])
    }

    /// Finishes the trial of a word that the fast path rejected, drawing what else it needs
    /// from `rng`: always a sample of N(0, 1).
    pub fn fallback<G: Rng + ?Sized>(&self, word: u32, rng: &mut G) -> f32 {
        let (i, u) = layer_and_u(word);
        let u = f64::from(u);
        if i == 0 {
            return tail(u, rng) as f32;
        }
        let x = u * self.x[i];
        let y = self.f[i + 1] + (self.f[i] - self.f[i + 1]) * rng.random::<f64>();
        if y < density(x) {
            return x as f32;
        }
        let fresh: f64 = StandardNormal.sample(rng);
        fresh as f32
    }

    /// Draws for `words` into `out` (same length): the fast path sixteen at a time on
    /// AVX-512, fallbacks in ascending order of position, so the result is that of
    /// [`Ziggurat::fill_portable`], bit for bit.
    pub fn fill<G: Rng + ?Sized>(&self, words: &[u32], out: &mut [f32], rng: &mut G) {
        assert_eq!(words.len(), out.len(), "one word per draw");
        #[cfg(target_arch = "x86_64")]
        if super::simd_available() {
            // SAFETY: AVX-512F is present (checked above).
            unsafe { self.fill_avx512(words, out, rng) };
            return;
        }
        self.fill_portable(words, out, rng);
    }

    /// [`Ziggurat::fill`] one word at a time (the reference of the AVX-512 path).
    pub fn fill_portable<G: Rng + ?Sized>(&self, words: &[u32], out: &mut [f32], rng: &mut G) {
        assert_eq!(words.len(), out.len(), "one word per draw");
        for (o, &w) in out.iter_mut().zip(words) {
            *o = match self.fast(w) {
                Some(z) => z,
                None => self.fallback(w, rng),
            };
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn fill_avx512<G: Rng + ?Sized>(&self, words: &[u32], out: &mut [f32], rng: &mut G) {
        let n = words.len();
        let (x_tab, r_tab) = (self.x32.as_ptr(), self.ratio32.as_ptr());
        let low8 = _mm512_set1_epi32(0xff);
        let one = _mm512_set1_epi32(1);
        let scale = _mm512_set1_ps(1.0 / 16_777_216.0);
        let mut p = 0;
        while p < n {
            let valid: u16 = if n - p >= 16 {
                u16::MAX
            } else {
                (1u16 << (n - p)) - 1
            };
            // SAFETY: masked loads and stores touch only lanes p..p + (n − p).min(16), inside
            // both slices; gather indices are < 256 = the tables' length.
            unsafe {
                let w = _mm512_maskz_loadu_epi32(valid, words.as_ptr().add(p).cast());
                let idx = _mm512_and_si512(w, low8);
                let odd = _mm512_or_si512(_mm512_slli_epi32::<1>(_mm512_srai_epi32::<8>(w)), one);
                let u = _mm512_mul_ps(_mm512_cvtepi32_ps(odd), scale);
                let xi = _mm512_i32gather_ps::<4>(idx, x_tab);
                let ri = _mm512_i32gather_ps::<4>(idx, r_tab);
                let inner = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(u), ri);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(p), valid, _mm512_mul_ps(u, xi));
                let mut outer = valid & !inner;
                while outer != 0 {
                    let lane = outer.trailing_zeros() as usize;
                    out[p + lane] = self.fallback(words[p + lane], rng);
                    outer &= outer - 1;
                }
            }
            p += 16;
        }
    }
}

/// The layer index (low 8 bits) and `u = (2k + 1)·2⁻²⁴ ∈ (−1, 1)`, `k` the signed high 24 bits.
#[inline(always)]
fn layer_and_u(word: u32) -> (usize, f32) {
    let k = (word as i32) >> 8;
    (
        (word & 0xff) as usize,
        (2 * k + 1) as f32 * (1.0 / 16_777_216.0),
    )
}

/// A draw from the normal tail beyond R with the sign of `u` (Marsaglia 1964).
fn tail<G: Rng + ?Sized>(u: f64, rng: &mut G) -> f64 {
    loop {
        let a = -rng.sample::<f64, _>(Open01).ln() / R;
        let b = -rng.sample::<f64, _>(Open01).ln();
        if 2.0 * b >= a * a {
            return (R + a).copysign(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Entries of `rand_distr` 0.6's `ZIG_NORM_X` (Doornik's generator), an independent
    /// computation of the same tables.
    #[test]
    fn tables_match_rand_distr() {
        let x = Ziggurat::get().edges();
        let reference = [
            (0, 3.910_757_959_537_090),
            (1, 3.654_152_885_361_009),
            (2, 3.449_278_298_560_964),
            (3, 3.320_244_733_839_166),
            (12, 2.822_877_396_825_325),
            (55, 2.113_687_150_684_934),
        ];
        for (i, want) in reference {
            assert!((x[i] - want).abs() < 1e-12, "x[{i}] = {} vs {want}", x[i]);
        }
        assert_eq!(x[LAYERS], 0.0);
        assert!(x.windows(2).all(|w| w[0] > w[1]), "edges decrease");
        // Every layer i ≥ 1 has area V.
        for i in 1..LAYERS - 1 {
            let area = x[i] * (density(x[i + 1]) - density(x[i]));
            assert!((area - V).abs() < 1e-9 * V, "layer {i}: area {area}");
        }
    }

    #[test]
    fn simd_and_portable_fills_agree_bit_for_bit() {
        let mut words_rng = ChaCha8Rng::seed_from_u64(3);
        let words: Vec<u32> = (0..10_007).map(|_| words_rng.next_u32()).collect();
        let zig = Ziggurat::get();
        let (mut a, mut b) = (vec![0.0f32; words.len()], vec![0.0f32; words.len()]);
        let mut ra = ChaCha8Rng::seed_from_u64(9);
        let mut rb = ChaCha8Rng::seed_from_u64(9);
        zig.fill(&words, &mut a, &mut ra);
        zig.fill_portable(&words, &mut b, &mut rb);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(ra.next_u64(), rb.next_u64(), "same fallback draws consumed");
    }
}
