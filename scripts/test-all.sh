#!/usr/bin/env bash
# The whole test suite: what the README's second command runs and what CI runs. Works on a
# fresh Debian machine with rustup's stable and nightly toolchains, python3, and root (for
# apt-get) or nginx + Chromium + ChromeDriver already installed. It installs what it needs and
# prints one `prerequisite:` line for each thing it installs: Debian packages (through the
# Python tests), the Python packages of the independent decoder (in a virtual environment
# under target/), cargo-public-api for the public-API check, and cargo-fuzz for the fuzz smoke
# run.
#
# Skips, only when asked (CI sets none of these); a skipped stage is counted in the summary:
#   SEALED_SESSION_SKIP_CLUSTER=1  SEALED_SESSION_SKIP_BROWSER=1  SEALED_SESSION_SKIP_FUZZ=1
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() { printf '\n==> %s\n' "$*"; }
prerequisite() { printf 'prerequisite: %s\n' "$*"; }
# A stage that cannot produce its own closing line (a build, a lint) counts as one check.
must() {
  if "$@"; then passed=$((passed + 1)); else
    echo "!!! FAILED: $*"
    failed=$((failed + 1))
  fi
}

# Adds the closing "N passed, M failed" lines of one runner's output to the totals; a runner
# that exited non-zero without reporting a failure (a crash, a compile error) counts as one.
count() {
  local status=$1 p f closing
  closing=$(grep -E '^(test result: |[a-z]+: [0-9]+ passed, |[0-9]+ passed, )' "$log" || true)
  p=$(grep -Eo '[0-9]+ passed' <<<"$closing" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '[0-9]+ failed' <<<"$closing" | awk '{s+=$1} END {print s+0}')
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "!!! the runner exited with status $status"
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
}

skip() {
  echo "!!! SKIPPED by $1=1: $2"
  skipped=$((skipped + 1))
}

step "cargo fmt --check"
must cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
must cargo clippy --workspace --all-targets --locked -- -D warnings
must cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo test (unit, integration, compat, CLI, vectors, proptests, fuzz corpus replay, doc tests)"
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"
count "${PIPESTATUS[0]}"
cargo test --workspace --doc --locked 2>&1 | tee "$log"
count "${PIPESTATUS[0]}"

step "the revocation list on Redis (feature redis): its unit tests, then three nodes against a real redis-server"
# tests/redis installs redis-server from Debian when it is missing (a `prerequisite:` line).
cargo test -p sealed-session --features redis --locked --lib --test redis 2>&1 | tee "$log"
count "${PIPESTATUS[0]}"

step "the framework-free core: the library builds without its default features (no actix-web)"
# A check, not `cargo test`: the tests' self dev-dependency turns the actix features back on.
must cargo rustc -p sealed-session --no-default-features --lib --locked -- -D warnings
# The tower/axum adapter builds without actix-web too.
must cargo rustc -p sealed-session --no-default-features --features axum --lib --locked -- -D warnings

step "rustdoc: the documentation builds without warnings (broken links, private items)"
must env RUSTDOCFLAGS="-D warnings" cargo doc -p sealed-session --all-features --no-deps --locked

step "public API: cargo public-api against docs/public-api.txt (a change must be deliberate)"
# To accept a deliberate change: cargo +nightly public-api -p sealed-session --all-features -sss > docs/public-api.txt
if ! command -v cargo-public-api >/dev/null 2>&1; then
  prerequisite "cargo-public-api 0.52.0 (cargo install cargo-public-api --version 0.52.0 --locked; needs nightly rustdoc)"
  cargo install cargo-public-api --version 0.52.0 --locked
fi
public_api() {
  cargo +nightly public-api -p sealed-session --all-features -sss >target/public-api.txt &&
    diff -u docs/public-api.txt target/public-api.txt
}
must public_api

