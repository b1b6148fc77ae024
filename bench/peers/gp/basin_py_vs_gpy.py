"""basin's Python module against GPy on the same kernel, in one process: parallel EP, probit,
N = 1500, the peer protocol's NNGP kernel and true labels (`common.py`).

GPy is timed as `common.gpy_ep` runs it (model construction and EP, as the paper's code calls
it); basin as `basin.log_prior(K, y)` called from Python, the wall time of the call (argument
checks, the estimator, the result's JSON and its result class). Rounds interleave the two so
that both see the same machine.

usage: .venv/bin/python basin_py_vs_gpy.py [--rounds 10] [--threads 1 2] [--out FILE.json]
(the venv holds GPy and the `basin` package: `pip install ../../../crates/basin-py`)
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
import common


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--out")
    args = ap.parse_args()
    X, _, y01 = common.dataset(args.n)
    K = common.nngp_kernel(X)
    rows = []
    for r in range(args.rounds):
        g = common.gpy_ep(K, y01, parallel=True)
        rows.append({"round": r, "impl": "GPy 1.15", "threads": 1, "wall_s": g["wall_s"],
                     "log_z": g["loglik"]})
        print(json.dumps(rows[-1]), flush=True)
        for t in args.threads:
            start = time.perf_counter()
            b = basin.log_prior(K, y01, likelihood="probit", method="ep", threads=t)
            wall = time.perf_counter() - start
            rows.append({"round": r, "impl": "basin.log_prior", "threads": t, "wall_s": wall,
                         "estimate_wall_s": b.extra["estimate_wall_s"], "log_z": b.log_prior,
                         "sweeps": b.iterations})
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for key in sorted({(r["impl"], r["threads"]) for r in rows}):
        w = [r["wall_s"] for r in rows if (r["impl"], r["threads"]) == key]
        summary[f"{key[0]} ({key[1]} thread{'s' if key[1] > 1 else ''})"] = {
            "median_s": float(np.median(w)), "min_s": float(np.min(w)), "max_s": float(np.max(w))}
    gpy = summary["GPy 1.15 (1 thread)"]["median_s"]
    for name, s in summary.items():
        s["gpy_over_this"] = gpy / s["median_s"]
    zs = {r["impl"]: r["log_z"] for r in rows}
    summary["log_z_difference_nats"] = abs(zs["GPy 1.15"] - zs["basin.log_prior"])
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": platform.platform(), "rows": rows, "summary": summary}, f,
                      indent=1)


if __name__ == "__main__":
    main()
