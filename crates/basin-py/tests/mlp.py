"""A JAX multilayer perceptron in basin's parameter layout (each layer's weights [out, in]
row-major, then its bias) with basin's loss (mean sigmoid cross-entropy of one logit), for
checking basin's measures through callbacks against JAX's own derivatives."""

from __future__ import annotations

import numpy as np


def widths_to_shapes(widths):
    return [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]


def make(jax, widths, X, y):
    """(loss(theta, idx), n_params) of a ReLU MLP of `widths` on X, y (0/1)."""
    jnp = jax.numpy
    shapes = widths_to_shapes(widths)
    X = jnp.asarray(X, dtype=jnp.float64)
    y = jnp.asarray(y, dtype=jnp.float64)

    def logits(theta, x):
        h, at = x, 0
        for i, (out, inp) in enumerate(shapes):
            W = theta[at : at + out * inp].reshape(out, inp)
            at += out * inp
            b = theta[at : at + out]
            at += out
            h = h @ W.T + b
            if i < len(shapes) - 1:
                h = jnp.maximum(h, 0.0)
        return h[:, 0]

    def loss(theta, idx):
        z = logits(theta, X[idx])
        t = y[idx]
        return jnp.mean(jnp.maximum(z, 0.0) - z * t + jnp.log1p(jnp.exp(-jnp.abs(z))))

    n = sum(o * i + o for o, i in shapes)
    return loss, n


def data(n, d, seed):
    """n examples of dimension d, exactly representable in float32, with 0/1 labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32).astype(np.float64)
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 > 0.3).astype(np.float64)
    return X, y
