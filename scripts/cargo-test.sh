#!/usr/bin/env bash
# The test step of scripts/test.sh: `cargo test --locked --all-targets
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
cargo test --locked --all-targets --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# cargo prints `Running tests/x.rs (target/...)` (or `Running unittests
# src/lib.rs (...)`) before each binary, `test NAME ... FAILED` for each
# failed test (a child process's output may share the line, hence no
# anchors), and `error: test failed, to rerun pass `--test x`` after each
# binary that failed.
summary=$(awk '
  /^ *Running / {
    binary = ($2 == "unittests") ? $3 " (unit tests)" : $2
    failed_here = 0
    next
  }
  match($0, /test [^ ]+ \.\.\. FAILED/) {
    name = substr($0, RSTART + 5, RLENGTH - 16)
    if (!((binary, name) in seen)) {
      seen[binary, name] = 1
      lines[++count] = "  " binary ": " name
      failed_here++
    }
    next
  }
  /error: test failed, to rerun pass/ {
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
