#!/usr/bin/env bash
# Profile of the small write path (issue 14): `examples/instructions write memo N` (N write
# requests of a ~100 B session through the real actix service, the default memo) built in
# release with line tables, recorded with `perf record`, folded with inferno.
#
#   bash scripts/profile-write.sh [N]        # N requests, default 300000
#
# Writes under benches/notes/:
#   profile-write.svg      flame graph (inferno), frames merged by function
#   profile-write.txt      top 25 functions by self and by inclusive share of the samples
#   profile-write.folded   the folded stacks both are made from (not committed: large)
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

top25() { # folded stacks on stdin -> top 25 self and inclusive
    python3 -c '
import collections, sys
self_, incl, total = collections.Counter(), collections.Counter(), 0
for line in sys.stdin:
    stack, _, n = line.rstrip("\n").rpartition(" ")
    if not stack:
        continue
    n = int(n)
    total += n
    frames = stack.split(";")
    self_[frames[-1]] += n
    for f in set(frames):
        incl[f] += n
print(f"{total} samples")
for title, c in (("self", self_), ("inclusive", incl)):
    print(f"\nTop 25 by {title} share of the samples:\n")
    for f, n in c.most_common(25):
        print(f"{100 * n / total:6.2f} %  {f}")
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
    # Only the request loop: drop samples outside `drive` (start-up, seeding, exit).
    grep 'instructions::drive' "$TMP/raw.folded" >"$OUT/profile-write.folded" ||
        cp "$TMP/raw.folded" "$OUT/profile-write.folded"
    inferno-flamegraph --title "sealed-session: write ~100 B, memo on ($N requests, perf)" \
        --width 1600 <"$OUT/profile-write.folded" >"$OUT/profile-write.svg"
    {
        echo "perf record -F 4999 --call-graph dwarf: $BIN write memo $N"
        echo "(samples inside instructions::drive only; frames are inlined functions too)"
        top25 <"$OUT/profile-write.folded"
    } >"$OUT/profile-write.txt"
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
