#!/usr/bin/env bash
# The whole test suite: installs what the tests need, starts pcscd (the tests
# drive the real PC/SC stack through the vpcd virtual reader), runs every test.
# Tests start their own moto_server and virtual YubiKey on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
started=$(scripts/start-pcscd.sh)
cleanup() { if [ -n "$started" ]; then kill "$started" 2>/dev/null || true; fi; }
trap cleanup EXIT
cargo test --locked --all-targets "$@"
