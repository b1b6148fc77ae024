"""Hessian of the full-S loss (500 examples, mean sigmoid CE) at trained points (JAX, CPU).

* exact HVP: forward-over-reverse, jax.jvp(jax.grad(L), (w,), (v,)); timed in f32 and f64.
* top eigenvalue: power iteration (f64) on H, start = fixed random unit vector,
  stop when |lam_k - lam_{k-1}| <= 1e-8 * |lam_k| or 2000 iterations.
* top-50: Lanczos with full reorthogonalisation (two passes of classical
  Gram-Schmidt against all previous Lanczos vectors), f64, m = 100 and m = 200
  steps from the same start vector; Ritz values of the tridiagonal T_m;
  residual bound for Ritz pair i is |beta_m * s_{m,i}|.
  log-product = sum_{i<50} ln(lambda_i) over the 50 largest Ritz values.
* cross-check: scipy.sparse.linalg.eigsh (ARPACK, which='LA', k=5, tol=1e-10) on
  the f64 HVP operator.
* finite differences: Hv ~ (g(w + eps v) - g(w - eps v)) / (2 eps) in f64 with
  eps in {1e-3, 1e-5, 1e-7, 1e-9} (and f32 with eps in {1e-2, 1e-3, 1e-4}),
  relative error ||Hv_fd - Hv|| / ||Hv|| vs the exact f64 HVP, for v = random
  unit vector and v = top eigenvector.

usage: python hessian.py [--which jax_a0_s0 jax_a500_s0 ...]
writes results/hessian.json
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
from jax.flatten_util import ravel_pytree
import scipy.sparse.linalg as sla

from common import make_sets, HERE, CACHE
from jax_model import loss


def load(tag):
    fw, a, s = tag.split("_")
    z = np.load(os.path.join(CACHE, f"trained_{fw}_{a}_{s}.npz"))
    return [z[f"arr_{i}"] for i in range(6)]


def make_fns(params_np, X, y, dtype):
    params = [jnp.asarray(p, dtype) for p in params_np]
    flat, unravel = ravel_pytree(params)
    Xd, yd = jnp.asarray(X, dtype), jnp.asarray(y, dtype)

    def Lflat(w):
        return loss(unravel(w), Xd, yd)
    g = jax.jit(jax.grad(Lflat))

    @jax.jit
    def hvp(w, v):
        return jax.jvp(jax.grad(Lflat), (w,), (v,))[1]
    return flat, jax.jit(Lflat), g, hvp


def time_fn(f, *a, reps=30):
    f(*a).block_until_ready()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f(*a).block_until_ready()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), float(np.min(ts))


def power_iteration(hv, v0, tol=1e-8, maxit=2000):
    v = v0 / np.linalg.norm(v0)
    lam_old = None
    for k in range(1, maxit + 1):
        w = np.asarray(hv(v))
        lam = float(v @ w)
        nrm = np.linalg.norm(w)
        v = w / nrm
        if lam_old is not None and abs(lam - lam_old) <= tol * abs(lam):
            return lam, k, v
        lam_old = lam
    return lam, maxit, v


def lanczos(hv, v0, m):
    n = v0.size
    Q = np.zeros((m + 1, n))
    alpha, beta = np.zeros(m), np.zeros(m)
    Q[0] = v0 / np.linalg.norm(v0)
    for j in range(m):
        w = np.asarray(hv(Q[j]))
        alpha[j] = Q[j] @ w
        for _ in range(2):  # full reorthogonalisation, twice
            w = w - Q[:j + 1].T @ (Q[:j + 1] @ w)
        beta[j] = np.linalg.norm(w)
        if beta[j] < 1e-12:
            m = j + 1
            break
        Q[j + 1] = w / beta[j]
    T = np.diag(alpha[:m]) + np.diag(beta[:m - 1], 1) + np.diag(beta[:m - 1], -1)
    evals, S = np.linalg.eigh(T)
    order = np.argsort(evals)[::-1]
    evals, S = evals[order], S[:, order]
    resid = np.abs(beta[m - 1] * S[m - 1, :])
    return evals, resid, Q[:m].T @ S[:, 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", nargs="+", default=["jax_a0_s0", "jax_a500_s0", "jax_a0_s1",
                                                   "jax_a500_s1", "jax_a0_s2", "jax_a500_s2"])
    ap.add_argument("--detail", nargs="+", default=["jax_a0_s0", "jax_a500_s0"],
                    help="tags that also get timings, m=200 Lanczos, eigsh and finite differences")
    args = ap.parse_args()
    XS, yS, *_ = make_sets(0)
    out = []
    for tag in args.which:
        detail = tag in args.detail
        pnp = load(tag)
        w64, L64, g64, hvp64 = make_fns(pnp, XS, yS, jnp.float64)
        w32, L32, g32, hvp32 = make_fns(pnp, XS, yS, jnp.float32)
        P = int(w64.size)
        rng = np.random.default_rng(7)
        v0 = rng.standard_normal(P)
        v0 /= np.linalg.norm(v0)
        r = dict(tag=tag, n_params=P, loss_f64=float(L64(w64)),
                 grad_norm_f64=float(jnp.linalg.norm(g64(w64))), loadavg1=os.getloadavg()[0])
        hv = lambda v: hvp64(w64, jnp.asarray(v))
        if detail:
            t0 = time.perf_counter()
            hvp64.lower(w64, w64).compile()
            r["hvp_compile_s_f64"] = time.perf_counter() - t0
            r["hvp_f32_ms_median_min"] = [1e3 * t for t in time_fn(hvp32, w32, jnp.asarray(v0, jnp.float32))]
            r["hvp_f64_ms_median_min"] = [1e3 * t for t in time_fn(hvp64, w64, jnp.asarray(v0))]
            r["grad_f32_ms_median_min"] = [1e3 * t for t in time_fn(g32, w32)]
            r["grad_f64_ms_median_min"] = [1e3 * t for t in time_fn(g64, w64)]
            # f32 vs f64 exact HVP agreement
            h64 = np.asarray(hvp64(w64, jnp.asarray(v0)))
            h32 = np.asarray(hvp32(w32, jnp.asarray(v0, jnp.float32)), np.float64)
            r["hvp_f32_vs_f64_relerr"] = float(np.linalg.norm(h32 - h64) / np.linalg.norm(h64))
        # power iteration
        t0 = time.perf_counter()
        lam_pi, it_pi, vtop = power_iteration(hv, v0)
        r["power_iter"] = dict(lam=lam_pi, iterations=it_pi, tol=1e-8, wall_s=time.perf_counter() - t0)
        # Lanczos
        for m in ([100, 200] if detail else [100]):
            t0 = time.perf_counter()
            ev, res, _ = lanczos(hv, v0, m)
            t = time.perf_counter() - t0
            top = ev[:50]
            r[f"lanczos_m{m}"] = dict(
                wall_s=t, top5=ev[:5].tolist(), lam50=float(ev[49]),
                n_positive_top50=int((top > 0).sum()),
                logprod_top50=float(np.sum(np.log(top))) if (top > 0).all() else None,
                logprod_top50_positive_only=float(np.sum(np.log(top[top > 0]))),
                max_resid_top10=float(res[:10].max()), max_resid_top50=float(res[:50].max()),
                min_ritz=float(ev[-1]), top50=top.tolist())
        if detail:
            t0 = time.perf_counter()
            op = sla.LinearOperator((P, P), matvec=lambda v: np.asarray(hv(v.ravel())), dtype=np.float64)
            ev_a = sla.eigsh(op, k=5, which="LA", tol=1e-10, v0=v0, return_eigenvectors=False)
            r["eigsh_top5"] = dict(vals=sorted(ev_a.tolist(), reverse=True), wall_s=time.perf_counter() - t0)
            # finite differences
            fd = {}
            for vname, v in [("random", v0), ("top_eigvec", vtop / np.linalg.norm(vtop))]:
                vj = jnp.asarray(v)
                ex = np.asarray(hvp64(w64, vj))
                for eps in [1e-3, 1e-5, 1e-7, 1e-9]:
                    h = (np.asarray(g64(w64 + eps * vj)) - np.asarray(g64(w64 - eps * vj))) / (2 * eps)
                    fd[f"f64_{vname}_eps{eps:g}"] = float(np.linalg.norm(h - ex) / np.linalg.norm(ex))
                v32 = jnp.asarray(v, jnp.float32)
                for eps in [1e-2, 1e-3, 1e-4]:
                    h = (np.asarray(g32(w32 + eps * v32), np.float64)
                         - np.asarray(g32(w32 - eps * v32), np.float64)) / (2 * eps)
                    fd[f"f32_{vname}_eps{eps:g}"] = float(np.linalg.norm(h - ex) / np.linalg.norm(ex))
            r["finite_diff_relerr"] = fd
        print(json.dumps({k: v for k, v in r.items() if not k.startswith("lanczos")}), flush=True)
        for m in (100, 200):
            if f"lanczos_m{m}" in r:
                d = {k: v for k, v in r[f"lanczos_m{m}"].items() if k != "top50"}
                print(f"  lanczos m={m}:", json.dumps(d), flush=True)
        out.append(r)
    with open(os.path.join(HERE, "results", "hessian.json"), "w") as f:
        json.dump(dict(jax=jax.__version__, runs=out), f, indent=1)


if __name__ == "__main__":
    main()
