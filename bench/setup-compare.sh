#!/bin/bash
# setup-compare.sh - berth vs. the reference netavark, side by side in ONE run.
#
# Both implementations are driven through netavark's CLI exactly as podman
# 4.3.1 calls it (argv and JSON captured from a real `podman run`, see
# captured/):
#   netavark --config DIR --rootless=false --aardvark-binary=AARDVARK setup|teardown NETNS
# with the NetworkOptions JSON on stdin and RUST_LOG=netavark=warn. Every
# container: its own netns, one bridge network (dns_enabled=true, subnet
# 198.19.0.0/16), a static IPv4 and 2 published tcp ports. Both use the same
# aardvark-dns ($AARDVARK).
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/setup-compare.sh            full run (about 12 min on 2 CPUs)
#   bench/setup-compare.sh --quick    about 2 min: LEVELS="1 10 100" PROBES=5
#                                     FILL_BUDGET_S=60 PARALLEL=10 PAR_REPEATS=1
#                                     (knobs given in the environment still win)
#
# Knobs (environment):
#   A_NETAVARK  implementation A           (default: <repo>/bin/netavark, i.e. berth)
#   A_LABEL     its label                   (default berth)
#   B_NETAVARK  implementation B           (default /usr/lib/podman/netavark)
#   B_LABEL     its label                   (default reference)
#   AARDVARK    aardvark-dns for both       (default /usr/lib/podman/aardvark-dns)
#   LEVELS      N running containers to probe at      (default "1 100 1000")
#   PROBES      setup+teardown probes per level and impl (default 8)
#   FILL_BUDGET_S  per implementation: seconds of its own fill steps after
#               which it stops adding containers (default 330). When one
#               implementation hits it, both are probed at that N (equal-N
#               comparison), and the other one goes on filling alone.
#   FILL_BUCKET fill setups are also reported in N-buckets of this size (100)
#   PARALLEL    concurrent setups/teardowns (default 20)
#   PAR_VARIANTS "cold warm" (cold: network not up yet; warm: 1 container on it)
#   PAR_REPEATS repeats of the parallel phase, interleaved A B A B (default 2)
#   BENCH_PATH  PATH for every call (default /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
#   PHASES      subset/order of "fw par scale" (default "fw par scale"; scale
#               last so that deleting ~2000 netns does not disturb the rest)
#   PREFIX      prefix of every netns name (default bbn)
#   RESDIR      result folder (default bench/results/<timestamp>)
#   JSON_STDOUT 1: also print the JSON lines on stdout
#
# Output: RESDIR/compare.jsonl (JSON lines), RESDIR/run.log (progress),
# RESDIR/summary.md (markdown tables, berth/reference ratios, the commit,
# kernel, CPUs and load before and after), the summary is also printed on
# stdout.
#
# Interleaving: in the scale phase every fill round adds one container to A,
# then one to B; every probe round runs A's setup+teardown, then B's. Each
# implementation lives in its own "host" netns (PREFIX-hs<a|b>) and is
# called by a worker shell that sits in that netns (no nsenter in the timed
# path); CPU = user+sys of the call and every child it waited for.
#
# Safety: only namespaces created here are touched (ip netns add PREFIX-...),
# all deleted at exit together with every aardvark-dns whose --config lies in
# this run's private temp dir (killed by pid). Nothing is written to
# /run/containers/networks.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
export BENCH=setup-compare
unset NETAVARK_FW
# the same, plain PATH for both implementations (a long PATH costs the
# reference one failed execve per entry before each iptables)
export PATH="${BENCH_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"

if [ "${1:-}" = --quick ]; then
    shift
    LEVELS="${LEVELS:-1 10 100}" PROBES="${PROBES:-5}" FILL_BUDGET_S="${FILL_BUDGET_S:-60}"
    PARALLEL="${PARALLEL:-10}" PAR_REPEATS="${PAR_REPEATS:-1}"
fi
A_NETAVARK="${A_NETAVARK:-$REPO/bin/netavark}"
B_NETAVARK="${B_NETAVARK:-/usr/lib/podman/netavark}"
A_LABEL="${A_LABEL:-berth}"
B_LABEL="${B_LABEL:-reference}"
LEVELS="${LEVELS:-1 100 1000}"
PROBES="${PROBES:-8}"
FILL_BUDGET_S="${FILL_BUDGET_S:-330}"
FILL_BUCKET="${FILL_BUCKET:-100}"
PARALLEL="${PARALLEL:-20}"
PAR_VARIANTS="${PAR_VARIANTS:-cold warm}"
PAR_REPEATS="${PAR_REPEATS:-2}"
PHASES="${PHASES:-fw par scale}"
NET=benchnet
SUBNET=198.19.0.0/16
GW=198.19.0.1
BR="${PREFIX}br0"
BR=${BR:0:15}
export AARDVARK PREFIX PARALLEL NET SUBNET GW BR PYTHON BENCH_DIR

