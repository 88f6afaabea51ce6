#!/usr/bin/env bash
# Release-profile options compared: for each, a clean release build of the
# daemon (its own target directory, so that nothing is reused), its time,
# the load average around it, the binary's size as built and stripped, and
# optionally the run-time figures of the benchmark with that binary.
#
#   bash examples/bench/profiles.sh [--run] [NAME...]
#
# NAME is one of the options below (default: all). With --run, each binary
# then runs `bench --only latency,idle --no-build --daemon BINARY` (the
# benchmark itself must be built: cargo build --release --example bench ...).
# Results are appended to target/profiles/results.tsv; every build takes
# 3.5 to 5 minutes on 2 cores, so the whole set takes about an hour.
#
# The options are passed as `--config profile.release.KEY=VALUE` over
# Cargo's defaults ("default" is Cargo.toml as it is). panic = "abort" is not among
# them: the daemon relies on unwinding (a panicking task is reported by its
# JoinSet, the runtime survives it).
set -euo pipefail
cd "$(dirname "$0")/../.."

declare -A OPTIONS=(
	[default]=""
	[cargo-default]="opt-level=3"
	[strip]="strip=true"
	[thin]="lto=\"thin\""
	[thin-strip]="lto=\"thin\" strip=true"
	[fat]="lto=\"fat\""
	[cgu1]="codegen-units=1"
	[thin-cgu1]="lto=\"thin\" codegen-units=1"
	[fat-cgu1-strip]="lto=\"fat\" codegen-units=1 strip=true"
	[s]="opt-level=\"s\""
	[z]="opt-level=\"z\""
	[s-thin-strip]="opt-level=\"s\" lto=\"thin\" strip=true"
	[s-fat-cgu1-strip]="opt-level=\"s\" lto=\"fat\" codegen-units=1 strip=true"
	[z-thin-strip]="opt-level=\"z\" lto=\"thin\" strip=true"
	[z-fat-cgu1-strip]="opt-level=\"z\" lto=\"fat\" codegen-units=1 strip=true"
)
ORDER=(default cargo-default strip thin thin-strip fat cgu1 thin-cgu1 fat-cgu1-strip s z s-thin-strip s-fat-cgu1-strip z-thin-strip z-fat-cgu1-strip)

run=false
names=()
for arg in "$@"; do
	case "$arg" in
	--run) run=true ;;
	*)
		[[ -n "${OPTIONS[$arg]+x}" ]] || {
			echo "unknown option set $arg; known: ${ORDER[*]}" >&2
			exit 2
		}
		names+=("$arg")
		;;
	esac
done
[[ ${#names[@]} -gt 0 ]] || names=("${ORDER[@]}")

out=target/profiles
mkdir -p "$out"
results=$out/results.tsv
[[ -s $results ]] || printf 'name\toptions\tbuild_s\tload_before\tload_after\tbytes\tstripped_bytes\tcommit\n' >"$results"

for name in "${names[@]}"; do
	target=$out/$name
	rm -rf "$target"
	# Every set but "default" is complete: Cargo's own defaults for the
	# release profile, with the set's options over them (so that the names
	# keep their meaning whatever Cargo.toml chooses).
	configs=()
	if [[ $name != default ]]; then
		declare -A set=([opt-level]=3 [lto]=false [codegen-units]=16 [strip]='"debuginfo"')
		for option in ${OPTIONS[$name]}; do
			set[${option%%=*}]=${option#*=}
		done
		for key in "${!set[@]}"; do
			configs+=(--config "profile.release.$key=${set[$key]}")
		done
		unset set
	fi
	echo "== $name: ${OPTIONS[$name]:-(Cargo.toml as it is)}"
	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	start=$(date +%s.%N)
	CARGO_TARGET_DIR=$target cargo build --quiet --release --bin aws-session-daemon "${configs[@]}"
	end=$(date +%s.%N)
	load_after=$(cut -d' ' -f1-3 /proc/loadavg)
	binary=$target/release/aws-session-daemon
	bytes=$(stat -c %s "$binary")
	stripped=-
	if command -v strip >/dev/null; then
		strip -o "$target/stripped" "$binary"
		stripped=$(stat -c %s "$target/stripped")
	fi
	seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	printf '%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\n' "$name" "${OPTIONS[$name]:-}" "$seconds" \
		"$load_before" "$load_after" "$bytes" "$stripped" "$(git rev-parse --short HEAD)" >>"$results"
	echo "   ${seconds%.*} s, $bytes B, stripped $stripped B (load $load_before -> $load_after)"
	if $run; then
		target/release/examples/bench --no-build --only latency,idle --idle-seconds 120 \
			--daemon "$binary" --json "$out/$name.json" | tee "$out/$name.md"
	fi
	# Keep the binary, drop the rest (each target directory is ~1 GB).
	cp "$binary" "$out/$name.bin"
	rm -rf "$target"
done
column -t -s $'\t' "$results"
