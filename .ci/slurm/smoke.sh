#!/usr/bin/env bash
# A quick self-check of the single-node Slurm cluster of .ci/slurm/up.sh (used while
# developing the CI set-up; about 12 s). Submits, as root:
#   - an array --array=0-2%2 of `sleep 2; echo $SLURM_ARRAY_TASK_ID`, whose task 1 first
#     requeues itself once with `scontrol requeue <jobid>_1` (a marker file tells the runs apart);
#   - a merge job with --dependency=afterok:<array>, which must wait for all three tasks,
#     the requeued one's second run included, and finds all their outputs;
#   - a plain job that requeues itself once with `scontrol requeue $SLURM_JOB_ID`.
# Waits for all of them (at most 3 minutes) and checks their states and outputs. Exits non-zero
# with the output of .ci/slurm/logs.sh when anything is wrong.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
TIMEOUT=${SLURM_SMOKE_TIMEOUT:-180}

fail() {
    echo "slurm smoke: FAILED: $*" >&2
    echo "-- files in $W:" >&2
    for f in "$W"/*; do [[ -f $f ]] && { echo "--- $f" >&2; cat "$f" >&2; }; done
    "$HERE/logs.sh" >&2 || true
    exit 1
}

now() { date +%s.%N; }

cat >"$W/array.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
W=$SMOKE_DIR
t=$SLURM_ARRAY_TASK_ID
echo "task $t start $(date +%s.%N) restarts ${SLURM_RESTART_COUNT:-0}" >>"$W/events"
if [[ $t == 1 && ! -e $W/task1.requeued ]]; then
    touch "$W/task1.requeued"
    echo "task $t requeue $(date +%s.%N)" >>"$W/events"
    scontrol requeue "${SLURM_ARRAY_JOB_ID}_${t}"
    sleep 60
    echo "task $t NOT KILLED BY ITS REQUEUE" >>"$W/events"
    exit 3
fi
sleep 2
echo "$t" >"$W/out.$t"
echo "task $t end $(date +%s.%N)" >>"$W/events"
EOF

cat >"$W/merge.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
W=$SMOKE_DIR
echo "merge start $(date +%s.%N)" >>"$W/events"
cat "$W/out.0" "$W/out.1" "$W/out.2" >"$W/merged"
EOF

cat >"$W/requeue.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
W=$SMOKE_DIR
echo "single start $(date +%s.%N) restarts ${SLURM_RESTART_COUNT:-0}" >>"$W/events"
if [[ ! -e $W/single.requeued ]]; then
    touch "$W/single.requeued"
    echo "single requeue $(date +%s.%N)" >>"$W/events"
    scontrol requeue "$SLURM_JOB_ID"
    sleep 60
    echo "single NOT KILLED BY ITS REQUEUE" >>"$W/events"
    exit 3
fi
echo "second run" >"$W/single.out"
echo "single end $(date +%s.%N)" >>"$W/events"
EOF
chmod +x "$W"/*.sh

# Slurm runs a copy of each batch script from its spool directory: the scripts find $W through
# the environment, which sbatch passes on.
export SMOKE_DIR=$W
T0=$(now)
A=$(sbatch --parsable -J smoke-array --array=0-2%2 -o "$W/slurm-%A_%a.out" "$W/array.sh") ||
    fail "sbatch of the array"
M=$(sbatch --parsable -J smoke-merge --dependency="afterok:$A" -o "$W/slurm-%j.out" "$W/merge.sh") ||
    fail "sbatch of the merge job"
R=$(sbatch --parsable -J smoke-requeue -o "$W/slurm-%j.out" "$W/requeue.sh") ||
    fail "sbatch of the self-requeueing job"
echo "slurm smoke: array $A (0-2%2, task 1 requeues itself), merge $M (afterok:$A), requeue job $R; files in $W"

# The state of each job (one line per array task) as "<jobid>[_<task>] <STATE>" lines.
states() {
    local j
    for j in "$A" "$M" "$R"; do
        scontrol show job -o "$j" 2>/dev/null |
            sed -nE 's/^JobId=[0-9]+ (ArrayJobId=([0-9]+) ArrayTaskId=([0-9]+) )?.*JobState=([A-Z_]+).*/\2_\3 \4/p' |
            sed -E "s/^_ /$j /"
    done
}
terminal='^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$'
while :; do
    s=$(states)
    n_done=$(awk '{print $2}' <<<"$s" | grep -cE "$terminal" || true)
    n_all=$(grep -c . <<<"$s" || true)
    [[ $n_all == 5 && $n_done == 5 ]] && break
    if (( $(date +%s) - ${T0%.*} > TIMEOUT )); then
        fail "not finished after $TIMEOUT s: $(tr '\n' ' ' <<<"$s")"
    fi
    sleep 0.5
done
T1=$(now)

bad=$(awk '$2 != "COMPLETED"' <<<"$s")
[[ -z $bad ]] || fail "jobs not COMPLETED: $bad"
for t in 0 1 2; do
    [[ "$(cat "$W/out.$t" 2>/dev/null)" == "$t" ]] || fail "array task $t wrote no out.$t"
done
[[ "$(tr '\n' ' ' <"$W/merged")" == "0 1 2 " ]] || fail "the merge job's output is wrong"
[[ -s $W/single.out ]] || fail "the self-requeueing job did not run a second time"
grep -q "NOT KILLED" "$W/events" && fail "a requeued job was not killed by its requeue"
grep -q "task 1 start .* restarts 1" "$W/events" || fail "array task 1 did not restart with SLURM_RESTART_COUNT=1"
grep -q "single start .* restarts 1" "$W/events" || fail "the single job did not restart with SLURM_RESTART_COUNT=1"

t_of() { grep -E "$1" "$W/events" | head -n 1 | awk '{for (i = 1; i < NF; i++) if ($i ~ /^(start|end|requeue)$/) print $(i + 1)}'; }
rq_task=$(t_of '^task 1 requeue')
re_task=$(grep -E '^task 1 start .* restarts 1' "$W/events" | awk '{print $4}')
last_end=$(grep -E '^task [0-9] end' "$W/events" | awk '{print $4}' | sort -n | tail -n 1)
merge=$(t_of '^merge start')
rq_single=$(t_of '^single requeue')
re_single=$(grep -E '^single start .* restarts 1' "$W/events" | awk '{print $3}')
(( $(awk -v a="$merge" -v b="$last_end" 'BEGIN {print (a > b)}') )) ||
    fail "the afterok merge job started before the last array task (the requeued one?) ended"
printf 'slurm smoke: OK in %.0f s; requeue -> restart: array task %.1f s, plain job %.1f s; merge started %.1f s after the last task ended\n' \
    "$(awk -v a="$T0" -v b="$T1" 'BEGIN {print b - a}')" \
    "$(awk -v a="$rq_task" -v b="$re_task" 'BEGIN {print b - a}')" \
    "$(awk -v a="$rq_single" -v b="$re_single" 'BEGIN {print b - a}')" \
    "$(awk -v a="$last_end" -v b="$merge" 'BEGIN {print b - a}')"
rm -rf "$W"
