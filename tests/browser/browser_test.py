#!/usr/bin/env python3
"""Browser test: a real headless Chromium keeps and sends back every chunk of the session.

One demo node with COOKIE_DOMAIN=example.test COOKIE_SECURE=0 (budget SESSION_MAX_BYTES,
default 16384) on 127.0.0.1; Chromium resolves *.example.test to 127.0.0.1 and is driven
through chromedriver's plain WebDriver HTTP/JSON API (urllib, python3 stdlib only):
  * log in on a.example.test, the session is seen on b.example.test (Domain cookie);
  * grow the session to the largest size the budget allows (found by stepping down from
    2000-character steps to 1 character: a /grow over budget answers an empty 500 and leaves
    the cookies alone);
  * the browser's jar holds every chunk (`session`, `session.1`, ...; the first announces the
    count), each within the browser limits, and sends them all back (whoami, and the demo's
    own table of received cookies);
  * logging out leaves no chunk behind.

Usage: python3 tests/browser/browser_test.py [--demo PATH]
  The demo defaults to $DEMO_BIN, then <target>/debug/examples/demo (target =
  $CARGO_TARGET_DIR or ./target): build it first with `cargo build --example demo`.
  Debian's chromium and chromium-driver are installed with apt-get when missing (root only).
  SEALED_SESSION_SKIP_BROWSER=1 skips the whole test (loudly, exit 0).
  KEEP_TMP=1 keeps the temporary directory (logs, profile, screenshot).

Prints `browser: N passed, M failed` and exits 1 when M > 0.
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ next to the shared module
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import realparts  # noqa: E402
from realparts import Proc, check, free_port, http_get, log, wait_port  # noqa: E402

DOMAIN = "example.test"
COOKIE = "session"  # COOKIE_SECURE=0: plain name even with a Domain
USER = "alice"
MAX_NAME_VALUE = 4096  # Chromium and Firefox drop a cookie whose name+value exceed this
MAX_LINE = 3600  # the library's default per-Set-Cookie-line budget
STEP = 2000
CHROME_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic", "--disable-dev-shm-usage", "--disable-extensions",
    "--disable-default-apps", "--no-default-browser-check", "--password-store=basic",
    "--window-size=1200,900",
    f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1, MAP {DOMAIN} 127.0.0.1",
]


# --------------------------------------------------------------------------- processes

def descendants(pid):
    """PIDs whose parent chain leads to pid (read from /proc), deepest last."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


DRIVER = {"proc": None, "port": None, "session": None}


def cleanup():
    # End the WebDriver session first: chromedriver then closes Chromium itself.
    if DRIVER["session"] and DRIVER["proc"] is not None and DRIVER["proc"].alive():
        try:
            wd("DELETE", f"/session/{DRIVER['session']}", timeout=20)
        except Exception as e:
            print(f"cleanup: DELETE session failed: {e}", file=sys.stderr)
        DRIVER["session"] = None
    # Any Chromium process still left under chromedriver is ended by its own PID.
    if DRIVER["proc"] is not None and DRIVER["proc"].alive():
        for pid in reversed(descendants(DRIVER["proc"].pid)):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    realparts.stop_all()


# --------------------------------------------------------------------------- install

def find_browser():
    chrome = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if os.access(p, os.X_OK)), None)
    driver = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver")) if p and os.access(p, os.X_OK)), None)
    return chrome, driver


def ensure_browser():
    chrome, driver = find_browser()
    if chrome and driver and os.path.exists("/usr/bin/chromium"):
        return chrome, driver
    if os.geteuid() != 0:
        raise RuntimeError("chromium/chromedriver are missing and this is not root: apt-get install chromium chromium-driver")

    def both():
        chrome, driver = find_browser()
        return (chrome, driver) if chrome and driver else None

    installed = realparts.apt_install([["chromium", "chromium-driver"]], both, timeout=1800,
                                      note=" (this can take a few minutes)")
    if not installed:
        raise RuntimeError("could not install chromium and chromium-driver")
    return installed


# --------------------------------------------------------------------------- WebDriver

class WebDriverError(Exception):
    pass


def wd(method, path, body=None, timeout=60):
    """One WebDriver command: JSON in, the `value` member out."""
    url = f"http://127.0.0.1:{DRIVER['port']}{path}"
    data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            payload = json.loads(r.read().decode("utf-8") or "{}")
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        raise WebDriverError(f"{method} {path}: HTTP {e.code}: {text[:800]}") from None
    return payload.get("value")


