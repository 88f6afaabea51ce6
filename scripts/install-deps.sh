#!/usr/bin/env bash
# Installs what building and testing aws-session-daemon needs on Debian/Ubuntu:
# the PC/SC stack (library, daemon, virtual reader driver), systemd-analyze and
# nix-instantiate for the service files, libfaketime for the clock-jump test,
# and the Python tools the tests use as real consumers and emulators (moto,
# awscli, botocore).
# Usage: scripts/install-deps.sh [--runtime-only]
set -euo pipefail

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

apt_packages=(libpcsclite-dev pkg-config pcscd)
if [ "${1:-}" != "--runtime-only" ]; then
  # libfaketime: the fault tests move the daemon's wall clock (a suspend).
  apt_packages+=(vsmartcard-vpcd dbus-daemon systemd nix-bin supervisor libfaketime)
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import moto, botocore, awscli' 2>/dev/null || ! command -v moto_server >/dev/null || ! command -v aws >/dev/null; then
  echo "installing Python tools: moto[server] awscli botocore"
  "$python" -m pip install -q 'moto[server]' awscli botocore \
    || "$python" -m pip install -q --break-system-packages 'moto[server]' awscli botocore
fi
