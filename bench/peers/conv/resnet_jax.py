"""The pytorch-cifar ResNet family (kuangliu/pytorch-cifar, models/resnet.py) in JAX, written
independently, with PyTorch's state_dict names; the model the paper "Why flatness does and does
not correlate with generalization" trained as `ResNet50(num_classes=1)`.

Architecture (NCHW inputs, OIHW conv weights, `jax.lax.conv_general_dilated`, explicit padding):
  stem     conv1 3x3 stride 1 pad 1, no bias, in_channels -> base_width; bn1; relu (no max-pool)
  stages   stage i (layer{i+1}) has planes base_width * 2^i; its first block has stride 1 for
           stage 0 and 2 after, the other blocks stride 1
  Basic    (expansion 1) conv1 3x3 stride s pad 1, bn1, relu, conv2 3x3 pad 1, bn2, + shortcut, relu
  Bottleneck (expansion 4) conv1 1x1, bn1, relu, conv2 3x3 stride s pad 1, bn2, relu,
           conv3 1x1 to 4*planes, bn3, + shortcut, relu
  shortcut conv 1x1 stride s, no bias (`shortcut.0.weight`) + BN (`shortcut.1.*`) when s != 1 or
           in_planes != expansion*planes, else identity
  head     global average pool (= avg_pool2d(4) at 32x32 inputs), flatten, `linear` [classes, C]
  presets  resnet18 Basic [2,2,2,2], resnet34 Basic [3,4,6,3], resnet50 Bottleneck [3,4,6,3],
           resnet101 Bottleneck [3,4,23,3], resnet152 Bottleneck [3,8,36,3]; base_width 64
  BN       eval: gamma (x - running_mean) / sqrt(running_var + 1e-5) + beta;
           train: the batch mean and biased batch variance over (N, H, W), eps 1e-5 (the running
           statistics are not updated: they do not enter the train-mode loss)

usage:
  python resnet_jax.py logits WEIGHTS.safetensors INPUT.npy [--dtype float32|float64] [--out F]
      eval-mode logits of a state_dict in PyTorch's layout; the architecture is read off the
      names and shapes (conv3 present -> Bottleneck; layer{i}.{j} indices -> blocks per stage;
      conv1.weight -> base width and in_channels; linear.weight -> classes). INPUT is (n, C, H, W).
      Prints one line per image; --out writes .npy (or JSON for any other suffix).
  python resnet_jax.py fixtures [--out PATH]
      writes crates/basin-conv/tests/fixtures/resnet_logits.json: eval-mode logits (f64 and f32)
      of four nets whose weights and inputs come from the integer hash below (no weight files).
  python resnet_jax.py hashed CASE WEIGHTS.safetensors INPUT.npy
      writes one fixture case's hashed state_dict (f64) and input, for `logits` and other tools.
  python resnet_jax.py time [--steps 5] [--reps 3] [--tag T]
      the benchmark protocol (see `time_main`); writes results/resnet_time{T}.json.

The hash weights (the Rust tests reimplement them; all integer arithmetic mod 2^64):
  fnv(name)  FNV-1a 64 over the UTF-8 bytes (basis 0xcbf29ce484222325, prime 0x100000001b3)
  mix(z)     z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31
  u(name, j) = (mix(fnv(name) + (j+1) * 0x9E3779B97F4A7C15) >> 11) * 2^-53 * 2 - 1, in [-1, 1),
             j the row-major flat index within the tensor
  conv / linear weight u * sqrt(6 / fan_in) (fan_in = in * kh * kw; linear: in_features);
  linear.bias 0.1 u; BN weight 1 + 0.2 u, bias 0.1 u, running_mean 0.1 u, running_var 1 + 0.5 u;
  num_batches_tracked int64 0; input x[n, c, h, w] = u("input", flat index over (n, C, H, W)).
  All in float64; the f32 run rounds weights and inputs to float32.

Threads: JAX/XLA on CPU at its default (an intra-op pool over all cores: 2 here), as the `nn/`
peers run; OpenBLAS (numpy reference only) at one thread.
"""
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # BLAS threads + a busy 2-core box = 5-10x slowdowns

