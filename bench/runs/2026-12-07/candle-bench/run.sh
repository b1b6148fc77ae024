#!/bin/bash
# Runs the timing binary at 1 and 2 threads, logging the load average around each run.
cd /tmp/candle-bench
for t in 1 2; do
  echo "### RAYON_NUM_THREADS=$t  loadavg before: $(cat /proc/loadavg)  $(date -u +%H:%M:%S)"
  RAYON_NUM_THREADS=$t nice -n 10 ./target/release/candle-bench gemm 2>&1
  RAYON_NUM_THREADS=$t nice -n 10 ./target/release/candle-bench conv 2>&1
  echo "### RAYON_NUM_THREADS=$t  loadavg after: $(cat /proc/loadavg)  $(date -u +%H:%M:%S)"
done
