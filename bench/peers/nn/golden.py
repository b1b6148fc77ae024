"""Write golden vectors (float64) for cross-checking the Rust implementation.

usage: python golden.py      -> golden/*.npy, golden/*.json (copied into crates/basin-nn/tests/fixtures/golden/)
"""
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import json

import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
import scipy.sparse.linalg as sla

from common import load_interleaved, make_sets, init_params_np, layer_sizes, HERE
from jax_model import loss, forward, masked_loss
from boolean_sampling import X_BOOL
from hessian import lanczos
from train_jax import batches_from_perm

G = os.path.join(HERE, "golden")
NAMES = ["W1", "b1", "W2", "b2", "W3", "b3"]


def save(name, arr):
    np.save(os.path.join(G, name + ".npy"), np.asarray(arr))


def flat_fns(params, X, y):
    flat, unravel = ravel_pytree([jnp.asarray(p) for p in params])
    Xd, yd = jnp.asarray(X), jnp.asarray(y)
    L = jax.jit(lambda w: loss(unravel(w), Xd, yd))
    g = jax.jit(jax.grad(lambda w: loss(unravel(w), Xd, yd)))
    hvp = jax.jit(lambda w, v: jax.jvp(jax.grad(lambda u: loss(unravel(u), Xd, yd)), (w,), (v,))[1])
    return flat, unravel, L, g, hvp


def common_block(prefix, params, X, y, seed_v):
    flat, unravel, L, g, hvp = flat_fns(params, X, y)
    for n, p in zip(NAMES, params):
        save(f"{prefix}_{n}", p)
    save(f"{prefix}_x", X)
    save(f"{prefix}_y", y)
    save(f"{prefix}_params_flat", flat)
    save(f"{prefix}_logits", forward([jnp.asarray(p) for p in params], jnp.asarray(X)))
    save(f"{prefix}_loss", np.float64(L(flat)))
    save(f"{prefix}_grad", g(flat))
    v = np.random.default_rng(seed_v).standard_normal(flat.size)
    v /= np.linalg.norm(v)
    save(f"{prefix}_v", v)
    hv = np.asarray(hvp(flat, jnp.asarray(v)))
    save(f"{prefix}_hv", hv)
    return flat, unravel, L, g, hvp, v, hv


