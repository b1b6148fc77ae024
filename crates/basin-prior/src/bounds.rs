//! Generalization-error bounds from log P(f).
//!
//! * [`occam_bound`] — McAllester's Occam (realizable PAC-Bayes) bound. D. McAllester,
//!   "Some PAC-Bayesian theorems", COLT 1998 (Theorem 1); also "PAC-Bayesian model averaging",
//!   COLT 1999. For a prior P over functions fixed before seeing the data, with probability
//!   ≥ 1 − δ over m i.i.d. training examples, every f with zero training error satisfies
//!   ε(f) ≤ (ln 1/P(f) + ln 1/δ)/m.
//! * [`marginal_likelihood_bound`] — the marginal-likelihood PAC-Bayes bound of
//!   G. Valle-Pérez, C. Q. Camargo and A. A. Louis, "Deep learning generalizes because the
//!   parameter-function map is biased towards simple functions", arXiv:1805.08522 (2018;
//!   ICLR 2019), from McAllester's PAC-Bayes theorem with the posterior = the prior
//!   restricted to the functions consistent with the training set S: with probability
//!   ≥ 1 − δ, the expected error ε̄ of that posterior satisfies
//!   −ln(1 − ε̄) ≤ (ln 1/P(S) + ln(2m/δ))/(m − 1), where P(S) is the marginal likelihood of the
//!   training labels; so ε̄ ≤ 1 − exp(−(ln 1/P(S) + ln(2m/δ))/(m − 1)).
//!
//! Both take log-probabilities in nats (≤ 0). The Occam bound may exceed 1 (it is then
//! vacuous); the marginal-likelihood bound is always below 1.

use crate::PriorError;

fn check(log_p: f64, m: usize, min_m: usize, delta: f64) -> Result<(), PriorError> {
    if log_p.is_nan() || log_p > 0.0 {
        return Err(PriorError::LogProbability { log_p });
    }
    if m < min_m {
        return Err(PriorError::TooFewExamples { m, min: min_m });
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(PriorError::Setting {
            owner: "the bound",
            setting: "the confidence parameter δ",
            need: "in (0, 1)",
            value: delta,
        });
    }
    Ok(())
}

/// McAllester's Occam bound on the error of f: (ln 1/P(f) + ln 1/δ)/m, with `log_p_f` = ln P(f)
/// (nats), m training examples (all fitted) and confidence 1 − δ. Can exceed 1 (vacuous).
/// `log_p_f = −∞` gives +∞.
pub fn occam_bound(log_p_f: f64, m: usize, delta: f64) -> Result<f64, PriorError> {
    check(log_p_f, m, 1, delta)?;
    Ok((-log_p_f - delta.ln()) / m as f64)
}

/// The marginal-likelihood PAC-Bayes bound of Valle-Pérez et al. (2018) on the expected error:
/// ε̄ ≤ 1 − exp(−(ln 1/P(S) + ln(2m/δ))/(m − 1)), with `log_p_s` = ln P(S) (nats), m ≥ 2
/// training examples and confidence 1 − δ. In [0, 1].
pub fn marginal_likelihood_bound(log_p_s: f64, m: usize, delta: f64) -> Result<f64, PriorError> {
    check(log_p_s, m, 2, delta)?;
    let c = (-log_p_s + (2.0 * m as f64 / delta).ln()) / (m as f64 - 1.0);
    Ok(-(-c).exp_m1())
}