class Browser:
    def __init__(self, chrome, profile):
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": chrome, "args": CHROME_ARGS + [f"--user-data-dir={profile}"]},
        }}}
        value = wd("POST", "/session", caps, timeout=120)
        self.id = value["sessionId"]
        DRIVER["session"] = self.id
        self.version = value.get("capabilities", {}).get("browserVersion")
        wd("POST", f"/session/{self.id}/timeouts", {"pageLoad": 30000, "script": 10000})

    def go(self, url):
        wd("POST", f"/session/{self.id}/url", {"url": url})

    def script(self, js, *args):
        return wd("POST", f"/session/{self.id}/execute/sync", {"script": js, "args": list(args)})

    def text(self):
        return self.script("return document.body ? document.body.innerText : '';") or ""

    def visit(self, url):
        """Navigates and returns the page's text (Chromium shows text/plain in a <pre>)."""
        self.go(url)
        return self.text().strip()

    def cookies(self):
        """Every cookie the jar would send to the current page, HttpOnly ones included."""
        return wd("GET", f"/session/{self.id}/cookie") or []

    def screenshot(self, path):
        png = wd("GET", f"/session/{self.id}/screenshot")
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))


def chunk_cookies(cookies):
    named = {c["name"]: c for c in cookies}
    return [named[n] for n in realparts.chunk_names(named, COOKIE)]


def estimated_line(c):
    """The Set-Cookie value the demo sends for this chunk (no Secure, no Max-Age)."""
    return f"{c['name']}={c['value']}; HttpOnly; SameSite=Lax; Path=/; Domain={DOMAIN}"


# --------------------------------------------------------------------------- the test

