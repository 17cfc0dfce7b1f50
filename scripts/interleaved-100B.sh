#!/usr/bin/env bash
# The ~100 B cases of the speed table measured so that machine noise cancels out (issue 14):
# `examples/instructions <case> <arm> N` for every case and arm, in ROUNDS interleaved rounds
# (every arm once per round, in turn), each timed as the CPU time (user + system, from
# /proc/<pid>/stat at exit via `/usr/bin/time`) of N requests minus that of the same binary
# with 0 requests (startup). Prints µs per request per arm as the median over rounds, and the
# ratios of medians. Criterion's one-run table on a shared 2-core VM moves by 30-80 % between
# runs; the medians of interleaved rounds move by a few percent.
#
#   bash scripts/interleaved-100B.sh [ROUNDS] [N]      # default 7 rounds of 200000 requests
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
N=${2:-200000}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/examples/instructions
cargo build --release --example instructions >&2
cpu() { # seconds of CPU for: $BIN "$@"
    /usr/bin/time -f "%U %S" "$BIN" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'
}
declare -A samples
for round in $(seq "$ROUNDS"); do
    for c in untouched read write; do
        for arm in none actix-session memo nomemo; do
            full=$(cpu "$c" "$arm" "$N")
            empty=$(cpu "$c" "$arm" 0)
            samples[$c/$arm]+="$(python3 -c "print(($full - $empty) / $N * 1e6)") "
        done
    done
    echo "round $round/$ROUNDS done" >&2
done
python3 - "$ROUNDS" "$N" <<PY
import statistics, sys
rows = """$(for k in "${!samples[@]}"; do echo "$k ${samples[$k]}"; done)"""
data = {}
for line in rows.strip().splitlines():
    key, *vals = line.split()
    data[key] = statistics.median(float(v) for v in vals)
print(f"µs of CPU per request, median of {sys.argv[1]} interleaved rounds of {sys.argv[2]} requests")
print()
print("| case | no middleware | actix-session | ours (memo) | ours (memo off) | ours / actix-session (memo / off) | ours / none (memo / off) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for c in ["untouched", "read", "write"]:
    n, a, m, o = (data[f"{c}/{arm}"] for arm in ["none", "actix-session", "memo", "nomemo"])
    print(f"| {c} | {n:.2f} | {a:.2f} | {m:.2f} | {o:.2f} | {m/a:.2f}x / {o/a:.2f}x | {m/n:.2f}x / {o/n:.2f}x |")
PY