# ip for container index i: 198.19.x.y (i+10), probes use 198.19.250.k
ctr_ip() { local h=$(( $1 + 10 )); printf '198.19.%d.%d' $(( h / 256 )) $(( h % 256 )); }

# write_json NAME IP HP1 HP2 FILE
write_json() {
    local cid
    cid=$(container_id "$1")
    options_json "$cid" "$1" "$NET" "$NI" "$2" "$3:80 $4:443" >"$5"
}
NI=$(network_info_json "$NET" "$BR" "$SUBNET" "$GW")

# ================================================================ worker
# Runs inside one implementation's host netns; reads one command per line on
# stdin, answers one line on stdout. Everything it runs has its own
# stdout/stderr redirected, so only replies reach the pipe.
worker() {
    local ID=$1 BIN=$2 W=$3
    local CFG=$W/cfg
    mkdir -p "$CFG"
    local line a
    while IFS= read -r line; do
        read -r -a a <<<"$line"
        case ${a[0]} in
            call) w_call "${a[@]:1}" ;;
            execs) w_execs "${a[@]:1}" ;;
            par) w_par "${a[@]:1}" ;;
            state) w_state ;;
            quit) echo bye; break ;;
            *) echo "ERR unknown command ${a[0]}" ;;
        esac
    done
}

w_call() { # CMD FW NS JSON -> "RC WALL_MS CPU_MS"
    NV_FW=$2 timed_nv "$W" "$BIN" "$CFG" "$1" "/run/netns/$3" "$4" "$W/out.txt"
    echo "$RC $WALL_MS $CPU_MS"
}

# every process the call starts (execve), via strace; -b execve detaches each
# child at its exec, so a daemonising aardvark-dns does not keep strace alive
w_execs() { # CMD FW NS JSON -> JSON fragment
    local cmd=$1 fw=$2 ns=$3 js=$4 rc=0
    [ "$fw" != - ] && export NETAVARK_FW="$fw"
    RUST_LOG=netavark=warn timeout 120 strace -f -qq -b execve -e trace=execve,execveat -e signal=none \
        -o "$W/strace.txt" "$BIN" --config "$CFG" --rootless=false --aardvark-binary="$AARDVARK" \
        "$cmd" "/run/netns/$ns" <"$js" >"$W/out.txt" 2>&1 || rc=$?
    unset NETAVARK_FW
    local names total=0 fwn=0 n c by="" sep=""
    # successful execs only: execvp-style PATH searches also leave failed
    # (ENOENT) execve attempts in the trace; those are counted apart
    names=$(awk 'NR>1 && /execve/ && !/= -1 / { if (match($0, /execve(at)?\("[^"]*"/)) { s=substr($0,RSTART,RLENGTH); sub(/.*\("/,"",s); sub(/"$/,"",s); n=split(s,p,"/"); print p[n] } }' "$W/strace.txt" | sort | uniq -c)
    local failed
    failed=$(awk 'NR>1 && /execve/ && /= -1 /' "$W/strace.txt" | wc -l)
    cp "$W/strace.txt" "$RESDIR_W/strace-$ID-$cmd-$ns.txt" 2>/dev/null
    while read -r c n; do
        [ -n "${n:-}" ] || continue
        total=$((total + c))
        is_fw_tool "$n" && fwn=$((fwn + c))
        by+="$sep\"$n\":$c"; sep=","
    done <<<"$names"
    echo "\"rc\":$rc,\"procs\":$total,\"fw_procs\":$fwn,\"failed_exec_attempts\":$failed,\"by_name\":{${by}}"
}

w_par() { # CMD TAG -> "TOTAL_MS CPU_MS"; per call "i rc ms" in $W/par-TAG.txt
    local cmd=$1 tag=$2 i
    local res="$W/par-$tag.txt"
    : >"$res"
    times >"$W/.ptimes0"
    local T0=${EPOCHREALTIME/./}
    for i in $(seq 1 "$PARALLEL"); do
        (
            t0=${EPOCHREALTIME/./}
            rc=0
            nv "$BIN" "$CFG" "$cmd" "/run/netns/${PREFIX}-${ID}q$i" <"$W/json/q$i.json" >"$W/par-$tag-out$i.txt" 2>&1 || rc=$?
            t1=${EPOCHREALTIME/./}
            echo "$i $rc $(( (t1 - t0) / 1000 ))" >>"$res"
        ) </dev/null &
    done
    wait
    local T1=${EPOCHREALTIME/./}
    times >"$W/.ptimes1"
    echo "$(( (T1 - T0) / 1000 )) $(( $(_times_children_ms "$W/.ptimes1") - $(_times_children_ms "$W/.ptimes0") ))"
}

