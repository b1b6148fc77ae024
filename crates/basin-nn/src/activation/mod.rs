//! The hidden nonlinearity, defined once: its value φ, its derivatives φ′ and φ″ (for the
//! engine's gradient and Hessian-vector product), and its NNGP map (the step of the kernel
//! recursion through one hidden layer, [`NngpMap`]), as neural-tangents' `stax` gives a
//! layer's `apply_fn` and `kernel_fn` from one definition.

mod function;
mod nngp;

pub use function::{ALL, Activation, UnknownActivation};
pub use nngp::NngpMap;

/// Runs `$body` with `$act` rebound to the constant of its variant, so that each elementwise
/// loop over a layer is compiled once per activation with the `match` outside it (a match
/// inside the loop keeps it scalar).
macro_rules! per_activation {
    ($act:ident, $body:block) => {
        match $act {
            $crate::activation::Activation::Relu => {
                let $act = $crate::activation::Activation::Relu;
                $body
            }
            $crate::activation::Activation::Tanh => {
                let $act = $crate::activation::Activation::Tanh;
                $body
            }
            $crate::activation::Activation::Erf => {
                let $act = $crate::activation::Activation::Erf;
                $body
            }
            $crate::activation::Activation::Linear => {
                let $act = $crate::activation::Activation::Linear;
                $body
            }
        }
    };
}
pub(crate) use per_activation;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_derivatives_match_closed_forms() {
        let x = 0.3f64;
        assert_eq!(Activation::Relu.derivative(-1.0f64), 0.0);
        assert_eq!(Activation::Relu.derivative(0.0f64), 0.0);
        let t = x.tanh();
        assert!((Activation::Tanh.second_derivative(x) + 2.0 * t * (1.0 - t * t)).abs() < 1e-15);
        let h = 1e-6;
        let fd = (Activation::Erf.apply(x + h) - Activation::Erf.apply(x - h)) / (2.0 * h);
        assert!((fd - Activation::Erf.derivative(x)).abs() < 1e-9);
        assert_eq!(
            (
                Activation::Linear.apply(x),
                Activation::Linear.derivative(x)
            ),
            (x, 1.0)
        );
    }

    #[test]
    fn names_round_trip() {
        for a in ALL {
            assert_eq!(a.to_string().parse::<Activation>(), Ok(a));
        }
        let err = "sigmoid".parse::<Activation>().unwrap_err().to_string();
        assert!(err.contains("expected"), "{err}");
    }
}
