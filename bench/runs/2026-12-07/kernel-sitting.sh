#!/usr/bin/env bash
# One sitting: basin's empirical NNGP kernel against the JAX peer
# (bench/peers/conv/empirical_kernel_jax.py) on the same inputs, on a quiet machine, then the
# two kernels' means compared in distribution. Run from the repository root after
# `cargo build --release -p basin`, with the peers' venv (bench/peers/README.md):
#   bash bench/runs/2026-12-07/kernel-sitting.sh > bench/runs/2026-12-07/kernel-sitting.txt 2>&1
set -euo pipefail
ROOT=$(pwd)
B=$ROOT/target/release/basin
PY=$ROOT/bench/peers/nn/.venv/bin/python
JAX=$ROOT/bench/peers/conv/empirical_kernel_jax.py
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "# sitting $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
lscpu | grep -E "Model name" || true

basin_kernel() { # arch data samples threads
  "$B" kernel --arch "$1" --method mc --samples "$3" --data "npy:$2" --threads "$4" \
    -o "$T/k.npy" --json --quiet
}

echo "## basic:1,1:8 on 1x28x28, N = 1500, M = 32"
"$PY" "$JAX" --arch basic:1,1:8 --channels 1 --height 28 --width 28 --n 1500 --samples 32 \
  --over unroll --batch 16 --repeats 2 --save-inputs "$T/mnist.npy" --json "$T/j1.json" >/dev/null
echo "jax unroll batch 16, default threads: $(cat "$T/j1.json")"
"$PY" "$JAX" --arch basic:1,1:8 --channels 1 --height 28 --width 28 --n 1500 --samples 32 \
  --over unroll --batch 16 --repeats 2 --npy "$T/mnist.npy" --threads 1 --json "$T/j2.json" >/dev/null
echo "jax unroll batch 16, 1 thread: $(cat "$T/j2.json")"
"$PY" "$JAX" --arch basic:1,1:8 --channels 1 --height 28 --width 28 --n 1500 --samples 32 \
  --over vmap --batch 1 --repeats 2 --npy "$T/mnist.npy" --json "$T/j3.json" >/dev/null
echo "jax vmap batch 1, default threads: $(cat "$T/j3.json")"
for t in 1 2; do echo "basin --threads $t: $(basin_kernel basic:1,1:8 "$T/mnist.npy" 32 $t)"; done

echo "## resnet50 on 3x32x32, N = 64, M = 4"
"$PY" "$JAX" --arch resnet50 --channels 3 --height 32 --width 32 --n 64 --samples 4 \
  --over unroll --batch 2 --repeats 2 --save-inputs "$T/c.npy" --json "$T/j4.json" >/dev/null
echo "jax unroll batch 2, default threads: $(cat "$T/j4.json")"
"$PY" "$JAX" --arch resnet50 --channels 3 --height 32 --width 32 --n 64 --samples 4 \
  --over unroll --batch 2 --repeats 2 --npy "$T/c.npy" --threads 1 --json "$T/j5.json" >/dev/null
echo "jax unroll batch 2, 1 thread: $(cat "$T/j5.json")"
for t in 1 2; do echo "basin --threads $t: $(basin_kernel resnet50 "$T/c.npy" 4 $t)"; done

echo "## agreement in distribution: basic:1,1:8 on 1x8x8, N = 32, M = 1024"
"$PY" "$JAX" --check --save-inputs "$T/small.npy"
"$B" kernel --arch basic:1,1:8 --method mc --samples 1024 --data "npy:$T/small.npy" \
  -o "$T/ks.npy" --sums "$T/ks.safetensors" --quiet
"$PY" - "$T/ks.safetensors" <<'PYEOF'
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
meta = json.loads(head["__metadata__"]["meta"])
counts = json.loads(head["__metadata__"]["block_counts"])
blocks = []
for b in range(meta["blocks"]):
    t = head[f"block.{b}"]
    lo, hi = t["data_offsets"]
    blocks.append(np.frombuffer(raw[8 + n + lo:8 + n + hi], "<f8").reshape(t["shape"]))
sb2 = meta["sigma_b"] ** 2
off = ~np.eye(meta["n"], dtype=bool)
def means(k):
    return np.diag(k).mean(), k[off].mean()
total = sum(blocks) / sum(counts) + sb2
loo = [means((sum(blocks) - blk) / (sum(counts) - c) + sb2) for blk, c in zip(blocks, counts)]
B = len(loo)
for name, i in (("diagonal", 0), ("off-diagonal", 1)):
    v = np.array([l[i] for l in loo])
    se = np.sqrt((B - 1) / B * ((v - v.mean()) ** 2).sum())
    print(f"basin mean {name} {means(total)[i]:.4f} ± {se:.4f} (jackknife over {B} blocks)")
PYEOF

echo "## memory at N = 10,000 (the embedded MNIST): sums of 8 blocks, two workers"
"$B" kernel --arch basic:1,1:8 --method mc --samples 8 --data mnist --take 10000 --threads 2 \
  -o "$T/k10k.npy" --json --quiet
"$B" kernel --arch basic:1,1:8 --method mc --samples 8 --blocks 2 --data mnist --take 10000 \
  --threads 2 -o "$T/k10k.npy" --json --quiet
