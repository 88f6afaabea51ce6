#!/usr/bin/env bash
# The test step of scripts/test.sh: `cargo test --locked --workspace --all-targets
# --no-fail-fast` with the given arguments, so that every test binary runs
# even when an earlier one fails (cargo's default stops at the first, and a
# fresh machine's one failure hid 126 later tests), then a summary that
# names every failed test, by test binary, and every test binary that failed
# without naming one (a crash, a kill, a harness error). Exits with cargo's
# status: non-zero when anything failed.
#
# Usage: scripts/cargo-test.sh [cargo test arguments...]
set -uo pipefail

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# cargo prints `Running tests/x.rs (target/...)` (or `Running unittests
# src/lib.rs (...)`) before each test binary, and `error: test failed, to
# rerun pass ...` after each one that failed. libtest ends a binary with
# failures with a list, `failures:` then one failed test per line indented
# by four spaces, then `test result: FAILED`; before it, the output the
# failed tests printed, each after a `---- NAME stdout ----` line, which
# is skipped (it may hold anything). The `test NAME ... FAILED` progress
# lines are not used: a test's child process writing to the terminal can
# split them.
summary=$(awk '
  /^---- .* stdout ----$/ { captured = 1; next }
  /^ *Running / && !captured {
    binary = ($2 == "unittests") ? $3 " (unit tests)" : $2
    failed_here = 0
    pending = 0
    next
  }
  /^failures:$/ { listing = 1; pending = 0; next }
  listing && /^    [^ ]+$/ {
    captured = 0
    names[++pending] = substr($0, 5)
    next
  }
  { listing = 0 }
  /^test result: FAILED/ && !captured {
    for (i = 1; i <= pending; i++) {
      lines[++count] = "  " binary ": " names[i]
      failed_here++
    }
    pending = 0
    next
  }
  /error: test failed, to rerun pass/ {
    captured = 0
    binaries++
    if (failed_here == 0) {
      lines[++count] = "  " binary ": the test binary failed without naming a test (crashed, killed, or its harness failed; see its output above)"
    }
    next
  }
  END {
    for (i = 1; i <= count; i++) print lines[i]
    printf "%d test binar%s failed\n", binaries, (binaries == 1 ? "y" : "ies")
  }
' "$log")

echo
if [ "$status" -eq 0 ]; then
  echo "== all tests passed"
else
  echo "== FAILED (cargo test exited $status):"
  if [ -n "$(printf '%s\n' "$summary" | grep '^  ')" ]; then
    printf '%s\n' "$summary"
  else
    echo "  no test ran to a result: the build or cargo itself failed (see above)"
  fi
fi
exit "$status"
