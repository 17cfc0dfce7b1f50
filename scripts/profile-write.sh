#!/usr/bin/env bash
# Profile of the small write path (issue 14): `examples/instructions write memo N` (N write
# requests of a ~100 B session through the real actix service, the default memo) built in
# release with line tables, recorded with `perf record`, folded with inferno.
#
#   bash scripts/profile-write.sh [N]        # N requests, default 300000
#
# Writes under benches/notes/:
#   profile-write.svg      flame graph (inferno) of the requests' own stacks (from the real
#                          service's `call_service` down), frames merged by function
#   profile-write.txt      top 25 functions by self and by inclusive share of those stacks
#   profile-write.folded   the folded stacks both are made from (git-ignored: large)
# Needs perf (Debian: linux-perf); if perf cannot record here (no perf_event access), falls
# back to valgrind's callgrind: the text report then comes from callgrind_annotate and there
# is no flame graph. Installs inferno (`cargo install inferno --locked`) when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:-300000}
OUT=benches/notes
mkdir -p "$OUT"
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/examples/instructions
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "building examples/instructions (release, line tables)" >&2
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --example instructions >&2

# Folded stacks on stdin -> the request's own stacks (trimmed to start at `call_service`, the
# real service's call, so the test client's request building and the runtime are left out)
# on fd 3, and the top 25 functions by self and inclusive share of the request on stdout.
top25() {
    python3 -c '
import collections, os, sys
ROOT = "actix_web::test::test_utils::call_service::{{closure}}"
out = os.fdopen(3, "w")
self_, incl = collections.Counter(), collections.Counter()
total = inside = 0
for line in sys.stdin:
    stack, _, n = line.rstrip("\n").rpartition(" ")
    if not stack:
        continue
    n = int(n)
    total += n
    frames = stack.split(";")
    if ROOT not in frames:
        continue
    frames = frames[frames.index(ROOT):]
    inside += n
    out.write(";".join(frames) + f" {n}\n")
    self_[frames[-1]] += n
    for f in set(frames):
        incl[f] += n
print(f"{total / 1e6:.0f} ms of CPU sampled, {100 * inside / max(total, 1):.1f} % of it inside")
print("call_service (the middleware, the app and the handler); shares below are of that part.")
for title, c in (("self", self_), ("inclusive", incl)):
    print(f"\nTop 25 by {title} share of the request:\n")
    for f, n in c.most_common(25):
        print(f"{100 * n / max(inside, 1):6.2f} %  {f[:160]}")
'
}

if perf record -o "$TMP/probe.data" -F 99 -g -- true >/dev/null 2>&1; then
    if ! command -v inferno-flamegraph >/dev/null 2>&1; then
        echo "prerequisite: installing inferno (cargo install inferno --locked)" >&2
        cargo install inferno --locked >&2
    fi
    # DWARF unwinding: release code keeps no frame pointers, so `-g`'s default (frame
    # pointers) would cut every stack short; the line tables give file:line-accurate frames.
    echo "recording $N writes with perf" >&2
    perf record -o "$TMP/perf.data" -F 4999 --call-graph dwarf,16384 -- \
        "$BIN" write memo "$N" 2>"$TMP/record.log" || { cat "$TMP/record.log" >&2; exit 1; }
    perf script -i "$TMP/perf.data" 2>/dev/null |
        inferno-collapse-perf >"$TMP/raw.folded"
    {
        echo "perf record -F 4999 --call-graph dwarf: $BIN write memo $N"
        echo "(frames include inlined functions; libc's malloc/free/memcpy appear by name)"
        top25 <"$TMP/raw.folded" 3>"$OUT/profile-write.folded"
    } >"$OUT/profile-write.txt"
    inferno-flamegraph --title "sealed-session: write ~100 B, memo on, inside call_service ($N requests, perf)" \
        --width 1600 --minwidth 0.2 <"$OUT/profile-write.folded" >"$OUT/profile-write.svg"
else
    echo "perf cannot record here; falling back to callgrind (no flame graph)" >&2
    N=${1:-20000}
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" "$BIN" write memo "$N" >&2
    {
        echo "valgrind --tool=callgrind: $BIN write memo $N"
        echo
        echo "Top 25 by inclusive cost:"
        callgrind_annotate --inclusive=yes "$TMP/cg.out" | head -45
        echo
        echo "Top 25 by self cost:"
        callgrind_annotate --inclusive=no "$TMP/cg.out" | head -45
    } >"$OUT/profile-write.txt"
fi
echo "written: $(ls "$OUT"/profile-write.*)" >&2