_median3_ms() { # CMD... : median wall ms of 3 runs
    local i t0 t1
    for i in 1 2 3; do
        t0=${EPOCHREALTIME/./}
        "$@" >/dev/null 2>&1
        t1=${EPOCHREALTIME/./}
        echo $(( (t1 - t0) / 1000 ))
    done | sort -n | sed -n 2p
}

w_state() { # -> JSON fragment, implementation-neutral counters of the host netns
    local ipt ipa ipd nftl nftms iptms links veths entries=0 rss=null apids napid=0 ap
    local save
    save=$(iptables-save 2>/dev/null)
    ipt=$(printf '%s\n' "$save" | grep -c .)
    ipa=$(printf '%s\n' "$save" | grep -c '^-A')
    ipd=$(printf '%s\n' "$save" | grep -c -- '-j DNAT')
    nftl=$(nft list ruleset 2>/dev/null | wc -l)
    nftms=$(_median3_ms nft list ruleset)
    iptms=$(_median3_ms iptables -w -t nat -S)
    links=$(ip -o link 2>/dev/null | wc -l)
    veths=$(ip -o link show type veth 2>/dev/null | wc -l)
    [ -r "$CFG/aardvark-dns/$NET" ] && entries=$(( $(wc -l <"$CFG/aardvark-dns/$NET") - 1 ))
    apids=$(aardvark_pids_under "$W")
    for ap in $apids; do napid=$((napid + 1)); done
    ap=$(aardvark_pid "$CFG")
    if [ -n "$ap" ]; then rss=$(rss_kb "$ap"); rss=${rss%% *}; fi
    local cfiles
    cfiles=$(find "$CFG" -type f ! -name '*.lock' ! -name lock 2>/dev/null | wc -l)
    echo "\"config_files\":$cfiles,\"iptables_save_lines\":$ipt,\"iptables_rules\":$ipa,\"iptables_dnat_rules\":$ipd,\"nft_ruleset_lines\":$nftl,\"nft_list_ms\":$nftms,\"iptables_nat_list_ms\":$iptms,\"host_links\":$links,\"host_veths\":$veths,\"aardvark_entries\":$entries,\"aardvark_procs\":$napid,\"aardvark_rss_kb\":${rss:-null}"
}

if [ "${1:-}" = "--worker" ]; then
    shift
    worker "$@"
    exit 0
fi

# ================================================================ orchestrator
need_root
need "$A_NETAVARK:make" "$B_NETAVARK:netavark" "$AARDVARK:aardvark-dns" \
    ip:iproute2 nsenter:util-linux iptables-save:iptables iptables:iptables nft:nftables \
    strace:strace timeout:coreutils sha256sum:coreutils mkfifo:coreutils dig:bind9-dnsutils \
    "$PYTHON:python3"
if ip netns list 2>/dev/null | awk '{print $1}' | grep -q "^${PREFIX}-"; then
    echo "network namespaces named ${PREFIX}-* exist already (another run, or leftovers):" >&2
    ip netns list | awk '{print $1}' | grep "^${PREFIX}-" | head >&2
    echo "refusing to run; delete them or choose another PREFIX" >&2
    exit 2
fi

IDS="a b"
declare -A BIN LABEL WFD_IN WFD_OUT WPID WDIR WHOST
BIN[a]=$A_NETAVARK; BIN[b]=$B_NETAVARK
LABEL[a]=$A_LABEL; LABEL[b]=$B_LABEL

RESDIR="${RESDIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RESDIR"
export OUT="$RESDIR/compare.jsonl"
export RESDIR_W="$RESDIR"
LOGF="$RESDIR/run.log"
exec 2> >(tee -a "$LOGF" >&2)
export RUN_ID="${RUN_ID:-$(date +%Y%m%dT%H%M%S)-$$}"
WORK=$(mktemp -d -t "${PREFIX}-cmp.XXXXXX")
SLAB0=$(awk '$1=="net_namespace"{print $2}' /proc/slabinfo 2>/dev/null)

ejson() { # ID JSON : emit with the implementation's label
    local IMPL="${LABEL[$1]}"
    emit_json "$2"
}

start_worker() { # ID TAG : host netns PREFIX-h<TAG><ID> + worker shell inside it
    local id=$1 tag=$2
    local h="${PREFIX}-h${tag}${id}" w="$WORK/${tag}${id}"
    mkdir -p "$w/json"
    netns_del "$h"
    netns_add "$h" || { log "cannot create netns $h"; exit 1; }
    mkfifo "$w/cmd" "$w/res"
    nsenter --net="/run/netns/$h" -- bash "$HERE/setup-compare.sh" --worker "$id" "${BIN[$id]}" "$w" <"$w/cmd" >"$w/res" &
    WPID[$id]=$!
    local fi fo
    exec {fi}>"$w/cmd"
    exec {fo}<"$w/res"
    WFD_IN[$id]=$fi; WFD_OUT[$id]=$fo; WDIR[$id]=$w; WHOST[$id]=$h
}