import argparse
import json
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
FIXTURE = os.path.join(ROOT, "crates", "basin-conv", "tests", "fixtures", "resnet_logits.json")
BN_EPS = 1e-5

PRESETS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}
EXPANSION = {"basic": 1, "bottleneck": 4}
BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def make_arch(block, blocks, base_width=64, in_channels=3, num_classes=1):
    assert block in EXPANSION, block
    return dict(block=block, blocks=[int(b) for b in blocks], base_width=int(base_width),
                in_channels=int(in_channels), num_classes=int(num_classes))


def preset(name, in_channels=3, num_classes=1):
    block, blocks = PRESETS[name]
    return make_arch(block, blocks, 64, in_channels, num_classes)


# ----------------------------------------------------------------------------------------------
# the state_dict layout
# ----------------------------------------------------------------------------------------------

def block_plan(arch):
    """[(stage i from 1, block j from 0, in_planes, planes, stride, has_shortcut_conv)]."""
    exp = EXPANSION[arch["block"]]
    in_planes = arch["base_width"]
    plan = []
    for i, nb in enumerate(arch["blocks"]):
        planes = arch["base_width"] * 2 ** i
        for j in range(nb):
            s = (1 if i == 0 else 2) if j == 0 else 1
            plan.append((i + 1, j, in_planes, planes, s, s != 1 or in_planes != exp * planes))
            in_planes = exp * planes
    return plan


def param_specs(arch):
    """The state_dict in PyTorch's order: [(name, shape, kind)], kind in conv, linear_w,
    linear_b, bn_weight, bn_bias, bn_running_mean, bn_running_var, bn_num_batches_tracked."""
    specs = []

    def conv(name, o, i, k):
        specs.append((name + ".weight", (o, i, k, k), "conv"))

    def bn(name, c):
        for suf in BN_SUFFIXES:
            specs.append((f"{name}.{suf}", () if suf == "num_batches_tracked" else (c,), "bn_" + suf))

    w = arch["base_width"]
    conv("conv1", w, arch["in_channels"], 3)
    bn("bn1", w)
    exp = EXPANSION[arch["block"]]
    for i, j, inp, planes, s, sc in block_plan(arch):
        p = f"layer{i}.{j}."
        if arch["block"] == "basic":
            conv(p + "conv1", planes, inp, 3); bn(p + "bn1", planes)
            conv(p + "conv2", planes, planes, 3); bn(p + "bn2", planes)
        else:
            conv(p + "conv1", planes, inp, 1); bn(p + "bn1", planes)
            conv(p + "conv2", planes, planes, 3); bn(p + "bn2", planes)
            conv(p + "conv3", exp * planes, planes, 1); bn(p + "bn3", exp * planes)
        if sc:
            conv(p + "shortcut.0", exp * planes, inp, 1); bn(p + "shortcut.1", exp * planes)
    feat = exp * arch["base_width"] * 2 ** (len(arch["blocks"]) - 1)
    specs.append(("linear.weight", (arch["num_classes"], feat), "linear_w"))
    specs.append(("linear.bias", (arch["num_classes"],), "linear_b"))
    return specs


def infer_arch(sd):
    """The architecture of a state_dict in the layout above; checks every name and shape."""
    w = sd["conv1.weight"]
    assert w.ndim == 4 and w.shape[2:] == (3, 3), ("conv1.weight", w.shape)
    block = "bottleneck" if "layer1.0.conv3.weight" in sd else "basic"
    blocks = []
    while f"layer{len(blocks) + 1}.0.conv1.weight" in sd:
        i, n = len(blocks) + 1, 0
        while f"layer{i}.{n}.conv1.weight" in sd:
            n += 1
        blocks.append(n)
    assert blocks, "no layer1.0.conv1.weight"
    arch = make_arch(block, blocks, w.shape[0], w.shape[1], sd["linear.weight"].shape[0])
    specs = param_specs(arch)
    want = {n: s for n, s, _ in specs}
    missing = [n for n in want if n not in sd and not n.endswith("num_batches_tracked")]
    extra = [n for n in sd if n not in want]
    if missing or extra:
        raise ValueError(f"not a {block} ResNet {blocks}: missing {missing[:5]}, unexpected {extra[:5]}")
    for n, s, _ in specs:
        if n in sd and tuple(sd[n].shape) != tuple(s) and not n.endswith("num_batches_tracked"):
            raise ValueError(f"{n}: shape {tuple(sd[n].shape)}, expected {s} for {arch}")
    return arch


