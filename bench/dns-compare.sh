#!/bin/bash
# dns-compare.sh - berth's DNS server vs. the reference aardvark-dns 1.4.0,
# side by side in ONE run, interleaved (A B A B).
#
# The servers are started the way podman starts them (the first `netavark setup`
# on a dns_enabled network launches `<aardvark> --config DIR -p 53 run`), the
# first NV_RECORDS containers come from real `netavark setup` calls, the rest
# are appended to the network's config file under <config>/aardvark.lock
# followed by SIGHUP (netavark 1.4's file format; berth reads the same).
# dnsperf runs inside container 1's netns of each implementation, so names
# are resolved by source address as for a real container.
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/dns-compare.sh            about 10 min
#   bench/dns-compare.sh --quick    about 2 min: RECORDS="10 100" ROUNDS=1
#       DURATION=3 LAT_DURATION=2 RELOADS=10 RELOAD_DURATION=3
#
# Knobs (environment):
#   A_NETAVARK  netavark of A        (default <repo>/bin/netavark, berth)
#   A_AARDVARK  DNS server of A      (default <repo>/bin/aardvark-dns, berth)
#   A_LABEL     (default berth)
#   B_NETAVARK  netavark of B        (default /usr/lib/podman/netavark 1.4.0)
#   B_AARDVARK  DNS server of B      (default /usr/lib/podman/aardvark-dns 1.4.0)
#   B_LABEL     (default aardvark)
#   RECORDS     container-record counts, ascending     (default "10 1000")
#   NV_RECORDS  records made by real `netavark setup` calls; the rest are
#               appended to the config file + SIGHUP    (default 10)
#   ROUNDS      measurement rounds per record count (each: every test, A then B)
#                                                       (default 2)
#   TESTS       subset/order of "names ref_local upstream ref_upstream"
#   REF_PATHS   whose paths the dnsmasq references run on ("a b": both, so
#               each implementation has its own reference on its own path)
#   DURATION    seconds per max-rate run (dnsperf -l)   (default 10)
#   CLIENTS     dnsperf -c                              (default 4)
#   OUTSTANDING dnsperf -q                              (default 100)
#   QTIMEOUT    dnsperf -t, seconds until a query counts as lost (default 2)
#   LAT_QPS     fixed rate of the latency runs (-Q)     (default 500)
#   LAT_DURATION seconds per latency run (-v, per-query latencies) (default 5)
#   RELOADS     SIGHUPs per reload test                 (default 50)
#   RELOAD_INTERVAL seconds between them                (default 0.1)
#   RELOAD_QPS  dnsperf -Q during the reload test       (default 1000)
#   RELOAD_DURATION dnsperf -l of the reload test; the SIGHUPs start 1 s in
#                                                       (default 8)
#   RELOAD_QUERIES  "names" and/or "upstream" query files for reload tests
#                                                       (default "names upstream")
#   PREFIX      prefix of every netns / temp dir        (default bdn)
#   RESDIR      result folder (default bench/results/<timestamp>-dns)
#   JSON_STDOUT 1: also print the JSON lines on stdout
#
# Topology (every namespace created here, all deleted at exit):
#   PREFIX-u      "upstream": dnsmasq on 198.18.1.2 and 198.18.2.2, authoritative
#                 (hosts file) for host1..1000.upstream.test -> 198.19.100.0/22
#   PREFIX-ha     A's "host": netavark (A) makes bridge PREFIXbra, gateway
#                 198.18.16.1, subnet 198.18.16.0/20, and starts A's DNS
#                 server there; veth up0 198.18.1.1/24 <-> upstream;
#                 ref_local dnsmasq on 198.18.3.1/32 (lo)
#   PREFIX-hb     B's "host": the same with 198.18.32.0/20 (gw 198.18.32.1),
#                 uplink 198.18.2.1/24, ref_local 198.18.3.1/32 (lo)
#   PREFIX-a1..   A's containers; dnsperf runs in PREFIX-a1 (and B's in PREFIX-b1)
# netavark (and so the DNS server it starts) runs in a new mount namespace
# (unshare --mount --propagation slave) where /etc/resolv.conf is
# bind-mounted to "nameserver 198.18.<1|2>.2"; nothing is mounted outside it.
#
# Output: RESDIR/dns.jsonl, run.log, summary.md (also printed on stdout),
# dnsperf/ (dnsperf outputs; per-query lines stripped from latency runs).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${PREFIX:-bdn}"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
export BENCH=dns-compare
export PATH="${BENCH_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"
unset NETAVARK_FW

