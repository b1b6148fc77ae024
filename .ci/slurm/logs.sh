#!/usr/bin/env bash
# Prints the Slurm scheduler's own view of the single-node cluster of .ci/slurm/up.sh, for a
# red CI: the daemons, sinfo, squeue (all jobs, long format, with reasons), `scontrol show job`
# for every job it still remembers (finished jobs for MinJobAge = 10 minutes), sacct if it
# works (it does not without slurmdbd, which this cluster lacks), the job completion log (one
# line per finished run, requeued runs included) and the tails of the daemons' logs. CI runs it
# when the Slurm tests fail. Tolerant of any of these failing (also of no cluster at all).
set -euo pipefail

LOGS=/var/lib/slurm-ci/log
LINES=${SLURM_LOG_LINES:-80}

section() { printf '\n===== slurm: %s\n' "$*"; }
# Runs a command with a time limit; a failure is reported, never fatal.
try() { timeout 30 "$@" 2>&1 || echo "(\`$*\` failed: exit $?)"; }

section "daemons"
ctld_up=0
for d in munged slurmctld slurmd slurmstepd; do
    ps=$(ps -C "$d" -o pid=,stat=,etime=,args= 2>/dev/null | grep -v ' Z' || true)
    printf '%s: %s\n' "$d" "${ps:-not running}"
    [[ $d == slurmctld && -n $ps ]] && ctld_up=1
done

if [[ $ctld_up == 1 ]]; then
    section "sinfo"
    try sinfo
    try sinfo -N -l

    section "squeue -a (all states, long, with reason)"
    try squeue -a -t all -o '%.14i %.9P %.12j %.8u %.11T %.10M %.12l %.5D %.20S %R'

    section "scontrol show job"
    try scontrol show job
else
    # Each client command would retry for about 10 s before giving up.
    section "slurmctld is not running: no sinfo, squeue or scontrol"
fi

# 22.05's sacct has no Restarts field: `scontrol show job` above shows Restarts=N.
section "sacct"
try sacct -a -X -S now-1day --format=JobID%16,JobName%16,State%14,ExitCode,Start,End

section "job completion log ($LOGS/jobcomp.txt, last $LINES lines)"
try tail -n "$LINES" "$LOGS/jobcomp.txt"
echo

if [[ $ctld_up == 1 ]]; then
    section "scontrol show node"
    try scontrol show node
fi

for f in slurmctld.log slurmd.log; do
    section "$LOGS/$f (last $LINES lines)"
    try tail -n "$LINES" "$LOGS/$f"
done
section "/var/log/munge/munged.log (last 20 lines)"
try tail -n 20 /var/log/munge/munged.log
exit 0
