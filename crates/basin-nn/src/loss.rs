//! The loss: mean sigmoid cross-entropy on one output logit, and its derivatives in z.

use crate::real::Real;

/// ℓ(z, y) = max(z, 0) − z·y + ln(1 + e^(−|z|)), stable for any finite z (|z| up to 1e4 and
/// beyond: no exponential of a positive number is taken).
#[inline(always)]
pub fn bce<T: Real>(z: T, y: T) -> T {
    z.max(T::ZERO) - z * y + (-z.abs()).exp().ln_1p()
}

/// σ(z) = 1 / (1 + e^(−z)), computed without overflow.
#[inline(always)]
pub fn sigmoid<T: Real>(z: T) -> T {
    if z >= T::ZERO {
        T::ONE / (T::ONE + (-z).exp())
    } else {
        let e = z.exp();
        e / (T::ONE + e)
    }
}

/// dℓ/dz = σ(z) − y.
#[inline(always)]
pub fn bce_dz<T: Real>(z: T, y: T) -> T {
    sigmoid(z) - y
}

/// d²ℓ/dz² = σ(z)(1 − σ(z)).
#[inline(always)]
pub fn bce_dz2<T: Real>(z: T) -> T {
    let s = sigmoid(z);
    s * (T::ONE - s)
}

/// The predicted class of a logit: 1 iff z > 0.
#[inline(always)]
pub fn predict<T: Real>(z: T) -> u8 {
    u8::from(z > T::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_at_extreme_logits() {
        for z in [1e4f64, -1e4, 0.0, 30.0, -30.0] {
            for y in [0.0, 1.0] {
                let l = bce(z, y);
                assert!(l.is_finite() && l >= 0.0, "{z} {y} {l}");
            }
        }
        assert_eq!(bce(1e4f64, 0.0), 1e4);
        assert_eq!(bce(1e4f64, 1.0), 0.0);
        assert!((bce(0.0f64, 1.0) - std::f64::consts::LN_2).abs() < 1e-16);
        assert!(bce(1e4f32, 0.0).is_finite() && sigmoid(-1e4f32) == 0.0);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for z in [-3.0f64, -0.2, 0.0, 0.7, 5.0] {
            let h = 1e-6;
            let fd = (bce(z + h, 1.0) - bce(z - h, 1.0)) / (2.0 * h);
            assert!((fd - bce_dz(z, 1.0)).abs() < 1e-9);
            let fd2 = (bce_dz(z + h, 1.0) - bce_dz(z - h, 1.0)) / (2.0 * h);
            assert!((fd2 - bce_dz2(z)).abs() < 1e-9);
        }
    }
}
