#!/usr/bin/env bash
# Stops the processes a test run left running: those with MARK as the value
# of AWS_SESSION_DAEMON_TEST_RUN in their environment (scripts/test.sh sets
# it; every process the tests start inherits it, pcscd included). Says what
# it stops. SIGTERM, then SIGKILL after 5 s.
# Usage: scripts/stop-test-processes.sh MARK
set -euo pipefail
mark=${1:?usage: $0 MARK}
leftovers=()
for environ in /proc/[0-9]*/environ; do
  pid=${environ#/proc/}
  pid=${pid%/environ}
  [ "$pid" = "$$" ] && continue
  if tr '\0' '\n' 2>/dev/null <"$environ" | grep -qxF "AWS_SESSION_DAEMON_TEST_RUN=$mark"; then
    leftovers+=("$pid")
  fi
done
[ ${#leftovers[@]} -eq 0 ] && exit 0
as_root=()
[ "$(id -u)" -ne 0 ] && as_root=(sudo)
echo "stopping what the tests left running:"
for pid in "${leftovers[@]}"; do
  echo "  $pid $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")"
  "${as_root[@]}" kill -TERM "$pid" 2>/dev/null || true
done
for _ in $(seq 50); do
  alive=()
  for pid in "${leftovers[@]}"; do [ -e "/proc/$pid" ] && alive+=("$pid"); done
  [ ${#alive[@]} -eq 0 ] && exit 0
  sleep 0.1
done
"${as_root[@]}" kill -KILL "${alive[@]}" 2>/dev/null || true
