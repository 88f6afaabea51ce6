#!/usr/bin/env bash
# The main job, end to end, on this machine alone: a virtual YubiKey on the
# real PC/SC stack (pcscd + vpcd), a local STS emulator (moto) behind the
# project's STS front that checks TOTP codes like AWS does, and the daemon
# keeping three profiles fresh in a temporary HOME. Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh --demo
. scripts/test-env.sh
python=$(test_tool python3)
moto_server=$(test_tool moto_server)
aws=$(test_tool aws)

bin=$root/target/release/aws-session-daemon
if [ ! -x "$bin" ]; then
  echo "== building the daemon, the virtual YubiKey and the STS front: a release build of about"
  echo "   230 crates into target/: about 10 minutes on 2 cores the first time, seconds afterwards"
else
  echo "== building the daemon, the virtual YubiKey and the STS front (release; what changed)"
fi
cargo build --release --bin aws-session-daemon --example virtual_yubikey --example sts_fault_front

demo=$(mktemp -d /tmp/aws-session-daemon-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT

started=$(scripts/start-pcscd.sh)
if [ -n "$started" ]; then pids+=("$started"); fi

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
moto_port=$(free_port)
"$moto_server" -H 127.0.0.1 -p "$moto_port" >"$demo/moto.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break; sleep 0.1; done

# The virtual YubiKey holds the AWS credential; the STS front knows the same
# secret, so only a code read from the key is accepted.
secret_hex=3132333435363738393031323334353637383930
serial="arn:aws:iam::123456789012:mfa/demo"
cat >"$demo/yubikey.toml" <<TOML
[[credential]]
name = "Amazon Web Services:demo@123456789012"
type = "totp"
algorithm = "sha1"
digits = 6
secret_hex = "$secret_hex"
touch = false
TOML
"$root/target/release/examples/virtual_yubikey" --port 35963 --credentials "$demo/yubikey.toml" \
  --counter-file "$demo/calculations" >"$demo/yubikey.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  "$bin" oath list 2>/dev/null | grep -q "demo@123456789012" && break
  sleep 0.1
done
"$root/target/release/examples/sts_fault_front" --upstream "http://127.0.0.1:$moto_port" --port 0 \
  --totp-secret "$serial=hex:$secret_hex" >"$demo/front.out" 2>"$demo/front.log" & pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$demo/front.out" 2>/dev/null && break; sleep 0.1; done
front=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$demo/front.out" | head -1)

export HOME=$demo/home XDG_RUNTIME_DIR=$demo/run
mkdir -p "$HOME/.aws" "$HOME/.config/aws-session-daemon" "$XDG_RUNTIME_DIR"
cat >"$HOME/.aws/credentials" <<INI
# Long-term keys (AWS's documentation example).
[default]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
INI
chmod 600 "$HOME/.aws/credentials"
cat >"$HOME/.config/aws-session-daemon/config.toml" <<TOML
mfa_serial_number = "$serial"
mfa_oath_slot = "Amazon Web Services:demo@123456789012"
sts_endpoint = "http://$front"
region = "us-east-1"

[[org]]
assume_role_arn = "arn:aws:iam::{section}:role/Admin"
[[org.111111111111]]
[[org.222222222222]]
[[org.333333333333]]
TOML

echo "== plan (touches neither the key nor the network)"
"$bin" plan || true
echo
echo "== apply: one pass"
before=$(cat "$demo/calculations" 2>/dev/null || echo 0)
"$bin" apply
echo "YubiKey commands used by apply: $(( $(cat "$demo/calculations") - before )) (one code for three roles)"
echo
echo "== the AWS CLI uses the written profiles"
for account in 111111111111 333333333333; do
  AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" \
    "$aws" sts get-caller-identity --profile "$account" --query Arn --output text
done
echo
echo "== run: the daemon restores a profile deleted by hand"
"$bin" run >"$demo/daemon.log" 2>&1 & daemon=$!; pids+=($daemon)
sleep 1
"$python" - "$HOME/.aws/credentials" <<'PY'
import re, sys, time
path = sys.argv[1]
text = open(path).read()
open(path, "w").write(re.sub(r"\[222222222222\][^\[]*", "", text))
start = time.time()
while "[222222222222]" not in open(path).read():
    if time.time() - start > 5:
        sys.exit("not restored within 5 s")
    time.sleep(0.005)
print(f"[222222222222] deleted and restored in {(time.time() - start) * 1000:.0f} ms")
PY
kill -TERM "$daemon"; wait "$daemon" || true
echo
echo "== status"
"$bin" status
echo
echo "== daemon log"
cat "$demo/daemon.log"
