#!/usr/bin/env bash
# The whole test suite: what the README's second command runs and what CI runs. Works on a
# fresh machine: it installs what it needs (Debian packages through the Python tests, pip
# packages for the independent decoder, cargo-fuzz for the fuzz smoke run).
#
# Skips, only when asked (CI sets none of these):
#   SEALED_SESSION_SKIP_CLUSTER=1  SEALED_SESSION_SKIP_BROWSER=1  SEALED_SESSION_SKIP_FUZZ=1
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() { printf '\n==> %s\n' "$*"; }

# Adds the closing "N passed, M failed" lines of one runner's output to the totals.
count() {
  local p f closing
  closing=$(grep -E '^(test result: |[a-z]+: [0-9]+ passed, |[0-9]+ passed, )' "$log" || true)
  p=$(grep -Eo '[0-9]+ passed' <<<"$closing" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' <<<"$closing" | awk '{s+=$1} END {print s+0}')
  passed=$((passed + p))
  failed=$((failed + f))
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test (unit, integration, CLI, vectors, proptests, fuzz corpus replay, doc tests)"
cargo test --all-targets --locked 2>&1 | tee "$log"
cargo test --doc --locked 2>&1 | tee -a "$log"
count

step "independent Python decoder against docs/vectors/v1.json"
if ! python3 -c 'import cryptography, lz4' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check cryptography lz4
fi
python3 tests/python/check_vectors.py 2>&1 | tee "$log"
count

step "build the demo and the CLI for the real-parts tests"
cargo build --locked --example demo --bin sealed-session

step "nginx round-robin cluster"
python3 tests/cluster/cluster_test.py 2>&1 | tee "$log"
count

step "headless Chromium"
python3 tests/browser/browser_test.py 2>&1 | tee "$log"
count

if [ "${SEALED_SESSION_SKIP_FUZZ:-}" = "1" ]; then
  echo "!!! SKIPPED by SEALED_SESSION_SKIP_FUZZ=1: fuzz smoke run"
else
  step "fuzz smoke run (every target, 20 s each, nightly)"
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
  fi
  scratch=$(mktemp -d)
  (cd fuzz && cargo +nightly fuzz build -O)
  for target in $(cd fuzz && cargo +nightly fuzz list); do
    # New inputs go to a scratch directory: the committed seeds stay as they are. ASan's
    # quarantine is shrunk so it does not count against the 256 MB RSS limit (fuzz/README.md).
    mkdir -p "$scratch/$target"
    (cd fuzz && ASAN_OPTIONS=quarantine_size_mb=16 cargo +nightly fuzz run -O "$target" \
      "$scratch/$target" "corpus/$target" -- -max_total_time=20 -rss_limit_mb=256 -timeout=1) 2>&1 | tail -n 2
    passed=$((passed + 1))
  done
  rm -rf "$scratch"
fi

printf '\nsuite: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
