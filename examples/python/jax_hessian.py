"""The top of a JAX model's Hessian spectrum with basin's Lanczos.

A 784-40-40-1 ReLU MLP in float64 is trained briefly by full-batch gradient descent on
synthetic data (random inputs, labels from a random linear teacher). Its parameters are one
flat vector (``jax.flatten_util.ravel_pytree``), its Hessian-vector product is forward-over-
reverse (``jax.jvp`` of ``jax.grad``, jitted), and ``basin.lanczos`` takes it as a callback.

Run:  pip install crates/basin-py 'jax[cpu]'  then  python examples/python/jax_hessian.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import basin

jax.config.update("jax_enable_x64", True)

rng = np.random.default_rng(0)
X = jnp.asarray(rng.random((500, 784)))
y = jnp.sign((X - 0.5) @ jnp.asarray(rng.standard_normal(784)))  # ±1 labels

# W ~ N(0, 2/fan_in), b ~ N(0, 1), as basin initialises its nets.
key = jax.random.PRNGKey(0)
widths = [784, 40, 40, 1]
params = []
for fan_in, fan_out in zip(widths[:-1], widths[1:]):
    key, kw, kb = jax.random.split(key, 3)
    params.append((jax.random.normal(kw, (fan_in, fan_out)) * jnp.sqrt(2.0 / fan_in),
                   jax.random.normal(kb, (fan_out,))))
theta, unravel = ravel_pytree(params)


def loss(theta):
    h = X
    layers = unravel(theta)
    for w, b in layers[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = layers[-1]
    z = (h @ w + b)[:, 0]
    return jnp.mean(jnp.logaddexp(0.0, -y * z))  # cross-entropy on ±1 labels


step = jax.jit(lambda t: t - 0.05 * jax.grad(loss)(t))
for _ in range(200):
    theta = step(theta)
print(f"{theta.size} parameters, training loss {float(loss(theta)):.4f}")

hvp = jax.jit(lambda t, v: jax.jvp(jax.grad(loss), (t,), (v,))[1])
spectrum = basin.lanczos(
    lambda v: np.asarray(hvp(theta, jnp.asarray(v))), theta.size, top_k=20, steps=120
)
print("top 20 eigenvalues:", np.array2string(spectrum.eigenvalues, precision=4))
print(f"lambda_max {spectrum.lambda_max:.6g}, lambda_min {spectrum.lambda_min:.6g}")
print(f"{spectrum.n_converged} of {len(spectrum.eigenvalues)} converged "
      f"after {spectrum.lanczos_steps} Lanczos steps ({spectrum.extra['hvp_calls']} HVPs)")
