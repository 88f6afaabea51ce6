#!/usr/bin/env bash
# Starts pcscd in the background (foreground mode, so its lifetime is ours)
# unless one is already answering. Prints the PID it started, if any.
set -euo pipefail
if pgrep -x pcscd >/dev/null; then exit 0; fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" mkdir -p /run/pcscd
# pcsc-lite 2 (Debian 13) asks polkit who may use pcscd; this one serves the
# virtual key on machines that may run no polkit daemon (CI, containers),
# where polkit would refuse every client.
flags=(-f)
if pcscd --help 2>&1 | grep -q -- --disable-polkit; then flags+=(--disable-polkit); fi
"${sudo_cmd[@]}" pcscd "${flags[@]}" >/tmp/aws-session-daemon-pcscd.log 2>&1 &
echo $!
for _ in $(seq 50); do [ -S /run/pcscd/pcscd.comm ] && break; sleep 0.1; done
