#!/usr/bin/env python3
"""Markdown summary of dns-compare.sh JSON lines.

usage: dns-summarize.py FILE.jsonl [FILE.jsonl ...]

A = the implementation of config id "a" (normally berth), B = id "b"
(normally aardvark-dns 1.4.0). Every number is the median over the rounds
(and over runs, when several files are given) of the per-run values; the
per-round values are listed next to the max-rate medians.
"""
import json
import os
import statistics
import sys
from collections import OrderedDict, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize  # noqa: E402  (shared loading and medians)

RSS_TARGET_KB = 15 * 1024  # "15 MB"


def load(paths):
    return summarize.load(paths, "dns-compare")


med = summarize.med


def fmt(v, nd=None):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) and nd is None:
        return str(v)
    if isinstance(v, (int, float)):
        if nd is None:
            nd = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else (2 if abs(v) >= 0.1 else 3))
        return f"{v:.{nd}f}"
    return str(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fr(r):
    return "–" if r is None else f"{r:.2f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    rows = load(sys.argv[1:])
    if not rows:
        print("no dns-compare results")
        return
    cfg = OrderedDict()
    for r in rows:
        if r.get("metric") == "config":
            cfg.setdefault(r["id"], r)
    A = cfg.get("a", {}).get("impl", "A")
    B = cfg.get("b", {}).get("impl", "B")
    lab = {"a": A, "b": B}
    c0 = cfg.get("a", {})
    runs = sorted({r["run"] for r in rows})
    print(f"# {A} vs. {B}: DNS server (bench/dns-compare.sh)\n")
    print(f"- runs: {', '.join(runs)}; first line {rows[0].get('ts')}; kernel {c0.get('kernel')}, "
          f"{c0.get('nproc')} CPUs, load1 at start {c0.get('load1')}; commit {c0.get('commit')}"
          + (f" (+{c0.get('dirty_files')} uncommitted changed files)" if c0.get("dirty_files") else ""))
    for line in summarize.run_info_lines(rows):
        print(line)
    for i in ("a", "b"):
        c = cfg.get(i, {})
        print(f"- **{c.get('impl')}** (path {i}, gateway {c.get('gateway')}): DNS server `{c.get('dns_server')}` "
              f"({c.get('dns_version')}), started by `{c.get('netavark')}` ({c.get('netavark_version')})")
    print(f"- {c0.get('dnsperf')} (dnsperf), {c0.get('dnsmasq')}")
    print(f"- max rate: `dnsperf -l {c0.get('duration_s')} -c {c0.get('clients')} -q {c0.get('outstanding')} "
          f"-t {c0.get('qtimeout_s')}`; latency: `-Q {c0.get('lat_qps')} -l {c0.get('lat_duration_s')} -v` "
          f"(per-query latencies); ROUNDS={c0.get('rounds')} (each round: every test, {A} then {B}); "
          f"records {c0.get('records')} ({c0.get('nv_records')} via netavark setup, the rest appended to the "
          f"config file + SIGHUP)")
    print("- dnsperf runs in container 1's netns of each implementation; `ref_local` = dnsmasq in the same "
          "host netns answering the same names from a hosts file (same packet path, minimal server); "
          "`ref_upstream` = the upstream dnsmasq queried directly from the container (forwarded by the host "
          "netns), `upstream` = the same names asked of the implementation, which forwards them\n")

    perf = defaultdict(list)  # (metric, R, test, path) -> rows
    for r in rows:
        if r.get("metric") in ("dns_max", "dns_latency"):
            perf[(r["metric"], r["records"], r["test"], r["path"])].append(r)
    Rs = sorted({k[1] for k in perf})
    order = [("names", "a"), ("names", "b"), ("ref_local", "a"), ("ref_local", "b"),
             ("upstream", "a"), ("upstream", "b"), ("ref_upstream", "a"), ("ref_upstream", "b")]

    def g(metric, R, test, path, key):
        return med([x["result"].get(key) for x in perf.get((metric, R, test, path), [])])

    def per_round(metric, R, test, path, key):
        return [x["result"].get(key) for x in sorted(perf.get((metric, R, test, path), []),
                                                      key=lambda x: (x["run"], x["round"]))]

    def cpu_per_q(R, test, path):
        v = []
        for x in perf.get(("dns_max", R, test, path), []):
            c, n = x.get("server_cpu_ms"), x["result"].get("completed")
            if c is not None and n:
                v.append(c * 1000.0 / n)
        return med(v)

    if perf:
        print("## Throughput and latency (medians over rounds)\n")
        body = []
        for R in Rs:
            for test, path in order:
                if not perf.get(("dns_max", R, test, path)):
                    continue
                srv = lab[path] if test in ("names", "upstream") else f"dnsmasq ({lab[path]}'s path)"
                pr = " / ".join(fmt(v, 0) for v in per_round("dns_max", R, test, path, "qps"))
                lost_m = sum((x["result"].get("lost") or 0) for x in perf[("dns_max", R, test, path)])
                bad_m = sum((x["result"].get("not_noerror") or 0) for x in perf[("dns_max", R, test, path)])
                lost_l = sum((x["result"].get("lost") or 0) for x in perf.get(("dns_latency", R, test, path), []))
                bad_l = sum((x["result"].get("not_noerror") or 0) for x in perf.get(("dns_latency", R, test, path), []))
                ud = defaultdict(int)
                for x in perf[("dns_max", R, test, path)]:
                    for ns, v in (x.get("udp") or {}).items():
                        for k, n in v.items():
                            ud[(ns, k)] += n
                udp = ", ".join(f"{ns} {k} {n}" for (ns, k), n in sorted(ud.items()) if n) or "none"
                body.append([R, test, srv, fmt(g("dns_max", R, test, path, "qps"), 0), pr,
                             fmt(g("dns_max", R, test, path, "avg_ms")), f"{lost_m}/{bad_m}",
                             udp, fmt(cpu_per_q(R, test, path), 1),
                             fmt(g("dns_latency", R, test, path, "p50_ms")),
                             fmt(g("dns_latency", R, test, path, "p99_ms")),
                             fmt(g("dns_latency", R, test, path, "max_ms")), f"{lost_l}/{bad_l}"])
        lq = c0.get("lat_qps")
        print(table(["records", "test", "server", "max qps", "per round", "avg ms @max",
                     "lost/not-NOERROR @max (all rounds)",
                     "kernel drop counters @max (non-zero)",
                     "server CPU µs/query @max",
                     f"p50 ms @{lq} qps", f"p99 ms @{lq}", f"max ms @{lq}", f"lost/not-NOERROR @{lq}"], body) + "\n")
        print("Server CPU = user+sys of the server process during the max-rate run / queries completed "
              "(for `upstream` the upstream dnsmasq's CPU is not included; for `ref_upstream` it is the upstream's). "
              "Kernel counters: deltas over the max-rate runs (summed over rounds) of /proc/net/snmp `Udp:` "
              "`NoPorts` (no socket on the port: ICMP port unreachable), `InErrors`, `RcvbufErrors` (a socket's "
              "receive queue was full), `SndbufErrors` and of /proc/net/stat/nf_conntrack `invalid`, "
              "`insert_failed`, `drop`, `clashres` in the host netns (DNS server, its upstream socket), the "
              "upstream netns and the client (dnsperf) netns.\n")

        print("## Ratios and targets (targets are reported, not asserted)\n")
        body = []
        for R in Rs:
            def q(test, path):
                return g("dns_max", R, test, path, "qps")

            def p99(test, path):
                return g("dns_latency", R, test, path, "p99_ms")

            def rounds_ratio(ta, pa, tb, pb, key, metric="dns_max"):
                va = per_round(metric, R, ta, pa, key)
                vb = per_round(metric, R, tb, pb, key)
                return " / ".join(fr(ratio(x, y)) for x, y in zip(va, vb))

            def add(name, r, target, cmp, rr=""):
                met = "–"
                if r is not None and target is not None:
                    met = "yes" if (r >= target if cmp == ">=" else r <= target) else "**no**"
                body.append([R, name, fr(r), rr, f"{cmp} {target:.2f}" if target is not None else "(info)", met])

            add(f"{A} names / ref_local (max qps, {A}'s path)", ratio(q("names", "a"), q("ref_local", "a")), 1.0, ">=",
                rounds_ratio("names", "a", "ref_local", "a", "qps"))
            add(f"{B} names / ref_local (max qps, {B}'s path)", ratio(q("names", "b"), q("ref_local", "b")), None, "",
                rounds_ratio("names", "b", "ref_local", "b", "qps"))
            add(f"{A} upstream / ref_upstream (max qps, {A}'s path)",
                ratio(q("upstream", "a"), q("ref_upstream", "a")), 0.8, ">=",
                rounds_ratio("upstream", "a", "ref_upstream", "a", "qps"))
            add(f"{B} upstream / ref_upstream (max qps, {B}'s path)",
                ratio(q("upstream", "b"), q("ref_upstream", "b")), None, "",
                rounds_ratio("upstream", "b", "ref_upstream", "b", "qps"))
            add(f"{A} / {B} names max qps", ratio(q("names", "a"), q("names", "b")), None, "",
                rounds_ratio("names", "a", "names", "b", "qps"))
            add(f"{A} / {B} upstream max qps", ratio(q("upstream", "a"), q("upstream", "b")), None, "",
                rounds_ratio("upstream", "a", "upstream", "b", "qps"))
            add(f"{A} / {B} names p99 @{c0.get('lat_qps')} qps", ratio(p99("names", "a"), p99("names", "b")), 1.0, "<=",
                rounds_ratio("names", "a", "names", "b", "p99_ms", "dns_latency"))
            add(f"{A} / {B} upstream p99 @{c0.get('lat_qps')} qps", ratio(p99("upstream", "a"), p99("upstream", "b")),
                1.0, "<=", rounds_ratio("upstream", "a", "upstream", "b", "p99_ms", "dns_latency"))
            add(f"{A} / {B} names server CPU per query", ratio(cpu_per_q(R, "names", "a"), cpu_per_q(R, "names", "b")),
                None, "")
            add(f"{A} / {B} upstream server CPU per query",
                ratio(cpu_per_q(R, "upstream", "a"), cpu_per_q(R, "upstream", "b")), None, "")
        print(table(["records", "ratio", "value (ratio of medians)", "per round", "target", "met"], body) + "\n")

    # ---------------------------------------------------------------- memory
    rss = defaultdict(lambda: defaultdict(list))  # (R, impl) -> phase -> rows
    for r in rows:
        if r.get("metric") == "rss":
            rss[(r["records"], r["impl"])][r["phase"]].append(r)
    if rss:
        print("## Memory of the DNS server (VmRSS / VmHWM, kB)\n")
        body = []
        for (R, impl) in sorted(rss, key=lambda k: (k[0], k[1] != A)):
            d = rss[(R, impl)]

            def last(phase, key):
                v = d.get(phase) or []
                return v[-1].get(key) if v else None
            hwm = max((x.get("hwm_kb") or 0 for v in d.values() for x in v), default=None)
            thr = max((x.get("threads") or 0 for v in d.values() for x in v), default=None)
            tgt = ""
            if impl == A:
                tgt = "yes" if hwm is not None and hwm <= RSS_TARGET_KB else "**no**"
            def af(phase):
                a, f = last(phase, "rss_anon_kb"), last(phase, "rss_file_kb")
                return "–" if a is None else f"{a} / {f}"
            body.append([R, impl, fmt(last("idle", "rss_kb")), fmt(last("after_names", "rss_kb")),
                         fmt(last("after_upstream", "rss_kb")), fmt(last("after_reload", "rss_kb")),
                         fmt(hwm), af("idle"), af("after_upstream"), thr, tgt])
        print(table(["records", "impl", "idle RSS", "after names load", "after upstream load",
                     "after reload tests", "peak (max VmHWM)", "idle anon / file", "after upstream anon / file",
                     "threads (max)", f"peak ≤ 15 MB ({RSS_TARGET_KB} kB)"], body) + "\n")
        print("RSS = anonymous memory (heap, stacks) + file-backed pages (the program's own text and data "
              "mapped from its executable and libraries, shared with other processes running the same file); "
              "VmHWM is the peak of the total.\n")

    # ---------------------------------------------------------------- reload
    rl = [r for r in rows if r.get("metric") == "reload"]
    if rl:
        print("## Queries during reloads (SIGHUP storm while dnsperf runs at a fixed rate)\n")
        body = []
        for r in sorted(rl, key=lambda x: (x["records"], x["queries"], x["impl"] != A)):
            m = r["result"]
            lost = m.get("lost") or 0
            bad = m.get("not_noerror") or 0
            sent = m.get("sent") or 0
            rc = ", ".join(f"{k} {v}" for k, v in (m.get("rcodes") or {}).items())
            body.append([r["records"], r["queries"], r["impl"], r["sighups"], r["hup_span_ms"], sent,
                         m.get("completed"), lost, bad, rc or "–",
                         f"{lost + bad} ({100.0 * (lost + bad) / sent:.2f}%)" if sent else "–",
                         fmt(m.get("p99_ms")), fmt(m.get("max_ms")),
                         ", ".join(f"{k} {n}" for k, n in ((r.get("udp") or {}).get("host") or {}).items() if n) or "none",
                         f"{fmt(r['pid_alive_after'])}/{fmt(r['pid_file_same'])}",
                         f"{r.get('after_ctr1')}; {r.get('after_ctrR')}"])
        print(table(["records", "queries", "impl", "SIGHUPs", "over ms", "queries sent", "completed", "lost",
                     "answered not NOERROR", "response codes", "failed (lost + not NOERROR)", "p99 ms", "max ms",
                     "host netns kernel counters (non-zero)", "server alive / same pid", "answers afterwards (ctr1; ctrR)"], body) + "\n")
        c = cfg.get("a", {})
        print(f"dnsperf `-Q {c.get('reload_qps')} -l {c.get('reload_duration_s')} -c {c.get('clients')} "
              f"-t {c.get('qtimeout_s')}`; {c.get('reloads')} SIGHUPs every {c.get('reload_interval_s')} s "
              f"from 1 s in; the config files do not change. A query is lost when no answer came within "
              f"{c.get('qtimeout_s')} s.\n")

    # ---------------------------------------------------------------- grow, populate, sanity
    gr = [r for r in rows if r.get("metric") == "grow"]
    if gr:
        print("## Loading appended records (append to the network file + one SIGHUP)\n")
        print(table(["impl", "records before", "after", "SIGHUP → new last name answered, ms"],
                    [[r["impl"], r["records_from"], r["records_to"], fmt(r.get("sighup_to_answered_ms"))]
                     for r in gr]) + "\n")
        print("Measured from container 1 with a UDP client asking for the last appended name every ~2 ms "
              "(50 ms per-try timeout) from just before the SIGHUP.\n")
    pop = [r for r in rows if r.get("metric") == "populate"]
    if pop:
        print("Records via real `netavark setup` calls (the first starts the DNS server): " + "; ".join(
            f"{r['impl']} {r['via_netavark']} setups, {r['failed']} failed, median "
            f"{fmt(r['setup_wall_ms'].get('median'))} ms wall / {fmt(r['setup_cpu_ms'].get('median'))} ms CPU"
            + (f" ({r['stderr'].strip()})" if r.get("stderr", "").strip() else "") for r in pop) + ".\n")
    san = [r for r in rows if r.get("metric") == "sanity"]
    if san:
        bad = [r for r in san if not r.get("ok")]
        if not bad:
            print(f"Sanity checks ({len(san)}: ctr1, the last record and an upstream name via each server; "
                  "ref_local and ref_upstream; before and after each record count's tests): all answers right.\n")
        else:
            print("**Sanity check failures:**\n")
            for r in bad:
                print(f"- {r['impl']} R={r['records']} {r['when']}: ctr1='{r['ctr1']}' ctrR='{r['ctrR']}' "
                      f"upstream='{r['upstream']}' ref_local='{r['ref_local']}' ref_upstream='{r['ref_upstream']}'")
            print()
    warn = defaultdict(int)
    for r in rows:
        if r.get("metric") in ("dns_max", "dns_latency", "reload"):
            w = r["result"].get("warnings") or {}
            if isinstance(w, list):  # older parser: one line per distinct warning
                w = {x: 1 for x in w}
            for k, n in w.items():
                k = __import__("re").sub(r"(id:?)\s*\d+", r"\1 N", k)
                warn[(r["metric"], r["records"], r["impl"], r.get("test", r.get("queries")), k)] += n
    if warn:
        print("dnsperf warnings (count over rounds; \"unexpected (maybe timed out) id\" = an answer that arrived "
              "after dnsperf had counted the query as lost):\n")
        for (metric, R, impl, test, k), n in sorted(warn.items()):
            print(f"- {metric} R={R} {impl} {test}: {n}× `{k}`")
        print()
    end = [r for r in rows if r.get("metric") == "run_end"]
    if end:
        print(f"Run time (measurements + cleanup): {end[-1]['elapsed_s']} s.")


if __name__ == "__main__":
    main()
