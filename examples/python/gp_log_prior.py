"""log P(f) of a labelling under a network's NNGP prior, in place of GPy's GP classifier.

200 random inputs get the NNGP kernel of a 40-40 ReLU net (``basin.nngp_kernel``), and a
labelling f is the sign of one draw from N(0, K): a function such a net expresses readily.
``basin.log_prior`` then gives log P(f) by EP with the probit likelihood (GPy's
``EP`` on a ``Bernoulli`` likelihood), and with the step likelihood (the paper's definition)
by EP and by annealed SMC, which adds a standard error. A small SMC (32 particles, 4
replicates) keeps it to seconds; raise ``particles`` for a tighter error bar.

Run:  pip install crates/basin-py  then  python examples/python/gp_log_prior.py
"""

import numpy as np

import basin

rng = np.random.default_rng(0)
X = rng.standard_normal((200, 10))
K = basin.nngp_kernel(X, hidden=[40, 40], activation="relu")

z = np.linalg.cholesky(K + 1e-10 * np.eye(len(K))) @ rng.standard_normal(len(K))
y = np.where(z > 0, 1, -1)
print(f"N = {len(y)}, {np.sum(y > 0)} positive labels, K's diagonal {K[0, 0]:.3f}")

runs = [
    ("probit", "ep", {}),
    ("step", "ep", {}),
    ("step", "smc", {"particles": 32, "replicates": 4, "seed": 1}),
]
for likelihood, method, options in runs:
    r = basin.log_prior(K, y, likelihood=likelihood, method=method, **options)
    std_err = "" if r.std_err is None else f" ± {r.std_err:.3f}"
    print(f"{likelihood:>6} {method:>3}: log P(f) = {r.log_prior:.3f}{std_err} nats "
          f"(log10 {r.log10_prior:.3f}), converged {r.converged}, {r.iterations} iterations, "
          f"{r.wall_s:.2f} s")
    for issue in r.issues:
        print("    issue:", issue)

# A labelling the kernel does not favour: random labels are far less probable.
y_random = rng.choice([-1, 1], size=len(y))
r = basin.log_prior(K, y_random, likelihood="probit", method="ep")
print(f"random labels, probit ep: log P(f) = {r.log_prior:.3f} nats")
