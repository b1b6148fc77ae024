//! The checks every measure makes on θ and the objective before it starts.

use basin_nn::{Objective, Real};

use crate::error::{FlatnessError, NonFiniteAt};

/// Checks that θ has the objective's length and only finite values.
pub(crate) fn check_theta<T: Real, O: Objective<T> + ?Sized>(
    obj: &O,
    theta: &[T],
) -> Result<(), FlatnessError> {
    if theta.len() != obj.n_params() {
        return Err(FlatnessError::ParamCount {
            given: theta.len(),
            expected: obj.n_params(),
        });
    }
    match theta.iter().position(|t| !t.is_finite()) {
        Some(i) => Err(FlatnessError::non_finite(NonFiniteAt::Parameter(i))),
        None => Ok(()),
    }
}

/// [`check_theta`], and that the objective holds at least one example.
pub(crate) fn check_measured<O: Objective<f64> + ?Sized>(
    obj: &O,
    theta: &[f64],
) -> Result<(), FlatnessError> {
    if theta.len() == obj.n_params() && obj.n_examples() == 0 {
        return Err(FlatnessError::EmptySet);
    }
    check_theta(obj, theta)
}