if [ "${1:-}" = --quick ]; then
    shift
    RECORDS="${RECORDS:-10 100}" ROUNDS="${ROUNDS:-1}" DURATION="${DURATION:-3}"
    LAT_DURATION="${LAT_DURATION:-2}" RELOADS="${RELOADS:-10}" RELOAD_DURATION="${RELOAD_DURATION:-3}"
fi
A_NETAVARK="${A_NETAVARK:-$REPO/bin/netavark}"
A_AARDVARK="${A_AARDVARK:-$REPO/bin/aardvark-dns}"
A_LABEL="${A_LABEL:-berth}"
B_NETAVARK="${B_NETAVARK:-/usr/lib/podman/netavark}"
B_AARDVARK="${B_AARDVARK:-/usr/lib/podman/aardvark-dns}"
B_LABEL="${B_LABEL:-aardvark}"
RECORDS="${RECORDS:-10 1000}"
NV_RECORDS="${NV_RECORDS:-10}"
ROUNDS="${ROUNDS:-2}"
TESTS="${TESTS:-names ref_local upstream ref_upstream}"
REF_PATHS="${REF_PATHS:-a b}"
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-4}"
OUTSTANDING="${OUTSTANDING:-100}"
QTIMEOUT="${QTIMEOUT:-2}"
LAT_QPS="${LAT_QPS:-500}"
LAT_DURATION="${LAT_DURATION:-5}"
RELOADS="${RELOADS:-50}"
RELOAD_INTERVAL="${RELOAD_INTERVAL:-0.1}"
RELOAD_QPS="${RELOAD_QPS:-1000}"
RELOAD_DURATION="${RELOAD_DURATION:-8}"
RELOAD_QUERIES="${RELOAD_QUERIES:-names upstream}"
UPSTREAM_NAMES=1000
NET=benchnet
REF_IP=198.18.3.1
BASE_a=16
BASE_b=32

# dip ID K : address of container K of implementation ID (198.18.<base+h/256>.<h%256>, h=K+10)
dip() {
    local v="BASE_$1" h=$(( $2 + 10 ))
    printf '198.18.%d.%d' $(( ${!v} + h / 256 )) $(( h % 256 ))
}

# ---------------------------------------------------------------- populate
# Runs inside the implementation's host netns and a new mount namespace:
# bind-mounts the private resolv.conf, then P_N real `netavark setup` calls
# (the first one starts the DNS server, which stays in this mount namespace).
populate() {
    local id=$1 i cid ni
    mount --bind "$P_RESOLV" /etc/resolv.conf || { log "bind mount of resolv.conf failed"; exit 1; }
    ni=$(network_info_json "$NET" "$P_BR" "$P_SUBNET" "$P_GW")
    mkdir -p "$P_W/json" "$P_CFG"
    : >"$P_W/populate.txt"
    for i in $(seq 1 "$P_N"); do
        cid=$(container_id "${PREFIX}-${id}-ctr$i")
        options_json "$cid" "ctr$i" "$NET" "$ni" "$(dip "$id" "$i")" "" >"$P_W/json/c$i.json"
        timed_nv "$P_W" "$P_NETAVARK" "$P_CFG" setup "/run/netns/${PREFIX}-${id}$i" "$P_W/json/c$i.json" "$P_W/setup-out$i.txt"
        echo "$i $RC $WALL_MS $CPU_MS" >>"$P_W/populate.txt"
    done
}
if [ "${1:-}" = "--populate" ]; then
    populate "$2"
    exit 0
fi

# ---------------------------------------------------------------- checks
need_root
need "$A_NETAVARK:make" "$A_AARDVARK:make" "$B_NETAVARK:netavark" "$B_AARDVARK:aardvark-dns" \
    ip:iproute2 nsenter:util-linux unshare:util-linux dnsperf:dnsperf dnsmasq:dnsmasq-base \
    sha256sum:coreutils "$PYTHON:python3"
if ip netns list 2>/dev/null | awk '{print $1}' | grep -q "^${PREFIX}-"; then
    echo "network namespaces named ${PREFIX}-* exist already:" >&2
    ip netns list | awk '{print $1}' | grep "^${PREFIX}-" | head >&2
    echo "refusing to run; delete them or choose another PREFIX" >&2
    exit 2
fi

IDS="a b"
declare -A NVBIN DNSBIN LABEL HNS GW SUBNET UP_H UP_U AARD_PID REFPID
NVBIN[a]=$A_NETAVARK; NVBIN[b]=$B_NETAVARK
DNSBIN[a]=$A_AARDVARK; DNSBIN[b]=$B_AARDVARK
LABEL[a]=$A_LABEL; LABEL[b]=$B_LABEL
for id in $IDS; do
    HNS[$id]="${PREFIX}-h$id"
    v="BASE_$id"
    GW[$id]="198.18.${!v}.1"
    SUBNET[$id]="198.18.${!v}.0/20"
    REFPID[$id]=""
    AARD_PID[$id]=""
