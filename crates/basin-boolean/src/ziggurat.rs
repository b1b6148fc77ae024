//! Standard normal draws from 32-bit words by the ziggurat method (Marsaglia & Tsang 2000,
//! "The ziggurat method for generating random variables", J. Stat. Softw. 5(8)), with the
//! 256-layer tables of Doornik's ZIGNOR that `rand_distr` also uses (R = 3.6541528853610088,
//! layer area V = 0.00492867323399).
//!
//! One word gives one draw on the fast path: its low 8 bits choose the layer `i`, its high 24
//! bits (signed) an odd multiple of 2⁻²⁴, `u ∈ (−1, 1)`. If `|u| < x[i+1]/x[i]` the point
//! lies inside the layer's inner rectangle and the draw is `u · x[i]`, in f32. That happens
//! for about 98.5% of words, sixteen at a time on AVX-512: the 256-entry table is looked up
//! with eight 32-entry permutes and a blend tree (gathers are several times slower on AMD
//! Zen 4), and a byte table of lower bounds on the ratio (two byte permutes) accepts all but
//! 0.2% of the inner points at once; the rest take the exact f32 test. Otherwise [`Ziggurat::fallback`] finishes the same trial in f64 with
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
/// The start of the tail, `x[1]`.
pub const R: f64 = 3.654_152_885_361_009;
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
    /// ⌊256 · ratio32[i]⌋: `|u| < sure[i]/256` accepts for certain (the AVX-512 path looks
    /// these bytes up with two byte permutes; the few points between the bounds take the exact
    /// f32 test).
    sure: [u8; LAYERS],
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
        let ratio32: [f32; LAYERS] = std::array::from_fn(|i| (x[i + 1] / x[i]) as f32);
        let sure = ratio32.map(|r| (f64::from(r) * 256.0).floor() as u8);
        Self {
            x,
            f,
            x32,
            ratio32,
            sure,
        }
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
        {
            let isa = basin_nn::simd::Isa::detect();
            if isa.avx512f && isa.avx512vbmi {
                // SAFETY: AVX-512F and VBMI are present (checked above).
                unsafe { self.fill_avx512(words, out, rng) };
                return;
            }
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
    #[target_feature(enable = "avx512f,avx512vbmi")]
    unsafe fn fill_avx512<G: Rng + ?Sized>(&self, words: &[u32], out: &mut [f32], rng: &mut G) {
        // SAFETY (whole body): the tables are 256 f32 (16 vectors) and 256 bytes (4 vectors);
        // masked loads and stores touch only lanes p..p + (n − p).min(16), inside both slices.
        unsafe {
            let x_tab: [__m512; 16] =
                std::array::from_fn(|k| _mm512_loadu_ps(self.x32.as_ptr().add(16 * k)));
            let sure_tab: [__m512i; 4] =
                std::array::from_fn(|k| _mm512_loadu_si512(self.sure.as_ptr().add(64 * k).cast()));
            let n = words.len();
            let one = _mm512_set1_epi32(1);
            let byte = _mm512_set1_epi32(0xff);
            let scale = _mm512_set1_ps(1.0 / 16_777_216.0);
            let bit = |b: i32| _mm512_set1_epi32(1 << b);
            // Vectors per chunk: the fast path runs over a chunk without branches, recording
            // the lanes it leaves undecided; then those are finished in ascending order.
            const CHUNK: usize = 32;
            let mut undecided = [0u16; CHUNK];
            let mut start = 0;
            while start < n {
                let vectors = (n - start).div_ceil(16).min(CHUNK);
                for (v, pending) in undecided[..vectors].iter_mut().enumerate() {
                    let p = start + 16 * v;
                    let valid: u16 = if n - p >= 16 {
                        u16::MAX
                    } else {
                        (1u16 << (n - p)) - 1
                    };
                    let w = _mm512_maskz_loadu_epi32(valid, words.as_ptr().add(p).cast());
                    // x[i], i = w & 0xff: eight 32-entry permutes on bits 0–4, then a blend
                    // tree on bits 5, 6 and 7.
                    let (m5, m6, m7) = (
                        _mm512_test_epi32_mask(w, bit(5)),
                        _mm512_test_epi32_mask(w, bit(6)),
                        _mm512_test_epi32_mask(w, bit(7)),
                    );
                    let t: [__m512; 8] = std::array::from_fn(|g| {
                        _mm512_permutex2var_ps(x_tab[2 * g], w, x_tab[2 * g + 1])
                    });
                    let a: [__m512; 4] =
                        std::array::from_fn(|g| _mm512_mask_blend_ps(m5, t[2 * g], t[2 * g + 1]));
                    let xi = _mm512_mask_blend_ps(
                        m7,
                        _mm512_mask_blend_ps(m6, a[0], a[1]),
                        _mm512_mask_blend_ps(m6, a[2], a[3]),
                    );
                    // sure[i]: byte permutes on bits 0–6 (byte 0 of each lane is i), bit 7
                    // blends.
                    let s_lo = _mm512_permutex2var_epi8(sure_tab[0], w, sure_tab[1]);
                    let s_hi = _mm512_permutex2var_epi8(sure_tab[2], w, sure_tab[3]);
                    let sure = _mm512_and_si512(_mm512_mask_blend_epi32(m7, s_lo, s_hi), byte);
                    let odd =
                        _mm512_or_si512(_mm512_slli_epi32::<1>(_mm512_srai_epi32::<8>(w)), one);
                    let inner = _mm512_cmplt_epi32_mask(
                        _mm512_abs_epi32(odd),
                        _mm512_slli_epi32::<16>(sure),
                    );
                    let u = _mm512_mul_ps(_mm512_cvtepi32_ps(odd), scale);
                    _mm512_mask_storeu_ps(out.as_mut_ptr().add(p), valid, _mm512_mul_ps(u, xi));
                    *pending = valid & !inner;
                }
                for (v, &pending) in undecided[..vectors].iter().enumerate() {
                    let mut lanes = pending;
                    while lanes != 0 {
                        let at = start + 16 * v + lanes.trailing_zeros() as usize;
                        out[at] = match self.fast(words[at]) {
                            Some(z) => z,
                            None => self.fallback(words[at], rng),
                        };
                        lanes &= lanes - 1;
                    }
                }
                start += 16 * CHUNK;
            }
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
            (0, 3.910_757_959_537_09),
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