def run_test(tmp, demo, chrome, driver, budget):
    port = free_port()
    env = dict(os.environ, PORT=str(port), COOKIE_DOMAIN=DOMAIN, COOKIE_SECURE="0", NODE_NAME="b1",
               RUST_LOG="info,sealed_session=debug", NO_COLOR="1")
    env.pop("SESSION_KEYRING", None)
    if "SESSION_MAX_BYTES" not in os.environ:
        env["SESSION_MAX_BYTES"] = str(budget)
    node = Proc("demo", [demo], env=env, log_path=os.path.join(tmp, "demo.log")).start()
    if not check(wait_port(port, node), f"demo listens on 127.0.0.1:{port}"):
        raise RuntimeError("the demo did not start")
    # The demo sets what the test expects: Domain=example.test, plain name, no Secure.
    status, _, set_cookies, _ = http_get(port, f"/login?user={USER}", {"Host": f"a.{DOMAIN}:{port}"})
    line = set_cookies[0] if set_cookies else ""
    check(status == 200 and line.startswith(f"{COOKIE}=") and f"Domain={DOMAIN}" in line
          and "Secure" not in line and "HttpOnly" in line,
          f"the demo's Set-Cookie has the expected attributes: {line[:40]}...{line[-60:]}")

    dport = free_port()
    DRIVER["port"] = dport
    DRIVER["proc"] = Proc("chromedriver", [driver, f"--port={dport}", f"--log-path={os.path.join(tmp, 'chromedriver.log')}"],
                          log_path=os.path.join(tmp, "chromedriver-stdout.log")).start()
    ready = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and DRIVER["proc"].alive():
        try:
            ready = bool((wd("GET", "/status", timeout=5) or {}).get("ready"))
        except (OSError, WebDriverError, ValueError):
            ready = False
        if ready:
            break
        time.sleep(0.2)
    if not check(ready, f"chromedriver ready on 127.0.0.1:{dport}"):
        raise RuntimeError("chromedriver did not start")
    t0 = time.monotonic()
    b = Browser(chrome, os.path.join(tmp, "profile"))
    log(f"Chromium {b.version} up in {time.monotonic() - t0:.1f} s (chromedriver pid {DRIVER['proc'].pid}, demo pid {node.pid} on :{port})")
    a_url, b_url, c_url = (f"http://{h}.{DOMAIN}:{port}" for h in "abc")

    # Log in on one subdomain, be known on another.
    text = b.visit(f"{a_url}/login?user={USER}")
    check(text == f"logged in as {USER}", f"login page on a.{DOMAIN}: {text!r}")
    text = b.visit(f"{b_url}/whoami")
    check(text == USER, f"b.{DOMAIN}/whoami shows {USER}: {text!r}")
    jar = chunk_cookies(b.cookies())
    check([c["name"] for c in jar] == [COOKIE], f"one chunk after login: {[c['name'] for c in jar]}")
    if jar:
        c = jar[0]
        check(c.get("domain") in (DOMAIN, "." + DOMAIN), f"the cookie is stored for Domain={DOMAIN}: {c.get('domain')!r}")
        check(c.get("httpOnly") is True and c.get("secure") is False and c.get("path") == "/",
              f"the cookie is HttpOnly, not Secure, Path=/: {({k: c.get(k) for k in ('httpOnly', 'secure', 'path', 'sameSite')})}")

    # Grow to the largest session the budget allows: 2000-character steps, then halving.
    length, step, n, grows = 0, STEP, 0, 0
    deadline = time.monotonic() + 240
    while step >= 1 and time.monotonic() < deadline and n < 80:
        n += 1
        before = {c["name"]: c["value"] for c in chunk_cookies(b.cookies())}
        text = b.visit(f"{b_url}/grow?bytes={step}&n={n}")
        if re.fullmatch(r"\d+", text):
            check(int(text) == length + step, f"grow by {step} from {length} answers {length + step}: {text!r}")
            length = int(text)
            grows += 1
        else:
            # Over budget: an empty 500, which Chromium replaces with its own error page (whose
            # chrome-error:// origin sees no cookie): read the jar from a page of b again.
            still = b.visit(f"{b_url}/whoami")
            check(still == USER, f"after a refused grow (+{step} over {length}) whoami answers {USER}: {still!r}")
            after = {c["name"]: c["value"] for c in chunk_cookies(b.cookies())}
            check(after == before, f"a refused grow (+{step} over {length}) leaves every chunk as it was")
            if step == STEP:
                log(f"grow +{step} over {length} refused ({text[:60]!r}); refining")
            step //= 2
    check(step == 0, f"the largest session was found in bounded time ({n} grows)")
    check(length > 0 and grows >= 3, f"the session grew ({length} characters in {grows} grows)")
    log(f"largest session: {length} random characters ({n} navigations); one more character is refused")

    # The jar holds every chunk, each within the browser's limits.
    text = b.visit(f"{b_url}/whoami")
    check(text == USER, f"whoami after the largest grow still answers {USER}: {text!r}")
    jar = chunk_cookies(b.cookies())
    names = [c["name"] for c in jar]
    expected_names = [COOKIE] + [f"{COOKIE}.{i}" for i in range(1, len(jar))]
    check(names == expected_names, f"chunk names are contiguous: {names}")
    first = jar[0]["value"] if jar else ""
    m = re.match(r"(\d+)\.", first)
    check(bool(m) and int(m.group(1)) == len(jar), f"the first chunk announces {len(jar)} chunks: {first[:8]!r}")
    least = -(-budget // MAX_NAME_VALUE)
    check(len(jar) >= least, f"a full {budget}-byte session spans >= {least} chunks: {len(jar)}")
    sizes = []
    for c in jar:
        nv = len(c["name"]) + len(c["value"])
        line = len(estimated_line(c))
        sizes.append((c["name"], nv, line))
        check(nv <= MAX_NAME_VALUE, f"{c['name']}: name+value {nv} <= {MAX_NAME_VALUE}")
        check(line <= MAX_LINE, f"{c['name']}: Set-Cookie line ~{line} <= {MAX_LINE}")
        check(c.get("domain") in (DOMAIN, "." + DOMAIN) and c.get("httpOnly") is True,
              f"{c['name']} is a HttpOnly cookie of {DOMAIN}")
    header = "; ".join(f"{c['name']}={c['value']}" for c in jar)
    check(len(header) <= budget, f"the chunks' Cookie header ({len(header)} bytes) fits the {budget}-byte budget")
    check(len(header) > budget - 600, f"the largest session fills the budget ({len(header)} of {budget} bytes)")
    log("chunks (name, name+value, Set-Cookie line): " + ", ".join(f"{a} {b_}/{c_}" for a, b_, c_ in sizes)
        + f"; Cookie header {len(header)} bytes")

    # The browser sends every chunk back: the demo's page lists what it received.
    b.go(f"{c_url}/")
    received = b.script(
        "var out = {}; document.querySelectorAll('table tr').forEach(function (tr) {"
        " var td = tr.querySelectorAll('td'); if (td.length == 2) out[td[0].innerText] = parseInt(td[1].innerText, 10); });"
        " return out;") or {}
    body = b.text()
    check(f"user {USER}" in body, f"c.{DOMAIN}/ shows the session of {USER}")
    for c in jar:
        check(received.get(c["name"]) == len(c["value"]),
              f"the server received {c['name']} whole ({received.get(c['name'])} of {len(c['value'])} bytes)")
    if os.environ.get("KEEP_TMP") == "1":
        b.screenshot(os.path.join(tmp, "index.png"))
    text = b.visit(f"{a_url}/whoami")
    check(text == USER, f"a.{DOMAIN}/whoami still answers {USER}: {text!r}")

    # Log out: no chunk left.
    text = b.visit(f"{b_url}/logout")
    check(text == "logged out", f"logout: {text!r}")
    left = [c["name"] for c in chunk_cookies(b.cookies())]
    check(left == [], f"no chunk left in the jar after logout: {left}")
    text = b.visit(f"{a_url}/whoami")
    check(text.startswith("not logged in"), f"whoami after logout: {text!r}")


def main():
    args = realparts.parse_args(__doc__)
    if realparts.skipped("browser", "SEALED_SESSION_SKIP_BROWSER"):
        return 0
    if realparts.missing("browser", (args.demo,), "cargo build --example demo"):
        return 1
    budget = int(os.environ.get("SESSION_MAX_BYTES", "16384"))

    def body(tmp):
        chrome, driver = ensure_browser()
        log(f"{subprocess.run([driver, '--version'], capture_output=True, text=True, timeout=30).stdout.strip()}; "
            f"browser {chrome}; demo {args.demo}; tmp {tmp}")
        run_test(tmp, os.path.abspath(args.demo), chrome, driver, budget)

    return realparts.run_in_tmp("browser", body, cleanup, log_lines=60)


if __name__ == "__main__":
    sys.exit(main())
