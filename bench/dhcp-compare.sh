#!/bin/bash
# dhcp-compare.sh - DHCP lease acquisition time, berth vs. the CNI dhcp
# plugin, side by side in ONE run, interleaved (A B, B A, ...).
#
#   berth: bin/netavark setup NETNS (macvlan network, ipam_options.driver
#          "dhcp", JSON as Podman sends it) with `bin/netavark dhcp-proxy`
#          running (berth's DHCP proxy, netavark's gRPC API)
#   cni:   /usr/lib/cni/macvlan ADD (CNI_* environment, conf on stdin) with
#          "ipam": {"type": "dhcp"}, and `/usr/lib/cni/dhcp daemon` running
#          (Debian containernetworking-plugins)
#
# Measured: wall time of the setup call (ADD), from exec to return; when it
# returns the container's interface has its leased address (checked after
# every call, untimed). Teardown (DEL, with DHCPRELEASE) is timed too.
#
# Topology, all in namespaces created here (never the machine's own):
#   PREFIX-host  the "container host": macvlan parent "dhcpparent" (a veth),
#                berth's DHCP proxy and the CNI dhcp daemon run here
#   PREFIX-lan   the LAN: eth0 198.18.1.1/24, dnsmasq as DHCP server
#                (range 198.18.1.100-199, lease 10m)
#   PREFIX-cN    one fresh container namespace per call
# The script runs in a private mount namespace; /run/podman (where berth's
# front-end finds the proxy socket) is a private directory there.
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/dhcp-compare.sh            30 rounds (about 1-2 min)
#   bench/dhcp-compare.sh --quick    5 rounds (about 20 s)
# Knobs: ROUNDS (default 30; round 0 is a warm-up and not counted),
#   BERTH (default <repo>/bin/netavark), CNI_DIR (/usr/lib/cni),
#   PING=1 (let dnsmasq ping-check each new address: adds its ~3 s wait,
#   the same for both), PREFIX (bdh), RESDIR (bench/results/dhcp-<ts>).
# Output: RESDIR/dhcp.jsonl (one object per call), RESDIR/summary.md (also
# printed; it starts with the commit, kernel, CPUs and load before and
# after the run), and the logs of dnsmasq (--log-dhcp), the proxy and the daemon.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PREFIX="${PREFIX:-bdh}"
if [ "${1:-}" = --quick ]; then ROUNDS="${ROUNDS:-5}"; fi
ROUNDS="${ROUNDS:-30}"
BERTH="${BERTH:-$REPO/bin/netavark}"
CNI_DIR="${CNI_DIR:-/usr/lib/cni}"
PING="${PING:-0}"
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
HOSTNS=$PREFIX-host LANNS=$PREFIX-lan
export PREFIX ROUNDS BERTH CNI_DIR PING PYTHON HOSTNS LANNS HERE REPO

case "${DHCP_BENCH_STAGE:-outer}" in
outer)
    need_root
    need "$BERTH:make" "$CNI_DIR/macvlan:containernetworking-plugins" "$CNI_DIR/dhcp:containernetworking-plugins" \
        dnsmasq:dnsmasq-base ip:iproute2 unshare:util-linux sha256sum:coreutils "$PYTHON:python3"
    if ip netns list 2>/dev/null | awk '{print $1}' | grep -q "^$PREFIX-"; then
        echo "dhcp-compare.sh: network namespaces named $PREFIX-* exist already (another run?); choose another PREFIX" >&2
        exit 2
    fi
    RESDIR="${RESDIR:-$HERE/results/dhcp-$(date +%Y%m%d-%H%M%S)}"
    mkdir -p "$RESDIR"
    TMP=$(mktemp -d -t "$PREFIX.XXXXXX")
    export RESDIR TMP
    run_info >"$TMP/info-before.json"
    rc=0
    mark_outer_ns
    DHCP_BENCH_STAGE=mount unshare --mount --propagation private bash "$0" || rc=$?
    if [ -s "$RESDIR/summary.md" ]; then
        {
            echo "- before: $("$PYTHON" -c 'import json,sys; sys.path.insert(0, sys.argv[2]); import runinfo; print(runinfo.markdown(json.load(open(sys.argv[1]))))' "$TMP/info-before.json" "$HERE")"
            echo "- after: $(run_info --md)"
            echo
            cat "$RESDIR/summary.md"
        } >"$TMP/summary.md" && mv "$TMP/summary.md" "$RESDIR/summary.md"
        head -3 "$RESDIR/summary.md"
    fi
    rm -rf "$TMP"
    exit $rc
    ;;

