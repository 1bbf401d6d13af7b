#!/usr/bin/env python3
"""Markdown summary of rootless-compare.sh results.

usage: rootless-summarize.py [--info RUNINFO.json ...] RAW.tsv [RAW.tsv ...]

Throughput is iperf3's receiver-side rate, HTTP is wrk's requests/s,
latency the median round trip of a 1-byte TCP ping-pong (its p99 from the
row's "p99="); each cell is the median over repetitions with [min–max] and
n. Ratios are to the kernel veth of the same test, and berth-pasta's to
slirp4netns, the kernel veth and Debian's pasta. CPU is user+sys seconds of
the stack's processes (its port forwarder included) during one test; CPU-s
per GB divides it by the data the test moved. A test's duration is read
from the row ("t=SECONDS"), else IPERF_TIME / WRK_TIME from the environment
(10 / 5). The client address the container saw on rrin is the row's
"src=" and "kept=".

Targets (berth-pasta, from the issue that added it): outbound (out1, out4)
>= 2x slirp4netns and >= 0.7 of the kernel veth; inbound through a
published port (in) >= Debian's pasta with the client's address kept (every
rrin row kept=yes); peak RSS <= 20 MiB.
"""
import csv
import json
import os
import re
import statistics
import sys
from collections import defaultdict

THROUGHPUT = [("out1", "ctr→remote, 1 stream"), ("out4", "ctr→remote, 4 streams"),
              ("in", "peer→fwd→ctr"), ("inR", "ctr→fwd→peer"), ("inlo", "host lo→fwd→ctr")]
HTTP = [("http1", "1 connection"), ("http8", "8 connections"), ("py1", "python, 1 conn"),
        ("py8", "python, 8 conns")]
LATENCY = [("rrout", "ctr→remote"), ("rrin", "peer→fwd→ctr")]
REF = "kernel"
BERTH = "berth-pasta"
RSS_LIMIT_KIB = 20 * 1024


def field(row, key):
    m = re.search(rf"\b{key}=(\S+)", row.get("extra") or "")
    return m.group(1) if m else None


def duration(row):
    m = re.search(r"\bt=([0-9.]+)", row.get("extra") or "")
    if m:
        return float(m.group(1))
    if row["test"].startswith(("http", "py")):
        return float(os.environ.get("WRK_TIME", 5))
    return float(os.environ.get("IPERF_TIME", 10))


