#!/usr/bin/env python3
"""Helpers for dns-compare.sh (standard library only).

usage:
  dnslib.py parse FILE
      dnsperf output -> JSON: sent, completed, lost, interrupted, qps, avg/min/max
      latency, rcodes {NOERROR: n, ...}, and with -v the per-query latency
      percentiles p50/p90/p99/p999 (ms)
  dnslib.py queries DIR R UPSTREAM_NAMES
      DIR/q-names-R.txt (max(1000, R) random "ctrK A" lines, K in 1..R) and
      DIR/q-upstream.txt (1000 random "hostK.upstream.test A" lines)
  dnslib.py hosts FILE R OCTET3_BASE
      dnsmasq hosts file "198.18.<base + h/256>.<h % 256> ctrK" (h = K + 10),
      the same addresses netavark / the appended lines give the containers
  dnslib.py upstream-hosts FILE N
      "198.19.<100 + K/256>.<K % 256> hostK.upstream.test" for K in 1..N
  dnslib.py append NETFILE FIRST LAST IDPREFIX OCTET3_BASE
      appends containers FIRST..LAST to an aardvark network file in the format
      netavark 1.4 writes ("<id> <ipv4> <ipv6> <name>,<short id>"), holding
      netavark's lock <config>/aardvark.lock (NETFILE is <config>/aardvark-dns/<net>)
  dnslib.py wait-answer SERVER NAME IP TIMEOUT_S READYFILE
      creates READYFILE, then asks SERVER for NAME (A) every few ms until an
      answer carries IP; prints the wall-clock time (epoch seconds) of that
      answer, or "timeout" (exit 1)
  dnslib.py ask SERVER NAME
      one A query (1 s timeout): prints "RCODE ip,ip,..." or "timeout"
"""
import fcntl
import hashlib
import json
import os
import random
import re
import select
import socket
import struct
import sys
import time

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def pct(vals, q):
    if not vals:
        return None
    pos = (len(vals) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(vals) - 1)
    return round(vals[lo] + (vals[hi] - vals[lo]) * (pos - lo), 3)


