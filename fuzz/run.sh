#!/usr/bin/env bash
# Runs every fuzz target in turn for SECONDS each (default 600), from the seeds in fuzz/seeds/.
# Needs cargo-fuzz (cargo install cargo-fuzz). On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its -Z flags; the code is safe Rust, so no sanitizer is used (-s none), but
# debug assertions are on (-a) so that integer overflow is caught as a crash.
# Not run in CI. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
export RUSTC_BOOTSTRAP=1
for target in ${TARGETS:-idx npy cifar model spec cli}; do
  mkdir -p "corpus/$target"
  cargo fuzz run -s none -a -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$secs" -max_len=16384 -print_final_stats=1 2>&1 | tail -n 25
done
