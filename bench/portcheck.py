#!/usr/bin/env python3
"""Functional, implementation-neutral check of published ports.

usage: portcheck.py HOST_NETNS_PATH TARGET_IP CTR_NETNS_PATH:CPORT:HPORT [...]

For every CTR_NETNS_PATH:CPORT:HPORT a TCP listener is opened on
0.0.0.0:CPORT inside that container netns. Then, from the host netns,
TARGET_IP:HPORT is connected to (TARGET_IP: a local address of the host
netns, e.g. the bridge gateway, so the connection goes through the nat
OUTPUT path that both iptables and nftables drivers program for local
traffic) and the connection must arrive at the listener of the right
container. Prints one JSON object:
  {"checked": n, "ok": k, "wrong_target": w, "refused": r, "timeout": t, "other": o}

Only this process's own namespace membership changes (setns); nothing is
configured anywhere.
"""
import ctypes
import json
import os
import select
import socket
import sys

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {path}: {os.strerror(e)}")
    finally:
        os.close(fd)


def main():
    host, target = sys.argv[1], sys.argv[2]
    specs = []
    for a in sys.argv[3:]:
        ns, cp, hp = a.rsplit(":", 2)
        specs.append((ns, int(cp), int(hp)))
    listeners = {}
    res = {"checked": len(specs), "ok": 0, "wrong_target": 0, "refused": 0,
           "timeout": 0, "other": 0, "no_listener": 0}
    by_ns = {}
    for ns, cp, hp in specs:
        by_ns.setdefault(ns, []).append((cp, hp))
    for ns, lst in by_ns.items():
        try:
            setns(ns)
        except OSError:
            continue
        for cp, hp in lst:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", cp))
                s.listen(8)
                s.setblocking(False)
                listeners[(ns, cp, hp)] = s
            except OSError:
                s.close()
    setns(host)
    for key in specs:
        lst = listeners.get(key)
        if lst is None:
            res["no_listener"] += 1
            continue
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(0.5)
        try:
            c.connect((target, key[2]))
        except ConnectionRefusedError:
            res["refused"] += 1
            c.close()
            continue
        except socket.timeout:
            res["timeout"] += 1
            c.close()
            continue
        except OSError:
            res["other"] += 1
            c.close()
            continue
        r, _, _ = select.select([lst], [], [], 0.5)
        if r:
            try:
                a, _ = lst.accept()
                a.close()
                res["ok"] += 1
            except OSError:
                res["wrong_target"] += 1
        else:
            res["wrong_target"] += 1
        c.close()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