done
UP_H[a]=198.18.1.1; UP_U[a]=198.18.1.2
UP_H[b]=198.18.2.1; UP_U[b]=198.18.2.2
UNS="${PREFIX}-u"

RESDIR="${RESDIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)-dns}"
mkdir -p "$RESDIR/dnsperf"
export OUT="$RESDIR/dns.jsonl"
LOGF="$RESDIR/run.log"
exec 2> >(tee -a "$LOGF" >&2)
export RUN_ID="${RUN_ID:-$(date +%Y%m%dT%H%M%S)-$$}"
WORK=$(mktemp -d -t "${PREFIX}-dns.XXXXXX")
CLK=$(getconf CLK_TCK)
UPPID=""
BGPIDS=()

ejson() { # ID JSON : emit with the implementation's label
    local IMPL="${LABEL[$1]}"
    emit_json "$2"
}

# own_kill PID : stop a process this run started (its command line must name $WORK)
own_kill() {
    local p=$1
    [ -n "$p" ] && [ -d "/proc/$p" ] || return 0
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$WORK" || return 0
    kill "$p" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -d "/proc/$p" ] || return 0; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    return 0
}

CLEANED=0
cleanup() {
    [ "$CLEANED" = 1 ] && return 0
    CLEANED=1
    local p id left
    for p in "${BGPIDS[@]}"; do own_kill "$p"; done
    for id in $IDS; do own_kill "${REFPID[$id]}"; done
    own_kill "$UPPID"
    kill_aardvark_under "$WORK"
    # only our own children: a bare `wait` would also wait for the log tee
    for p in "${BGPIDS[@]}" "${REFPID[a]}" "${REFPID[b]}" "$UPPID"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    # dnsmasq / aardvark logs and netavark outputs for the record
    for id in $IDS; do
        [ -d "$WORK/$id" ] && cp "$WORK/$id"/setup-out*.txt "$RESDIR/dnsperf/" 2>/dev/null
    done
    cp "$WORK"/*.log "$RESDIR/" 2>/dev/null
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-(u|h[ab]|[ab][0-9]+)\$" \
        | sed 's/^/netns del /' | ip -force -batch - 2>/dev/null
    left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -c "^${PREFIX}-")
    [ "$left" = 0 ] || log "WARNING: $left ${PREFIX}-* namespaces left"
    left=$(aardvark_pids_under "$WORK" | wc -l)
    [ "$left" = 0 ] || log "WARNING: $left DNS server processes left under $WORK"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ver() { "$1" --version 2>/dev/null | head -1 | tr -d '"\\' ; }

# proc_cpu_ms PID : user+sys CPU of a process, ms (empty if gone)
proc_cpu_ms() {
    local s
    s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 0
    # shellcheck disable=SC2086
    set -- $s
    echo $(( (${12} + ${13}) * 1000 / CLK ))
}
cpu_delta() { # BEFORE AFTER -> number or null
    if [ -n "$1" ] && [ -n "$2" ]; then echo $(( $2 - $1 )); else echo null; fi
}

# ask ID SERVER NAME : one query from container 1 of ID -> "RCODE ips" / "timeout"
ask() {
    nsenter --net="/run/netns/${PREFIX}-${1}1" "$PYTHON" "$HERE/dnslib.py" ask "$2" "$3" 2>&1 | head -1
}

# pid_alive_cfg ID : the server's pid as its pid file says now
pid_now() { aardvark_pid "$WORK/$1/cfg"; }

emit_rss() { # ID R PHASE
    local id=$1 p=${AARD_PID[$1]} r now
    now=$(pid_now "$id")
    if [ -z "$p" ] || [ ! -d "/proc/$p" ]; then
        ejson "$id" "{\"metric\":\"rss\",\"records\":$2,\"phase\":\"$3\",\"rss_kb\":null,\"hwm_kb\":null,\"pid\":\"$p\",\"pid_file\":\"$now\",\"note\":\"server not running\"}"
        log "  ${LABEL[$id]}: server pid $p is gone (pid file: '$now')"
        return
    fi
    r=$(rss_kb "$p")
    local af
    af=$(awk '/^RssAnon:/{a=$2} /^RssFile:/{f=$2} END{printf "%s %s", a, f}' "/proc/$p/status" 2>/dev/null)
    ejson "$id" "{\"metric\":\"rss\",\"records\":$2,\"phase\":\"$3\",\"rss_kb\":${r%% *},\"hwm_kb\":${r##* },\"rss_anon_kb\":${af%% *},\"rss_file_kb\":${af##* },\"threads\":$(awk '/^Threads:/{print $2}' "/proc/$p/status"),\"cpu_ms_total\":$(c=$(proc_cpu_ms "$p"); echo "${c:-null}"),\"pid\":$p,\"pid_file\":\"$now\"}"
    log "  ${LABEL[$id]} RSS ($3, R=$2): ${r%% *} kB (anon ${af%% *}, file ${af##* }; peak ${r##* } kB)"
}

sanity() { # ID R TAG : right answers before/after measuring
    local id=$1 R=$2 tag=$3 ok=true a1 aR au ar="" aru
    a1=$(ask "$id" "${GW[$id]}" ctr1)
    aR=$(ask "$id" "${GW[$id]}" "ctr$R")
    au=$(ask "$id" "${GW[$id]}" host7.upstream.test)
    [ "$a1" = "NOERROR $(dip "$id" 1)" ] || ok=false
    [ "$aR" = "NOERROR $(dip "$id" "$R")" ] || ok=false
    [ "$au" = "NOERROR 198.19.100.7" ] || ok=false
    if [ -n "${REFPID[$id]}" ]; then
        ar=$(ask "$id" "$REF_IP" "ctr$R")
        [ "$ar" = "NOERROR $(dip "$id" "$R")" ] || ok=false
    fi
    aru=$(ask "$id" "${UP_U[$id]}" host7.upstream.test)
    [ "$aru" = "NOERROR 198.19.100.7" ] || ok=false
    ejson "$id" "{\"metric\":\"sanity\",\"records\":$R,\"when\":\"$tag\",\"ok\":$ok,\"ctr1\":\"$a1\",\"ctrR\":\"$aR\",\"upstream\":\"$au\",\"ref_local\":\"$ar\",\"ref_upstream\":\"$aru\"}"
    log "  ${LABEL[$id]} sanity ($tag, R=$R): ok=$ok ctr1='$a1' ctr$R='$aR' host7.upstream.test='$au' ref_local='$ar' ref_upstream='$aru'"
}

# udp_snap ID FILE : /proc/net/snmp and /proc/net/stat/nf_conntrack of the
# host netns, the upstream netns and container 1 (the client), into FILE
udp_snap() {
    local ns
    for ns in "${HNS[$1]}" "$UNS" "${PREFIX}-${1}1"; do
        echo "== $ns"
        nsenter --net="/run/netns/$ns" cat /proc/net/snmp /proc/net/stat/nf_conntrack 2>/dev/null
    done >"$2"
}
# udp_delta BEFORE AFTER -> JSON: per netns (host, upstream, client) the
# deltas of UDP NoPorts, InErrors, RcvbufErrors, SndbufErrors and of the
# conntrack counters invalid, insert_failed, drop, clashres (all CPUs)
udp_delta() {
    "$PYTHON" - "$1" "$2" <<'PY'
import json, sys
def read(path):
    out, cur = {}, None
    hdr = None
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "==":
            cur = {"ct": {}}
            out[len(out)] = cur
            hdr = None
            continue
        if f[0] == "Udp:":
            if f[1].isdigit():
                cur.update(dict(zip(hdr, (int(x) for x in f[1:]))))
            else:
                hdr = f[1:]
        elif f[0] == "entries":
            cur["cthdr"] = f
        elif "cthdr" in cur and len(f) == len(cur["cthdr"]):
            for k, v in zip(cur["cthdr"], f):
                cur["ct"][k] = cur["ct"].get(k, 0) + int(v, 16)
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
res = {}
for i, ns in enumerate(("host", "upstream", "client")):
    x, y = a.get(i, {}), b.get(i, {})
    d = {}
    for k, n in (("NoPorts", "noports"), ("InErrors", "inerrors"), ("RcvbufErrors", "rcvbuf_errors"),
                 ("SndbufErrors", "sndbuf_errors")):
        if k in x and k in y:
            d[n] = y[k] - x[k]
    for k in ("invalid", "insert_failed", "drop", "clashres"):
        if k in x.get("ct", {}) and k in y.get("ct", {}):
            d["ct_" + k] = y["ct"][k] - x["ct"][k]
    res[ns] = d
print(json.dumps(res))
PY
}

human() { # KIND LABEL TEST R JSON
    "$PYTHON" - "$@" "$LAT_QPS" <<'PY'
import json, sys
kind, label, test, r, m, lq = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), sys.argv[6]
rc = ",".join(f"{k}:{v}" for k, v in (m.get("rcodes") or {}).items())
if kind == "max":
    print("  %-9s %-13s R=%-5s max: %8.0f qps  avg %s ms  lost %s  [%s]%s"
          % (label, test, r, m.get("qps") or 0, m.get("avg_ms"), m.get("lost"), rc,
             "  " + "; ".join(f"{n}x {k}" for k, n in m["warnings"].items()) if m.get("warnings") else ""))
else:
    print("  %-9s %-13s R=%-5s @%s qps: avg %s ms  p50 %s  p99 %s  max %s ms  lost %s  [%s]"
          % (label, test, r, lq, m.get("avg_ms"), m.get("p50_ms"), m.get("p99_ms"), m.get("max_ms"), m.get("lost"), rc))
PY
}

# run_perf ID TEST R ROUND : one max-rate run, then one fixed-rate latency run
run_perf() {
    local id=$1 test=$2 R=$3 round=$4 server qf spid impl
    case $test in
        names) server=${GW[$id]}; qf="$WORK/q-names-$R.txt"; spid=${AARD_PID[$id]}; impl=${LABEL[$id]} ;;
        upstream) server=${GW[$id]}; qf="$WORK/q-upstream.txt"; spid=${AARD_PID[$id]}; impl=${LABEL[$id]} ;;
        ref_local) server=$REF_IP; qf="$WORK/q-names-$R.txt"; spid=${REFPID[$id]}; impl=dnsmasq ;;
        ref_upstream) server=${UP_U[$id]}; qf="$WORK/q-upstream.txt"; spid=$UPPID; impl=dnsmasq ;;
        *) log "unknown test $test"; return ;;
    esac
    local c="/run/netns/${PREFIX}-${id}1" f="$RESDIR/dnsperf/$test-$id-R$R-r$round" m c0 c1 u0 u1
    udp_snap "$id" "$WORK/snap0"
    c0=$(proc_cpu_ms "$spid"); u0=$(proc_cpu_ms "$UPPID")
    nsenter --net="$c" dnsperf -s "$server" -d "$qf" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" \
        -t "$QTIMEOUT" >"$f-max.txt" 2>&1
    c1=$(proc_cpu_ms "$spid"); u1=$(proc_cpu_ms "$UPPID")
    udp_snap "$id" "$WORK/snap1"
    local ud; ud=$(udp_delta "$WORK/snap0" "$WORK/snap1")
    m=$("$PYTHON" "$HERE/dnslib.py" parse "$f-max.txt")
    emit_json "{\"metric\":\"dns_max\",\"udp\":$ud,\"impl\":\"$impl\",\"path\":\"$id\",\"path_of\":\"${LABEL[$id]}\",\"test\":\"$test\",\"records\":$R,\"round\":$round,\"server\":\"$server\",\"duration_s\":$DURATION,\"clients\":$CLIENTS,\"outstanding\":$OUTSTANDING,\"server_cpu_ms\":$(cpu_delta "$c0" "$c1"),\"upstream_cpu_ms\":$(cpu_delta "$u0" "$u1"),\"load1\":$(loadavg1),\"result\":$m}"
    log "$(human max "$impl/$id" "$test" "$R" "$m")"
    [[ "$ud" =~ :\ [1-9] ]] && log "    kernel counter deltas (UDP, conntrack) per netns: $ud"
    c0=$(proc_cpu_ms "$spid")
    nsenter --net="$c" dnsperf -s "$server" -d "$qf" -l "$LAT_DURATION" -Q "$LAT_QPS" -c "$CLIENTS" \
        -t "$QTIMEOUT" -v >"$WORK/lat.txt" 2>&1
    c1=$(proc_cpu_ms "$spid")
    m=$("$PYTHON" "$HERE/dnslib.py" parse "$WORK/lat.txt")
    grep -v '^> ' "$WORK/lat.txt" >"$f-lat.txt"
    emit_json "{\"metric\":\"dns_latency\",\"impl\":\"$impl\",\"path\":\"$id\",\"path_of\":\"${LABEL[$id]}\",\"test\":\"$test\",\"records\":$R,\"round\":$round,\"server\":\"$server\",\"qps_target\":$LAT_QPS,\"duration_s\":$LAT_DURATION,\"server_cpu_ms\":$(cpu_delta "$c0" "$c1"),\"load1\":$(loadavg1),\"result\":$m}"
    log "$(human lat "$impl/$id" "$test" "$R" "$m")"
}

# reload_test ID R KIND : SIGHUP the server RELOADS times while dnsperf runs at RELOAD_QPS
reload_test() {
    local id=$1 R=$2 kind=$3 p=${AARD_PID[$1]} qf k sent=0 t0 t1 dp c0 c1
    [ -n "$p" ] && [ -d "/proc/$p" ] || { log "  ${LABEL[$id]}: no server for the reload test"; return; }
    case $kind in names) qf="$WORK/q-names-$R.txt" ;; *) qf="$WORK/q-upstream.txt" ;; esac
    local f="$RESDIR/dnsperf/reload-$kind-$id-R$R.txt"
    udp_snap "$id" "$WORK/snap0"
    c0=$(proc_cpu_ms "$p")
    nsenter --net="/run/netns/${PREFIX}-${id}1" dnsperf -s "${GW[$id]}" -d "$qf" -l "$RELOAD_DURATION" \
        -Q "$RELOAD_QPS" -c "$CLIENTS" -t "$QTIMEOUT" -v >"$f" 2>&1 &
    dp=$!
    BGPIDS+=("$dp")
    sleep 1
    t0=${EPOCHREALTIME/./}
    for k in $(seq 1 "$RELOADS"); do
        kill -HUP "$p" 2>/dev/null && sent=$((sent + 1))
        sleep "$RELOAD_INTERVAL"
    done
    t1=${EPOCHREALTIME/./}
    wait "$dp"
    c1=$(proc_cpu_ms "$p")
    udp_snap "$id" "$WORK/snap1"
    local alive=false same=false now a1 aR m
    [ -d "/proc/$p" ] && alive=true
    now=$(pid_now "$id")
    [ "$now" = "$p" ] && same=true
    a1=$(ask "$id" "${GW[$id]}" ctr1); aR=$(ask "$id" "${GW[$id]}" "ctr$R")
    m=$("$PYTHON" "$HERE/dnslib.py" parse "$f")
    ejson "$id" "{\"metric\":\"reload\",\"udp\":$(udp_delta "$WORK/snap0" "$WORK/snap1"),\"records\":$R,\"queries\":\"$kind\",\"sighups\":$sent,\"interval_s\":$RELOAD_INTERVAL,\"hup_span_ms\":$(( (t1 - t0) / 1000 )),\"qps_target\":$RELOAD_QPS,\"duration_s\":$RELOAD_DURATION,\"server_cpu_ms\":$(cpu_delta "$c0" "$c1"),\"pid_alive_after\":$alive,\"pid_file_same\":$same,\"after_ctr1\":\"$a1\",\"after_ctrR\":\"$aR\",\"load1\":$(loadavg1),\"result\":$m}"
    log "  ${LABEL[$id]} reload ($kind, R=$R): $sent SIGHUPs in $(( (t1 - t0) / 1000 )) ms; $("$PYTHON" -c '
import json,sys
m=json.loads(sys.argv[1])
print("sent %s completed %s lost %s rcodes %s p99 %s ms max %s ms" % (m.get("sent"), m.get("completed"), m.get("lost"), m.get("rcodes"), m.get("p99_ms"), m.get("max_ms")))
' "$m"); server alive $alive, pid file same $same; after: ctr1='$a1' ctr$R='$aR'"
}

# grow ID FROM TO : append containers FROM+1..TO to the network file, SIGHUP,
# and time until the last one is answered
grow() {
    local id=$1 from=$2 to=$3 p=${AARD_PID[$1]} ready="$WORK/ready-$1" pp t0 t1 ms=null
    "$PYTHON" "$HERE/dnslib.py" append "$WORK/$id/cfg/aardvark-dns/$NET" $((from + 1)) "$to" "${PREFIX}-${id}" \
        "$(v="BASE_$id"; echo "${!v}")"
    rm -f "$ready"
    nsenter --net="/run/netns/${PREFIX}-${id}1" "$PYTHON" "$HERE/dnslib.py" wait-answer "${GW[$id]}" "ctr$to" \
        "$(dip "$id" "$to")" 30 "$ready" >"$WORK/grow-$id.out" 2>&1 &
    pp=$!
    for _ in $(seq 1 200); do [ -e "$ready" ] && break; sleep 0.01; done
    t0=$EPOCHREALTIME
    [ -n "$p" ] && kill -HUP "$p"
    wait "$pp"
    t1=$(cat "$WORK/grow-$id.out")
    [[ "$t1" =~ ^[0-9.]+$ ]] && ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", (b - a) * 1000}')
    ejson "$id" "{\"metric\":\"grow\",\"records_from\":$from,\"records_to\":$to,\"appended\":$((to - from)),\"sighup_to_answered_ms\":$ms}"
    log "  ${LABEL[$id]}: appended ctr$((from + 1))..ctr$to + SIGHUP: ctr$to answered after $ms ms"
}

start_ref_local() { # ID R
    local id=$1 R=$2
    own_kill "${REFPID[$id]}"
    REFPID[$id]=""
    [[ " $TESTS " == *" ref_local "* ]] && [[ " $REF_PATHS " == *" $id "* ]] || return 0
    local v="BASE_$id"
    "$PYTHON" "$HERE/dnslib.py" hosts "$WORK/ref-$id-$R.hosts" "$R" "${!v}"
    nsenter --net="/run/netns/${HNS[$id]}" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
        --addn-hosts="$WORK/ref-$id-$R.hosts" --listen-address="$REF_IP" --bind-interfaces --port=53 \
        --pid-file= --user=root --cache-size=10000 --log-facility="$WORK/ref_local-$id.log" &
    REFPID[$id]=$!
    for _ in $(seq 1 50); do
        [ "$(ask "$id" "$REF_IP" "ctr$R")" = "NOERROR $(dip "$id" "$R")" ] && return 0
        sleep 0.1
    done
    log "  ref_local dnsmasq on path $id does not answer"
}

# ---------------------------------------------------------------- main
T_MAIN=${EPOCHREALTIME%.*}
INFO=$(run_info)
COMMIT=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.argv[1])["commit"])' "$INFO")
DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | wc -l)
emit_json "{\"metric\":\"run_info\",\"when\":\"before\",\"info\":$INFO}"
log "dns-compare: A=${LABEL[a]} (${NVBIN[a]}: $(ver "${NVBIN[a]}"); ${DNSBIN[a]}: $(ver "${DNSBIN[a]}")) B=${LABEL[b]} (${NVBIN[b]}: $(ver "${NVBIN[b]}"); ${DNSBIN[b]}: $(ver "${DNSBIN[b]}")) commit=$COMMIT dirty_files=$DIRTY records='$RECORDS' rounds=$ROUNDS results=$RESDIR load1=$(loadavg1)"
for id in $IDS; do
    ejson "$id" "{\"metric\":\"config\",\"id\":\"$id\",\"netavark\":\"$(shown_path "${NVBIN[$id]}")\",\"netavark_version\":\"$(ver "${NVBIN[$id]}")\",\"dns_server\":\"$(shown_path "${DNSBIN[$id]}")\",\"dns_version\":\"$(ver "${DNSBIN[$id]}")\",\"commit\":\"$COMMIT\",\"dirty_files\":$DIRTY,\"gateway\":\"${GW[$id]}\",\"subnet\":\"${SUBNET[$id]}\",\"records\":\"$RECORDS\",\"nv_records\":$NV_RECORDS,\"rounds\":$ROUNDS,\"tests\":\"$TESTS\",\"ref_paths\":\"$REF_PATHS\",\"duration_s\":$DURATION,\"clients\":$CLIENTS,\"outstanding\":$OUTSTANDING,\"qtimeout_s\":$QTIMEOUT,\"lat_qps\":$LAT_QPS,\"lat_duration_s\":$LAT_DURATION,\"reloads\":$RELOADS,\"reload_interval_s\":$RELOAD_INTERVAL,\"reload_qps\":$RELOAD_QPS,\"reload_duration_s\":$RELOAD_DURATION,\"reload_queries\":\"$RELOAD_QUERIES\",\"dnsperf\":\"$(dnsperf -h 2>&1 | grep -m1 Version)\",\"dnsmasq\":\"$(dnsmasq --version | head -1)\",\"kernel\":\"$(uname -r)\",\"nproc\":$(nproc),\"load1\":$(loadavg1)}"
done

# --- topology
netns_add "$UNS" || { log "cannot create $UNS"; exit 1; }
"$PYTHON" "$HERE/dnslib.py" upstream-hosts "$WORK/upstream.hosts" "$UPSTREAM_NAMES"
for id in $IDS; do
    h=${HNS[$id]}
    netns_add "$h" || { log "cannot create $h"; exit 1; }
    # both ends are created inside our namespaces (ip -n), never in the initial one
    ip -n "$h" link add up0 type veth peer name "h$id" netns "$UNS"
    ip -n "$h" addr add "${UP_H[$id]}/24" dev up0
    ip -n "$h" link set up0 up
    ip -n "$h" addr add "$REF_IP/32" dev lo
    ip -n "$UNS" addr add "${UP_U[$id]}/24" dev "h$id"
    ip -n "$UNS" link set "h$id" up
    ip -n "$UNS" route add "${SUBNET[$id]}" via "${UP_H[$id]}"
    printf 'nameserver %s\n' "${UP_U[$id]}" >"$WORK/resolv-$id.conf"
done
nsenter --net="/run/netns/$UNS" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
    --addn-hosts="$WORK/upstream.hosts" --local=/upstream.test/ --listen-address="${UP_U[a]}" \
    --listen-address="${UP_U[b]}" --bind-interfaces --port=53 --pid-file= --user=root --cache-size=10000 \
    --log-facility="$WORK/upstream-dnsmasq.log" &
UPPID=$!

# --- records via real netavark setup (A, then B)
first_R=${RECORDS%% *}
NV0=$NV_RECORDS; [ "$first_R" -lt "$NV0" ] && NV0=$first_R
for id in $IDS; do
    for i in $(seq 1 "$NV0"); do netns_add "${PREFIX}-${id}$i"; done
    mkdir -p "$WORK/$id"
    P_W="$WORK/$id" P_CFG="$WORK/$id/cfg" P_NETAVARK="${NVBIN[$id]}" AARDVARK="${DNSBIN[$id]}" \
        P_RESOLV="$WORK/resolv-$id.conf" P_BR="${PREFIX}br$id" P_SUBNET="${SUBNET[$id]}" P_GW="${GW[$id]}" \
        P_N="$NV0" PREFIX="$PREFIX" \
        nsenter --net="/run/netns/${HNS[$id]}" unshare --mount --propagation slave \
        bash "$HERE/dns-compare.sh" --populate "$id" </dev/null >"$WORK/$id-populate.log" 2>&1
    fails=$(awk '$2!=0' "$WORK/$id/populate.txt" 2>/dev/null | wc -l)
    awk '{print $3}' "$WORK/$id/populate.txt" >"$WORK/$id/pw"; awk '{print $4}' "$WORK/$id/populate.txt" >"$WORK/$id/pc"
    msg=""
    if [ "$fails" != 0 ]; then
        msg=$(for f in "$WORK/$id"/setup-out*.txt; do errmsg "$f" 200; echo; done | grep . | sort | uniq -c | head -3 | tr '\n"\\' '   ')
    fi
    AARD_PID[$id]=$(pid_now "$id")
    ejson "$id" "{\"metric\":\"populate\",\"via_netavark\":$NV0,\"failed\":$fails,\"setup_wall_ms\":$(stats_json "$WORK/$id/pw"),\"setup_cpu_ms\":$(stats_json "$WORK/$id/pc"),\"server_pid\":\"${AARD_PID[$id]}\",\"server_cmdline\":\"$(tr '\0' ' ' <"/proc/${AARD_PID[$id]:-0}/cmdline" 2>/dev/null)\",\"stderr\":\"$msg\"}"
    log "${LABEL[$id]}: $NV0 netavark setups ($fails failed${msg:+: $msg}); DNS server pid ${AARD_PID[$id]:-none}: $(tr '\0' ' ' <"/proc/${AARD_PID[$id]:-0}/cmdline" 2>/dev/null)"
done
# the upstream must answer before anything is measured
for _ in $(seq 1 50); do
    [ "$(ask a "${UP_U[a]}" host7.upstream.test)" = "NOERROR 198.19.100.7" ] && break
    sleep 0.1
done

CUR=$NV0
for R in $RECORDS; do
    if [ "$R" -lt "$CUR" ]; then log "RECORDS must ascend: skipping R=$R (have $CUR)"; continue; fi
    log "== R=$R records"
    if [ "$R" -gt "$CUR" ]; then
        for id in $IDS; do grow "$id" "$CUR" "$R"; done
        CUR=$R
    fi
    "$PYTHON" "$HERE/dnslib.py" queries "$WORK" "$R" "$UPSTREAM_NAMES"
    for id in $IDS; do start_ref_local "$id" "$R"; done
    for id in $IDS; do sanity "$id" "$R" before; done
    sleep 2
    for id in $IDS; do emit_rss "$id" "$R" idle; done
    for round in $(seq 1 "$ROUNDS"); do
        log "-- R=$R round $round/$ROUNDS (load1 $(loadavg1))"
        for t in $TESTS; do
            for id in $IDS; do
                case $t in ref_*) [[ " $REF_PATHS " == *" $id "* ]] || continue ;; esac
                run_perf "$id" "$t" "$R" "$round"
                case $t in names|upstream) emit_rss "$id" "$R" "after_$t" ;; esac
            done
        done
    done
    for kind in $RELOAD_QUERIES; do
        for id in $IDS; do reload_test "$id" "$R" "$kind"; done
    done
    for id in $IDS; do emit_rss "$id" "$R" after_reload; sanity "$id" "$R" after; done
done

log "measurements done in $(( ${EPOCHREALTIME%.*} - T_MAIN )) s; cleaning up"
cleanup
emit_json "{\"metric\":\"run_end\",\"elapsed_s\":$(( ${EPOCHREALTIME%.*} - T_MAIN ))}"
emit_json "{\"metric\":\"run_info\",\"when\":\"after\",\"info\":$(run_info)}"
"$PYTHON" "$HERE/dns-summarize.py" "$OUT" >"$RESDIR/summary.md"
cat "$RESDIR/summary.md"
log "results: $RESDIR (dns.jsonl, run.log, summary.md, dnsperf/)"
