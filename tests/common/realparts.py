"""What the real-parts tests (tests/cluster, tests/browser) share: python3 stdlib only.

Pass/fail bookkeeping, processes stopped by their own PID, loopback ports, a bare HTTP GET,
installing Debian packages, and the frame of a test's main(): arguments, the skip switch, the
binaries check, a temporary directory, and the `NAME: N passed, M failed` summary.

Imported by the test scripts after they put this directory on sys.path.
"""

import argparse
import atexit
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PASSED = 0
FAILED = 0
FAILURES = []


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(ok, what):
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
        FAILURES.append(what)
        log(f"FAIL: {what}")
    return ok


# --------------------------------------------------------------------------- processes

PROCS = []  # every process a test started, stopped by PID in stop_all()


class Proc:
    def __init__(self, name, argv, env=None, log_path=None, cwd=None):
        self.name, self.argv, self.env, self.log_path, self.cwd = name, argv, env, log_path, cwd
        self.popen = None

    def start(self):
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.cwd, start_new_session=True)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        if self not in PROCS:
            PROCS.append(self)
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signals this PID only, waits (bounded), then SIGKILLs the same PID."""
        if not self.alive():
            return
        try:
            os.kill(self.popen.pid, sig)
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=timeout)
        except ProcessLookupError:
            pass


def stop_all(signal_for=lambda proc: signal.SIGTERM):
    """Stops every started process, last started first, each with signal_for(proc)."""
    for p in reversed(PROCS):
        try:
            p.stop(sig=signal_for(p))
        except Exception as e:  # keep stopping the others
            print(f"cleanup: could not stop {p.name} (pid {p.pid}): {e}", file=sys.stderr)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30.0):
    """Bounded poll until 127.0.0.1:port accepts a connection (or proc died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- HTTP and cookies

def http_get(port, path, headers, timeout=10):
    """One GET to 127.0.0.1:port on a fresh connection: (status, body text, Set-Cookie lines,
    the response for its other headers). Connection errors propagate."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read().decode("utf-8", "replace")
        return r.status, body, r.msg.get_all("Set-Cookie") or [], r
    finally:
        conn.close()


def chunk_names(names, base):
    """The chunk cookie names of a session called `base` among `names`, in index order."""
    chunks = [n for n in names if n == base or re.fullmatch(re.escape(base) + r"\.\d+", n)]
    return sorted(chunks, key=lambda n: 0 if n == base else int(n.rsplit(".", 1)[1]))


# --------------------------------------------------------------------------- install

def apt_install(choices, found, timeout, note=""):
    """Installs with apt-get the first package list of `choices` after which found() is true,
    trying again once after `apt-get update`; returns what found() returned, or None."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(2):
        if attempt == 1:
            log("apt-get update")
            subprocess.run(["apt-get", "update"], env=env, timeout=600, check=False)
        for packages in choices:
            print(f"prerequisite: Debian packages {' '.join(packages)} (apt-get install){note}",
                  flush=True)
            r = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
                               env=env, timeout=timeout, capture_output=True, text=True)
            result = found() if r.returncode == 0 else None
            if result:
                return result
            print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
    return None


# --------------------------------------------------------------------------- main()

def parse_args(doc, cli=False):
    """--demo (and with cli=True, --cli): $DEMO_BIN / $SEALED_SESSION_BIN, then the debug
    builds under $CARGO_TARGET_DIR or ./target."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    ap.add_argument("--demo", default=os.environ.get("DEMO_BIN") or os.path.join(target, "debug", "examples", "demo"),
                    help="the demo binary; for the cluster, a comma-separated list is given to "
                         "the nodes in turn (e.g. the actix and the axum demo: a mixed cluster)")
    if cli:
        ap.add_argument("--cli", default=os.environ.get("SEALED_SESSION_BIN") or os.path.join(target, "debug", "sealed-session"))
    args = ap.parse_args()
    args.demos = [d for d in args.demo.split(",") if d]
    return args


def skipped(name, variable):
    """True, said loudly, when $variable=1 skips the test."""
    if os.environ.get(variable) != "1":
        return False
    print("#" * 72)
    print(f"### {name} test SKIPPED by {variable}=1 (nothing was tested)")
    print("#" * 72)
    return True


def missing(name, paths, build):
    """True, with a failed summary, when one of the binaries `paths` is not there to run."""
    for path in paths:
        if not os.access(path, os.X_OK):
            print(f"{name}: {path} is missing; run `{build}` first")
            print(f"{name}: 0 passed, 1 failed")
            return True
    return False


def dump_logs(tmp, last):
    """The last `last` lines of every *.log file in tmp."""
    for name in sorted(os.listdir(tmp)):
        if name.endswith(".log"):
            with open(os.path.join(tmp, name), "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            print(f"----- {name} (last {min(len(lines), last)} of {len(lines)} lines)")
            for line in lines[-last:]:
                print(line[:400])


def run_in_tmp(name, body, cleanup, log_lines):
    """Runs body(tmp) in a fresh temporary directory, with cleanup() at exit and on SIGINT/
    SIGTERM; a crash is a failure. On failure prints the failures and the last `log_lines`
    lines of each log. Removes tmp unless KEEP_TMP=1, prints `NAME: N passed, M failed` and
    returns the exit status (1 when M > 0)."""
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix=f"sealed-session-{name}-")
    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    try:
        body(tmp)
    except Exception as e:  # a crash is a failure, reported with the logs
        import traceback
        traceback.print_exc()
        check(False, f"test aborted: {e!r}")
    finally:
        cleanup()
        if FAILED:
            print("----- failures:")
            for f in FAILURES[:50]:
                print("  " + f)
            dump_logs(tmp, log_lines)
        if os.environ.get("KEEP_TMP") == "1":
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"took {time.monotonic() - started:.1f} s")
    print(f"{name}: {PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0
