#!/usr/bin/env bash
# The fig3-resnet-mnist sitting: --quick into a fresh folder, then the full spec into the same
# folder (it reuses the six quick runs), each under `time`; then every run's stage times.
# Run on the 2-vCPU machine with other work stopped (a `nice -n 19` build ran alongside the
# full run in the recorded sitting, taking about 6% of one CPU).
set -euo pipefail
out=${1:-/tmp/rmf}
rm -rf "$out"
time target/release/basin reproduce fig3-resnet-mnist --quick --out "$out"
time target/release/basin reproduce fig3-resnet-mnist --out "$out"
python3 - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
stages = ["train", "sharpness", "hessian", "prior"]
print("run", *stages, "sum", "epochs", sep="\t")
tot = {s: 0.0 for s in stages}
for r in rows:
    s = r["stage_s"]
    for k in stages:
        tot[k] += s.get(k, 0.0)
    print(r["id"].rsplit("-", 2)[-2] + "-" + r["id"].rsplit("-", 1)[-1],
          *(f"{s.get(k, 0.0):.1f}" for k in stages), f"{sum(s.values()):.1f}", r["epochs"], sep="\t")
print("total", *(f"{tot[k]:.0f}" for k in stages), f"{sum(tot.values()):.0f}", sep="\t")
PY
