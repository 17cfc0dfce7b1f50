#!/usr/bin/env bash
# Three sealed-session demo nodes behind nginx (round robin), sharing one keyring file.
#
#   bash examples/cluster/run.sh          # then open the URL it prints; Ctrl-C stops it all
#
# Environment (all optional):
#   LISTEN=127.0.0.1:8080        where nginx listens
#   NODE_BASE_PORT=8081          nodes listen on 127.0.0.1:NODE_BASE_PORT, +1, +2
#   RUN_DIR=<temp dir>           config, pid file, logs (and the keyring when created here)
#   SESSION_KEYRING=<RUN_DIR>/keyring.json   created with `sealed-session keys init` if missing
#   SESSION_RELOAD_SECS=5        how often each node re-reads the keyring file
#   SESSION_MAX_BYTES=16384      cookie budget of every node
#   COOKIE_SECURE=0              plain http here; set 1 behind TLS
#   NO_BUILD=1                   skip `cargo build`
# Needs nginx (Debian: apt-get install nginx-light). Everything started is stopped by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DEMO="$TARGET/debug/examples/demo"
CLI="$TARGET/debug/sealed-session"

LISTEN="${LISTEN:-127.0.0.1:8080}"
NODE_BASE_PORT="${NODE_BASE_PORT:-8081}"
RUN_DIR="${RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sealed-session-cluster.XXXXXX")}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
KEYRING="${SESSION_KEYRING:-$RUN_DIR/keyring.json}"
export SESSION_RELOAD_SECS="${SESSION_RELOAD_SECS:-5}"
export SESSION_MAX_BYTES="${SESSION_MAX_BYTES:-16384}"
export COOKIE_SECURE="${COOKIE_SECURE:-0}"

NGINX="$(command -v nginx || true)"
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
    echo "run.sh: nginx is not installed (Debian/Ubuntu: sudo apt-get install nginx-light)" >&2
    exit 1
fi

if [ "${NO_BUILD:-0}" != 1 ]; then
    cargo build --example demo --bin sealed-session
fi

if [ ! -e "$KEYRING" ]; then
    "$CLI" keys init --keyring "$KEYRING"
fi
"$CLI" check --keyring "$KEYRING"

PIDS=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    echo "stopped; logs and config are in $RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_port() { # host port pid: bounded poll until the port accepts connections
    local i
    for i in $(seq 1 150); do
        if ! kill -0 "$3" 2>/dev/null; then return 1; fi
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

NODES=()
for i in 1 2 3; do
    port=$((NODE_BASE_PORT + i - 1))
    PORT="$port" NODE_NAME="n$i" SESSION_KEYRING="$KEYRING" "$DEMO" >"$RUN_DIR/node-n$i.log" 2>&1 &
    PIDS+=("$!")
    NODES+=("127.0.0.1:$port")
    if ! wait_port 127.0.0.1 "$port" "$!"; then
        echo "run.sh: node n$i did not start; see $RUN_DIR/node-n$i.log" >&2
        tail -n 20 "$RUN_DIR/node-n$i.log" >&2 || true
        exit 1
    fi
done

user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;  # workers must reach $RUN_DIR (local demo only)"
sed -e "s|__USER__|$user_line|" -e "s|__RUN_DIR__|$RUN_DIR|g" -e "s|__LISTEN__|$LISTEN|g" \
    -e "s|__NODE1__|${NODES[0]}|" -e "s|__NODE2__|${NODES[1]}|" -e "s|__NODE3__|${NODES[2]}|" \
    "$ROOT/examples/cluster/nginx.conf" >"$RUN_DIR/nginx.conf"
"$NGINX" -p "$RUN_DIR" -e "$RUN_DIR/nginx-error.log" -c "$RUN_DIR/nginx.conf" -t -q
"$NGINX" -p "$RUN_DIR" -e "$RUN_DIR/nginx-error.log" -c "$RUN_DIR/nginx.conf" >"$RUN_DIR/nginx-stdout.log" 2>&1 &
PIDS+=("$!")
if ! wait_port "${LISTEN%:*}" "${LISTEN##*:}" "$!"; then
    echo "run.sh: nginx did not start; see $RUN_DIR/nginx-error.log" >&2
    tail -n 20 "$RUN_DIR/nginx-error.log" >&2 || true
    exit 1
fi

cat <<EOF

  sealed-session cluster: http://$LISTEN/   (nodes ${NODES[*]}, pids ${PIDS[*]})
  Try: /login?user=alice, /whoami, /grow?bytes=3000, /logout; each answer names its node (X-Node).
  Rotate the key:  $CLI keys rotate --keyring $KEYRING --activate-in 30s
  Then retire:     $CLI keys list --keyring $KEYRING ; $CLI keys retire --keyring $KEYRING --id OLD_ID
  Logs: $RUN_DIR/{node-n1,node-n2,node-n3,nginx-error,nginx-access}.log
  Ctrl-C stops everything.

EOF

# Returns when any process ends (or on Ctrl-C); the EXIT trap stops the others.
set +e
wait -n "${PIDS[@]}"
status=$?
echo "run.sh: a process of the cluster exited (status $status); stopping the rest" >&2
exit "$status"
