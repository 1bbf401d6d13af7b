#!/usr/bin/env python3
"""Helpers for rootless-compare.sh.

  rootless-helper.py tree PID...          PID and every descendant, one a line
  rootless-helper.py cpu PID...           user+sys CPU ticks of PID... and their
                                          descendants (children reaped ones included)
  rootless-helper.py mem PID...           "RSS HWM" in KiB, summed over PID... and descendants
  rootless-helper.py iperf FILE           receiver-side bit/s from `iperf3 -J` output
  rootless-helper.py retr FILE            sender retransmits from `iperf3 -J` output
  rootless-helper.py wrk FILE             requests/s from wrk's output
  rootless-helper.py hostfwd SOCK H:C...  slirp4netns API: forward tcp host port H to
                                          guest port C (exit 1 on any error)
  rootless-helper.py rrserve PORT [ADDR]  TCP echo server for `rr` (a thread per
                                          connection); prints "peer ADDR PORT" of every
                                          client it accepts, one a line
  rootless-helper.py rr HOST PORT SECONDS ping-pong of 1-byte messages over one
                                          connection (TCP_NODELAY) for SECONDS after
                                          a warm-up; prints "MEDIAN_US P99_US COUNT"
                                          of the round trips (connects are retried
                                          for 5 s)
"""
import json
import os
import re
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runinfo  # noqa: E402  (the /proc reader)


def parents():
    return {pid: int(f[1]) for pid, _, f in runinfo.proc_stats()}


def tree(pids):
    par = parents()
    out, todo = [], [p for p in pids if p in par]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo += [c for c, pp in par.items() if pp == p]
    return out


def stat_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0
    v = s[s.rindex(")") + 2:].split()
    return sum(int(x) for x in v[11:15])  # utime stime cutime cstime


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def hostfwd(sock, specs):
    for spec in specs:
        h, c = spec.split(":")
        req = {"execute": "add_hostfwd", "arguments": {
            "proto": "tcp", "host_addr": "0.0.0.0", "host_port": int(h), "guest_port": int(c)}}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(sock)
        s.sendall(json.dumps(req).encode())
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(4096).decode()
        s.close()
        if "return" not in reply:
            print(f"add_hostfwd {spec}: {reply}", file=sys.stderr)
            sys.exit(1)


def echo(conn):
    with conn:
        while True:
            b = conn.recv(1)
            if not b:
                return
            conn.sendall(b)


def rrserve(port, addr="0.0.0.0"):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(16)
    while True:
        conn, peer = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print(f"peer {peer[0]} {peer[1]}", flush=True)
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def connect(host, port, retry_s=5.0):
    end = time.monotonic() + retry_s
    while True:
        try:
            return socket.create_connection((host, port), timeout=5)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def rr(host, port, seconds, warmup=200):
    """Round trips of one byte each way; returns the list of RTTs in ns."""
    c = connect(host, port)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send, recv, clock = c.send, c.recv, time.perf_counter_ns
    for _ in range(warmup):
        send(b"x")
        if not recv(1):
            raise OSError("connection closed")
    rtts, end = [], clock() + int(seconds * 1e9)
    t = clock()
    while t < end:
        send(b"x")
        if not recv(1):
            raise OSError("connection closed")
        t1 = clock()
        rtts.append(t1 - t)
        t = t1
    c.close()
    return rtts


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    pids = [int(a) for a in args if a.isdigit()] if cmd in ("tree", "cpu", "mem") else []
    if cmd == "tree":
        print("\n".join(str(p) for p in tree(pids)))
    elif cmd == "cpu":
        print(sum(stat_ticks(p) for p in tree(pids)))
    elif cmd == "mem":
        t = tree(pids)
        print(sum(status_kb(p, "VmRSS") for p in t), sum(status_kb(p, "VmHWM") for p in t))
    elif cmd in ("iperf", "retr"):
        try:
            with open(args[0]) as f:
                d = json.load(f)
            end = d["end"]
            print(round(end["sum_received"]["bits_per_second"]) if cmd == "iperf"
                  else end["sum_sent"].get("retransmits", ""))
        except (OSError, ValueError, KeyError):
            print("")
    elif cmd == "wrk":
        try:
            with open(args[0]) as f:
                m = re.search(r"Requests/sec:\s*([0-9.]+)", f.read())
            print(m.group(1) if m else "")
        except OSError:
            print("")
    elif cmd == "hostfwd":
        hostfwd(args[0], args[1:])
    elif cmd == "rrserve":
        rrserve(int(args[0]), *args[1:2])
    elif cmd == "rr":
        v = sorted(rr(args[0], int(args[1]), float(args[2])))
        if not v:
            sys.exit("rr: no round trip completed")
        p99 = v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
        print(f"{statistics.median(v) / 1000:.1f} {p99 / 1000:.1f} {len(v)}")
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
