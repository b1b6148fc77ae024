//! ChaCha8 keystream blocks, sixteen at a time: the random words of the Boolean sampler.
//!
//! This is the ChaCha variant of `rand_chacha` (Bernstein's, with a 64-bit block counter in
//! words 12–13 and a 64-bit stream id in words 14–15), so block `c` of stream `s` under key
//! `k` is exactly the block that `ChaCha8Rng::from_seed(k)` with `set_stream(s)` yields at
//! word position `16·c` (a test checks it). The AVX-512 path computes sixteen consecutive
//! blocks in parallel, one block per vector lane; the portable path computes them one by one
//! and lays them out the same way, bit for bit.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Words per ChaCha block.
pub const BLOCK_WORDS: usize = 16;
/// Blocks computed per call.
pub const LANES: usize = 16;
/// Words produced per call: `BATCH_WORDS = LANES · BLOCK_WORDS`.
pub const BATCH_WORDS: usize = LANES * BLOCK_WORDS;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
/// ChaCha8: four double rounds.
const DOUBLE_ROUNDS: usize = 4;

/// A ChaCha8 key with a stream id: the source of sixteen-block batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaChaStream {
    key: [u32; 8],
    stream: u64,
}

impl ChaChaStream {
    /// The stream `stream` under the 32-byte `seed` (read as eight little-endian words, as
    /// `rand_chacha` reads its seed).
    pub fn new(seed: [u8; 32], stream: u64) -> Self {
        let mut key = [0u32; 8];
        for (k, chunk) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Self { key, stream }
    }

    /// Blocks `counter .. counter + 16` into `out`, word-major: `out[16·r + lane]` is word `r`
    /// of block `counter + lane`. Uses AVX-512 when the CPU has it.
    pub fn batch(&self, counter: u64, out: &mut [u32; BATCH_WORDS]) {
        #[cfg(target_arch = "x86_64")]
        if basin_nn::simd::has_avx512() {
            // SAFETY: AVX-512F is present (checked above).
            unsafe { self.batch_avx512(counter, out) };
            return;
        }
        self.batch_portable(counter, out);
    }

    /// [`ChaChaStream::batch`] without SIMD (the reference the AVX-512 path is tested against).
    pub fn batch_portable(&self, counter: u64, out: &mut [u32; BATCH_WORDS]) {
        for lane in 0..LANES {
            let block = self.block(counter.wrapping_add(lane as u64));
            for (r, &w) in block.iter().enumerate() {
                out[r * LANES + lane] = w;
            }
        }
    }

    /// One block: the 16 words at counter `counter`.
    pub fn block(&self, counter: u64) -> [u32; BLOCK_WORDS] {
        let input = self.state(counter);
        let mut x = input;
        for _ in 0..DOUBLE_ROUNDS {
            quarter(&mut x, 0, 4, 8, 12);
            quarter(&mut x, 1, 5, 9, 13);
            quarter(&mut x, 2, 6, 10, 14);
            quarter(&mut x, 3, 7, 11, 15);
            quarter(&mut x, 0, 5, 10, 15);
            quarter(&mut x, 1, 6, 11, 12);
            quarter(&mut x, 2, 7, 8, 13);
            quarter(&mut x, 3, 4, 9, 14);
        }
        for (o, i) in x.iter_mut().zip(input) {
            *o = o.wrapping_add(i);
        }
        x
    }

    /// The input state of block `counter`.
    fn state(&self, counter: u64) -> [u32; BLOCK_WORDS] {
        let mut s = [0u32; BLOCK_WORDS];
        s[..4].copy_from_slice(&SIGMA);
        s[4..12].copy_from_slice(&self.key);
        s[12] = counter as u32;
        s[13] = (counter >> 32) as u32;
        s[14] = self.stream as u32;
        s[15] = (self.stream >> 32) as u32;
        s
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn batch_avx512(&self, counter: u64, out: &mut [u32; BATCH_WORDS]) {
        let input = self.state(counter);
        let mut init = [_mm512_setzero_si512(); BLOCK_WORDS];
        for (v, &w) in init.iter_mut().zip(&input) {
            *v = _mm512_set1_epi32(w as i32);
        }
        // Lane l has counter + l, with the carry into the high word.
        let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let lo = _mm512_add_epi32(init[12], iota);
        let carry = _mm512_cmplt_epu32_mask(lo, init[12]);
        init[12] = lo;
        init[13] = _mm512_mask_add_epi32(init[13], carry, init[13], _mm512_set1_epi32(1));
        let mut x = init;
        for _ in 0..DOUBLE_ROUNDS {
            quarter_v(&mut x, 0, 4, 8, 12);
            quarter_v(&mut x, 1, 5, 9, 13);
            quarter_v(&mut x, 2, 6, 10, 14);
            quarter_v(&mut x, 3, 7, 11, 15);
            quarter_v(&mut x, 0, 5, 10, 15);
            quarter_v(&mut x, 1, 6, 11, 12);
            quarter_v(&mut x, 2, 7, 8, 13);
            quarter_v(&mut x, 3, 4, 9, 14);
        }
        for (r, (v, i)) in x.iter().zip(&init).enumerate() {
            let w = _mm512_add_epi32(*v, *i);
            // SAFETY: out has BATCH_WORDS = 16·16 words; row r is words 16r..16r+16.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(r * LANES).cast(), w) };
        }
    }
}

#[inline(always)]
fn quarter(x: &mut [u32; BLOCK_WORDS], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn quarter_v(x: &mut [__m512i; BLOCK_WORDS], a: usize, b: usize, c: usize, d: usize) {
    x[a] = _mm512_add_epi32(x[a], x[b]);
    x[d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(x[d], x[a]));
    x[c] = _mm512_add_epi32(x[c], x[d]);
    x[b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(x[b], x[c]));
    x[a] = _mm512_add_epi32(x[a], x[b]);
    x[d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(x[d], x[a]));
    x[c] = _mm512_add_epi32(x[c], x[d]);
    x[b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(x[b], x[c]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn seed() -> [u8; 32] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
    }

    #[test]
    fn blocks_are_rand_chachas_chacha8() {
        let (stream, counter) = (0xDEAD_BEEF_1234, 5u64);
        let mut rng = ChaCha8Rng::from_seed(seed());
        rng.set_stream(stream);
        rng.set_word_pos(u128::from(counter) * 16);
        let ours = ChaChaStream::new(seed(), stream);
        for c in counter..counter + 20 {
            let want: Vec<u32> = (0..16).map(|_| rng.next_u32()).collect();
            assert_eq!(ours.block(c).as_slice(), want.as_slice(), "block {c}");
        }
    }

    #[test]
    fn batches_agree_with_blocks_across_a_counter_carry() {
        let ours = ChaChaStream::new(seed(), 7);
        let mut simd = [0u32; BATCH_WORDS];
        let mut portable = [0u32; BATCH_WORDS];
        for counter in [0u64, 1000, u64::from(u32::MAX) - 5] {
            ours.batch(counter, &mut simd);
            ours.batch_portable(counter, &mut portable);
            assert_eq!(simd, portable, "counter {counter}");
            for lane in 0..LANES {
                let block = ours.block(counter + lane as u64);
                for r in 0..BLOCK_WORDS {
                    assert_eq!(portable[r * LANES + lane], block[r]);
                }
            }
        }
    }
}