# ----------------------------------------------------------------------------------------------
# the integer-hash weights
# ----------------------------------------------------------------------------------------------

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def fnv1a64(name):
    h = 0xcbf29ce484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def mix64(z):
    """splitmix64's finaliser on a uint64 array (numpy wraps array arithmetic mod 2^64)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):  # 0-d arrays warn on the (intended) wrap-around
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hash_uniform(name, n):
    """u(name, j) for j = 0..n-1, float64 in [-1, 1), exact."""
    j1 = np.arange(1, n + 1, dtype=np.uint64)
    z = mix64(np.uint64(fnv1a64(name)) + j1 * np.uint64(GOLDEN))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 * 2.0 - 1.0


def hash_uniform_py(name, j):
    """u(name, j) with Python integers: the same value, a check on the numpy version."""
    z = (fnv1a64(name) + (j + 1) * GOLDEN) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return (z >> 11) * 2.0 ** -53 * 2.0 - 1.0


def hashed_tensor(name, shape, kind):
    n = int(np.prod(shape, dtype=np.int64))
    if kind == "bn_num_batches_tracked":
        return np.array(0, dtype=np.int64)
    u = hash_uniform(name, n).reshape(shape)
    if kind == "conv":
        return u * np.sqrt(6.0 / (shape[1] * shape[2] * shape[3]))
    if kind == "linear_w":
        return u * np.sqrt(6.0 / shape[1])
    if kind == "linear_b":
        return 0.1 * u
    if kind == "bn_weight":
        return 1.0 + 0.2 * u
    if kind in ("bn_bias", "bn_running_mean"):
        return 0.1 * u
    if kind == "bn_running_var":
        return 1.0 + 0.5 * u
    raise ValueError(kind)


def hashed_state_dict(arch):
    return {n: hashed_tensor(n, s, k) for n, s, k in param_specs(arch)}


def hashed_input(n, c, h, w):
    return hash_uniform("input", n * c * h * w).reshape(n, c, h, w)


# ----------------------------------------------------------------------------------------------
# the JAX model
# ----------------------------------------------------------------------------------------------

def _jax():
    import jax
    return jax


def conv2d(x, w, stride, pad):
    jax = _jax()
    return jax.lax.conv_general_dilated(
        x, w, window_strides=(stride, stride), padding=[(pad, pad), (pad, pad)],
        dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=jax.lax.Precision.HIGHEST)


def batch_norm(p, name, x, train):
    import jax.numpy as jnp
    if train:
        mean = jnp.mean(x, axis=(0, 2, 3))
        var = jnp.mean(jnp.square(x - mean[None, :, None, None]), axis=(0, 2, 3))  # biased
    else:
        mean, var = p[name + ".running_mean"], p[name + ".running_var"]
    c = lambda v: v[None, :, None, None]
    return c(p[name + ".weight"]) * (x - c(mean)) / jnp.sqrt(c(var) + BN_EPS) + c(p[name + ".bias"])


def features(arch, p, x, train=False):
    """The penultimate features (n, C): the net up to and including the global average pool,
    without `linear`. p: name -> array (num_batches_tracked and linear.* may be absent)."""
    import jax.numpy as jnp
    relu = lambda v: jnp.maximum(v, 0)
    out = relu(batch_norm(p, "bn1", conv2d(x, p["conv1.weight"], 1, 1), train))
    for i, j, _inp, _planes, s, sc in block_plan(arch):
        q = f"layer{i}.{j}."
        if arch["block"] == "basic":
            h = relu(batch_norm(p, q + "bn1", conv2d(out, p[q + "conv1.weight"], s, 1), train))
            h = batch_norm(p, q + "bn2", conv2d(h, p[q + "conv2.weight"], 1, 1), train)
        else:
            h = relu(batch_norm(p, q + "bn1", conv2d(out, p[q + "conv1.weight"], 1, 0), train))
            h = relu(batch_norm(p, q + "bn2", conv2d(h, p[q + "conv2.weight"], s, 1), train))
            h = batch_norm(p, q + "bn3", conv2d(h, p[q + "conv3.weight"], 1, 0), train)
        if sc:
            short = batch_norm(p, q + "shortcut.1", conv2d(out, p[q + "shortcut.0.weight"], s, 0), train)
        else:
            short = out
        out = relu(h + short)
    return jnp.mean(out, axis=(2, 3))


def forward(arch, p, x, train=False):
    """Logits (n, classes). p: name -> array (num_batches_tracked may be absent)."""
    return features(arch, p, x, train) @ p["linear.weight"].T + p["linear.bias"]


def to_jax(sd, dtype):
    """Float tensors of a state_dict as JAX arrays of dtype (num_batches_tracked dropped)."""
    import jax.numpy as jnp
    return {n: jnp.asarray(np.asarray(v, dtype=np.float64).astype(dtype))
            for n, v in sd.items() if not n.endswith("num_batches_tracked")}


def eval_logits(arch, sd, x, dtype):
    """Eval-mode logits as a float64 numpy array; weights and input rounded to dtype first."""
    jax = _jax()
    import jax.numpy as jnp
    f = jax.jit(lambda p, x: forward(arch, p, x, train=False))
    z = f(to_jax(sd, dtype), jnp.asarray(np.asarray(x, np.float64).astype(dtype)))
    assert z.dtype == np.dtype(dtype), (z.dtype, dtype)
    return np.asarray(z).astype(np.float64)


# ----------------------------------------------------------------------------------------------
# a plain numpy f64 reference (a second, loop-and-GEMM implementation, for the fixture self-check)
# ----------------------------------------------------------------------------------------------

def np_conv(x, w, s, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // s + 1, (wd + 2 * pad - kw) // s + 1
    out = np.zeros((o, n, ho, wo))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, :, a:a + s * (ho - 1) + 1:s, b:b + s * (wo - 1) + 1:s]
            out += np.tensordot(w[:, :, a, b], patch, axes=([1], [1]))
    return out.transpose(1, 0, 2, 3)


def np_forward(arch, sd, x):
    def bn(name, v):
        c = lambda t: t[None, :, None, None]
        return (c(sd[name + ".weight"]) * (v - c(sd[name + ".running_mean"]))
                / np.sqrt(c(sd[name + ".running_var"]) + BN_EPS) + c(sd[name + ".bias"]))
    relu = lambda v: np.maximum(v, 0)
    out = relu(bn("bn1", np_conv(x, sd["conv1.weight"], 1, 1)))
    for i, j, _inp, _planes, s, sc in block_plan(arch):
        q = f"layer{i}.{j}."
        if arch["block"] == "basic":
            h = relu(bn(q + "bn1", np_conv(out, sd[q + "conv1.weight"], s, 1)))
            h = bn(q + "bn2", np_conv(h, sd[q + "conv2.weight"], 1, 1))
        else:
            h = relu(bn(q + "bn1", np_conv(out, sd[q + "conv1.weight"], 1, 0)))
            h = relu(bn(q + "bn2", np_conv(h, sd[q + "conv2.weight"], s, 1)))
            h = bn(q + "bn3", np_conv(h, sd[q + "conv3.weight"], 1, 0))
        short = bn(q + "shortcut.1", np_conv(out, sd[q + "shortcut.0.weight"], s, 0)) if sc else out
        out = relu(h + short)
    return out.mean(axis=(2, 3)) @ sd["linear.weight"].T + sd["linear.bias"]


# ----------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------

CASES = [
    dict(name="resnet18", arch=preset("resnet18"), n=4, image=(3, 32, 32)),
    dict(name="resnet50", arch=preset("resnet50"), n=2, image=(3, 32, 32)),
    dict(name="tiny_basic", arch=make_arch("basic", [1, 1], 4, 1), n=4, image=(1, 8, 8)),
    dict(name="tiny_bottleneck", arch=make_arch("bottleneck", [1, 2], 4, 3), n=3, image=(3, 8, 8)),
]

FORMULA = {
    "fnv": "FNV-1a 64 of the tensor name's UTF-8 bytes: h = 0xcbf29ce484222325; per byte h = (h ^ b) * 0x100000001b3 mod 2^64",
    "mix": "z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31) (mod 2^64)",
    "u": "u(name, j) = ((mix(fnv(name) + (j + 1) * 0x9E3779B97F4A7C15 mod 2^64) >> 11) as f64) * 2^-53 * 2 - 1; j = row-major flat index within the tensor",
    "conv_weight": "u * sqrt(6 / fan_in), fan_in = in_channels * kh * kw (f64: u * (6.0 / fan_in).sqrt())",
    "linear_weight": "u * sqrt(6 / in_features)",
    "linear_bias": "0.1 * u",
    "bn_weight": "1 + 0.2 * u",
    "bn_bias": "0.1 * u",
    "bn_running_mean": "0.1 * u",
    "bn_running_var": "1 + 0.5 * u",
    "bn_num_batches_tracked": "int64 scalar 0 (not used)",
    "input": "x[n, c, h, w] = u(\"input\", flat row-major index over the whole (n, C, H, W) array)",
    "precision": "weights and inputs computed in f64; the f32 run rounds them to f32 (round to nearest)",
    "bn_eval": "gamma * (x - running_mean) / sqrt(running_var + 1e-5) + beta",
    "pool": "global average pool over H, W (= avg_pool2d(4) at 32x32 inputs), then linear",
}


def hash_checks():
    """A few hash values, for debugging a reimplementation step by step."""
    out = []
    for name in ["conv1.weight", "layer1.0.bn1.running_var", "linear.bias", "input"]:
        f = fnv1a64(name)
        out.append(dict(name=name, fnv=f"0x{f:016x}",
                        mix_of_fnv_plus_golden=f"0x{int(mix64(np.uint64((f + GOLDEN) & M64))):016x}",
                        u=[hash_uniform_py(name, j) for j in (0, 1, 2, 1000, 123456)]))
    return out


def fixtures_main(args):
    jax = _jax()
    jax.config.update("jax_enable_x64", True)
    # the numpy hash against the Python-integer one
    for name in ["conv1.weight", "input", "layer4.2.bn3.bias"]:
        v = hash_uniform(name, 200000)
        for j in (0, 1, 77, 4095, 199999):
            assert v[j] == hash_uniform_py(name, j), (name, j)
    cases, worst_rel, worst_norm = [], 0.0, 0.0
    for c in CASES:
        arch, n, img = c["arch"], c["n"], c["image"]
        assert img[0] == arch["in_channels"]
        sd = hashed_state_dict(arch)
        x = hashed_input(n, *img)
        z64 = eval_logits(arch, sd, x, np.float64)
        z32 = eval_logits(arch, sd, x, np.float32)
        zref = np_forward(arch, sd, x)
        mx = float(np.max(np.abs(z64)))
        rel_elem = float(np.max(np.abs(z32 - z64) / np.abs(z64)))
        rel_norm = float(np.max(np.abs(z32 - z64)) / mx)
        np_rel = float(np.max(np.abs(zref - z64)) / mx)
        worst_rel, worst_norm = max(worst_rel, rel_elem), max(worst_norm, rel_norm)
        n_params = sum(int(np.prod(s)) for nm, s, k in param_specs(arch)
                       if k not in ("bn_running_mean", "bn_running_var", "bn_num_batches_tracked"))
        cases.append(dict(
            name=c["name"], block=arch["block"], blocks=arch["blocks"], base_width=arch["base_width"],
            in_channels=arch["in_channels"], num_classes=arch["num_classes"], n=n, image_shape=list(img),
            n_params=n_params, n_tensors=len(sd),
            logits_f64=[float(v) for v in z64[:, 0]], logits_f32=[float(v) for v in z32[:, 0]],
            max_abs_logit=mx,
            f32_vs_f64_max_rel_elementwise=rel_elem, f32_vs_f64_max_abs_over_max_abs_logit=rel_norm,
            numpy_reference_f64_max_abs_diff_over_max_abs_logit=np_rel,
            sum_of_all_float_weights_f64=float(sum(np.sum(v) for k, v in sd.items()
                                                   if not k.endswith("num_batches_tracked")))))
        print(f"{c['name']}: max|logit| {mx:.6g}, f32/f64 rel {rel_elem:.3g} (elementwise), "
              f"{rel_norm:.3g} (over max|logit|), numpy ref {np_rel:.3g}", flush=True)
        if mx > 1e6:
            print(f"WARNING: {c['name']} logits are enormous ({mx:.3g})", flush=True)
        assert np_rel < 1e-10, (c["name"], np_rel)
    doc = dict(
        description="Eval-mode logits of pytorch-cifar ResNets whose weights and inputs come from "
                    "a deterministic integer hash (no weight files). logits_f64[k] / logits_f32[k] "
                    "is image k's single logit (num_classes 1). Written by "
                    "bench/peers/conv/resnet_jax.py fixtures.",
        generator="bench/peers/conv/resnet_jax.py fixtures", jax=jax.__version__, numpy=np.__version__,
        formula=FORMULA, bn_eps=BN_EPS, hash_checks=hash_checks(), cases=cases,
        self_check=dict(
            criterion="f32 logits agree with f64 ones to 1e-4 relative",
            max_rel_elementwise=worst_rel, max_abs_diff_over_max_abs_logit=worst_norm,
            passed=bool(worst_rel < 1e-4),
            numpy_reference="a separate numpy f64 implementation (per-tap GEMMs) agrees with "
                            "JAX f64 to < 1e-10 relative to max|logit| on every case"))
    out = args.out or FIXTURE
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"self-check: max rel f32/f64 {worst_rel:.3g} elementwise, {worst_norm:.3g} over max|logit|"
          f" -> {'ok' if worst_rel < 1e-4 else 'FAILED'}\nwrote {out}")


def hashed_main(args):
    from safetensors.numpy import save_file
    c = next(c for c in CASES if c["name"] == args.case)
    save_file(hashed_state_dict(c["arch"]), args.weights)
    np.save(args.input, hashed_input(c["n"], *c["image"]))
    print(f"wrote {args.weights} and {args.input}")


def logits_main(args):
    jax = _jax()
    from safetensors.numpy import load_file
    dtype = np.dtype(args.dtype)
    if dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    sd = load_file(args.weights)
    arch = infer_arch(sd)
    x = np.load(args.input)
    assert x.ndim == 4 and x.shape[1] == arch["in_channels"], (x.shape, arch)
    z = eval_logits(arch, sd, x, dtype)
    print(json.dumps(arch), file=sys.stderr)
    for row in z:
        print(" ".join(repr(float(v)) for v in row))
    if args.out:
        if args.out.endswith(".npy"):
            np.save(args.out, z.astype(dtype))
        else:
            with open(args.out, "w") as f:
                json.dump(dict(arch=arch, dtype=str(dtype), logits=z.tolist()), f, indent=1)


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------

def he_params(arch, rng, dtype=np.float32):
    """He-normal init: conv/linear weights N(0, 2/fan_in), linear bias N(0, 1), BN gamma 1,
    beta 0, running mean 0, var 1. Returns (trainable, buffers) as dicts of numpy arrays."""
    tr, buf = {}, {}
    for n, s, k in param_specs(arch):
        if k == "conv":
            tr[n] = rng.standard_normal(s) * np.sqrt(2.0 / (s[1] * s[2] * s[3]))
        elif k == "linear_w":
            tr[n] = rng.standard_normal(s) * np.sqrt(2.0 / s[1])
        elif k == "linear_b":
            tr[n] = rng.standard_normal(s)
        elif k == "bn_weight":
            tr[n] = np.ones(s)
        elif k == "bn_bias":
            tr[n] = np.zeros(s)
        elif k == "bn_running_mean":
            buf[n] = np.zeros(s)
        elif k == "bn_running_var":
            buf[n] = np.ones(s)
    cast = lambda d: {n: v.astype(dtype) for n, v in d.items()}
    return cast(tr), cast(buf)


def bce(z, y):
    import jax.numpy as jnp
    return jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))


def _timed(f, *a, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = f(*a)
        _jax().block_until_ready(out)
        ts.append(time.perf_counter() - t0)
    return ts


def _compile(fn, *a):
    t0 = time.perf_counter()
    c = fn.lower(*a).compile()
    return c, time.perf_counter() - t0


def time_main(args):
    """The benchmark protocol (f32, He-normal init from numpy seed 0, images x ~ N(0, 1),
    labels y ~ Bernoulli(1/2), all from numpy's default_rng; XLA's default CPU threading):
    (i)   ResNet-18, batch 128, 3x32x32: one SGD step (lr 0.01) on the mean sigmoid BCE of the one
          logit, BN in train mode (batch statistics), gradient by jax.grad; the whole step jitted.
          AOT compile time reported apart; 1 warm-up step, then --steps timed steps, each blocked
          on; images/s = 128 / step time (median and best), and over all timed steps.
    (ii)  ResNet-50, batch 256, 3x32x32: eval-mode forward, jitted; 1 warm-up, --reps timed.
    (iii) ResNet-18, batch 32, eval mode: gradient of the loss (jax.grad) against the
          Hessian-vector product (jax.jvp of jax.grad, forward over reverse) at a fixed point and a
          fixed random direction; both jitted; 1 warm-up, --steps timed each; ratio of medians.
    """
    jax = _jax()
    import jax.numpy as jnp
    out = dict(jax=jax.__version__, numpy=np.__version__, device=str(jax.devices()[0]),
               cpu_count=os.cpu_count(), xla_flags=os.environ.get("XLA_FLAGS", ""),
               threads="XLA default (intra-op pool over all cores)",
               started=time.strftime("%Y-%m-%d %H:%M:%S %Z"), loadavg_before=os.getloadavg(),
               steps=args.steps, reps=args.reps)
    print(json.dumps(out), flush=True)
    rng = np.random.default_rng(0)

    def summary(ts, batch):
        med = float(np.median(ts))
        return dict(times_s=ts, median_s=med, best_s=min(ts), images_per_s_median=batch / med,
                    images_per_s_best=batch / min(ts), images_per_s_overall=batch * len(ts) / sum(ts))

    # (i) ResNet-18 training step
    arch = preset("resnet18")
    tr, buf = he_params(arch, rng)
    B = 128
    x = jnp.asarray(rng.standard_normal((B, 3, 32, 32)).astype(np.float32))
    y = jnp.asarray((rng.random(B) < 0.5).astype(np.float32))
    tr, buf = jax.tree.map(jnp.asarray, tr), jax.tree.map(jnp.asarray, buf)

    def loss(t, b, x, y, train):
        return bce(forward(arch, {**t, **b}, x, train)[:, 0], y)

    @jax.jit
    def sgd_step(t, b, x, y):
        l, g = jax.value_and_grad(loss)(t, b, x, y, True)
        return jax.tree.map(lambda p, gp: p - 0.01 * gp, t, g), l

    step_c, t_comp = _compile(sgd_step, tr, buf, x, y)
    losses = []
    t_warm = _timed(lambda: step_c(tr, buf, x, y), reps=1)
    ts = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        tr, l = step_c(tr, buf, x, y)
        jax.block_until_ready(tr)
        ts.append(time.perf_counter() - t0)
        losses.append(float(l))
    out["train_resnet18_b128"] = dict(compile_s=t_comp, warmup_s=t_warm[0], losses=losses,
                                      loadavg_after=os.getloadavg(), **summary(ts, B))
    print(json.dumps({"train_resnet18_b128": out["train_resnet18_b128"]}), flush=True)
    del tr, buf, x, y, step_c

    # (ii) ResNet-50 eval forward
    arch50 = preset("resnet50")
    tr, buf = he_params(arch50, rng)
    p50 = jax.tree.map(jnp.asarray, {**tr, **buf})
    B = 256
    x = jnp.asarray(rng.standard_normal((B, 3, 32, 32)).astype(np.float32))
    fwd_c, t_comp = _compile(jax.jit(lambda p, x: forward(arch50, p, x, False)), p50, x)
    t_warm = _timed(fwd_c, p50, x, reps=1)
    ts = _timed(fwd_c, p50, x, reps=args.reps)
    out["forward_resnet50_b256_eval"] = dict(compile_s=t_comp, warmup_s=t_warm[0],
                                             loadavg_after=os.getloadavg(), **summary(ts, B))
    print(json.dumps({"forward_resnet50_b256_eval": out["forward_resnet50_b256_eval"]}), flush=True)
    del p50, x, fwd_c

    # (iii) gradient against HVP, ResNet-18 batch 32, eval mode
    tr, buf = he_params(arch, rng)
    tr, buf = jax.tree.map(jnp.asarray, tr), jax.tree.map(jnp.asarray, buf)
    B = 32
    x = jnp.asarray(rng.standard_normal((B, 3, 32, 32)).astype(np.float32))
    y = jnp.asarray((rng.random(B) < 0.5).astype(np.float32))
    v = jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape).astype(np.float32)), tr)
    grad = jax.jit(jax.grad(lambda t, b, x, y: loss(t, b, x, y, False)))

    @jax.jit
    def hvp(t, v, b, x, y):
        return jax.jvp(lambda u: jax.grad(loss)(u, b, x, y, False), (t,), (v,))[1]

    g_c, tg = _compile(grad, tr, buf, x, y)
    h_c, th = _compile(hvp, tr, v, buf, x, y)
    _timed(g_c, tr, buf, x, y, reps=1)
    _timed(h_c, tr, v, buf, x, y, reps=1)
    tsg, tsh = [], []
    for _ in range(args.steps):  # interleaved, so load drift hits both alike
        tsg += _timed(g_c, tr, buf, x, y, reps=1)
        tsh += _timed(h_c, tr, v, buf, x, y, reps=1)
    mg, mh = float(np.median(tsg)), float(np.median(tsh))
    out["grad_vs_hvp_resnet18_b32_eval"] = dict(
        grad_compile_s=tg, hvp_compile_s=th, grad_times_s=tsg, hvp_times_s=tsh,
        grad_median_s=mg, hvp_median_s=mh, hvp_over_grad=mh / mg,
        hvp_over_grad_best=min(tsh) / min(tsg), loadavg_after=os.getloadavg())
    print(json.dumps({"grad_vs_hvp_resnet18_b32_eval": out["grad_vs_hvp_resnet18_b32_eval"]}), flush=True)
    out["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", f"resnet_time{args.tag}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("logits", help="eval-mode logits of a safetensors state_dict")
    a.add_argument("weights")
    a.add_argument("input")
    a.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    a.add_argument("--out")
    a = sub.add_parser("fixtures", help="write the hashed-weight logits fixture")
    a.add_argument("--out")
    a = sub.add_parser("hashed", help="write one fixture case's hashed weights and input")
    a.add_argument("case", choices=[c["name"] for c in CASES])
    a.add_argument("weights")
    a.add_argument("input")
    a = sub.add_parser("time", help="the benchmark (see time_main's docstring)")
    a.add_argument("--steps", type=int, default=5)
    a.add_argument("--reps", type=int, default=3)
    a.add_argument("--tag", default="")
    args = ap.parse_args()
    dict(logits=logits_main, fixtures=fixtures_main, hashed=hashed_main, time=time_main)[args.mode](args)


if __name__ == "__main__":
    main()