def table(header, body):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for b in body:
        print("| " + " | ".join(b) + " |")
    print()


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def main():
    args, infos = sys.argv[1:], []
    while args and args[0] == "--info":
        infos.append(args[1])
        args = args[2:]
    rows = []
    for p in args:
        with open(p) as f:
            rows += list(csv.DictReader(f, delimiter="\t"))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    vals, cpu, gb_cpu, fails = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(int)
    idle, peak = defaultdict(list), defaultdict(list)
    p99, src = defaultdict(list), defaultdict(list)
    for r in rows:
        lab, t, v = r["label"], r["test"], num(r["value"])
        if t == "setup":
            fails[(lab, t)] += 1
            continue
        if t == "idle":
            if v is not None:
                idle[lab].append(v)
            continue
        if v is None:
            fails[(lab, t)] += 1
            continue
        vals[(lab, t)].append(v)
        if num(field(r, "p99")) is not None:
            p99[(lab, t)].append(num(field(r, "p99")))
        if field(r, "kept"):
            src[(lab, t)].append((field(r, "src"), field(r, "kept")))
        c = num(r["cpu_s"])
        if c is not None:
            cpu[(lab, t)].append(c)
            if r["unit"] == "bit/s" and v > 0:
                gb_cpu[(lab, t)].append(c / (v * duration(r) / 8 / 1e9))
        h = num(r["hwm_kib"])
        if h is not None:
            peak[lab].append(h)

    def cell(lab, t, scale, nd):
        v = vals.get((lab, t))
        if not v:
            return "FAIL" if fails.get((lab, t)) else ""
        f = lambda x: f"{x / scale:.{nd}f}"
        s = f"{f(statistics.median(v))} [{f(min(v))}–{f(max(v))}] n={len(v)}"
        return s + (f" ({fails[(lab, t)]} failed)" if fails.get((lab, t)) else "")

    print("# Rootless network stacks (bench/rootless-compare.sh)\n")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import runinfo
    for name, p in zip(("before", "after"), infos):
        with open(p) as f:
            print(f"- {name}: {runinfo.markdown(json.load(f))}")
    if infos:
        print()
    setup_fail = [lab for lab in labels if fails.get((lab, "setup"))]
    if setup_fail:
        print("Stacks that failed to start (see run.log): "
              + ", ".join(f"{lab} ({fails[(lab, 'setup')]}×)" for lab in setup_fail) + "\n")

    tp = [(t, d) for t, d in THROUGHPUT if any(vals.get((lab, t)) or fails.get((lab, t)) for lab in labels)]
    if tp:
        print("## Throughput, Gbit/s: median [min–max] n=repetitions\n")
        table(["stack"] + [f"{t} ({d})" for t, d in tp], [[lab] + [cell(lab, t, 1e9, 2) for t, _ in tp] for lab in labels])
    ht = [(t, d) for t, d in HTTP if any(vals.get((lab, t)) or fails.get((lab, t)) for lab in labels)]
    if ht:
        print("## HTTP through the port forward, requests/s (every request a new TCP connection)\n")
        table(["stack"] + [f"{t} ({d})" for t, d in ht], [[lab] + [cell(lab, t, 1, 0) for t, _ in ht] for lab in labels])
    lt = [(t, d) for t, d in LATENCY if any(vals.get((lab, t)) or fails.get((lab, t)) for lab in labels)]
    if lt:
        print("## Latency: TCP ping-pong of 1-byte messages, round trip µs: median [min–max of the "
              "repetitions' medians] n, and the median p99\n")
        hdr = ["stack"]
        for t, d in lt:
            hdr += [f"{t} ({d}) median", f"{t} p99"]
        body = []
        for lab in labels:
            line = [lab]
            for t, _ in lt:
                line.append(cell(lab, t, 1, 1))
                line.append(f"{statistics.median(p99[(lab, t)]):.1f}" if p99.get((lab, t)) else "")
            body.append(line)
        table(hdr, body)
    if any(src.get((lab, "rrin")) for lab in labels):
        print("## Inbound: the client address the container's server saw (rrin; the peer is the client)\n")
        body = []
        for lab in labels:
            seen = src.get((lab, "rrin"), [])
            if seen:
                kept = sum(1 for _, k in seen if k == "yes")
                body.append([lab, ", ".join(sorted({a or "?" for a, _ in seen})), f"{kept}/{len(seen)}"])
        table(["stack", "address seen", "kept (runs)"], body)
    tests = [t for t, _ in tp + ht + lt]
    if REF in labels and tests:
        print(f"## Ratio of medians to the {REF} veth (same test)\n")
        body = []
        for lab in labels:
            if lab == REF:
                continue
            line = [lab]
            for t in tests:
                a, b = vals.get((lab, t)), vals.get((REF, t))
                line.append(f"{statistics.median(a) / statistics.median(b):.2f}" if a and b else "")
            body.append(line)
        table(["stack"] + tests, body)
    stacks = [lab for lab in labels if any(cpu.get((lab, t)) for t in tests)]
    if stacks:
        print("## Stack processes: CPU seconds per test (median), memory, CPU-s per GB moved\n")
        gbt = [t for t, _ in tp]
        body = []
        for lab in stacks:
            line = [lab] + [f"{statistics.median(cpu[(lab, t)]):.2f}" if cpu.get((lab, t)) else "" for t in tests]
            line.append(f"{statistics.median(idle[lab]):.0f}" if idle.get(lab) else "")
            line.append(f"{max(peak[lab]):.0f}" if peak.get(lab) else "")
            line.append(" / ".join(f"{statistics.median(gb_cpu[(lab, t)]):.2f}" if gb_cpu.get((lab, t)) else "–" for t in gbt))
            body.append(line)
        table(["stack"] + tests + ["RSS idle KiB", "peak RSS KiB", "CPU-s/GB (" + " / ".join(gbt) + ")"], body)
    med = {k: statistics.median(v) for k, v in vals.items() if v}
    if BERTH in labels:
        berth_ratios(labels, tests, med)
        targets(labels, med, src, peak)


