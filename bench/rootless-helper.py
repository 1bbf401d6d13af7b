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
"""
import json
import os
import re
import socket
import sys

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
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