def main():
    os.makedirs(G, exist_ok=True)
    info = {}
    # ---------------- MNIST-sized MLP 784-40-40-1 at a fixed-seed init -----------------
    XS, yS, *_ = make_sets(0)
    X, y = XS[:100], yS[:100]
    params = init_params_np(np.random.default_rng(12345), layer_sizes(784))
    flat, unravel, L, g, hvp, v, hv = common_block("mlp", params, X, y, seed_v=54321)
    P = flat.size
    op = sla.LinearOperator((P, P), matvec=lambda u: np.asarray(hvp(flat, jnp.asarray(u.ravel()))),
                            dtype=np.float64)
    top5 = np.sort(sla.eigsh(op, k=5, which="LA", tol=1e-12, v0=v, return_eigenvectors=False))[::-1]
    bot5 = np.sort(sla.eigsh(op, k=5, which="SA", tol=1e-12, v0=v, return_eigenvectors=False))
    ev_l, res_l, _ = lanczos(lambda u: hvp(flat, jnp.asarray(u)), v, 100)
    save("mlp_top5_eigs", top5)
    save("mlp_bottom5_eigs", bot5)
    info["mlp"] = dict(n_params=int(P), loss=float(L(flat)), top5=top5.tolist(), bottom5=bot5.tolist(),
                       lanczos100_top5=ev_l[:5].tolist(),
                       lanczos100_top5_resid=res_l[:5].tolist(),
                       grad_norm=float(np.linalg.norm(g(flat))), hv_norm=float(np.linalg.norm(hv)),
                       vHv=float(v @ hv))
    # one SGD epoch (lr 0.01, batch 32, last batch of 4 kept) from the init with a fixed permutation
    perm = np.random.default_rng(999).permutation(100)
    save("mlp_sgd_perm", perm.astype(np.int64))
    Xd, yd = jnp.asarray(X), jnp.asarray(y)
    w = [jnp.asarray(p) for p in params]
    gb = jax.grad(masked_loss)
    idx, mask = batches_from_perm(perm)
    for i, m in zip(idx, mask):
        gr = gb(w, Xd[i], yd[i], jnp.asarray(m, jnp.float64))
        w = [a - 0.01 * b for a, b in zip(w, gr)]
    save("mlp_sgd_epoch1_params_flat", ravel_pytree(w)[0])
    info["mlp_sgd"] = dict(loss_after=float(loss(w, Xd, yd)))
    # Keskar sharpness (ascent lr 1e-3, batch 32, box 1e-4*(|w|+1), 3 epochs, fixed perms),
    # max over the full-set loss evaluated after every step
    perms = np.stack([np.random.default_rng(1000 + e).permutation(100) for e in range(3)])
    save("mlp_sharp_perms", perms.astype(np.int64))
    w0 = [jnp.asarray(p) for p in params]
    lo = [p - 1e-4 * (jnp.abs(p) + 1) for p in w0]
    hi = [p + 1e-4 * (jnp.abs(p) + 1) for p in w0]
    L0 = float(loss(w0, Xd, yd))
    w, mx, trace = w0, L0, []
    for pe in perms:
        idx, mask = batches_from_perm(pe)
        for i, m in zip(idx, mask):
            gr = gb(w, Xd[i], yd[i], jnp.asarray(m, jnp.float64))
            w = [jnp.clip(a + 1e-3 * b, l, h) for a, b, l, h in zip(w, gr, lo, hi)]
            Lc = float(loss(w, Xd, yd))
            trace.append(Lc)
            mx = max(mx, Lc)
    save("mlp_sharp_loss_trace", np.array(trace))
    save("mlp_sharp_final_params_flat", ravel_pytree(w)[0])
    info["mlp_sharpness"] = dict(L0=L0, maxL=mx, sharpness=100 * (mx - L0) / (1 + L0), steps=len(trace))

    # ---------------- Boolean net 7-40-40-1 on all 128 inputs -----------------
    Xb = X_BOOL.astype(np.float64)
    yb = (Xb.sum(axis=1) >= 4).astype(np.float64)   # majority of 7 bits
    # first seed >= 777 whose function is far from constant (16..112 ones), so the
    # bit packing is actually exercised
    for bool_seed in range(777, 10000):
        pb = init_params_np(np.random.default_rng(bool_seed), layer_sizes(7))
        ones = int((np.asarray(forward([jnp.asarray(a) for a in pb], jnp.asarray(Xb))) > 0).sum())
        if 16 <= ones <= 112:
            break
    flat_b, unravel_b, Lb, gbf, hvpb, vb, hvb = common_block("bool", pb, Xb, yb, seed_v=888)
    Hb = np.asarray(jax.jit(jax.hessian(Lb))(flat_b))
    Hb = 0.5 * (Hb + Hb.T)
    eig_b = np.linalg.eigvalsh(Hb)
    save("bool_hessian_eigs", eig_b)
    save("bool_hessian_diag", np.diag(Hb))
    logits = np.asarray(forward([jnp.asarray(p) for p in pb], jnp.asarray(Xb)))
    bits = (logits > 0).astype(np.uint8)
    save("bool_fn_bits", bits)
    save("bool_fn_u64", np.packbits(bits, bitorder="little").view("<u8"))
    info["bool"] = dict(seed=bool_seed, ones=int(bits.sum()), n_params=int(flat_b.size), loss=float(Lb(flat_b)),
                        eig_max=float(eig_b[-1]), eig_min=float(eig_b[0]),
                        trace=float(np.trace(Hb)), frob=float(np.linalg.norm(Hb)),
                        dense_vs_hvp_relerr=float(np.linalg.norm(Hb @ vb - hvb) / np.linalg.norm(hvb)),
                        fn="".join(map(str, bits)))
    # 20 random nets (flat params, same layout) and their packed functions, for the sampler
    rng = np.random.default_rng(4242)
    nets, fns = [], []
    for _ in range(20):
        p = init_params_np(rng, layer_sizes(7))
        z = np.asarray(forward([jnp.asarray(a) for a in p], jnp.asarray(Xb)))
        nets.append(np.concatenate([a.ravel() for a in p]))
        fns.append(np.packbits((z > 0).astype(np.uint8), bitorder="little").view("<u8"))
    save("bool_sampler_nets_flat", np.stack(nets))
    save("bool_sampler_fns_u64", np.stack(fns))
    info["bool_sampler"] = dict(ones=[int(np.unpackbits(f.view(np.uint8)).sum()) for f in fns])

    # ---------------- data-loading check -----------------
    Xall, digits = load_interleaved(2000)
    yall = (digits >= 5).astype(np.float64)
    info["mnist_interleaved"] = dict(
        first_12_digits=digits[:12].tolist(),
        pixel_sum_S=float(Xall[:500].sum()), pixel_sum_A=float(Xall[500:1000].sum()),
        pixel_sum_T=float(Xall[1000:2000].sum()),
        ones_S=int(yall[:500].sum()), ones_A_before_flip=int(yall[500:1000].sum()),
        ones_T=int(yall[1000:2000].sum()),
        example0_pixel_sum=float(Xall[0].sum()), example0_nonzero=int((Xall[0] > 0).sum()),
        example1234_pixel_sum=float(Xall[1234].sum()))
    with open(os.path.join(G, "values.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1)[:4000])


if __name__ == "__main__":
    main()
