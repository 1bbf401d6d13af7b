#!/usr/bin/env python3
"""Markdown summary of rootless-compare.sh results.

usage: rootless-summarize.py [--info RUNINFO.json ...] RAW.tsv [RAW.tsv ...]

Throughput is iperf3's receiver-side rate, HTTP is wrk's requests/s; each
cell is the median over repetitions with [min–max] and n. Ratios are to the
kernel veth of the same test. CPU is user+sys seconds of the stack's
processes (its port forwarder included) during one test; CPU-s per GB
divides it by the data the test moved. A test's duration is read from the
row ("t=SECONDS"), else IPERF_TIME / WRK_TIME from the environment (10 / 5).
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
REF = "kernel"


def duration(row):
    m = re.search(r"\bt=([0-9.]+)", row.get("extra") or "")
    if m:
        return float(m.group(1))
    if row["test"].startswith(("http", "py")):
        return float(os.environ.get("WRK_TIME", 5))
    return float(os.environ.get("IPERF_TIME", 10))


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

    def table(header, body):
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for b in body:
            print("| " + " | ".join(b) + " |")
        print()

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
    tests = [t for t, _ in tp + ht]
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
        gbt = [t for t in ("out1", "in") if t in tests]
        body = []
        for lab in stacks:
            line = [lab] + [f"{statistics.median(cpu[(lab, t)]):.2f}" if cpu.get((lab, t)) else "" for t in tests]
            line.append(f"{statistics.median(idle[lab]):.0f}" if idle.get(lab) else "")
            line.append(f"{max(peak[lab]):.0f}" if peak.get(lab) else "")
            line.append(" / ".join(f"{statistics.median(gb_cpu[(lab, t)]):.2f}" if gb_cpu.get((lab, t)) else "–" for t in gbt))
            body.append(line)
        table(["stack"] + tests + ["RSS idle KiB", "peak RSS KiB", "CPU-s/GB (" + " / ".join(gbt) + ")"], body)


if __name__ == "__main__":
    main()
