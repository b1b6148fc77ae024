//! Counting sampled functions: a hash map from the 128-bit function to its count, and the
//! frequency table with binomial confidence intervals.
//!
//! The map is `std`'s (hashbrown) keyed by the two 64-bit halves (24 bytes an entry, against
//! 32 for a `u128` key, whose 16-byte alignment pads the count), hashed by one folded 128-bit
//! multiply: no SipHash rounds, and adversarial keys are not a concern here.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use rayon::prelude::*;
use serde::Serialize;

use crate::lz::lz_complexity;

/// The z value of a two-sided 95% interval, Φ⁻¹(0.975).
pub const Z95: f64 = 1.959_963_984_540_054;

/// A function on the 128 inputs, as the map's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    lo: u64,
    hi: u64,
}

impl Key {
    fn of(f: u128) -> Self {
        Self {
            lo: f as u64,
            hi: (f >> 64) as u64,
        }
    }

    fn function(self) -> u128 {
        u128::from(self.lo) | u128::from(self.hi) << 64
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(fold_multiply(self.lo, self.hi));
    }
}

/// The xor of the two halves of `(a ⊕ c₁)·(b ⊕ c₂)` (the mixing step of aHash and
/// foldhash): every input bit reaches the middle bits of the result.
#[inline(always)]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let p = u128::from(a ^ 0x243F_6A88_85A3_08D3) * u128::from(b ^ 0x1319_8A2E_0370_7344);
    (p as u64) ^ (p >> 64) as u64
}

/// A hasher that keeps the last `u64` written (the key's own mix).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = fold_multiply(self.0, u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 ^= x;
    }
}

/// How often each function was sampled, out of `total` samples.
#[derive(Debug, Clone, Default)]
pub struct FunctionCounts {
    map: HashMap<Key, u64, BuildHasherDefault<KeyHasher>>,
    total: u64,
}

/// One row of the frequency table. It serialises with the function as its 32 hex digits
/// ([`function_hex`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FunctionRow {
    /// Rank by count, 1 for the most frequent (ties broken by the function's value).
    pub rank: u64,
    /// The function: bit `i` is `f(x_i)`.
    #[serde(serialize_with = "serialize_hex")]
    pub function: u128,
    /// Times sampled.
    pub count: u64,
    /// `count / samples`, the estimate of P(f).
    pub probability: f64,
    /// Lower end of the Wilson score 95% interval of P(f).
    pub ci_low: f64,
    /// Upper end of the Wilson score 95% interval of P(f).
    pub ci_high: f64,
    /// The number of inputs mapped to 1.
    pub ones: u32,
    /// Lempel–Ziv complexity `K_LZ` of the 128-character string (see [`crate::lz`]).
    pub lz_complexity: f64,
}

impl FunctionCounts {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one sample of `f`.
    #[inline]
    pub fn add(&mut self, f: u128) {
        *self.map.entry(Key::of(f)).or_insert(0) += 1;
        self.total += 1;
    }

    /// Adds the counts of `other` (merging the smaller map into the larger).
    pub fn merge(mut self, mut other: Self) -> Self {
        if other.map.len() > self.map.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.map.reserve(other.map.len());
        for (k, c) in other.map {
            *self.map.entry(k).or_insert(0) += c;
        }
        self.total += other.total;
        self
    }

    /// The number of samples.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The number of distinct functions seen.
    pub fn distinct(&self) -> usize {
        self.map.len()
    }

    /// How often `f` was sampled.
    pub fn count(&self, f: u128) -> u64 {
        self.map.get(&Key::of(f)).copied().unwrap_or(0)
    }

    /// Bytes the map holds (its allocation, estimated from its capacity).
    pub fn approx_bytes(&self) -> usize {
        self.map.capacity() * (std::mem::size_of::<(Key, u64)>() + 1)
    }

