"""Deliverable 6: golden vectors for the Rust implementation (golden/).

Usage: .venv/bin/python golden.py [--sizes 64 300] [--genz-max-n 300]
The test fixtures copied from its output are described in crates/basin-prior/tests/fixtures/.
"""
import argparse
import json
import os

import numpy as np

import common
from ground_truth import genz_orthant

HERE = os.path.dirname(os.path.abspath(__file__))
GOLD = os.path.join(HERE, "golden")

ORDER = [
    "ep_probit_parallel_y", "ep_probit_parallel_yflip",
    "ep_probit_parallel_eps1e-12_y", "ep_probit_parallel_eps1e-12_yflip",
    "ep_probit_sequential_y", "ep_probit_sequential_yflip",
    "ep_heaviside_parallel_y", "ep_heaviside_parallel_yflip",
    "genz_probit_y", "genz_probit_yflip",
    "genz_step_y", "genz_step_yflip",
]


def gt_lookup(N, lab, case):
    """Reuse ground_truth.py's 3-seed Genz values when available (same K, labels)."""
    p = os.path.join(HERE, "results", "ground_truth.json")
    if not os.path.exists(p):
        return None
    name = {"y": "true", "yflip": "flip20"}[lab]
    cname = {"probit": "probit K+I", "step": "step K"}[case]
    with open(p) as fh:
        for r in json.load(fh)["runs"]:
            if r["N"] == N and r["labels"] == name and r["case"] == cname:
                return r
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 300])
    ap.add_argument("--genz-max-n", type=int, default=300)
    ap.add_argument("--genz-step-max-n", type=int, default=64)
    ap.add_argument("--genz-limit-large", type=int, default=2_000_000,
                    help="QMC sample limit for N > 64 (N <= 64 uses 50M)")
    args = ap.parse_args()
    os.makedirs(GOLD, exist_ok=True)
    allvals = {"versions": common.versions(), "order": ORDER}
    for N in args.sizes:
        X, digit, y01 = common.dataset(N)
        K = common.nngp_kernel(X)
        yflip01, nflip = common.flip_labels(y01, n_last=N, p=0.2, seed=0)
        if N * 784 * 8 <= 1_000_000:
            np.save(os.path.join(GOLD, f"X_{N}.npy"), X)
        np.save(os.path.join(GOLD, f"X_{N}_milli_u16.npy"),
                np.round(X * 1000).astype(np.uint16))
        np.save(os.path.join(GOLD, f"digit_{N}.npy"), digit.astype(np.int64))
        np.save(os.path.join(GOLD, f"K_{N}.npy"), K)
        np.save(os.path.join(GOLD, f"y_{N}.npy"), 2 * y01 - 1)
        np.save(os.path.join(GOLD, f"yflip_{N}.npy"), 2 * yflip01 - 1)
        vals = {"n_flipped": nflip}
        for lab, y in [("y", y01), ("yflip", yflip01)]:
            r = common.gpy_ep(K, y, parallel=True, seed=0, return_sites=True)
            vals[f"ep_probit_parallel_{lab}"] = r["loglik"]
            vals[f"ep_probit_parallel_{lab}_sweeps"] = r["sweeps"]
            np.save(os.path.join(GOLD, f"ep_sites_{N}_{lab}.npy"),
                    np.stack([r["site_tau"], r["site_v"], r["cav_tau"], r["cav_v"]]))
            r = common.gpy_ep(K, y, parallel=True, epsilon=1e-12, seed=0)
            vals[f"ep_probit_parallel_eps1e-12_{lab}"] = r["loglik"]
            r = common.gpy_ep(K, y, parallel=False, seed=0)
            vals[f"ep_probit_sequential_{lab}"] = r["loglik"]
            try:
                r = common.gpy_ep(K, y, parallel=True, link="heaviside", seed=0)
                vals[f"ep_heaviside_parallel_{lab}"] = r["loglik"]
            except Exception as e:  # noqa
                vals[f"ep_heaviside_parallel_{lab}"] = float("nan")
                vals[f"ep_heaviside_parallel_{lab}_error"] = str(e)
            ypm = 2 * y - 1
            for case, Sigma in [("probit", K + np.eye(N)), ("step", K)]:
                maxn = args.genz_max_n if case == "probit" else args.genz_step_max_n
                gt = gt_lookup(N, lab, case)
                if gt is not None:
                    vals[f"genz_{case}_{lab}"] = gt["genz_logp_mean"]
                    vals[f"genz_{case}_{lab}_err_est_nats"] = gt["genz_err_est_nats"]
                    vals[f"genz_{case}_{lab}_spread_3seeds_nats"] = gt["genz_spread_nats"]
                    vals[f"genz_{case}_{lab}_source"] = "results/ground_truth.json (mean of 3 seeds)"
                elif N <= maxn:
                    g = genz_orthant(Sigma, ypm, seed=0,
                                     limit=50_000_000 if N <= 64 else args.genz_limit_large)
                    vals[f"genz_{case}_{lab}"] = g["logp"]
                    vals[f"genz_{case}_{lab}_err_est_nats"] = g["err_nats"]
                    vals[f"genz_{case}_{lab}_wall_s"] = g["wall_s"]
                else:
                    vals[f"genz_{case}_{lab}"] = float("nan")
            print(N, lab, {k: v for k, v in vals.items() if lab in k}, flush=True)
        np.save(os.path.join(GOLD, f"logp_{N}.npy"),
                np.array([vals[k] for k in ORDER], dtype=np.float64))
        allvals[str(N)] = vals
        with open(os.path.join(GOLD, "values.json"), "w") as fh:
            json.dump(allvals, fh, indent=1)


if __name__ == "__main__":
    main()