mount)
    # Private mount namespace, still the caller's network namespace: only
    # namespaces made here are changed.
    require_private_ns mnt
    DNSMASQ_PID=""
    cleanup() {
        # wait reports the TERM it sent (143); that is not a failure of the run
        if [ -n "$DNSMASQ_PID" ] && kill "$DNSMASQ_PID" 2>/dev/null; then wait "$DNSMASQ_PID" 2>/dev/null || true; fi
        for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-" || true); do ip netns del "$ns" 2>/dev/null || true; done
        mountpoint -q /run/podman && umount /run/podman
        true
    }
    trap cleanup EXIT
    for ns in "$HOSTNS" "$LANNS"; do
        ip netns del "$ns" 2>/dev/null || true
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    ip -n "$HOSTNS" link add dhcpparent type veth peer name eth0 netns "$LANNS"
    ip -n "$HOSTNS" link set dhcpparent up
    ip -n "$LANNS" addr add 198.18.1.1/24 dev eth0
    ip -n "$LANNS" link set eth0 up
    mkdir -p "$TMP/run-podman" /run/podman
    mount --bind "$TMP/run-podman" /run/podman
    ping_opt=--no-ping
    [ "$PING" = 1 ] && ping_opt=""
    ip netns exec "$LANNS" dnsmasq -k -C /dev/null --port=0 --interface=eth0 --bind-interfaces $ping_opt \
        --dhcp-range=198.18.1.100,198.18.1.199,255.255.255.0,10m --dhcp-option=option:router,198.18.1.1 \
        --dhcp-leasefile="$TMP/dnsmasq.leases" --pid-file= --user=root --group=root \
        --log-dhcp --log-facility="$TMP/dnsmasq.log" &
    DNSMASQ_PID=$!
    for _ in $(seq 50); do grep -q "DHCP, IP range" "$TMP/dnsmasq.log" 2>/dev/null && break; sleep 0.1; done
    DHCP_BENCH_STAGE=host ip netns exec "$HOSTNS" bash "$0"
    ;;