rpc() { # ID COMMAND... -> REPLY
    local id=$1; shift
    printf '%s\n' "$*" >&"${WFD_IN[$id]}" || { log "worker $id is gone"; exit 1; }
    if ! IFS= read -r REPLY <&"${WFD_OUT[$id]}"; then
        log "worker $id did not answer '$*'"; exit 1
    fi
}

stop_worker() { # ID : stop the shell, its aardvark-dns and every netns of this phase
    local id=$1 fi=${WFD_IN[$1]:-} fo=${WFD_OUT[$1]:-}
    [ -n "$fi" ] || return 0
    printf 'quit\n' >&"$fi" 2>/dev/null
    IFS= read -r -t 10 _ <&"$fo" 2>/dev/null
    exec {fi}>&- {fo}<&-
    wait "${WPID[$id]}" 2>/dev/null
    kill_aardvark_under "${WDIR[$id]}"
    WFD_IN[$id]=""; WFD_OUT[$id]=""
    netns_del "${WHOST[$id]}"
}

# delete container netns of implementation ID (kinds s,p,f,q) in one ip -batch
del_ctr_netns() {
    local pat="^${PREFIX}-${1:-[ab]}[sfpq][0-9]+\$"
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$pat" | sed 's/^/netns del /' \
        | ip -force -batch - 2>/dev/null
    return 0
}