def parse(path):
    t = open(path, errors="replace").read()

    def num(pat):
        m = re.search(pat, t)
        return float(m.group(1)) if m else None

    out = {
        "sent": num(r"Queries sent:\s+(\d+)"),
        "completed": num(r"Queries completed:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "interrupted": num(r"Queries interrupted:\s+(\d+)"),
        "qps": num(r"Queries per second:\s+([\d.]+)"),
        "run_s": num(r"Run time \(s\):\s+([\d.]+)"),
        "avg_ms": None, "min_ms": None, "max_ms": None, "stddev_ms": None,
    }
    m = re.search(r"Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)", t)
    if m:
        out["avg_ms"], out["min_ms"], out["max_ms"] = (round(float(x) * 1000, 3) for x in m.groups())
    sd = num(r"Latency StdDev \(s\):\s+([\d.]+)")
    if sd is not None:
        out["stddev_ms"] = round(sd * 1000, 3)
    rc = {}
    m = re.search(r"Response codes:\s+(.*)", t)
    if m:
        for name, n in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            rc[name] = int(n)
    out["rcodes"] = rc
    out["not_noerror"] = sum(n for k, n in rc.items() if k != "NOERROR")
    # per-query lines of -v: "> RCODE NAME TYPE LATENCY"
    lat = sorted(float(x) * 1000 for x in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", t, re.M))
    if lat:
        out.update({"p50_ms": pct(lat, 0.5), "p90_ms": pct(lat, 0.9), "p99_ms": pct(lat, 0.99),
                    "p999_ms": pct(lat, 0.999), "verbose_lines": len(lat)})
    # dnsperf's own warnings, counted by kind (ids stripped), e.g. "Warning:
    # received a response with an unexpected (maybe timed out) id" = an
    # answer that came after the query had been counted as lost
    warn = {}
    for w in re.findall(r"^\s*((?:Warning|Error)[^\n]{0,120})", t, re.M):
        k = re.sub(r"(id:?)\s*\d+", r"\1 N", w.strip())
        warn[k] = warn.get(k, 0) + 1
    if warn:
        out["warnings"] = warn
    out["timeouts_logged"] = len(re.findall(r"^\[Timeout\]", t, re.M))
    if out["qps"] is not None:
        out["qps"] = round(out["qps"], 1)
    for k in ("sent", "completed", "lost", "interrupted"):
        if out[k] is not None:
            out[k] = int(out[k])
    print(json.dumps(out))


def ip_of(k, base):
    h = k + 10
    return f"198.18.{base + h // 256}.{h % 256}"


def queries(d, r, u):
    rnd = random.Random(42)
    q = [f"ctr{rnd.randrange(1, r + 1)} A" for _ in range(max(1000, r))]
    with open(os.path.join(d, f"q-names-{r}.txt"), "w") as f:
        f.write("\n".join(q) + "\n")
    up = [f"host{rnd.randrange(1, u + 1)}.upstream.test A" for _ in range(1000)]
    with open(os.path.join(d, "q-upstream.txt"), "w") as f:
        f.write("\n".join(up) + "\n")


def hosts(path, r, base):
    with open(path, "w") as f:
        for k in range(1, r + 1):
            f.write(f"{ip_of(k, base)} ctr{k}\n")


def upstream_hosts(path, n):
    with open(path, "w") as f:
        for k in range(1, n + 1):
            f.write(f"198.19.{100 + k // 256}.{k % 256} host{k}.upstream.test\n")


def append(path, first, last, idprefix, base):
    cfg = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    with open(os.path.join(cfg, "aardvark.lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(path, "a") as f:
            for k in range(first, last + 1):
                cid = hashlib.sha256(f"{idprefix}-ctr{k}".encode()).hexdigest()
                f.write(f"{cid} {ip_of(k, base)}  ctr{k},{cid[:12]}\n")
        fcntl.flock(lock, fcntl.LOCK_UN)


def build_query(name, qid):
    hdr = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return hdr + q + struct.pack(">HH", 1, 1)


def skip_name(b, i):
    while True:
        n = b[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += n + 1


def parse_reply(b):
    qid, flags, qd, an = struct.unpack(">HHHH", b[:8])
    i = 12
    for _ in range(qd):
        i = skip_name(b, i) + 4
    ips = []
    for _ in range(an):
        i = skip_name(b, i)
        typ, _cls, _ttl, rdlen = struct.unpack(">HHIH", b[i:i + 10])
        i += 10
        if typ == 1 and rdlen == 4:
            ips.append(socket.inet_ntoa(b[i:i + 4]))
        i += rdlen
    return qid, RCODES.get(flags & 0xF, str(flags & 0xF)), ips


def ask_once(sock, server, name, qid, timeout):
    sock.sendto(build_query(name, qid), (server, 53))
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return None
        data, _ = sock.recvfrom(4096)
        try:
            rid, rcode, ips = parse_reply(data)
        except (struct.error, IndexError):
            continue
        if rid == qid:
            return rcode, ips


def wait_answer(server, name, ip, timeout, ready):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    open(ready, "w").close()
    end = time.time() + float(timeout)
    qid = 1
    while time.time() < end:
        qid = (qid + 1) & 0xFFFF
        try:
            r = ask_once(sock, server, name, qid, 0.05)
        except OSError:
            r = None
        if r and ip in r[1]:
            print(f"{time.time():.6f}")
            return 0
        time.sleep(0.002)
    print("timeout")
    return 1


def ask(server, name):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        r = ask_once(sock, server, name, 4242, 1.0)
    except OSError as e:
        print(f"error {e}")
        return 1
    if r is None:
        print("timeout")
        return 1
    print(f"{r[0]} {','.join(r[1])}")
    return 0


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        return 2
    c = a[0]
    if c == "parse":
        parse(a[1])
    elif c == "queries":
        queries(a[1], int(a[2]), int(a[3]))
    elif c == "hosts":
        hosts(a[1], int(a[2]), int(a[3]))
    elif c == "upstream-hosts":
        upstream_hosts(a[1], int(a[2]))
    elif c == "append":
        append(a[1], int(a[2]), int(a[3]), a[4], int(a[5]))
    elif c == "wait-answer":
        return wait_answer(a[1], a[2], a[3], a[4], a[5])
    elif c == "ask":
        return ask(a[1], a[2])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
