//! The NNGP map of one hidden layer followed by a linear layer of scales σ_w, σ_b:
//! `K ← σ_b² + σ_w² E[φ(u) φ(u′)]`, `(u, u′) ~ N(0, K on {x, x′})`, in closed form, with
//! `c = K_ij / √(K_ii K_jj)`:
//!
//! * ReLU (arc-cosine kernel, Cho & Saul 2009): `E = √(K_ii K_jj) / (2π) · (sin θ + (π − θ)
//!   cos θ)`, `θ = arccos(clamp(c, −1, 1))`; on the diagonal this is exactly `K_ii / 2`;
//! * erf (Williams 1997): `E = (2/π) · arcsin(2 K_ij / √((1 + 2 K_ii)(1 + 2 K_jj)))`;
//! * linear (identity): `E = K_ij`.
//!
//! The map needs only `arccos` and `arcsin`, in a branch-free form that vectorises
//! (`sin θ = √((1 − c)(1 + c))`, `π − θ = arccos(−c)`), accurate to a few ulps.

use std::f64::consts::{FRAC_PI_2, PI};

use super::function::Activation;

/// The kernel recursion step through one hidden layer and the linear layer after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NngpMap {
    activation: Activation,
    sw2: f64,
    sb2: f64,
    /// The factor in front of the closed form: σ_w²/(2π) (ReLU), 2σ_w²/π (erf), σ_w² (linear).
    coef: f64,
}

impl NngpMap {
    /// The map of `activation` (one with a closed form: see [`Activation::nngp`]) and scales
    /// σ_w, σ_b.
    pub(super) fn new(activation: Activation, sigma_w: f64, sigma_b: f64) -> Self {
        let sw2 = sigma_w * sigma_w;
        let coef = match activation {
            Activation::Relu => sw2 / (2.0 * PI),
            Activation::Erf => sw2 * (2.0 / PI),
            Activation::Linear | Activation::Tanh => sw2,
        };
        Self {
            activation,
            sw2,
            sb2: sigma_b * sigma_b,
            coef,
        }
    }

    /// The new variance of a point of variance `q`.
    pub fn diag(&self, q: f64) -> f64 {
        match self.activation {
            Activation::Relu => self.sb2 + 0.5 * self.sw2 * q,
            Activation::Erf => {
                let t = 2.0 * q;
                self.sb2 + self.coef * asin_fast(t / (1.0 + t))
            }
            Activation::Linear | Activation::Tanh => self.sb2 + self.sw2 * q,
        }
    }

    /// The per-point factor of the off-diagonal map: √q (ReLU), 1/√(1 + 2q) (erf), 1 (linear).
    pub fn factor(&self, q: f64) -> f64 {
        match self.activation {
            Activation::Relu => q.sqrt(),
            Activation::Erf => 1.0 / (1.0 + 2.0 * q).sqrt(),
            Activation::Linear | Activation::Tanh => 1.0,
        }
    }

    /// Applies the map to a column segment `k[i] = K(x_i, x_j)`, with the row points'
    /// factors `rows` and the column point's factor `fc`. Uses AVX-512 where the CPU has it
    /// (the same arithmetic, wider registers: the results are bit-identical).
    pub fn apply(&self, k: &mut [f64], rows: &[f64], fc: f64) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx512() {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { self.apply_avx512(k, rows, fc) };
            return;
        }
        self.apply_portable(k, rows, fc);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn apply_avx512(&self, k: &mut [f64], rows: &[f64], fc: f64) {
        self.apply_portable(k, rows, fc);
    }

    #[inline(always)]
    fn apply_portable(&self, k: &mut [f64], rows: &[f64], fc: f64) {
        let (sb2, coef) = (self.sb2, self.coef);
        let pairs = k.iter_mut().zip(rows);
        match self.activation {
            Activation::Relu => pairs.for_each(|(k, &fr)| *k = relu(*k, fr * fc, sb2, coef)),
            Activation::Erf => pairs.for_each(|(k, &fr)| *k = erf(*k, fr * fc, sb2, coef)),
            Activation::Linear | Activation::Tanh => pairs.for_each(|(k, _)| *k = sb2 + coef * *k),
        }
    }
}

/// The arc-cosine map of one entry: `norm = √(K_ii K_jj)`.
#[inline(always)]
fn relu(k: f64, norm: f64, sb2: f64, coef: f64) -> f64 {
    let c = if norm > 0.0 { k / norm } else { 0.0 };
    let c = c.clamp(-1.0, 1.0);
    // sin θ + (π − θ) cos θ with cos θ = c, sin θ = √((1 − c)(1 + c)), π − θ = arccos(−c).
    let j = ((1.0 - c) * (1.0 + c)).sqrt() + acos_fast(-c) * c;
    sb2 + coef * norm * j
}

/// Williams' erf map of one entry: `scale = 1/√((1 + 2K_ii)(1 + 2K_jj))`.
#[inline(always)]
fn erf(k: f64, scale: f64, sb2: f64, coef: f64) -> f64 {
    let s = (2.0 * k * scale).clamp(-1.0, 1.0);
    sb2 + coef * asin_fast(s)
}

