#!/usr/bin/env bash
# Brings up a real single-node Slurm cluster (Debian's slurm-wlm 22.05 and munge) on this
# machine, for the Slurm tests of CI. CI runs it as root at the start of the Slurm tests, with
# .ci/slurm/down.sh in a trap at the end (even on failure) and .ci/slurm/logs.sh on failure.
#
# What it does: installs the packages; writes /etc/slurm/slurm.conf for THIS host (node
# `hostname -s`, CPUs from nproc, RealMemory = MemTotal less 2 GiB, one partition `debug`);
# generates a munge key if there is none; stops any daemons of an earlier run; starts munged,
# slurmctld and slurmd directly (no systemd) with a fresh, empty job state; and waits until
# the node is idle. Idempotent: it can be run again at any time, also after the daemons died.
# State, spool and logs live under /var/lib/slurm-ci (munged logs to /var/log/munge).
#
# Requeue delay: `scontrol requeue` of a running job (or of one array task, from inside its own
# batch script: `scontrol requeue <jobid>_<taskid>`) kills it at once and puts it back to
# PENDING (reason BeginTime) with BeginTime = now + cred_expire + 1 s: Slurm waits until the
# killed run's job credential has expired before starting it again. cred_expire defaults to
# 120 s; slurm.conf below sets AuthInfo=cred_expire=5 (Slurm's minimum), so a requeued task
# restarts 6-7 s after the requeue (measured), not after about 2 minutes. The rerun starts the
# script from the beginning with SLURM_RESTART_COUNT=1 and truncates its --output file (the
# first run's output is lost); an --dependency=afterok job on the array waits for the rerun
# to end and succeed.
set -euo pipefail

CI_ROOT=/var/lib/slurm-ci
STATE=$CI_ROOT/state
SPOOL=$CI_ROOT/spool
LOGS=$CI_ROOT/log
RUN=$CI_ROOT/run
CONF=/etc/slurm/slurm.conf
START=$(date +%s)

echo "== slurm: installing slurm-wlm and munge"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq slurm-wlm munge >/dev/null; then
    # a fresh machine may not have the package lists yet
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi

echo "== slurm: stopping the daemons of an earlier run, if any"
"$(dirname "$0")/down.sh"

echo "== slurm: writing $CONF"
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MIB=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
REAL_MEM=$(( MEM_MIB > 4096 ? MEM_MIB - 2048 : MEM_MIB / 2 ))

# A fresh, empty job state on every start (job ids start again at 1); the previous logs are
# kept as *.1.
rm -rf "$STATE" "$SPOOL"
mkdir -p "$STATE" "$SPOOL" "$LOGS" "$RUN" /etc/slurm
for f in slurmctld.log slurmd.log jobcomp.txt; do
    [[ -f $LOGS/$f ]] && mv -f "$LOGS/$f" "$LOGS/$f.1"
done
chmod 0755 "$CI_ROOT" "$STATE" "$SPOOL" "$LOGS" "$RUN"

cat >"$CONF" <<EOF
# Written by .ci/slurm/up.sh: a single-node Slurm cluster for basin's CI. Do not edit here.
ClusterName=basin-ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
# cred_expire (default 120 s) is also how long a requeued job waits before it may start
# again (its BeginTime is set to now + cred_expire + 1); 5 is Slurm's minimum.
AuthInfo=cred_expire=5
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# No cgroups: processes are tracked through /proc, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# CPUs are the consumable resource (memory is not), so two 1-CPU jobs run side by side.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Schedule at once: every submission and every job end triggers a scheduling pass anyway;
# the periodic passes (main loop, backfill) run every second or two instead of 60 s / 30 s.
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,batch_sched_delay=0,sched_min_interval=0
# A node that was down comes back as soon as its slurmd registers.
ReturnToService=2
# MaxArraySize=3 is deliberately small: array indices may only be 0..2, so the tests check
# that "basin submit" splits a larger array (e.g. 4 tasks) into several Slurm arrays.
MaxArraySize=3
# Batch jobs may be requeued (scontrol requeue, also for one array task from its own script).
JobRequeue=1
# No slurmdbd, so no accounting: sacct only says "Slurm accounting storage is disabled".
# Finished jobs stay in slurmctld's memory for MinJobAge seconds: "scontrol show job" and
# "squeue -t all" show them (COMPLETED, FAILED, ...), plain "squeue" and "squeue -j" do not.
# Each finished run is also logged to JobCompLoc, one line each (a requeued run as PENDING).
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.txt
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

echo "== slurm: munge"
if [[ ! -s /etc/munge/munge.key ]]; then
    echo "slurm: generating /etc/munge/munge.key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
chmod 0700 /var/log/munge
rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
runuser -u munge -- /usr/sbin/munged --force
for i in $(seq 1 50); do
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
    if [[ $i == 50 ]]; then
        echo "slurm: munged does not answer; its log:" >&2
        tail -n 20 /var/log/munge/munged.log >&2 || true
        exit 1
    fi
    sleep 0.1
done

echo "== slurm: slurmctld and slurmd"
/usr/sbin/slurmctld
/usr/sbin/slurmd

why_not_idle() {
    echo "slurm: the node did not become idle within 60 s" >&2
    for d in slurmctld slurmd munged; do
        if ps -C "$d" -o stat= | grep -qv Z; then echo "  $d: running" >&2; else echo "  $d: NOT running" >&2; fi
    done
    sinfo >&2 || true
    scontrol show node >&2 || true
    echo "-- slurmctld.log" >&2; tail -n 30 "$LOGS/slurmctld.log" >&2 || true
    echo "-- slurmd.log" >&2; tail -n 30 "$LOGS/slurmd.log" >&2 || true
}

STATE_NOW=""
for i in $(seq 1 120); do
    STATE_NOW=$(sinfo -h -o %T 2>/dev/null | head -n 1 || true)
    [[ $STATE_NOW == idle ]] && break
    if [[ $i == 120 ]]; then why_not_idle; exit 1; fi
    sleep 0.5
done

echo "slurm: node $HOST idle, $CPUS CPUs, RealMemory=$REAL_MEM MiB, partition debug, MaxArraySize=3 (up in $(( $(date +%s) - START )) s)"
