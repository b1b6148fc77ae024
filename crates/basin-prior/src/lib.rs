//! `basin-prior` owns the Bayesian prior log P(f) of the function a network expresses: NNGP
//! kernels (analytic for FCNs, Monte Carlo empirical), the step and probit likelihoods, the
//! estimators of log P(f) (Expectation Propagation, Laplace, minimax tilting), generalization
//! bounds, and the direct-sampling prior of small Boolean systems. It is empty until the prior
//! lands (see `ARCHITECTURE.md`).