host)
    # Inside the host namespace: the daemons, and the timed calls (no
    # nsenter in the timed path).
    PROXY_PID="" CNID_PID=""
    cleanup() {
        for p in $PROXY_PID $CNID_PID; do
            if kill "$p" 2>/dev/null; then wait "$p" 2>/dev/null || true; fi
        done
        true
    }
    trap cleanup EXIT
    mkdir -p "$TMP/berth-cfg" "$TMP/proxy" "$TMP/cni"
    RUST_LOG=warn "$BERTH" dhcp-proxy --dir "$TMP/proxy" -a 0 2>"$TMP/proxy.log" &
    PROXY_PID=$!
    "$CNI_DIR/dhcp" daemon -socketpath "$TMP/cni/dhcp.sock" >"$TMP/cni-daemon.log" 2>&1 &
    CNID_PID=$!
    for _ in $(seq 50); do [ -S /run/podman/nv-proxy.sock ] && [ -S "$TMP/cni/dhcp.sock" ] && break; sleep 0.1; done
    [ -S /run/podman/nv-proxy.sock ] || { log "berth's dhcp-proxy did not start: $(cat "$TMP/proxy.log")"; exit 1; }
    [ -S "$TMP/cni/dhcp.sock" ] || { log "CNI dhcp daemon did not start: $(cat "$TMP/cni-daemon.log")"; exit 1; }
    OUT=$RESDIR/dhcp.jsonl
    : >"$OUT"
    log "berth: $(shown_path "$BERTH") ($("$BERTH" version | tr -d '\n ' | cut -c1-80)); cni: $CNI_DIR (dpkg $(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null || echo '?'))"
    log "dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}'), ping check: $([ "$PING" = 1 ] && echo on || echo off); rounds: $ROUNDS"

    cni_conf() {
        printf '{"cniVersion":"1.0.0","name":"dhcpbench","type":"macvlan","master":"dhcpparent","mode":"bridge","ipam":{"type":"dhcp","daemonSocketPath":"%s"}}' "$TMP/cni/dhcp.sock"
    }
    berth_json() { # ID NAME
        printf '{"container_id":"%s","container_name":"%s","networks":{"dhcpnet":{"interface_name":"eth0"}},"network_info":{"dhcpnet":{"name":"dhcpnet","id":"%064d","driver":"macvlan","network_interface":"dhcpparent","ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"dhcp"}}}}' "$1" "$2" 7
    }
    ms_since() { # START (EPOCHREALTIME) -> milliseconds
        awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", (b-a)*1000}'
    }
    # one IMPL ROUND: setup (timed), check the address, teardown (timed)
    one() {
        local impl=$1 r=$2 ns=$PREFIX-c$r-${1:0:1} cid t0 ms_up ms_down rc=0 ip
        cid=$(printf '%s' "$ns" | sha256sum | cut -c1-64)
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        if [ "$impl" = berth ]; then
            berth_json "$cid" "$ns" >"$TMP/in.json"
            t0=$EPOCHREALTIME
            "$BERTH" --config "$TMP/berth-cfg" setup "/run/netns/$ns" <"$TMP/in.json" >"$TMP/out.json" 2>"$TMP/err.txt" || rc=$?
            ms_up=$(ms_since "$t0")
        else
            cni_conf >"$TMP/in.json"
            t0=$EPOCHREALTIME
            CNI_COMMAND=ADD CNI_CONTAINERID=$cid CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=$CNI_DIR \
                "$CNI_DIR/macvlan" <"$TMP/in.json" >"$TMP/out.json" 2>"$TMP/err.txt" || rc=$?
            ms_up=$(ms_since "$t0")
        fi
        ip=$(ip -n "$ns" -4 -o addr show eth0 2>/dev/null | awk '{print $4}' | head -1)
        if [ $rc -ne 0 ] || [ -z "$ip" ]; then
            log "$impl round $r: setup rc=$rc ip='$ip': $(head -c 300 "$TMP/out.json") $(head -c 300 "$TMP/err.txt")"
        fi
        t0=$EPOCHREALTIME
        if [ "$impl" = berth ]; then
            "$BERTH" --config "$TMP/berth-cfg" teardown "/run/netns/$ns" <"$TMP/in.json" >/dev/null 2>&1 || true
        else
            CNI_COMMAND=DEL CNI_CONTAINERID=$cid CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 CNI_PATH=$CNI_DIR \
                "$CNI_DIR/macvlan" <"$TMP/in.json" >/dev/null 2>&1 || true
        fi
        ms_down=$(ms_since "$t0")
        ip netns del "$ns"
        printf '{"impl":"%s","round":%d,"setup_ms":%s,"teardown_ms":%s,"rc":%d,"ip":"%s"}\n' "$impl" "$r" "$ms_up" "$ms_down" "$rc" "$ip" >>"$OUT"
    }
    for r in $(seq 0 "$ROUNDS"); do
        if [ $((r % 2)) = 0 ]; then one berth "$r"; one cni "$r"; else one cni "$r"; one berth "$r"; fi
    done
    leases_left=$(wc -l <"$TMP/dnsmasq.leases" 2>/dev/null || echo 0)
    cp "$TMP/dnsmasq.log" "$TMP/proxy.log" "$TMP/cni-daemon.log" "$RESDIR/" 2>/dev/null || true
    "$PYTHON" - "$OUT" "$PING" "$leases_left" "$RESDIR/summary.md" <<'EOF'
import json, sys
sys.path.insert(0, __import__("os").environ["HERE"])
from stats import summarize
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = lambda r: r["round"] > 0 and r["rc"] == 0 and r["ip"]
res = {}
for impl in ("berth", "cni"):
    rs = [r for r in rows if r["impl"] == impl]
    res[impl] = {
        "setup": summarize([r["setup_ms"] for r in rs if ok(r)]),
        "teardown": summarize([r["teardown_ms"] for r in rs if ok(r)]),
        "failed": sum(1 for r in rs if r["round"] > 0 and not ok(r)),
    }
b, c = res["berth"], res["cni"]
lines = [
    "DHCP lease acquisition (setup call until it returns with the address on eth0), ms; "
    f"dnsmasq ping check {'on' if sys.argv[2] == '1' else 'off'}; {b['setup']['count']} counted rounds per implementation",
    "",
    "| | berth (netavark setup + dhcp-proxy) | CNI (macvlan ADD + dhcp daemon) | berth/CNI |",
    "|---|---|---|---|",
]
for ph in ("setup", "teardown"):
    bs, cs = b[ph], c[ph]
    if bs.get("count") and cs.get("count"):
        lines.append(f"| {ph} median | {bs['median']:.1f} | {cs['median']:.1f} | {bs['median']/cs['median']:.2f} |")
        lines.append(f"| {ph} min–max | {bs['min']:.1f}–{bs['max']:.1f} | {cs['min']:.1f}–{cs['max']:.1f} | |")
        lines.append(f"| {ph} p95 | {bs['p95']:.1f} | {cs['p95']:.1f} | |")
lines.append(f"| failed calls | {b['failed']} | {c['failed']} | |")
lines.append(f"| leases left in dnsmasq after all teardowns | {sys.argv[3]} (both) | | |")
out = "\n".join(lines) + "\n"
open(sys.argv[4], "w").write(out)
print(out)
EOF
    ;;
esac
