#!/usr/bin/env python3
"""Markdown summary of setup-compare.sh JSON lines.

usage: summarize.py FILE.jsonl [FILE.jsonl ...]

Implementation A (first "config" line, normally berth) is compared with B
(normally the reference netavark). Ratios are A / B of the medians (p95 /
p95 for the p95 columns), computed only where both were measured at the
same N. With several runs (the "run" field), every number is the median of
the per-run values.
"""
import json
import statistics
import sys
from collections import OrderedDict, defaultdict


def load(paths, bench="setup-compare"):
    """Reads the JSON lines of the given files, keeping one benchmark's."""
    rows = []
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return [r for r in rows if r.get("bench") == bench]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=None):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) and nd is None:
        return str(v)
    if isinstance(v, float) and nd is None and v.is_integer() and abs(v) >= 100:
        return f"{v:.0f}"
    if isinstance(v, (int, float)):
        if nd is None:
            nd = 1 if abs(v) < 100 else 0
        return f"{v:.{nd}f}"
    return str(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def run_info_lines(rows):
    """Markdown lines for the run_info records (commit, kernel, CPUs, load
    and busy processes before and after the run), one per run and moment."""
    out = []
    for r in rows:
        if r.get("metric") != "run_info":
            continue
        i = r.get("info", {})
        c = f"commit `{i.get('commit')}`"
        if i.get("dirty"):
            c += " (**uncommitted changes**: not the numbers of any commit)"
        busy = ", ".join(f"{p['comm']} {p['cpu_pct']}%" for p in i.get("busy", [])) or "none"
        load = " ".join(str(x) for x in i.get("loadavg", []))
        out.append(f"- {r.get('when')} the run ({r.get('run')}): {c}; kernel {i.get('kernel')}, "
                   f"{i.get('cpus')} CPUs, load {load}; other busy processes: {busy}")
    return out


def level_key(lv):
    try:
        return (0, int(lv))
    except (TypeError, ValueError):
        return (1, 0)


def main():
    rows = load(sys.argv[1:])
    if not rows:
        print("no setup-compare results")
        return
    cfg = OrderedDict()
    for r in rows:
        if r.get("metric") == "config":
            cfg.setdefault(r["impl"], r)
    impls = list(cfg)
    if len(impls) < 2:
        impls = list(OrderedDict((r["impl"], 1) for r in rows))
    A, B = impls[0], impls[1] if len(impls) > 1 else None
    runs = sorted({r["run"] for r in rows})
    c0 = next(iter(cfg.values()), {})
    print(f"# {A} vs. {B}: netavark setup / teardown (bench/setup-compare.sh)\n")
    print(f"- runs: {', '.join(runs)}; first line {rows[0].get('ts')}, kernel {c0.get('kernel')}, "
          f"{c0.get('nproc')} CPUs, load1 at start {c0.get('load1')}")
    for line in run_info_lines(rows):
        print(line)
    for i in impls:
        c = cfg.get(i, {})
        print(f"- **{i}**: `{c.get('netavark')}` ({c.get('version')})")
    print(f"- aardvark-dns for both: `{c0.get('aardvark')}` ({c0.get('aardvark_version')}); "
          f"{c0.get('iptables')}; {c0.get('nft')}")
    print(f"- LEVELS=\"{c0.get('levels')}\" PROBES={c0.get('probes')} FILL_BUDGET_S={c0.get('fill_budget_s')} "
          f"(per implementation) PARALLEL={c0.get('parallel')} PAR_VARIANTS=\"{c0.get('par_variants')}\" "
          f"PAR_REPEATS={c0.get('par_repeats')} PHASES=\"{c0.get('phases')}\"")
    print("- each container: own netns, bridge network with dns_enabled, static IPv4 in 198.19.0.0/16, "
          "2 published tcp ports; calls exactly as podman 4.3.1 makes them; A and B interleaved (A B A B)")
    print("- ratio = " + f"{A} / {B}" + " (below 1: berth faster); CPU = user+sys of the call and every "
          "child process it waited for (firewall tools)\n")

    # ---------------------------------------------------------------- levels reached
    ends = defaultdict(list)
    for r in rows:
        if r.get("metric") == "scale_end":
            ends[r["impl"]].append(r)
    if ends:
        print("## Levels reached\n")
        body = []
        for i in impls:
            for e in ends.get(i, []):
                body.append([i, e["n_reached"], fmt(e["stopped_by_budget"]), e["fill_used_s"], e["budget_s"],
                             e["fill_errors"]])
        print(table(["impl", "N reached", "stopped by fill budget", "fill time used s", "budget s per impl",
                     "failed fill setups"], body) + "\n")
        levels = str(c0.get("levels", "")).split()
        top = max((int(x) for x in levels), default=0)
        for i in impls:
            for e in ends.get(i, []):
                if e["n_reached"] >= top:
                    print(f"**{i} reached N={e['n_reached']}** (the highest level) within its fill budget "
                          f"({e['fill_used_s']} of {e['budget_s']} s used).\n")
                if e["n_reached"] < top:
                    print(f"**{i} did not reach N={top}**: it stopped at N={e['n_reached']} "
                          + ("because its fill budget of " + str(e["budget_s"]) + " s was used up. "
                             if e["stopped_by_budget"] else ". ")
                          + "It was probed at that N (row `budget_stop`), together with every implementation "
                          "that was at the same N; the rows above that N have no value for it.\n")

    # ---------------------------------------------------------------- probes
    probes = defaultdict(lambda: defaultdict(list))  # (metric, level) -> impl -> rows
    for r in rows:
        if r.get("metric") in ("setup_ms", "teardown_ms"):
            probes[(r["metric"], str(r["level"]))][r["impl"]].append(r)
    for metric, title in (("setup_ms", "Setup"), ("teardown_ms", "Teardown")):
        lv = sorted({k[1] for k in probes if k[0] == metric},
                    key=lambda x: (level_key(x), x))
        # order budget_stop by its N
        def nof(l):
            ns = [med([x["n"] for x in probes[(metric, l)][i]]) for i in impls if probes[(metric, l)].get(i)]
            return max(n for n in ns if n is not None) if ns else 0
        lv = sorted(lv, key=nof)
        if not lv:
            continue
        print(f"## {title} latency per call (one extra 2-port container, N already running)\n")
        hdr = ["level", f"N {A}", f"N {B}",
               f"{A} median ms", f"{B} median ms", "ratio",
               f"{A} p95 ms", f"{B} p95 ms", "ratio",
               f"{A} CPU ms", f"{B} CPU ms", "ratio", f"failed {A}/{B}"]
        body = []
        for l in lv:
            d = probes[(metric, l)]
            va, vb = d.get(A, []), d.get(B, [])
            na = med([x["n"] for x in va]) if va else None
            nb = med([x["n"] for x in vb]) if vb else None
            ma, mb = med([x["wall"].get("median") for x in va]), med([x["wall"].get("median") for x in vb])
            pa, pb = med([x["wall"].get("p95") for x in va]), med([x["wall"].get("p95") for x in vb])
            ca, cb = med([x["cpu"].get("median") for x in va]), med([x["cpu"].get("median") for x in vb])
            same = na is not None and nb is not None and na == nb
            body.append([l, fmt(na, 0), fmt(nb, 0) if vb else "not reached",
                         fmt(ma), fmt(mb), ratio(ma, mb) if same else "–",
                         fmt(pa), fmt(pb), ratio(pa, pb) if same else "–",
                         fmt(ca), fmt(cb), ratio(ca, cb) if same else "–",
                         f"{sum(x['errors'] for x in va)}/{sum(x['errors'] for x in vb) if vb else '–'}"])
        print(table(hdr, body) + "\n")

    firsts = defaultdict(list)
    for r in rows:
        if r.get("metric") == "setup_first_ms":
            firsts[r["impl"]].append(r)
    if firsts:
        fa = firsts.get(A, []); fb = firsts.get(B, [])
        wa, wb = med([x["wall_ms"] for x in fa]), med([x["wall_ms"] for x in fb])
        ca, cb = med([x["cpu_ms"] for x in fa]), med([x["cpu_ms"] for x in fb])
        print(f"First setup on an empty host netns (creates bridge and firewall, starts aardvark-dns; 1 call each): "
              f"{A} {fmt(wa)} ms wall / {fmt(ca)} ms CPU, {B} {fmt(wb)} ms / {fmt(cb)} ms CPU "
              f"(ratio wall {ratio(wa, wb)}, CPU {ratio(ca, cb)}).\n")

    # ---------------------------------------------------------------- fill buckets
    fb = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("metric") == "fill_bucket":
            fb[(r["n_from"], r["n_to"])][r["impl"]].append(r)
    if fb:
        print("## Every setup done while filling, by N already running\n")
        body = []
        for k in sorted(fb):
            d = fb[k]
            def g(i, f, s):
                return med([x[f].get(s) for x in d.get(i, [])])
            body.append([f"{k[0]}..{k[1]}",
                         fmt(g(A, "wall", "count"), 0), fmt(g(A, "wall", "median")), fmt(g(A, "wall", "p95")),
                         fmt(g(A, "cpu", "median")),
                         fmt(g(B, "wall", "count"), 0), fmt(g(B, "wall", "median")), fmt(g(B, "wall", "p95")),
                         fmt(g(B, "cpu", "median")),
                         ratio(g(A, "wall", "median"), g(B, "wall", "median")) if d.get(B) and g(B, "wall", "count") == g(A, "wall", "count") else "–"])
        print(table(["N range", f"{A} calls", f"{A} median ms", f"{A} p95 ms", f"{A} CPU ms",
                     f"{B} calls", f"{B} median ms", f"{B} p95 ms", f"{B} CPU ms", "ratio (medians)"], body) + "\n")

    # ---------------------------------------------------------------- state
    st = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("metric") == "state":
            st[str(r["level"])][r["impl"]].append(r)
    if st:
        print("## Host netns state at each probed level\n")
        body = []
        for l in sorted(st, key=lambda l: max(med([x["n"] for x in v]) for v in st[l].values())):
            for i in impls:
                v = st[l].get(i)
                if not v:
                    continue
                g = lambda k: med([x.get(k) for x in v])
                body.append([l, i, fmt(g("n"), 0), fmt(g("iptables_save_lines"), 0), fmt(g("iptables_dnat_rules"), 0),
                             fmt(g("nft_ruleset_lines"), 0), fmt(g("nft_list_ms"), 0), fmt(g("iptables_nat_list_ms"), 0),
                             fmt(g("host_links"), 0), fmt(g("aardvark_entries"), 0), fmt(g("aardvark_procs"), 0),
                             fmt(g("aardvark_rss_kb"), 0)])
        print(table(["level", "impl", "N", "iptables-save lines", "iptables DNAT rules", "`nft list ruleset` lines",
                     "`nft list ruleset` ms", "`iptables -t nat -S` ms", "host links", "aardvark entries",
                     "aardvark processes", "aardvark RSS kB"], body) + "\n")

    # ---------------------------------------------------------------- firewall
    drv = [r for r in rows if r.get("metric") == "fw_driver"]
    ex = [r for r in rows if r.get("metric") == "fw_tool_execs"]
    san = [r for r in rows if r.get("metric") == "sanity"]
    if drv or ex:
        print("## Firewall driver and processes per call\n")
    if drv:
        body = [[r["impl"], r["NETAVARK_FW"], fmt(r["works"]), r["rc"], fmt(r.get("teardown_rc")),
                 r.get("iptables_save_lines"), r.get("nft_ruleset_lines"), (r.get("stderr") or "").strip()[:160] or "–"]
                for r in drv]
        print(table(["impl", "NETAVARK_FW", "setup works", "setup rc", "teardown rc", "iptables-save lines after setup",
                     "nft ruleset lines after setup", "message"], body) + "\n")
    if ex:
        calls = list(OrderedDict((r["call"], 1) for r in ex))
        body = []
        for c in calls:
            row = [c]
            for i in (A, B):
                v = [r for r in ex if r["impl"] == i and r["call"] == c]
                if not v:
                    row += ["–", "–", "–"]
                    continue
                r = v[-1]
                prog = ", ".join(f"{k}×{n}" for k, n in r["by_name"].items()) or "none"
                if r.get("failed_exec_attempts"):
                    prog += f" (+{r['failed_exec_attempts']} failed execve attempts)"
                row += [r["fw_procs"], r["procs"], prog]
            body.append(row)
        print("Processes started per call with the default driver (NETAVARK_FW unset; counted with "
              "`strace -f -b execve`; 2-port container; `setup_first` creates the network, `teardown_last` removes it):\n")
        print(table(["call", f"{A} firewall procs", f"{A} all procs", f"{A} programs",
                     f"{B} firewall procs", f"{B} all procs", f"{B} programs"], body) + "\n")
        for r in ex:
            if r["rc"] != 0:
                print(f"- {r['impl']} {r['call']}: rc={r['rc']} {r.get('stderr', '')}")
    if san:
        for r in san:
            p = r.get("ports") or {}
            print(f"- sanity {r['impl']}: published ports reachable {p.get('ok', '–')}/{r['ports_expected']} "
                  f"(from the host netns to the gateway address); DNS name of the other container "
                  f"{'resolved' if r['dns_ok'] else 'NOT resolved'} ({r['dns_answer'] or 'no answer'})")
        print()

    # ---------------------------------------------------------------- parallel
    par = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("metric") in ("parallel_setup", "parallel_teardown"):
            par[(r["variant"], r["metric"].split("_")[1])][r["impl"]].append(r)
    if par:
        print("## Concurrent calls (PARALLEL started at the same instant; cold = network not up yet, "
              "warm = 1 container already on it)\n")
        body = []
        order = {"cold": 0, "warm": 1}
        for (variant, call) in sorted(par, key=lambda k: (order.get(k[0], 9), k[0], k[1] != "setup")):
            d = par[(variant, call)]
            tot = {}
            for i in impls:
                v = d.get(i)
                if not v:
                    continue
                g = lambda k: med([x.get(k) for x in v])
                tot[i] = g("total_ms")
                ports = med([(x.get("ports") or {}).get("ok") for x in v])
                msgs = "; ".join(sorted({x["stderr"].strip() for x in v if x.get("stderr", "").strip()}))
                body.append([variant, call, i, fmt(g("total_ms"), 0), fmt(g("max_call_ms"), 0), fmt(g("cpu_ms"), 0),
                             "/".join(str(x["errors"]) for x in v) + f" of {v[0]['parallel']}",
                             fmt(g("eth0_ok"), 0) + f"/{v[0]['parallel']}" if call == "setup" else fmt(g("eth0_ok"), 0),
                             f"{fmt(ports, 0)}/{v[0]['ports_expected']}",
                             f"{fmt(g('aardvark_entries'), 0)}/{v[0]['aardvark_entries_expected']}",
                             fmt(g("iptables_dnat_rules"), 0), fmt(g("nft_ruleset_lines"), 0),
                             fmt(g("host_veths"), 0), fmt(g("aardvark_procs"), 0), msgs[:400] or "–"])
            if A in tot and B in tot:
                body.append([variant, call, "ratio", ratio(tot[A], tot[B]), "", "", "", "", "", "", "", "", "", "", ""])
        print(table(["variant", "call", "impl", "total ms", "slowest call ms", "CPU ms (all calls)", "failed calls",
                     "eth0 with right IP", "ports reachable/expected", "aardvark entries/expected",
                     "iptables DNAT rules", "nft ruleset lines", "host veths", "aardvark processes",
                     "error messages (count)"], body) + "\n")
        print("State columns are read after the batch; after teardown the expected values are 0 "
              "(warm: the first container stays, so 1 aardvark entry). Ports are checked functionally: a "
              "listener on the container port in every container netns, a TCP connect from the host netns to "
              "the gateway address and the host port.\n")

    errs = [r for r in rows if r.get("metric") == "error"]
    if errs:
        print("## Errors during fill\n")
        for i in impls:
            v = [r for r in errs if r["impl"] == i]
            if v:
                msgs = sorted({r.get("stderr", "") for r in v})
                print(f"- {i}: {len(v)} failed setups; messages: {'; '.join(msgs)[:400]}")
        print()
    end = [r for r in rows if r.get("metric") == "run_end"]
    if end:
        print(f"Run time (phases + cleanup): {end[-1]['elapsed_s']} s.")


if __name__ == "__main__":
    main()