CLEANED=0
cleanup() {
    [ "$CLEANED" = 1 ] && return 0
    CLEANED=1
    local id c
    for id in $IDS; do stop_worker "$id" 2>/dev/null; done
    kill_aardvark_under "$WORK"
    del_ctr_netns
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-h[a-z0-9]+[ab]\$" | sed 's/^/netns del /' \
        | ip -force -batch - 2>/dev/null
    # the kernel frees deleted namespaces asynchronously; wait (bounded) so
    # that whatever runs next does not pay for it
    # (net_namespace slab objects: done when back near the start value, or
    # unchanged for 120 s; the kernel frees them in batches - after 2000
    # namespaces the count stayed flat for over 30 s, then dropped - and
    # per-cpu slabs keep a few objects "active")
    if [ -n "$SLAB0" ]; then
        local t0=${EPOCHREALTIME%.*} now last=-1 same=0
        while :; do
            now=$(awk '$1=="net_namespace"{print $2}' /proc/slabinfo)
            [ "$now" -le $((SLAB0 + 30)) ] && break
            if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; fi
            [ "$same" -ge 120 ] && break
            last=$now
            [ $(( ${EPOCHREALTIME%.*} - t0 )) -ge 240 ] && { log "kernel still freeing namespaces after 240 s"; break; }
            sleep 1
        done
        log "cleanup: netns deleted; waited $(( ${EPOCHREALTIME%.*} - t0 )) s for the kernel to free them (net_namespace slab objects: $now now, $SLAB0 at start)"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ver() { "$1" --version 2>/dev/null | head -1 | tr -d '"\\' ; }

# ---------------------------------------------------------------- phase fw
# driver check (NETAVARK_FW=nftables / iptables), processes per call with
# the default driver, a functional check of ports and DNS.
phase_fw() {
    local id fw W r
    for id in $IDS; do
        start_worker "$id" f
        W=${WDIR[$id]}
        local f0="${PREFIX}-${id}f0" f1="${PREFIX}-${id}f1"
        netns_add "$f0"; netns_add "$f1"
        write_json "$f0" "$(ctr_ip 0)" 20000 20001 "$W/json/f0.json"
        write_json "$f1" "$(ctr_ip 1)" 20002 20003 "$W/json/f1.json"
        for fw in nftables iptables; do
            rpc "$id" call setup "$fw" "$f1" "$W/json/f1.json"; read -r r _ _ <<<"$REPLY"
            local msg; msg=$(errmsg "$W/out.txt" 200)
            rpc "$id" state; local st=$REPLY
            local td=null
            if [ "$r" = 0 ]; then
                rpc "$id" call teardown "$fw" "$f1" "$W/json/f1.json"; read -r td _ _ <<<"$REPLY"
            fi
            ejson "$id" "{\"metric\":\"fw_driver\",\"NETAVARK_FW\":\"$fw\",\"rc\":$r,\"works\":$([ "$r" = 0 ] && echo true || echo false),\"teardown_rc\":$td,\"stderr\":\"$msg\",$st}"
            log "${LABEL[$id]}: NETAVARK_FW=$fw setup rc=$r teardown rc=$td ${msg:+($msg)}"
        done
        rpc "$id" state
        ejson "$id" "{\"metric\":\"fw_state_after_driver_checks\",$REPLY}"
        # default driver (NETAVARK_FW unset), every process counted
        local call ns js
        for call in "setup_first:setup:$f0:f0" "setup:setup:$f1:f1" "teardown:teardown:$f1:f1" "teardown_last:teardown:$f0:f0"; do
            IFS=: read -r label cmd ns js <<<"$call"
            if [ "$label" = teardown ]; then
                # before f1 goes: functional checks with 2 containers up
                local pc dnsans dnsok=false
                pc=$("$PYTHON" "$HERE/portcheck.py" "/run/netns/${WHOST[$id]}" "$GW" \
                    "/run/netns/$f0:80:20000" "/run/netns/$f0:443:20001" "/run/netns/$f1:80:20002" "/run/netns/$f1:443:20003" 2>/dev/null)
                [ -n "$pc" ] || pc=null
                dnsans=$(nsenter --net="/run/netns/$f1" dig +short +time=1 +tries=2 @"$GW" "$f0" 2>/dev/null | head -1)
                [ "$dnsans" = "$(ctr_ip 0)" ] && dnsok=true
                ejson "$id" "{\"metric\":\"sanity\",\"ports\":$pc,\"ports_expected\":4,\"dns_answer\":\"$dnsans\",\"dns_expected\":\"$(ctr_ip 0)\",\"dns_ok\":$dnsok}"
                log "${LABEL[$id]}: sanity: ports $pc; dig $f0 from $f1 -> '$dnsans' (want $(ctr_ip 0))"
            fi
            rpc "$id" execs "$cmd" - "$ns" "$W/json/$js.json"
            local ex=$REPLY
            local msg2=""; [[ "$ex" == '"rc":0,'* ]] || msg2=$(errmsg "$W/out.txt" 200)
            ejson "$id" "{\"metric\":\"fw_tool_execs\",\"call\":\"$label\",\"driver\":\"default\",\"stderr\":\"$msg2\",$ex}"
            log "${LABEL[$id]}: $label (default driver) spawns: $ex ${msg2:+($msg2)}"
        done
        rpc "$id" state
        ejson "$id" "{\"metric\":\"fw_state_after_last_teardown\",$REPLY}"
        log "${LABEL[$id]}: state after the last teardown: $REPLY"
        stop_worker "$id"
        del_ctr_netns "$id"
    done
}

# ---------------------------------------------------------------- phase par
par_one() { # ID VARIANT REP
    local id=$1 variant=$2 rep=$3 i W
    start_worker "$id" "${variant:0:1}$rep"
    W=${WDIR[$id]}
    if [ "$variant" = warm ]; then
        netns_add "${PREFIX}-${id}q0"
        write_json "${PREFIX}-${id}q0" "$(ctr_ip 0)" 30000 30001 "$W/json/q0.json"
        rpc "$id" call setup - "${PREFIX}-${id}q0" "$W/json/q0.json"
        [ "${REPLY%% *}" = 0 ] || log "${LABEL[$id]}: warm-up setup failed: $(errmsg "$W/out.txt")"
    fi
    local specs=()
    for i in $(seq 1 "$PARALLEL"); do
        netns_add "${PREFIX}-${id}q$i"
        write_json "${PREFIX}-${id}q$i" "$(ctr_ip "$i")" $((30000 + 2 * i)) $((30001 + 2 * i)) "$W/json/q$i.json"
        specs+=("/run/netns/${PREFIX}-${id}q$i:80:$((30000 + 2 * i))" "/run/netns/${PREFIX}-${id}q$i:443:$((30001 + 2 * i))")
    done
    local call
    for call in setup teardown; do
        rpc "$id" par "$call" "$call"
        local total cpu errs maxc ok=0 msgs pc st
        read -r total cpu <<<"$REPLY"
        errs=$(awk '$2!=0' "$W/par-$call.txt" | wc -l)
        maxc=$(awk '{print $3}' "$W/par-$call.txt" | sort -n | tail -1)
        for i in $(seq 1 "$PARALLEL"); do
            ip -n "${PREFIX}-${id}q$i" -4 -o addr show dev eth0 2>/dev/null | grep -q " $(ctr_ip "$i")/16 " && ok=$((ok + 1))
        done
        pc=$("$PYTHON" "$HERE/portcheck.py" "/run/netns/${WHOST[$id]}" "$GW" "${specs[@]}" 2>/dev/null)
        [ -n "$pc" ] || pc=null
        msgs=$(for i in $(seq 1 "$PARALLEL"); do
                   awk -v i="$i" '$1==i && $2!=0{f=1} END{exit !f}' "$W/par-$call.txt" || continue
                   errmsg "$W/par-$call-out$i.txt" 400; echo
               done | sed -E 's/[0-9a-f]{12,}/<id>/g; s/veth[0-9a-z]+/veth<x>/g; s/'"${PREFIX}"'-[ab]q[0-9]+/<ns>/g; s/198\.19\.[0-9.]+/<ip>/g' \
               | grep . | sort | uniq -c | sort -rn | head -4 | tr '\n"\\' '   ' | head -c 700)
        rpc "$id" state; st=$REPLY
        local want_entries want_ports
        if [ "$call" = setup ]; then
            want_entries=$PARALLEL; want_ports=$((2 * PARALLEL))
        else
            want_entries=0; want_ports=0
        fi
        [ "$variant" = warm ] && want_entries=$((want_entries + 1))
        ejson "$id" "{\"metric\":\"parallel_$call\",\"variant\":\"$variant\",\"rep\":$rep,\"parallel\":$PARALLEL,\"total_ms\":$total,\"cpu_ms\":$cpu,\"max_call_ms\":${maxc:-null},\"errors\":$errs,\"eth0_ok\":$ok,\"ports\":$pc,\"ports_expected\":$want_ports,\"aardvark_entries_expected\":$want_entries,\"stderr\":\"$msgs\",$st}"
        log "${LABEL[$id]}: parallel $call ($variant, $PARALLEL at once): total ${total} ms, cpu ${cpu} ms, slowest ${maxc} ms, failed $errs, eth0 ok $ok, ports $pc (want $want_ports), state $st ${msgs:+| $msgs}"
    done
    stop_worker "$id"
    del_ctr_netns "$id"
}

phase_par() {
    local rep variant id
    for rep in $(seq 1 "$PAR_REPEATS"); do
        for variant in $PAR_VARIANTS; do
            for id in $IDS; do par_one "$id" "$variant" "$rep"; done
        done
    done
}

# ---------------------------------------------------------------- phase scale
declare -A N SPENT_US ACTIVE STOPPED PROBED FILLERR
fill_one() { # ID : add container n+1
    local id=$1 t0 t1 W=${WDIR[$1]}
    t0=${EPOCHREALTIME/./}
    local n=$(( N[$id] + 1 )) name
    name="${PREFIX}-${id}s$n"
    netns_add "$name"
    write_json "$name" "$(ctr_ip "$n")" $((20000 + 2 * n)) $((20001 + 2 * n)) "$W/json/s.json"
    rpc "$id" call setup - "$name" "$W/json/s.json"
    local rc wall cpu
    read -r rc wall cpu <<<"$REPLY"
    N[$id]=$n
    if [ "$rc" != 0 ]; then
        FILLERR[$id]=$(( FILLERR[$id] + 1 ))
        [ "${FILLERR[$id]}" -le 5 ] && log "${LABEL[$id]}: fill setup #$n failed rc=$rc: $(errmsg "$W/out.txt")"
        ejson "$id" "{\"metric\":\"error\",\"phase\":\"fill\",\"n\":$((n - 1)),\"rc\":$rc,\"stderr\":\"$(errmsg "$W/out.txt" 200)\"}"
    fi
    echo "$((n - 1)) $wall $cpu" >>"$W/fill.txt"
    if [ "$n" = 1 ]; then
        ejson "$id" "{\"metric\":\"setup_first_ms\",\"n\":0,\"rc\":$rc,\"wall_ms\":$wall,\"cpu_ms\":$cpu}"
        log "${LABEL[$id]}: first setup (creates bridge, firewall, starts aardvark-dns): $wall ms wall, $cpu ms cpu"
    else
        echo "$wall" >>"$W/win_w"; echo "$cpu" >>"$W/win_c"
    fi
    t1=${EPOCHREALTIME/./}
    SPENT_US[$id]=$(( SPENT_US[$id] + t1 - t0 ))
    if (( n % 100 == 0 )); then
        log "${LABEL[$id]}: N=$n, fill time used $(( SPENT_US[$id] / 1000000 )) s, last setup $wall ms"
    fi
}

probe_level() { # TAG ID... : state + PROBES interleaved setup/teardown probes
    local tag=$1; shift
    local ids=("$@") id k W
    for id in "${ids[@]}"; do
        W=${WDIR[$id]}
        if [ -s "$W/win_w" ]; then
            ejson "$id" "{\"metric\":\"fill_setup_ms\",\"n_from\":$(( ${PROBED[$id]} < 0 ? 1 : ${PROBED[$id]} )),\"n_to\":$(( N[$id] - 1 )),\"wall\":$(stats_json "$W/win_w"),\"cpu\":$(stats_json "$W/win_c")}"
        fi
        : >"$W/win_w"; : >"$W/win_c"
        rpc "$id" state
        ejson "$id" "{\"metric\":\"state\",\"level\":\"$tag\",\"n\":${N[$id]},\"load1\":$(loadavg1),$REPLY}"
        : >"$W/ps_w"; : >"$W/ps_c"; : >"$W/pt_w"; : >"$W/pt_c"; : >"$W/perr"
    done
    for k in $(seq 1 "$PROBES"); do
        for id in "${ids[@]}"; do
            W=${WDIR[$id]}
            local pns="${PREFIX}-${id}p$k" pj="$W/json/p$k.json" rc wall cpu
            netns_add "$pns"
            write_json "$pns" "198.19.250.$k" $((60000 + 2 * k)) $((60001 + 2 * k)) "$pj"
            rpc "$id" call setup - "$pns" "$pj"; read -r rc wall cpu <<<"$REPLY"
            [ "$rc" = 0 ] || { echo s >>"$W/perr"; log "${LABEL[$id]}: probe setup failed: $(errmsg "$W/out.txt")"; }
            echo "$wall" >>"$W/ps_w"; echo "$cpu" >>"$W/ps_c"
            rpc "$id" call teardown - "$pns" "$pj"; read -r rc wall cpu <<<"$REPLY"
            [ "$rc" = 0 ] || { echo t >>"$W/perr"; log "${LABEL[$id]}: probe teardown failed: $(errmsg "$W/out.txt")"; }
            echo "$wall" >>"$W/pt_w"; echo "$cpu" >>"$W/pt_c"
            netns_del "$pns"
        done
    done
    for id in "${ids[@]}"; do
        W=${WDIR[$id]}
        local sw sc tw tc se te
        sw=$(stats_json "$W/ps_w"); sc=$(stats_json "$W/ps_c")
        tw=$(stats_json "$W/pt_w"); tc=$(stats_json "$W/pt_c")
        se=$(grep -c s "$W/perr"); te=$(grep -c t "$W/perr")
        ejson "$id" "{\"metric\":\"setup_ms\",\"level\":\"$tag\",\"n\":${N[$id]},\"errors\":$se,\"load1\":$(loadavg1),\"wall\":$sw,\"cpu\":$sc}"
        ejson "$id" "{\"metric\":\"teardown_ms\",\"level\":\"$tag\",\"n\":${N[$id]},\"errors\":$te,\"load1\":$(loadavg1),\"wall\":$tw,\"cpu\":$tc}"
        log "${LABEL[$id]} N=${N[$id]} ($tag): $("$PYTHON" -c '
import json,sys
sw,sc,tw,tc=(json.loads(x) for x in sys.argv[1:])
print("setup median %.1f ms p95 %.1f ms cpu %.0f ms | teardown median %.1f ms p95 %.1f ms cpu %.0f ms" % (sw["median"], sw["p95"], sc["median"], tw["median"], tw["p95"], tc["median"]))
' "$sw" "$sc" "$tw" "$tc")"
        PROBED[$id]=${N[$id]}
    done
}

phase_scale() {
    local id L
    for id in $IDS; do
        start_worker "$id" s
        N[$id]=0; SPENT_US[$id]=0; ACTIVE[$id]=1; STOPPED[$id]=0; PROBED[$id]=-1; FILLERR[$id]=0
        : >"${WDIR[$id]}/fill.txt"; : >"${WDIR[$id]}/win_w"; : >"${WDIR[$id]}/win_c"
    done
    local budget_us=$(( FILL_BUDGET_S * 1000000 ))
    local t_start=${EPOCHREALTIME%.*}
    for L in $LEVELS; do
        while :; do
            local round=() newly=()
            for id in $IDS; do
                [ "${ACTIVE[$id]}" = 1 ] || continue
                [ "${N[$id]}" -lt "$L" ] || continue
                if [ "${SPENT_US[$id]}" -ge "$budget_us" ]; then
                    ACTIVE[$id]=0; STOPPED[$id]=1; newly+=("$id")
                    log "${LABEL[$id]}: fill budget of ${FILL_BUDGET_S} s used up at N=${N[$id]} (target $L)"
                    continue
                fi
                round+=("$id")
            done
            if [ ${#newly[@]} -gt 0 ]; then
                # equal-N probe: the stopped ones, plus every other one at the same N
                local pl=() x
                for id in $IDS; do
                    for x in "${newly[@]}"; do
                        if [ "${N[$id]}" = "${N[$x]}" ] && [ "${N[$id]}" -gt "${PROBED[$id]}" ]; then pl+=("$id"); break; fi
                    done
                done
                [ ${#pl[@]} -gt 0 ] && probe_level "budget_stop" "${pl[@]}"
            fi
            [ ${#round[@]} -gt 0 ] || break
            for id in "${round[@]}"; do fill_one "$id"; done
        done
        local pl=()
        for id in $IDS; do
            [ "${N[$id]}" -gt "${PROBED[$id]}" ] && pl+=("$id")
        done
        [ ${#pl[@]} -gt 0 ] && probe_level "$L" "${pl[@]}"
    done
    local elapsed=$(( ${EPOCHREALTIME%.*} - t_start ))
    for id in $IDS; do
        ejson "$id" "{\"metric\":\"scale_end\",\"n_reached\":${N[$id]},\"levels\":\"$LEVELS\",\"stopped_by_budget\":$([ "${STOPPED[$id]}" = 1 ] && echo true || echo false),\"budget_s\":$FILL_BUDGET_S,\"fill_used_s\":$(awk -v u="${SPENT_US[$id]}" 'BEGIN{printf "%.1f", u/1e6}'),\"fill_errors\":${FILLERR[$id]},\"phase_elapsed_s\":$elapsed}"
        log "${LABEL[$id]}: scale reached N=${N[$id]} (fill time ${SPENT_US[$id]} us$([ "${STOPPED[$id]}" = 1 ] && echo ", stopped by FILL_BUDGET_S=$FILL_BUDGET_S"), fill errors ${FILLERR[$id]})"
        # fill setups bucketed by N
        "$PYTHON" - "${WDIR[$id]}/fill.txt" "$FILL_BUCKET" <<'PY' | while read -r line; do ejson "$id" "$line"; done
import json, os, sys
sys.path.insert(0, os.environ["BENCH_DIR"])
from stats import summarize
b = int(sys.argv[2])
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
buckets = {}
for n, w, c in rows:
    n = int(n)
    if n == 0:
        continue
    buckets.setdefault(n // b, []).append((float(w), float(c)))
for k in sorted(buckets):
    v = buckets[k]
    print(json.dumps({"metric": "fill_bucket", "n_from": k * b, "n_to": k * b + b - 1,
                      "wall": summarize([x[0] for x in v]), "cpu": summarize([x[1] for x in v])}))
PY
    done
    for id in $IDS; do stop_worker "$id"; done
}

# ---------------------------------------------------------------- main
log "setup-compare: A=${LABEL[a]} ($A_NETAVARK: $(ver "$A_NETAVARK")) B=${LABEL[b]} ($B_NETAVARK: $(ver "$B_NETAVARK")) aardvark=$AARDVARK levels='$LEVELS' probes=$PROBES fill_budget=${FILL_BUDGET_S}s/impl parallel=$PARALLEL phases='$PHASES' results=$RESDIR load1=$(loadavg1)"
emit_json "{\"metric\":\"run_info\",\"when\":\"before\",\"info\":$(run_info)}"
for id in $IDS; do
    ejson "$id" "{\"metric\":\"config\",\"id\":\"$id\",\"netavark\":\"$(shown_path "${BIN[$id]}")\",\"version\":\"$(ver "${BIN[$id]}")\",\"aardvark\":\"$(shown_path "$AARDVARK")\",\"aardvark_version\":\"$(ver "$AARDVARK")\",\"levels\":\"$LEVELS\",\"probes\":$PROBES,\"fill_budget_s\":$FILL_BUDGET_S,\"parallel\":$PARALLEL,\"par_variants\":\"$PAR_VARIANTS\",\"par_repeats\":$PAR_REPEATS,\"phases\":\"$PHASES\",\"iptables\":\"$(iptables --version 2>/dev/null | head -1)\",\"nft\":\"$(nft --version 2>/dev/null | head -1)\",\"kernel\":\"$(uname -r)\",\"nproc\":$(nproc),\"load1\":$(loadavg1)}"
done
T_MAIN=${EPOCHREALTIME%.*}
for ph in $PHASES; do
    log "== phase $ph"
    case $ph in
        fw) phase_fw ;;
        par) phase_par ;;
        scale) phase_scale ;;
        *) log "unknown phase $ph" ;;
    esac
done
log "phases done in $(( ${EPOCHREALTIME%.*} - T_MAIN )) s; cleaning up"
cleanup
emit_json "{\"metric\":\"run_end\",\"elapsed_s\":$(( ${EPOCHREALTIME%.*} - T_MAIN ))}"
emit_json "{\"metric\":\"run_info\",\"when\":\"after\",\"info\":$(run_info)}"
"$PYTHON" "$HERE/summarize.py" "$OUT" >"$RESDIR/summary.md"
cat "$RESDIR/summary.md"
log "results: $RESDIR (compare.jsonl, run.log, summary.md)"
