"""The Monte Carlo ("empirical") NNGP kernel of a pytorch-cifar ResNet in JAX: the recipe of the
paper's `ResNet50/empirical_kernel.py`, written the way a JAX user would write it well.

  K = (1/M) sum_m [ (sigma_w^2 / d) Phi_m Phi_m^T + sigma_b^2 ],   sigma_w^2 = 2, sigma_b^2 = 1

Phi_m (N x d) holds the penultimate features (after the global average pool, without the last
linear layer) of all N inputs under network m. Every network is a fresh He-normal init: conv
weights N(0, 2 / fan_in) (the convs have no bias; the removed linear layer's N(0, 1) bias is the
sigma_b^2 term), BatchNorm at init in eval mode (gamma 1, beta 0, running mean 0, running var 1,
eps 1e-5). The model is `resnet_jax.features` (the same code as the peer's logits and timings).

How it runs: one jitted step draws `--batch` networks from their PRNG keys and evaluates them
with `jax.vmap` over the keys (init and forward together, so the weights are made inside the
compiled step and never leave it), features in float32, then adds the batch's Gram
  G = sum_b Phi_b Phi_b^T   (one GEMM contracting over the batch and the d features)
to the running kernel; the running kernel is float32 (as the paper) or, with
`--f64-accumulate`, float64 (features cast to float64 before the Gram). Inputs may be split into
`--chunk` sized pieces (`jax.lax.map` inside the step) to bound the activations' memory.
Network m uses key m of `jax.random.split(jax.random.key(seed), M)`.

Timing: every distinct step shape is compiled and run once first (warm-up, reported apart);
then `--repeats` full estimates (all M networks) are timed, each blocked on. samples/s =
M / median time. FLOP counts are analytic: 2 x the conv MACs of one input's forward (the
removed linear layer is not counted; BatchNorm, ReLU, adds and the pool are not counted), and
the Gram's 2 N^2 d per network.

Threads: like `resnet_jax.py` and the `nn/` peers, JAX/XLA on CPU by default runs at its
default threading (an intra-op pool over all cores: 2 here). `--threads 1` sets
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" and pins the
process to one core; `--threads k` (k > 1) pins the process to k cores (XLA's pool is still
sized by the machine, its threads share those cores).

usage (with the nn/ venv, from bench/peers):
  nn/.venv/bin/python conv/empirical_kernel_jax.py --arch basic:1,1:8 --channels 1 \\
      --height 28 --width 28 --n 1500 --samples 16 --batch 16 --repeats 3 [--json OUT.json]
  nn/.venv/bin/python conv/empirical_kernel_jax.py --arch resnet50 --channels 3 \\
      --height 32 --width 32 --n 64 --samples 2 --batch 1
  nn/.venv/bin/python conv/empirical_kernel_jax.py --check [--arch ...] [--npy X.npy] [--out K.npy]
      one estimate, no timing: the mean diagonal and mean off-diagonal of K with their Monte
      Carlo standard errors (from the per-network values), to compare basin's estimate with in
      distribution (the two use different random streams, so only these means agree, within
      MC error). Small defaults: basic:1,1:8, 1x8x8, n 32, 1024 networks.

Inputs: `--npy X.npy` (float array (n, C, H, W); the first --n rows are used), else synthetic:
numpy default_rng(--input-seed) uniform [0, 1) float32 of shape (n, C, H, W), pixel-like;
`--save-inputs X.npy` writes them (to hand the same points to basin).
"""
import argparse
import os
import sys


def _preparse_threads(argv):
    """XLA reads XLA_FLAGS when the backend starts, so threading is set before importing jax."""
    threads = 0
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            threads = int(argv[i + 1])
        elif a.startswith("--threads="):
            threads = int(a.split("=", 1)[1])
    if threads >= 1:
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()
    return threads


THREADS = _preparse_threads(sys.argv[1:])
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resnet_jax as rj  # noqa: E402

SIGMA_W2 = 2.0
SIGMA_B2 = 1.0