    /// Every `(function, count)`, most frequent first; equal counts in ascending order of
    /// the function, so the order does not depend on the hash map.
    pub fn sorted(&self) -> Vec<(u128, u64)> {
        let mut v: Vec<(u128, u64)> = self.map.iter().map(|(k, &c)| (k.function(), c)).collect();
        v.par_sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// The `k` most frequent functions, in the order of [`FunctionCounts::sorted`].
    pub fn top(&self, k: usize) -> Vec<(u128, u64)> {
        let mut v: Vec<(u128, u64)> = self.map.iter().map(|(k, &c)| (k.function(), c)).collect();
        let order = |a: &(u128, u64), b: &(u128, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        if k < v.len() {
            v.select_nth_unstable_by(k, order);
            v.truncate(k);
        }
        v.sort_unstable_by(order);
        v
    }

    /// The frequency table of `functions` (a slice of [`FunctionCounts::sorted`] or
    /// [`FunctionCounts::top`] whose first entry has rank `first_rank`), with probabilities,
    /// Wilson intervals, numbers of ones and LZ complexities (computed in parallel).
    pub fn rows(&self, functions: &[(u128, u64)], first_rank: u64) -> Vec<FunctionRow> {
        let n = self.total;
        functions
            .par_iter()
            .enumerate()
            .map(|(i, &(function, count))| {
                let (ci_low, ci_high) = wilson_interval(count, n, Z95);
                FunctionRow {
                    rank: first_rank + i as u64,
                    function,
                    count,
                    probability: count as f64 / n as f64,
                    ci_low,
                    ci_high,
                    ones: function.count_ones(),
                    lz_complexity: lz_complexity(function, 128),
                }
            })
            .collect()
    }
}

/// The Wilson score interval of a binomial proportion (Wilson 1927): `k` successes in `n`
/// trials, `z` standard errors (1.96 for 95%). `(0, 1)` when `n = 0`.
pub fn wilson_interval(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The function as 32 hex digits, most significant first (`0x` not included): the integer
/// whose bit `i` is `f(x_i)`, as `basin_data::BoolTarget` parses `0x…`.
pub fn function_hex(f: u128) -> String {
    format!("{f:032x}")
}

/// Serialises a function as [`function_hex`] does.
fn serialize_hex<S: serde::Serializer>(f: &u128, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{f:032x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_hand_values() {
        // k = 0, n = 10, z = 1.96: (0, z²/(n + z²)) = (0, 0.2775).
        let (lo, hi) = wilson_interval(0, 10, 1.96);
        assert_eq!(lo, 0.0);
        assert!((hi - 3.8416 / 13.8416).abs() < 1e-12);
        // k = 50, n = 100, z = 1.96: centre 0.5, half-width 1.96/1.0384·√(0.0025 + 0.000096) = 0.096170.
        let (lo, hi) = wilson_interval(50, 100, 1.96);
        assert!((lo - 0.403_829_8).abs() < 1e-7 && (hi - 0.596_170_2).abs() < 1e-7);
    }

    #[test]
    fn counts_merge_and_sort_deterministically() {
        let mut a = FunctionCounts::new();
        let mut b = FunctionCounts::new();
        for f in [3u128, 1, 3, u128::MAX, 7] {
            a.add(f);
        }
        for f in [7u128, 7, 1] {
            b.add(f);
        }
        let m = a.merge(b);
        assert_eq!(m.total(), 8);
        assert_eq!(m.distinct(), 4);
        assert_eq!(m.sorted(), vec![(7, 3), (1, 2), (3, 2), (u128::MAX, 1)]);
        assert_eq!(m.top(2), vec![(7, 3), (1, 2)]);
        assert_eq!(m.count(5), 0);
        let rows = m.rows(&m.top(1), 1);
        assert_eq!((rows[0].rank, rows[0].ones), (1, 3));
        assert_eq!(function_hex(u128::MAX).len(), 32);
        assert_eq!(function_hex(0x96), "00000000000000000000000000000096");
    }
}
