#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for SECONDS each (default 20),
# installing cargo-fuzz first if it is missing. Works on stable Rust:
# cargo-fuzz passes -Z flags to rustc, which RUSTC_BOOTSTRAP=1 allows.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   FUZZ_BUILD=--dev      build without optimizations (quicker to build, slower to run)
#   FUZZ_JOBS=N           run N workers per target (libFuzzer -fork)
# Crashes are saved under fuzz/artifacts/TARGET/ and make the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

cd fuzz
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
build=${FUZZ_BUILD:-}
# AddressSanitizer finds little in safe Rust and slows building and running;
# panics (the invariants checked are asserts) are what these targets look for.
if [ $# -gt 0 ]; then
  for t in "${targets[@]}"; do cargo fuzz build ${build} --debug-assertions --sanitizer none "$t"; done
else
  cargo fuzz build ${build} --debug-assertions --sanitizer none
fi

status=0
for target in "${targets[@]}"; do
  corpus=corpus/$target
  mkdir -p "$corpus"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  echo "== $target: ${seconds} s"
  log=$(mktemp)
  if ! cargo fuzz run ${build} --debug-assertions --sanitizer none "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 ${FUZZ_JOBS:+-fork=$FUZZ_JOBS} \
      >"$log" 2>&1; then
    status=1
    tail -n 60 "$log"
    echo "== $target: FAILED (see fuzz/artifacts/$target/)"
  else
    grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::new_units_added' "$log" | sed "s/^/   /" || true
    grep -E '^Done [0-9]+ runs' "$log" | sed "s/^/   /" || true
  fi
  rm -f "$log"
done
exit $status