def parse_arch(name, in_channels):
    """basin's `--arch`: a preset (resnet18 ... resnet152) or KIND:BLOCKS:WIDTH."""
    if name in rj.PRESETS:
        return rj.preset(name, in_channels)
    parts = name.split(":")
    if len(parts) != 3 or parts[0] not in rj.EXPANSION:
        raise SystemExit(f"unknown architecture {name!r}: expected one of {', '.join(rj.PRESETS)} "
                         "or KIND:BLOCKS:WIDTH such as basic:1,1:8 (KIND basic or bottleneck)")
    blocks = [int(b) for b in parts[1].split(",")]
    width = int(parts[2])
    if not blocks or min(blocks) < 1 or width < 1 or in_channels < 1:
        raise SystemExit(f"{name!r}: every stage needs at least one block, widths must be positive")
    return rj.make_arch(parts[0], blocks, width, in_channels)


def feature_dim(arch):
    return rj.EXPANSION[arch["block"]] * arch["base_width"] * 2 ** (len(arch["blocks"]) - 1)


def conv_macs(arch, h, w):
    """Multiply-adds of one input's forward through the convs (no linear layer)."""
    out = lambda size, s: (size - 1) // s + 1  # 3x3 pad 1 and 1x1 pad 0 alike
    macs = h * w * arch["base_width"] * arch["in_channels"] * 9
    for _i, _j, inp, planes, s, sc in rj.block_plan(arch):
        ho, wo = out(h, s), out(w, s)
        if arch["block"] == "basic":
            macs += ho * wo * planes * inp * 9 + ho * wo * planes * planes * 9
            cout = planes
        else:
            cout = 4 * planes
            macs += h * w * planes * inp + ho * wo * planes * planes * 9 + ho * wo * cout * planes
        if sc:
            macs += ho * wo * cout * inp
        h, w = ho, wo
    return macs


def conv_specs(arch):
    return [(n, s) for n, s, k in rj.param_specs(arch) if k == "conv"]


def bn_constants(arch):
    """BatchNorm at init (eval mode): trace-time constants, which XLA folds into the convs."""
    import jax.numpy as jnp
    p = {}
    for n, s, k in rj.param_specs(arch):
        if k == "bn_weight" or k == "bn_running_var":
            p[n] = jnp.ones(s, jnp.float32)
        elif k == "bn_bias" or k == "bn_running_mean":
            p[n] = jnp.zeros(s, jnp.float32)
    return p


def make_step(arch, n, chunk, f64, over="vmap"):
    """step(K, keys (B,), X (n_chunks, chunk, C, H, W)) -> (K + sum_b Phi_b Phi_b^T,
    per-network (sum_i |Phi_i|^2, |sum_i Phi_i|^2) of shape (B, 2)).

    over="vmap": jax.vmap over the keys (init and forward); over="unroll": the B networks as
    B separate traced forwards in the one jitted step. The chunks of inputs are unrolled too
    (a Python loop at trace time): jax.lax.map / scan loops run several times slower on XLA's CPU
    backend here."""
    import jax
    import jax.numpy as jnp
    specs = conv_specs(arch)
    acc = jnp.float64 if f64 else jnp.float32

    def init(key):
        ks = jax.random.split(key, len(specs))
        return {name: jax.random.normal(k, s, jnp.float32) * np.float32(np.sqrt(2.0 / (s[1] * s[2] * s[3])))
                for k, (name, s) in zip(ks, specs)}

    def feats(p, x):
        return rj.features(arch, {**p, **bn_constants(arch)}, x, train=False)

    def step(K, keys, X):
        chunks = [X[c] for c in range(X.shape[0])]
        if over == "vmap":
            P = jax.vmap(init)(keys)
            f = jnp.concatenate([jax.vmap(feats, in_axes=(0, None))(P, xc) for xc in chunks], axis=1)
        else:
            f = jnp.stack([jnp.concatenate([feats(p, xc) for xc in chunks], axis=0)
                           for p in (init(keys[b]) for b in range(keys.shape[0]))])
        f = f[:, :n].astype(acc)                              # (B, n, d)
        K = K + jnp.einsum("bid,bjd->ij", f, f)
        sq = jnp.sum(f * f, axis=(1, 2))
        s = jnp.sum(f, axis=1)
        return K, jnp.stack([sq, jnp.sum(s * s, axis=1)], axis=1)

    return jax.jit(step, donate_argnums=0)


