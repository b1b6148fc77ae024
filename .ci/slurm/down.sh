#!/usr/bin/env bash
# Tears down the single-node Slurm cluster of .ci/slurm/up.sh: cancels the jobs still queued
# or running, then stops slurmd (and any slurmstepd left behind), slurmctld and munged. CI
# runs it as root in a trap at the end of the Slurm tests, even when they failed; up.sh runs it
# first to clear away the daemons of an earlier run. Tolerant of nothing running; exits 0.
# The job state and logs under /var/lib/slurm-ci stay for inspection (up.sh starts afresh).
set -euo pipefail

RUN=/var/lib/slurm-ci/run

# Whether process $1 is alive: it exists and is no zombie (a zombie is already dead; its parent
# just has not reaped it yet).
alive() {
    local st
    st=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)
    [[ -n $st && $st != Z && $st != X ]]
}

# The pid in file $2 if it is alive and named $1, plus any other process named exactly $1
# (it would hold the daemon's port or socket).
pids_of() {
    local name=$1 pidfile=$2 pid pids=""
    if [[ -s $pidfile ]]; then
        pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" == "$name" ]]; then
            pids=$pid
        fi
    fi
    pids="$pids $(pgrep -x "$name" || true)"
    for pid in $(echo $pids | tr ' ' '\n' | sed '/^$/d' | sort -u); do
        alive "$pid" && echo -n "$pid "
    done
    return 0
}

# Stops the daemons given as name:pidfile pairs, all at once: SIGTERM, then SIGKILL after 10 s.
stop_daemons() {
    local arg name pids="" p pid i left
    for arg in "$@"; do
        name=${arg%%:*}
        p=$(pids_of "$name" "${arg#*:}")
        if [[ -n ${p// /} ]]; then
            echo "slurm: stopping $name (pid ${p% })"
            pids="$pids $p"
        fi
    done
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in $(seq 1 100); do
        left=0
        for pid in $pids; do alive "$pid" && left=1; done
        [[ $left == 0 ]] && break
        sleep 0.1
    done
    for pid in $pids; do
        if alive "$pid"; then
            echo "slurm: pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ignored SIGTERM for 10 s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for arg in "$@"; do rm -f "${arg#*:}"; done
}

# Jobs first, while slurmctld and slurmd can still end them properly.
if [[ -n "$(pids_of slurmctld "$RUN/slurmctld.pid" | tr -d ' ')" ]]; then
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [[ -n ${jobs// /} ]]; then
        echo "slurm: cancelling jobs $jobs"
        timeout 10 scancel $jobs 2>/dev/null || true
        for i in $(seq 1 50); do
            [[ -z "$(timeout 5 squeue -h -o %A 2>/dev/null || true)" ]] && break
            sleep 0.2
        done
    fi
fi

stop_daemons slurmd:"$RUN/slurmd.pid" slurmstepd:/nonexistent slurmctld:"$RUN/slurmctld.pid"
stop_daemons munged:/run/munge/munged.pid
exit 0