step "the published crate: cargo package, then its own tests from the .crate alone"
version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "sealed-session"))')
# Unpacked outside the repository (inside it, cargo would take the crate for a member of
# our workspace); built in our target directory so the dependencies are reused.
unpacked=$(mktemp -d)
if cargo package -p sealed-session --no-verify --allow-dirty --locked &&
  tar -xzf "target/package/sealed-session-$version.crate" -C "$unpacked"; then
  (cd "$unpacked/sealed-session-$version" && CARGO_TARGET_DIR="$OLDPWD/target" cargo test --locked) 2>&1 | tee "$log"
  count "${PIPESTATUS[0]}"
else
  echo "!!! cargo package failed"
  failed=$((failed + 1))
fi
rm -rf "$unpacked"

step "independent Python decoder against docs/vectors/v1.json"
venv=target/python-venv
if ! "$venv/bin/python" -c 'import cryptography, lz4' 2>/dev/null; then
  prerequisite "Python packages cryptography and lz4, in a virtual environment at $venv"
  python3 -m venv "$venv" &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check cryptography lz4
fi
"$venv/bin/python" tests/python/check_vectors.py 2>&1 | tee "$log"
count "${PIPESTATUS[0]}"

step "build the demos (actix-web and axum) and the CLI for the real-parts tests"
# With the `redis` feature: the cluster test shares a redis-server between the demo nodes.
must cargo build --locked --example demo --example axum_demo --bin sealed-session --features sealed-session/redis,sealed-session/axum
actix_demo=${CARGO_TARGET_DIR:-target}/debug/examples/demo
axum_demo=${CARGO_TARGET_DIR:-target}/debug/examples/axum_demo

if [ "${SEALED_SESSION_SKIP_CLUSTER:-}" = "1" ]; then
  skip SEALED_SESSION_SKIP_CLUSTER "nginx round-robin cluster"
else
  # The actix demo, the axum demo, then both in one upstream (one format, one keyring).
  for demos in "$actix_demo" "$axum_demo" "$actix_demo,$axum_demo"; do
    step "nginx round-robin cluster: $demos"
    python3 tests/cluster/cluster_test.py --demo "$demos" 2>&1 | tee "$log"
    count "${PIPESTATUS[0]}"
  done
fi

if [ "${SEALED_SESSION_SKIP_BROWSER:-}" = "1" ]; then
  skip SEALED_SESSION_SKIP_BROWSER "headless Chromium"
else
  for demo in "$actix_demo" "$axum_demo"; do
    step "headless Chromium: $demo"
    python3 tests/browser/browser_test.py --demo "$demo" 2>&1 | tee "$log"
    count "${PIPESTATUS[0]}"
  done
fi

if [ "${SEALED_SESSION_SKIP_FUZZ:-}" = "1" ]; then
  skip SEALED_SESSION_SKIP_FUZZ "fuzz smoke run"
else
  step "fuzz smoke run (every target, 20 s each, nightly)"
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    prerequisite "cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
  fi
  scratch=$(mktemp -d)
  if (cd fuzz && cargo +nightly fuzz build -O); then
    for target in $(cd fuzz && cargo +nightly fuzz list); do
      # New inputs go to a scratch directory: the committed seeds stay as they are. ASan's
      # quarantine is shrunk so it does not count against the RSS limit (fuzz/README.md).
      mkdir -p "$scratch/$target"
      (cd fuzz && ASAN_OPTIONS=quarantine_size_mb=16 cargo +nightly fuzz run -O "$target" \
        "$scratch/$target" "corpus/$target" -- -max_total_time=20 -rss_limit_mb=256 -timeout=1) \
        >"$log" 2>&1
      status=$?
      if [ "$status" -eq 0 ]; then
        printf 'fuzz %s: ok, %s\n' "$target" "$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)"
        passed=$((passed + 1))
      else
        printf 'fuzz %s: FAILED (exit %d); its output ends:\n' "$target" "$status"
        tail -n 40 "$log"
        failed=$((failed + 1))
      fi
    done
  else
    echo "!!! fuzz targets do not build"
    failed=$((failed + 1))
  fi
  rm -rf "$scratch"
fi

printf '\nsuite: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