def load_inputs(args):
    shape = (args.n, args.channels, args.height, args.width)
    if args.npy:
        x = np.load(args.npy)
        if x.ndim != 4 or x.shape[0] < args.n or x.shape[1:] != shape[1:]:
            raise SystemExit(f"{args.npy}: shape {x.shape}, need (>= {args.n}, {shape[1]}, {shape[2]}, {shape[3]})")
        x = x[:args.n]
    else:
        x = np.random.default_rng(args.input_seed).random(shape, dtype=np.float32)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if args.save_inputs:
        np.save(args.save_inputs, x)
    return x


def summarize(stats, n, d):
    """Per-network mean diagonal and mean off-diagonal of (sigma_w^2/d) Phi Phi^T + sigma_b^2,
    their averages over the M networks and Monte Carlo standard errors."""
    stats = np.asarray(stats, np.float64)
    diag = SIGMA_W2 / d * stats[:, 0] / n + SIGMA_B2
    off = SIGMA_W2 / d * (stats[:, 1] - stats[:, 0]) / (n * (n - 1)) + SIGMA_B2 if n > 1 else diag * np.nan
    se = lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return dict(mean_diag=float(diag.mean()), mean_diag_se=se(diag),
                mean_offdiag=float(off.mean()), mean_offdiag_se=se(off))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="basic:1,1:8", help="resnet18..resnet152 or KIND:BLOCKS:WIDTH")
    ap.add_argument("--channels", type=int, default=None, help="input channels (default 1)")
    ap.add_argument("--height", type=int, default=None, help="default 28 (8 with --check)")
    ap.add_argument("--width", type=int, default=None, help="default 28 (8 with --check)")
    ap.add_argument("--n", type=int, default=None, help="input points (default 1500; 32 with --check)")
    ap.add_argument("--npy", help="inputs (n, C, H, W); else deterministic synthetic ones")
    ap.add_argument("--input-seed", type=int, default=0)
    ap.add_argument("--save-inputs", help="write the inputs used to this .npy")
    ap.add_argument("--samples", type=int, default=None, help="networks M (default 16; 1024 with --check)")
    ap.add_argument("--batch", type=int, default=None, help="networks per vmapped step (default min(M, 16))")
    ap.add_argument("--over", choices=["vmap", "unroll"], default="vmap",
                    help="how a step runs its --batch networks: jax.vmap over the keys, or unrolled")
    ap.add_argument("--chunk", type=int, default=0, help="inputs per forward inside a step (0: all n)")
    ap.add_argument("--seed", type=int, default=0, help="PRNG seed of the networks")
    ap.add_argument("--repeats", type=int, default=3, help="timed full estimates after the warm-up")
    ap.add_argument("--f64-accumulate", action="store_true", help="Gram and running kernel in float64")
    ap.add_argument("--threads", type=int, default=0,
                    help="0: XLA default (all cores); 1: single-threaded XLA, one core; k: k cores")
    ap.add_argument("--check", action="store_true", help="one estimate, mean diag/off-diag with MC s.e.")
    ap.add_argument("--out", help="write the kernel (float64 .npy)")
    ap.add_argument("--json", help="write the results as JSON")
    args = ap.parse_args()
    small = args.check
    args.channels = args.channels or 1
    args.height = args.height or (8 if small else 28)
    args.width = args.width or (8 if small else 28)
    args.n = args.n or (32 if small else 1500)
    args.samples = args.samples or (1024 if small else 16)
    args.batch = args.batch or min(args.samples, 16)

    import jax
    import jax.numpy as jnp
    if args.f64_accumulate:
        jax.config.update("jax_enable_x64", True)

    arch = parse_arch(args.arch, args.channels)
    d, n, M, B = feature_dim(arch), args.n, args.samples, min(args.batch, args.samples)
    x = load_inputs(args)
    chunk = args.chunk if 0 < args.chunk < n else n
    n_chunks = -(-n // chunk)
    xp = np.zeros((n_chunks * chunk,) + x.shape[1:], np.float32)
    xp[:n] = x
    X = jnp.asarray(xp.reshape((n_chunks, chunk) + x.shape[1:]))
    keys = jax.random.split(jax.random.key(args.seed), M)
    sizes = [B] * (M // B) + ([M % B] if M % B else [])
    acc = jnp.float64 if args.f64_accumulate else jnp.float32
    step = make_step(arch, n, chunk, args.f64_accumulate, args.over)

    def estimate():
        K = jnp.zeros((n, n), acc)
        stats, start = [], 0
        for b in sizes:
            K, st = step(K, keys[start:start + b], X)
            stats.append(st)
            start += b
        K = jax.block_until_ready(K)
        return K, np.concatenate([np.asarray(s) for s in stats])

    macs = conv_macs(arch, args.height, args.width)
    fwd_gflop = 2.0 * macs * n / 1e9
    gram_gflop = 2.0 * n * n * d / 1e9
    info = dict(arch=args.arch, block=arch["block"], blocks=arch["blocks"], base_width=arch["base_width"],
                input_shape=[args.channels, args.height, args.width], n=n, feature_dim=d, samples=M,
                batch=B, over=args.over, chunk=chunk, seed=args.seed,
                inputs=args.npy or f"synthetic uniform[0,1) default_rng({args.input_seed})",
                accumulate="float64" if args.f64_accumulate else "float32", features="float32",
                sigma_w2=SIGMA_W2, sigma_b2=SIGMA_B2,
                threads=args.threads or "XLA default (intra-op pool over all cores)",
                affinity=sorted(os.sched_getaffinity(0)), xla_flags=os.environ.get("XLA_FLAGS", ""),
                jax=jax.__version__, numpy=np.__version__, device=str(jax.devices()[0]),
                cpu_count=os.cpu_count(), loadavg_before=os.getloadavg(),
                started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                forward_gflop_per_input=2.0 * macs / 1e9, forward_gflop_per_sample=fwd_gflop,
                gram_gflop_per_sample=gram_gflop)
    print(json.dumps(info), flush=True)

    # warm-up: compile and run every distinct step shape once
    t0 = time.perf_counter()
    compile_s = {}
    for b in sorted(set(sizes)):
        tc = time.perf_counter()
        Kw = jnp.zeros((n, n), acc)
        Kw, _ = step(Kw, keys[:b], X)
        jax.block_until_ready(Kw)
        compile_s[b] = time.perf_counter() - tc
    del Kw
    warmup_s = time.perf_counter() - t0

    times, K, stats = [], None, None
    for _ in range(1 if args.check else args.repeats):
        del K
        t0 = time.perf_counter()
        K, stats = estimate()
        times.append(time.perf_counter() - t0)
    K = np.asarray(K, np.float64) * (SIGMA_W2 / d / M) + SIGMA_B2
    summ = summarize(stats, n, d)
    med = float(np.median(times))
    res = dict(info, warmup_s=warmup_s, warmup_by_batch_s={str(k): v for k, v in compile_s.items()},
               times_s=times, median_s=med, best_s=min(times), samples_per_s=M / med,
               samples_per_s_best=M / min(times),
               forward_gflops=fwd_gflop * M / med, total_gflops=(fwd_gflop + gram_gflop) * M / med,
               kernel_mean_diag=float(np.mean(np.diag(K))),
               kernel_mean_offdiag=float((K.sum() - np.trace(K)) / (n * (n - 1))) if n > 1 else None,
               kernel_symmetric_max_abs=float(np.max(np.abs(K - K.T))),
               per_network=summ, loadavg_after=os.getloadavg(),
               max_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    if args.check:
        print(f"{args.arch} on {n} inputs {args.channels}x{args.height}x{args.width}, M = {M}, d = {d}")
        print(f"mean diagonal     {summ['mean_diag']:.6f} +- {summ['mean_diag_se']:.6f} (MC s.e.)")
        print(f"mean off-diagonal {summ['mean_offdiag']:.6f} +- {summ['mean_offdiag_se']:.6f} (MC s.e.)")
    else:
        print(f"{args.arch} {args.channels}x{args.height}x{args.width}, n {n}, M {M}, batch {B}, chunk {chunk}: "
              f"{args.over}: {M / med:.3f} samples/s (median of {len(times)}; best {M / min(times):.3f}), "
              f"forward {fwd_gflop:.4g} GFLOP/sample -> {fwd_gflop * M / med:.2f} GFLOP/s "
              f"(+ Gram {gram_gflop:.3g} GFLOP/sample); warm-up {warmup_s:.1f} s; "
              f"mean diag {res['kernel_mean_diag']:.6f}, mean off-diag {res['kernel_mean_offdiag']:.6f}; "
              f"max RSS {res['max_rss_mib']:.0f} MiB", flush=True)
    if args.out:
        np.save(args.out, K)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
