"""Keskar et al. sharpness of the trained nets (JAX, CPU).

From trained weights w: gradient ASCENT on the loss over S (minibatch SGD,
lr 1e-3, batch 32, reshuffled each epoch, last partial batch kept, 100 epochs),
after every step clip each parameter into |w' - w| <= 1e-4 * (|w| + 1);
track the max full-S loss (evaluated after every step, and also only after
each epoch for comparison);
sharpness = 100 * (maxL - L(w)) / (1 + L(w)).

Run in float32 (what TF1 would do) and float64 (same trajectory seed).

usage: python sharpness.py [--frameworks jax torch] [--attacks 0 500] [--seeds 0 1 2]
reads cache/trained_{fw}_a{a}_s{seed}.npz, writes results/sharpness.json
"""
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # BLAS threads + a busy 2-core box = 5-10x slowdowns

import argparse
import json
import os
import time

import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

from common import make_sets, HERE, CACHE
from jax_model import masked_loss, loss
from train_jax import batches_from_perm

LR, EPOCHS, EPS = 1e-3, 100, 1e-4


def make_ascent_epoch():
    grad_fn = jax.grad(masked_loss)

    def epoch(p, w0, lo, hi, X, y, idx, mask):
        def step(carry, im):
            p, mx = carry
            i, m = im
            g = grad_fn(p, X[i], y[i], m)
            p = [jnp.clip(pi + LR * gi, l, h) for pi, gi, l, h in zip(p, g, lo, hi)]
            L = loss(p, X, y)
            return (p, jnp.maximum(mx, L)), None
        (p, mx), _ = jax.lax.scan(step, (p, jnp.asarray(-jnp.inf, X.dtype)), (idx, mask))
        return p, mx, loss(p, X, y)
    return epoch


def sharpness(params_np, XS, yS, seed, dtype, epoch_c=None):
    X, y = jnp.asarray(XS, dtype), jnp.asarray(yS, dtype)
    w0 = [jnp.asarray(p, dtype) for p in params_np]
    delta = [EPS * (jnp.abs(w) + 1) for w in w0]
    lo = [w - d for w, d in zip(w0, delta)]
    hi = [w + d for w, d in zip(w0, delta)]
    fn = jax.jit(make_ascent_epoch())
    idx, mask = batches_from_perm(np.arange(len(yS)))
    t0 = time.perf_counter()
    comp = fn.lower(w0, w0, lo, hi, X, y, idx, mask).compile()
    t_comp = time.perf_counter() - t0
    L0 = float(jax.jit(loss)(w0, X, y))
    rng = np.random.default_rng(2000 + seed)
    t0 = time.perf_counter()
    p = w0
    mx_step, mx_epoch = L0, L0
    for _ in range(EPOCHS):
        idx, mask = batches_from_perm(rng.permutation(len(yS)))
        p, mx, Lend = comp(p, w0, lo, hi, X, y, idx, mask)
        mx_step = max(mx_step, float(mx))
        mx_epoch = max(mx_epoch, float(Lend))
    t = time.perf_counter() - t0
    return dict(L0=L0, maxL=mx_step, sharpness=100 * (mx_step - L0) / (1 + L0),
                sharpness_epoch_end_only=100 * (mx_epoch - L0) / (1 + L0),
                wall_s=t, compile_s=t_comp, steps=EPOCHS * idx.shape[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frameworks", nargs="+", default=["jax"])
    ap.add_argument("--attacks", type=int, nargs="+", default=[0, 500])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    args = ap.parse_args()
    XS, yS, *_ = make_sets(0)
    out = []
    for fw in args.frameworks:
        for a in args.attacks:
            for seed in args.seeds:
                z = np.load(os.path.join(CACHE, f"trained_{fw}_a{a}_s{seed}.npz"))
                params = [z[f"arr_{i}"] for i in range(6)]
                for dt in args.dtypes:
                    r = sharpness(params, XS, yS, seed, jnp.dtype(dt))
                    r.update(framework=fw, attack=a, seed=seed, dtype=dt,
                             loadavg1=os.getloadavg()[0])
                    print(json.dumps(r), flush=True)
                    out.append(r)
    with open(os.path.join(HERE, "results", "sharpness.json"), "w") as f:
        json.dump(dict(jax=jax.__version__, runs=out), f, indent=1)


if __name__ == "__main__":
    main()