def berth_ratios(labels, tests, med):
    """berth-pasta's medians over slirp4netns's, the kernel veth's and pasta's."""
    others = [o for o in ("slirp4netns", REF, "pasta") if o in labels]
    if not others:
        return
    print(f"## {BERTH} / other stacks, ratio of medians (throughput and req/s: higher is better "
          "for berth-pasta; latency rr*: lower is)\n")
    body = []
    for t in tests:
        b = med.get((BERTH, t))
        line = [t]
        for o in others:
            a = med.get((o, t))
            line.append(f"{b / a:.2f}" if a and b else "")
        body.append(line)
    table(["test"] + [f"{BERTH} / {o}" for o in others], body)


def targets(labels, med, src, peak):
    """PASS / MISS of the issue's four targets for berth-pasta."""
    print(f"## Targets ({BERTH})\n")
    lines = []

    def ratio(t, other, want, what):
        b, a = med.get((BERTH, t)), med.get((other, t))
        if not a or not b:
            return f"- {what}, {t}: n/a ({BERTH} or {other} has no result)"
        r = b / a
        verdict = "PASS" if r >= want else "MISS"
        return (f"- {what}, {t}: {verdict}: {b / 1e9:.2f} / {a / 1e9:.2f} Gbit/s = {r:.2f} "
                f"(target ≥ {want:g})")

    for t in ("out1", "out4"):
        lines.append(ratio(t, "slirp4netns", 2.0, "outbound ≥ 2× slirp4netns"))
    for t in ("out1", "out4"):
        lines.append(ratio(t, REF, 0.7, "outbound ≥ 0.7 of the kernel veth"))
    b, a = med.get((BERTH, "in")), med.get(("pasta", "in"))
    seen = src.get((BERTH, "rrin"), [])
    kept = bool(seen) and all(k == "yes" for _, k in seen)
    kept_s = (f"client address kept in {sum(1 for _, k in seen if k == 'yes')}/{len(seen)} rrin runs "
              f"(seen: {', '.join(sorted({x or '?' for x, _ in seen}))})") if seen else "client address not measured"
    if a and b:
        verdict = "PASS" if b >= a and kept else "MISS"
        lines.append(f"- inbound through a published port ≥ Debian's pasta, client address kept, in: {verdict}: "
                     f"{b / 1e9:.2f} / {a / 1e9:.2f} Gbit/s = {b / a:.2f} (target ≥ 1); {kept_s}")
    else:
        lines.append(f"- inbound through a published port ≥ Debian's pasta, in: n/a; {kept_s}")
    b, a = med.get((BERTH, "inlo")), med.get(("pasta", "inlo"))
    if a and b:
        lines.append(f"- (not a target) host loopback through the published port, inlo: "
                     f"{b / 1e9:.2f} / {a / 1e9:.2f} Gbit/s = {b / a:.2f}")
    if peak.get(BERTH):
        h = max(peak[BERTH])
        lines.append(f"- peak RSS ≤ 20 MiB: {'PASS' if h <= RSS_LIMIT_KIB else 'MISS'}: {h / 1024:.1f} MiB "
                     f"(highest VmHWM of the stack's processes over every test and repetition)")
    else:
        lines.append("- peak RSS ≤ 20 MiB: n/a")
    print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
