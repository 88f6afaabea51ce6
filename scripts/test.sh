#!/usr/bin/env bash
# The whole test suite: installs what the tests need (scripts/install-deps.sh:
# Debian packages, the Python tools in target/test-env), then runs every test.
# The tests start what they drive on this machine: pcscd (when running as
# root; otherwise this script starts it with sudo), moto_server, the virtual
# YubiKey, the STS front and the daemon, all on 127.0.0.1.
#
# Whatever the run starts, it stops: the tests stop their own processes, and
# at the end this script stops any process still running that the run
# started (marked by AWS_SESSION_DAEMON_TEST_RUN in its environment), and
# the pcscd it started. A pcscd that was running before is left alone (but
# the pcscd restart tests stop it: the script then says how to start it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
. scripts/test-env.sh

AWS_SESSION_DAEMON_TEST_RUN=$$-$(date +%s%N)
export AWS_SESSION_DAEMON_TEST_RUN
pcscd_before=$(pgrep -x pcscd || true)
started=
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  # The tests cannot start pcscd without root.
  as_root=(sudo)
  started=$(scripts/start-pcscd.sh)
fi

# vpcd's ports (35963, 35964) lie in the kernel's range of ephemeral ports:
# a client socket of the tests given one of them as its local port keeps
# vpcd from listening when a test starts pcscd. Reserved for the run (root
# only), then as before.
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
reserved_before=
reserved_set=
if [ "$(id -u)" -eq 0 ] && [ -w "$reserved" ]; then
  reserved_before=$(cat "$reserved")
  if echo "35963-35964${reserved_before:+,$reserved_before}" >"$reserved" 2>/dev/null; then
    reserved_set=1
  fi
fi

cleanup() {
  if [ -n "$reserved_set" ]; then echo "$reserved_before" >"$reserved" 2>/dev/null || true; fi
  if [ -n "$started" ]; then "${as_root[@]}" kill "$started" 2>/dev/null || true; fi
  scripts/stop-test-processes.sh "$AWS_SESSION_DAEMON_TEST_RUN" || true
  if [ -n "$pcscd_before" ] && ! pgrep -x pcscd >/dev/null; then
    echo "the pcscd restart tests stopped the pcscd that ran before the tests; start it again with"
    echo "  sudo systemctl restart pcscd.socket   (or: sudo pcscd)"
  fi
}
trap cleanup EXIT
# Every test binary runs even when one fails; the summary at the end names
# every failed test.
scripts/cargo-test.sh "$@"
