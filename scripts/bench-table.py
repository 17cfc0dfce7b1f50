#!/usr/bin/env python3
"""The README's speed table (issue 14) from one run of `cargo bench --bench middleware`.

Reads criterion's medians, target/criterion/request/<case>/<arm>/new/estimates.json
(`median.point_estimate`, ns), and prints a markdown table of µs per request per case and arm
with the ratios the issue asks for, then the issue's targets, met or missed.

    python3 scripts/bench-table.py [--dir target/criterion] [--since EPOCH] [--out FILE]

--since ignores estimates written before that Unix time (the bench passes its start time,
so a filtered run shows "—" rather than an older run's figures). The bench runs this
script itself at the end of a full run. Standard library only.
"""

import argparse
import json
import os
import sys

CASES = [
    ("a-untouched", "untouched"),
    ("b-read-100B", "read ~100 B"),
    ("c-write-100B", "write ~100 B"),
    ("d-read-2KB", "read ~2 KB"),
    ("e-write-2KB", "write ~2 KB"),
    ("f-read-10KB", "read ~10 KB (several chunks)"),
]
NONE, OURS, NOMEMO, CUTOFF, COOKIE, REDIS = (
    "none",
    "sealed-session",
    "sealed-session-nomemo",
    "sealed-session-cutoff",
    "actix-session",
    "actix-session-redis",
)


def default_dir():
    if os.environ.get("CRITERION_HOME"):
        return os.environ["CRITERION_HOME"]
    if os.environ.get("CARGO_TARGET_DIR"):
        return os.path.join(os.environ["CARGO_TARGET_DIR"], "criterion")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, "target", "criterion")


def median_us(base, case, arm, since):
    """Criterion's median for request/<case>/<arm> in µs, or None (not run, or stale)."""
    path = os.path.join(base, "request", case, arm, "new", "estimates.json")
    try:
        if since is not None and os.path.getmtime(path) < since:
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)["median"]["point_estimate"] / 1000.0
    except (OSError, KeyError, ValueError):
        return None


def us(v):
    return "—" if v is None else f"{v:.2f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def x(r):
    return "—" if r is None else f"{r:.2f}x"


def pair(a, b):
    return "—" if a is None and b is None else f"{x(a)} / {x(b)}"


def verdict(r, limit):
    if r is None:
        return "not measured"
    return f"{r:.2f}x: {'met' if r <= limit else '**missed**'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=default_dir(), help="criterion's output directory")
    ap.add_argument("--since", type=float, help="ignore estimates older than this Unix time")
    ap.add_argument("--out", help="also write the table to this file")
    args = ap.parse_args()

    arms = [NONE, OURS, NOMEMO, CUTOFF, COOKIE, REDIS]
    m = {
        (case, arm): median_us(args.dir, case, arm, args.since)
        for case, _ in CASES + [("b-read-100B-unchecked", "")]
        for arm in arms
    }
    if all(v is None for v in m.values()):
        sys.exit(f"no estimates under {args.dir}/request: run `cargo bench --bench middleware`")

    lines = [
        "µs per request (criterion medians, one run; ratios of medians).",
        "",
        "| case | no middleware | actix-session cookie store | actix-session + Redis store "
        "| ours | ours, memo off | ours / actix-session (memo / off) | ours / none (memo / off) "
        "| Redis / ours (memo / off) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case, label in CASES:
        none, ours, off = m[case, NONE], m[case, OURS], m[case, NOMEMO]
        cookie, redis = m[case, COOKIE], m[case, REDIS]
        cookie_cell = us(cookie)
        if cookie is None and case == "f-read-10KB":
            cookie_cell = "cannot hold it"
        lines.append(
            f"| {label} | {us(none)} | {cookie_cell} | {us(redis)} | {us(ours)} | {us(off)} "
            f"| {pair(ratio(ours, cookie), ratio(off, cookie))} "
            f"| {pair(ratio(ours, none), ratio(off, none))} "
            f"| {pair(ratio(redis, ours), ratio(redis, off))} |"
        )

    lines += ["", "Targets (issue 14):", ""]
    lines.append(
        "- write ~100 B ≤ 0.5x actix-session with the memo: "
        + verdict(ratio(m["c-write-100B", OURS], m["c-write-100B", COOKIE]), 0.5)
    )
    for case, label in CASES[1:5]:
        lines.append(
            f"- {label} ≤ 0.6x actix-session with the memo off: "
            + verdict(ratio(m[case, NOMEMO], m[case, COOKIE]), 0.6)
        )
    lines.append(
        "- untouched ≤ 1.05x no middleware: memo "
        + verdict(ratio(m["a-untouched", OURS], m["a-untouched", NONE]), 1.05)
        + "; memo off "
        + verdict(ratio(m["a-untouched", NOMEMO], m["a-untouched", NONE]), 1.05)
    )

    lines += ["", "Other rows of the same run:", ""]
    unchecked = m["b-read-100B-unchecked", OURS]
    lines.append(
        f"- read ~100 B sealed without value fingerprints: {us(unchecked)} µs "
        f"(with them {us(m['b-read-100B', OURS])} µs)"
    )
    for case in ("b-read-100B", "d-read-2KB"):
        lines.append(
            f"- {case} with a revocation cutoff (level 1, nothing revoked): "
            f"{us(m[case, CUTOFF])} µs (without {us(m[case, OURS])} µs)"
        )
    if all(m[case, REDIS] is None for case, _ in CASES):
        lines.append("- actix-session + Redis store: not in this run (see the bench's `skipped:` line)")

    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
