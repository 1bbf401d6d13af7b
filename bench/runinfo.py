#!/usr/bin/env python3
"""What a benchmark result was measured on: commit, kernel, CPUs, load.

usage: runinfo.py [--md] [--sample SECONDS]

Prints one JSON object (or, with --md, one markdown line):
  commit   `git describe --always --dirty` of the checkout this file is in
           ("-dirty": the tree had uncommitted changes, so the numbers are
           not those of any commit)
  dirty    true when the tree had uncommitted changes
  kernel   `uname -r`
  cpus     CPUs this process may run on
  loadavg  1, 5 and 15 minute load averages
  busy     other processes that used at least 5% of one CPU during the
           sample (default 1 s): command name and percent of one CPU

No paths of the machine are reported.
"""
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSY_PCT = 5.0


def commit():
    """Returns (describe, dirty) of the checkout, or ("unknown", None)."""
    try:
        out = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", None
    d = out.stdout.strip()
    if out.returncode != 0 or not d:
        return "unknown", None
    return d, d.endswith("-dirty")


def proc_stats():
    """Yields (pid, comm, fields after the command name) of every process,
    from /proc/PID/stat (fields[1] is the parent pid, fields[11:15] utime,
    stime, cutime, cstime)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        yield int(p), s[s.index("(") + 1:s.rindex(")")], s[s.rindex(")") + 2:].split()


def cpu_ticks():
    """Returns {pid: (comm, utime+stime)} of every process."""
    return {pid: (comm, int(f[11]) + int(f[12])) for pid, comm, f in proc_stats()}


def busy(sample_s):
    """Processes other than this one using >= BUSY_PCT of a CPU over sample_s."""
    hz = os.sysconf("SC_CLK_TCK")
    a = cpu_ticks()
    time.sleep(sample_s)
    b = cpu_ticks()
    me = os.getpid()
    out = []
    for pid, (comm, t1) in b.items():
        if pid == me or pid not in a or a[pid][0] != comm:
            continue
        pct = 100.0 * (t1 - a[pid][1]) / hz / sample_s
        if pct >= BUSY_PCT:
            out.append({"comm": comm, "cpu_pct": round(pct)})
    out.sort(key=lambda x: -x["cpu_pct"])
    return out


def info(sample_s):
    c, dirty = commit()
    with open("/proc/loadavg") as f:
        load = [float(x) for x in f.read().split()[:3]]
    return {
        "commit": c,
        "dirty": dirty,
        "kernel": os.uname().release,
        "cpus": len(os.sched_getaffinity(0)),
        "loadavg": load,
        "busy": busy(sample_s),
    }


def markdown(i):
    """One line for a result file's header."""
    c = f"commit `{i['commit']}`"
    if i["dirty"]:
        c += " (uncommitted changes: not the numbers of any commit)"
    b = ", ".join(f"{p['comm']} {p['cpu_pct']}%" for p in i["busy"]) or "none"
    return (f"{c}; kernel {i['kernel']}, {i['cpus']} CPUs, load "
            f"{' '.join(str(x) for x in i['loadavg'])}; busy processes: {b}")


def main():
    args = sys.argv[1:]
    md = "--md" in args
    sample = 1.0
    if "--sample" in args:
        sample = float(args[args.index("--sample") + 1])
    i = info(sample)
    print(markdown(i) if md else json.dumps(i))


if __name__ == "__main__":
    main()