/// `(asin s, s)` for `s = |x|` folded into [0, 1/2]: `s = |x|` when `|x| ≤ 1/2`, else
/// `s = √((1 − |x|)/2)`. fdlibm's rational approximation (error < 2^−58.75 on [0, 1/2]).
#[inline(always)]
fn asin_folded(a: f64, big: bool) -> f64 {
    // fdlibm's coefficients, bit for bit (pS0..pS5, qS1..qS4 of e_asin.c).
    const P: [f64; 6] = [
        f64::from_bits(0x3FC5_5555_5555_5555),
        f64::from_bits(0xBFD4_D612_03EB_6F7D),
        f64::from_bits(0x3FC9_C155_0E88_4455),
        f64::from_bits(0xBFA4_8228_B568_8F3B),
        f64::from_bits(0x3F49_EFE0_7501_B288),
        f64::from_bits(0x3F02_3DE1_0DFD_F709),
    ];
    const Q: [f64; 4] = [
        f64::from_bits(0xC003_3A27_1C8A_2D4B),
        f64::from_bits(0x4000_2AE5_9C59_8AC8),
        f64::from_bits(0xBFE6_066C_1B8D_0159),
        f64::from_bits(0x3FB3_B8C5_B12E_9282),
    ];
    let z = if big { 0.5 * (1.0 - a) } else { a * a };
    let s = if big { z.sqrt() } else { a };
    let p = z * (P[0] + z * (P[1] + z * (P[2] + z * (P[3] + z * (P[4] + z * P[5])))));
    let q = 1.0 + z * (Q[0] + z * (Q[1] + z * (Q[2] + z * Q[3])));
    s + s * (p / q)
}

/// arccos x for x in [−1, 1], branch-free (it vectorises), within a few ulps.
#[inline(always)]
fn acos_fast(x: f64) -> f64 {
    let a = x.abs();
    let big = a > 0.5;
    let t = asin_folded(a, big);
    // arccos|x| = 2 asin √((1 − |x|)/2) when |x| > 1/2, else π/2 − asin|x|.
    let acos_a = if big { 2.0 * t } else { FRAC_PI_2 - t };
    if x < 0.0 { PI - acos_a } else { acos_a }
}

/// arcsin x for x in [−1, 1], branch-free, within a few ulps.
#[inline(always)]
fn asin_fast(x: f64) -> f64 {
    let a = x.abs();
    let big = a > 0.5;
    let t = asin_folded(a, big);
    let asin_a = if big { FRAC_PI_2 - 2.0 * t } else { t };
    asin_a.copysign(x)
}

impl Activation {
    /// The NNGP map of a hidden layer of this activation followed by a linear layer of scales
    /// σ_w, σ_b; `None` where it has no closed form (tanh).
    pub fn nngp(self, sigma_w: f64, sigma_b: f64) -> Option<NngpMap> {
        self.has_closed_form_kernel()
            .then(|| NngpMap::new(self, sigma_w, sigma_b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_arc_functions_match_std_to_a_few_ulps() {
        let n = 200_001;
        let (mut worst_acos, mut worst_asin) = (0.0f64, 0.0f64);
        for i in 0..n {
            let x = -1.0 + 2.0 * i as f64 / (n - 1) as f64;
            worst_acos = worst_acos.max((acos_fast(x) - x.acos()).abs());
            let rel = (asin_fast(x) - x.asin()).abs() / x.asin().abs().max(f64::MIN_POSITIVE);
            worst_asin = worst_asin.max(if x == 0.0 { 0.0 } else { rel });
        }
        // Absolute 4 ulps of π for arccos; relative 4 ulps for arcsin (odd, near 0 too).
        assert!(worst_acos <= 4.0 * f64::EPSILON * PI, "{worst_acos:e}");
        assert!(worst_asin <= 4.0 * f64::EPSILON, "{worst_asin:e}");
        for x in [1.0, -1.0, 0.0, 0.5, -0.5, 1.0 - f64::EPSILON, 1e-300] {
            assert!(
                (acos_fast(x) - x.acos()).abs() <= 2.0 * f64::EPSILON * PI,
                "{x}"
            );
        }
        assert_eq!(acos_fast(1.0), 0.0);
        assert_eq!(asin_fast(-0.0).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn avx512_and_portable_paths_agree_bit_for_bit() {
        let k: Vec<f64> = (0..257).map(|i| -3.0 + 0.025 * i as f64).collect();
        let rows: Vec<f64> = (0..257).map(|i| 1.0 + 0.01 * i as f64).collect();
        for act in [Activation::Relu, Activation::Erf] {
            let map = NngpMap::new(act, 1.3, 0.4);
            let (mut a, mut b) = (k.clone(), k.clone());
            map.apply(&mut a, &rows, 2.5);
            map.apply_portable(&mut b, &rows, 2.5);
            assert_eq!(a, b, "{act}");
        }
    }
}
