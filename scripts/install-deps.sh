#!/usr/bin/env bash
# Installs what building aws-session-daemon, its demo and its tests need on
# Debian 12 or Ubuntu 24.04, and nothing into the system's Python:
#
# 1. Debian packages, through apt-get, only those missing:
#    - the daemon:  libpcsclite-dev pkg-config (to build), pcscd (to run)
#    - the demo:    + vsmartcard-vpcd (the virtual reader the virtual YubiKey
#                   plugs into), procps, python3 python3-venv
#    - the tests:   + systemd (systemd-analyze), nix-bin (nix-instantiate),
#                   supervisor (the service files' checks), libfaketime (the
#                   clock-jump test), dbus-daemon gnome-keyring (a Secret
#                   Service on a private bus), fish (`export --format fish`
#                   run by the shell it is for)
# 2. For the demo and the tests, a Python virtual environment in
#    target/test-env/ (or $AWS_SESSION_DAEMON_TEST_ENV) made by the system's
#    python3 -m venv, with the pinned tools of
#    scripts/test-env-requirements.txt (moto[server], awscli, botocore) from
#    PyPI; reused while it has them.
# 3. For the tests, a local system user aws-session-daemon-test (no home,
#    no login shell) that owns files for the ownership checks.
#
# Usage: scripts/install-deps.sh [--runtime-only | --demo]
#   (no option)     everything the tests need
#   --demo          what scripts/demo.sh needs (1. up to "the demo", and 2.)
#   --runtime-only  what building and running the daemon needs (1. "the daemon")
# Remove it all again: see docs/development.md, "What they install".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/test-env.sh

mode=tests
case "${1:-}" in
  "") ;;
  --demo) mode=demo ;;
  --runtime-only) mode=runtime ;;
  *) echo "usage: $0 [--runtime-only | --demo]" >&2; exit 2 ;;
esac

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps: not root and no sudo: run this as root, or install sudo" >&2
    exit 1
  fi
  as_root=(sudo)
fi

apt_packages=(libpcsclite-dev pkg-config pcscd)
if [ "$mode" != runtime ]; then
  apt_packages+=(vsmartcard-vpcd procps python3 python3-venv)
fi
if [ "$mode" = tests ]; then
  apt_packages+=(systemd nix-bin supervisor libfaketime dbus-daemon gnome-keyring fish)
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  log=$(mktemp)
  if ! { "${as_root[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-deps: apt-get failed (above)" >&2
    exit 1
  fi
  rm -f "$log"
  echo "   (to remove them again: sudo apt-get remove --autoremove ${missing[*]})"
fi
[ "$mode" = runtime ] && exit 0

# The system's interpreter, not whichever python3 is first on PATH (pyenv,
# conda): the environment must work with what the distribution ships.
venv=$AWS_SESSION_DAEMON_TEST_ENV
requirements=scripts/test-env-requirements.txt
if ! cmp -s "$requirements" "$venv/requirements.txt" ||
  ! "$venv/bin/python3" -c 'import moto, botocore, awscli' 2>/dev/null ||
  [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/aws" ]; then
  echo "== $venv: a Python virtual environment with $(grep -v '^#' "$requirements" | tr '\n' ' ')from PyPI (about a minute)"
  if ! "$venv/bin/python3" -c '' 2>/dev/null; then
    if [ -e "$venv" ] && [ ! -e "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then
      echo "install-deps: $venv exists and is not a Python virtual environment; move it away" >&2
      exit 1
    fi
    /usr/bin/python3 -m venv --clear "$venv"
  fi
  PIP_REQUIRE_VIRTUALENV=1 "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
  echo "   (to remove it again: rm -rf $venv)"
fi
[ "$mode" = demo ] && exit 0

user=aws-session-daemon-test
if ! getent passwd "$user" >/dev/null; then
  echo "== adding the local system user $user (no home, no login shell) for the ownership tests"
  "${as_root[@]}" useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
  echo "   (to remove it again: sudo userdel $user)"
fi
