"""The cost of basin's Python callbacks: what a call of `hvp(v)` costs beyond the callback's
own time, at n = 33,081 (the paper's 784-40-40-1 MNIST net) and n = 11,000,000 (a
ResNet-18's size).

For each size, `basin.hutchinson_trace(hvp, n, probes=P)` runs with the callback timed from
inside; the time outside the callback per call is the overhead. It is an upper bound of the
crossing's cost: it also holds the Rademacher draw and the dot product of each probe, which
any trace estimator does. The callbacks are the real HVP of the MNIST net in JAX (jit,
`jvp` of `grad`, float64, 500 random inputs) and, at 11M, a diagonal operator `d * v`.

usage: python callback_overhead.py [--rounds 5] [--out FILE.json]
Run single-threaded BLAS and nothing else on the machine; quote the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import basin


def mnist_mlp_hvp():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from jax.flatten_util import ravel_pytree

    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.random((500, 784)))
    y = jnp.asarray((rng.random(500) > 0.5).astype(np.float64))
    sizes = [(40, 784), (40, 40), (1, 40)]
    params = [
        (jnp.asarray(rng.normal(size=s) * np.sqrt(2 / s[1])), jnp.asarray(rng.normal(size=s[0])))
        for s in sizes
    ]
    theta, unravel = ravel_pytree(params)

    def loss(t):
        h = X
        layers = unravel(t)
        for i, (W, b) in enumerate(layers):
            h = h @ W.T + b
            if i < len(layers) - 1:
                h = jnp.maximum(h, 0.0)
        z = h[:, 0]
        return jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))

    grad = jax.grad(loss)
    hvp = jax.jit(lambda v: jax.jvp(grad, (theta,), (v,))[1])
    hvp(jnp.zeros_like(theta)).block_until_ready()
    return theta.size, lambda v: np.asarray(hvp(jnp.asarray(v)))


def diagonal_hvp(n):
    d = np.linspace(0.5, 2.0, n)
    return n, lambda v: d * v


def measure(n, hvp, probes, rounds):
    rows = []
    for r in range(rounds):
        inside = 0.0

        def timed(v):
            nonlocal inside
            t = time.perf_counter()
            out = hvp(v)
            inside += time.perf_counter() - t
            return out

        t0 = time.perf_counter()
        basin.hutchinson_trace(timed, n, probes=probes, seed=r)
        total = time.perf_counter() - t0
        rows.append(
            {
                "n": n,
                "round": r,
                "calls": probes,
                "callback_s_per_call": inside / probes,
                "overhead_s_per_call": (total - inside) / probes,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()
    rows = []
    n, hvp = mnist_mlp_hvp()
    rows += measure(n, hvp, probes=200, rounds=args.rounds)
    n, hvp = diagonal_hvp(11_000_000)
    rows += measure(n, hvp, probes=10, rounds=args.rounds)
    summary = {}
    for n in sorted({r["n"] for r in rows}):
        mine = [r for r in rows if r["n"] == n]
        summary[n] = {
            "overhead_ms_median": 1e3 * float(np.median([r["overhead_s_per_call"] for r in mine])),
            "callback_ms_median": 1e3 * float(np.median([r["callback_s_per_call"] for r in mine])),
        }
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": platform.platform(), "rows": rows, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
