# Helpers for berth's benchmarks. Source it, do not run it.
#
# JSON result lines, timed netavark calls in podman's argv shape,
# aardvark-dns handling, implementation-neutral firewall counters,
# prerequisite checks and the run's conditions (commit, kernel, load).
#
# Environment understood here:
#   AARDVARK   aardvark-dns binary handed to every implementation
#              (default /usr/lib/podman/aardvark-dns)
#   PREFIX     name prefix for every netns / temp dir this run creates (default bbn)
#   OUT        file the JSON lines are appended to (also printed on stdout
#              when JSON_STDOUT=1)
#   PYTHON     interpreter for the helpers (default /usr/bin/python3, else python3)
#
# Human-readable progress goes to stderr.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"

AARDVARK="${AARDVARK:-/usr/lib/podman/aardvark-dns}"
PREFIX="${PREFIX:-bbn}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

# log: human-readable line on stderr
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# emit_json '{"k":...}' : one result line, tagged with bench/impl/run/date.
# IMPL comes from the environment unless the object has its own "impl".
emit_json() {
    local line
    line=$("$PYTHON" -c '
import json,sys,time
d=json.loads(sys.argv[1])
out={"bench":sys.argv[2],"impl":sys.argv[3],"run":sys.argv[4],"ts":time.strftime("%Y-%m-%dT%H:%M:%S")}
out.update(d)
print(json.dumps(out,sort_keys=False))
' "$1" "${BENCH:-}" "${IMPL:-}" "${RUN_ID:-}") || { log "emit_json: bad JSON: $1"; return 0; }
    if [ -n "${OUT:-}" ]; then printf '%s\n' "$line" >>"$OUT"; fi
    if [ "${JSON_STDOUT:-0}" = 1 ] || [ -z "${OUT:-}" ]; then printf '%s\n' "$line"; fi
}

# stats_json FILE : FILE has one number (ms) per line -> JSON object
stats_json() {
    "$PYTHON" "$BENCH_DIR/stats.py" "$1"
}

netns_add() {
    ip netns add "$1" && ip -n "$1" link set lo up
}

netns_del() {
    ip netns del "$1" 2>/dev/null || true
}

# container_id NAME -> 64 hex chars, stable per name
container_id() {
    printf '%s' "$1" | sha256sum | cut -c1-64
}

# network_info_json NAME BRIDGE SUBNET GATEWAY
# The "network_info" object exactly as podman 4.3.1 hands it to netavark
# (fields captured from a real podman run, see captured/).
network_info_json() {
    local name=$1 br=$2 subnet=$3 gw=$4
    local id
    id=$(printf 'net-%s' "$name" | sha256sum | cut -c1-64)
    printf '{"name":"%s","id":"%s","driver":"bridge","network_interface":"%s","created":"2024-01-01T00:00:00.000000000Z","subnets":[{"subnet":"%s","gateway":"%s"}],"ipv6_enabled":false,"internal":false,"dns_enabled":true,"ipam_options":{"driver":"host-local"}}' \
        "$name" "$id" "$br" "$subnet" "$gw"
}

# options_json CID NAME NETNAME NETINFO IP "hp1:cp1 hp2:cp2 ..." : NetworkOptions on stdin
options_json() {
    local cid=$1 name=$2 net=$3 netinfo=$4 ip=$5 ports=$6
    local pm="" sep="" p hp cp
    for p in $ports; do
        hp=${p%%:*}; cp=${p##*:}
        pm+="$sep{\"host_ip\":\"\",\"container_port\":$cp,\"host_port\":$hp,\"range\":1,\"protocol\":\"tcp\"}"
        sep=","
    done
    local pmf=""
    if [ -n "$pm" ]; then pmf="\"port_mappings\":[$pm],"; fi
    printf '{"container_id":"%s","container_name":"%s",%s"networks":{"%s":{"static_ips":["%s"],"aliases":["%s"],"interface_name":"eth0"}},"network_info":{"%s":%s}}' \
        "$cid" "$name" "$pmf" "$net" "$ip" "${cid:0:12}" "$net" "$netinfo"
}

# nv BINARY CONFIGDIR setup|teardown NETNS_PATH  (JSON on stdin), podman's argv shape.
# RUST_LOG=netavark=warn is what podman 4.3.1 puts in netavark's environment.
# NV_FW, if set and not "-", is exported as NETAVARK_FW for this call only.
nv() {
    local bin=$1 cfg=$2 cmd=$3 ns=$4
    if [ -n "${NV_FW:-}" ] && [ "$NV_FW" != - ]; then
        NETAVARK_FW="$NV_FW" RUST_LOG="${NV_RUST_LOG:-netavark=warn}" \
            "$bin" --config "$cfg" --rootless=false --aardvark-binary="$AARDVARK" "$cmd" "$ns"
    else
        RUST_LOG="${NV_RUST_LOG:-netavark=warn}" \
            "$bin" --config "$cfg" --rootless=false --aardvark-binary="$AARDVARK" "$cmd" "$ns"
    fi
}

# aardvark_pid CONFIGDIR -> pid or empty
aardvark_pid() {
    local f="$1/aardvark-dns/aardvark.pid"
    [ -r "$f" ] || return 0
    local p
    p=$(cat "$f" 2>/dev/null)
    [ -n "$p" ] && [ -d "/proc/$p" ] && printf '%s' "$p"
}

# aardvark_pids_under DIR : pids of every aardvark-dns whose --config lies
# under DIR (exact run-private path; racing parallel setups can start more
# than one, and only the last pid is in the pid file).
aardvark_pids_under() {
    local d=$1 p cmd
    [ -n "$d" ] || return 0
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        case $cmd in
            *aardvark*" --config $d/"*) printf '%s\n' "${p#/proc/}" ;;
        esac
    done
}

# watcher_pids_under DIR : pids of every berth firewall watcher (which
# berth's first firewalled setup starts) whose --config lies under DIR
watcher_pids_under() {
    local d=$1 p cmd
    [ -n "$d" ] || return 0
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        case $cmd in
            *" firewall-watch --config $d/"*) printf '%s\n' "${p#/proc/}" ;;
        esac
    done
}

# kill_aardvark_under DIR : stop them and the firewall watchers, by pid
# (TERM, then KILL)
kill_aardvark_under() {
    local pids p
    pids=$(aardvark_pids_under "$1"; watcher_pids_under "$1")
    [ -n "$pids" ] || return 0
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for p in $pids; do [ -d "/proc/$p" ] && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    for p in $pids; do [ -d "/proc/$p" ] && kill -9 "$p" 2>/dev/null; done
    return 0
}

# errmsg FILE [MAX] : netavark output with syslog noise removed, one line, JSON-safe
errmsg() {
    grep -v -e 'failed to connect to syslog' -e '^{"[a-z0-9_.-]*":{"dns_' "$1" 2>/dev/null \
        | sed 's/\\n/ /g' | tr '\n"\\' '   ' | tr -d '\000-\037' | head -c "${2:-300}"
}

# rss_kb PID -> "VmRSS VmHWM" in kB
rss_kb() {
    awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} END{printf "%s %s", r, h}' "/proc/$1/status" 2>/dev/null
}

# _times_children_ms FILE : children user+sys ms from a saved `times` output
_times_children_ms() {
    awk 'NR==2{
        s=0
        for(i=1;i<=2;i++){ v=$i; sub(/s$/,"",v); split(v,a,"m"); s+=a[1]*60+a[2] }
        printf "%.0f", s*1000 }' "$1"
}

# timed_nv WORKDIR BINARY CONFIGDIR setup|teardown NETNS_PATH JSONFILE OUTFILE
# Runs one netavark call with the JSON file on stdin; stdout+stderr go to
# OUTFILE (netavark reports errors as JSON on stdout). Sets globals:
#   RC (exit code), WALL_MS (wall clock, ms, 3 decimals),
#   CPU_MS (user+sys of the call and every child it waited for, ms; 1 ms resolution)
timed_nv() {
    local w=$1 bin=$2 cfg=$3 cmd=$4 ns=$5 js=$6 err=$7 t0 t1
    times >"$w/.times0"
    t0=${EPOCHREALTIME/./}
    RC=0
    nv "$bin" "$cfg" "$cmd" "$ns" <"$js" >"$err" 2>&1 || RC=$?
    t1=${EPOCHREALTIME/./}
    times >"$w/.times1"
    WALL_MS=$(awk -v d=$((t1 - t0)) 'BEGIN{printf "%.3f", d/1000}')
    CPU_MS=$(( $(_times_children_ms "$w/.times1") - $(_times_children_ms "$w/.times0") ))
}

# loadavg1: 1-minute load average (recorded with results)
loadavg1() { cut -d' ' -f1 /proc/loadavg; }

# is_fw_tool NAME : firewall programs counted as "firewall processes"
is_fw_tool() {
    case $1 in
        iptables*|ip6tables*|nft|ebtables*|arptables*|firewall-cmd|xtables*) return 0 ;;
    esac
    return 1
}

# need WHAT:HOW ... : checks a benchmark's prerequisites. WHAT is a command
# name or an absolute path; HOW is the Debian package that provides it,
# "make" for berth's own binaries or "go" for the Go toolchain. Prints every
# missing one with the command that installs it, then exits 2.
need() {
    local item what how miss=() pkgs=() build=0 gotool=0
    for item in "$@"; do
        what=${item%%:*}; how=${item#*:}
        case $what in
            /*) [ -x "$what" ] && continue ;;
            *) command -v "$what" >/dev/null 2>&1 && continue ;;
        esac
        case $how in
            make) build=1; miss+=("${what#"$REPO"/}  (berth's build)") ;;
            go) gotool=1; miss+=("$what  (the Go toolchain)") ;;
            *) pkgs+=("$how"); miss+=("$what  (Debian package $how)") ;;
        esac
    done
    [ ${#miss[@]} = 0 ] && return 0
    {
        echo "$(basename "$0"): missing prerequisites:"
        printf '  %s\n' "${miss[@]}"
        if [ ${#pkgs[@]} -gt 0 ]; then
            echo "install them with: bench/deps.sh   (it runs: apt-get install $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//'))"
        fi
        [ $build = 0 ] || echo "build berth with: make"
        [ $gotool = 0 ] || echo "install Go as the README says and put its bin directory on PATH"
    } >&2
    exit 2
}

# need_root: the benchmarks create network namespaces
need_root() {
    [ "$(id -u)" = 0 ] && return 0
    echo "$(basename "$0"): run as root (it creates network namespaces)" >&2
    exit 2
}

# run_info [--md] : the run's conditions as JSON (or one markdown line):
# commit (git describe --dirty), kernel, CPUs, load averages, busy processes
run_info() { "$PYTHON" "$BENCH_DIR/runinfo.py" "$@"; }

# shown_path PATH : PATH relative to the repository when it lies inside it
shown_path() {
    case $1 in
        "$REPO"/*) printf '%s' "${1#"$REPO"/}" ;;
        *) printf '%s' "$1" ;;
    esac
}

# The scripts that re-run themselves inside `unshare` mount file systems or
# change links there. mark_outer_ns records the caller's namespaces before
# that; require_private_ns KIND... (net, mnt) in the re-run exits unless each
# namespace differs from the recorded one, so that the inner part never
# runs in the namespaces it was started from.
mark_outer_ns() {
    BENCH_OUTER_NS="$(readlink /proc/self/ns/net) $(readlink /proc/self/ns/mnt)"
    export BENCH_OUTER_NS
}
require_private_ns() {
    local k cur
    for k in "$@"; do
        cur=$(readlink "/proc/self/ns/$k")
        if [ -z "${BENCH_OUTER_NS:-}" ] || [ -z "$cur" ] || [[ " $BENCH_OUTER_NS " == *" $cur "* ]]; then
            echo "$(basename "$0"): not in a private $k namespace of its own; refusing (start it without its internal variables)" >&2
            exit 2
        fi
    done
}

# private_dirs DIR...: a tmpfs over each DIR in this run's private mount
# namespace. The topmost directory it had to create for each is kept in
# MADE_DIRS, for remove_made_dirs: a run leaves no empty /run/berth.
MADE_DIRS=()
private_dirs() {
    local d top
    for d in "$@"; do
        top=$d
        while [ ! -e "$(dirname "$top")" ]; do top=$(dirname "$top"); done
        [ -e "$top" ] || MADE_DIRS+=("$top")
        mkdir -p "$d" && mount -t tmpfs "${PREFIX}tmp" "$d" || return 1
    done
}

# remove_made_dirs: unmounts what this namespace mounted under the
# directories private_dirs made and removes them where they are empty.
remove_made_dirs() {
    local d m
    for d in "${MADE_DIRS[@]}"; do
        awk -v s="$d" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
        [ -d "$d" ] && find "$d" -depth -type d -empty -delete 2>/dev/null
    done
    return 0
}

# Two engines side by side (run-compare, compose-compare, docker-compare):
# berth and Podman 4.3.1 (runc, cgroupfs, events in a file), each in a
# network namespace of its own ($HB, $HP) with private state under $state,
# in this run's private mount namespace. engines_up makes the directories,
# both containers.conf files, wrappers for tools that want one program
# ($state/berth-wrap, $state/podman-wrap) and the namespaces;
# engines_down removes what the engines and engines_up made.
engines_up() {
    private_dirs /run/containers/networks /run/berth "$state/podman/runroot" \
        || { log "could not mount tmpfs over /run/containers/networks, /run/berth"; return 1; }
    mkdir -p "$state/berth/networks" "$state/berth/netrun" "$state/podman/networks" "$state/podman/tmp"
    local net='default_subnet = "198.19.0.0/24"
default_subnet_pools = [{base = "198.19.0.0/16", size = 24}]'
    printf '[network]\n%s\n' "$net" >"$state/berth.conf"
    cat >"$state/podman.conf" <<EOC
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
helper_binaries_dir = ["/usr/lib/podman"]
[network]
network_backend = "netavark"
$net
EOC
    printf '#!/bin/sh\nCONTAINERS_CONF=%q exec %q %s "$@"\n' "$state/berth.conf" "$BERTH" "$(berth_dirs)" >"$state/berth-wrap"
    printf '#!/bin/sh\nCONTAINERS_CONF=%q exec %q %s "$@"\n' "$state/podman.conf" "$PODMAN" "$(podman_dirs)" >"$state/podman-wrap"
    chmod 755 "$state/berth-wrap" "$state/podman-wrap"
    local n
    for n in "$HB" "$HP"; do netns_add "$n"; done
}
berth_dirs() { echo "--root $state/berth/root --runroot /run/berth --network-config-dir $state/berth/networks --network-run-dir $state/berth/netrun"; }
podman_dirs() { echo "--root $state/podman/storage --runroot $state/podman/runroot --tmpdir $state/podman/tmp --network-config-dir $state/podman/networks"; }

# B and P run berth and Podman in their namespaces with their state.
B() {
    # shellcheck disable=SC2046
    CONTAINERS_CONF=$state/berth.conf nsenter --net="/run/netns/$HB" -- "$BERTH" $(berth_dirs) "$@"
}
P() {
    # shellcheck disable=SC2046
    CONTAINERS_CONF=$state/podman.conf nsenter --net="/run/netns/$HP" -- "$PODMAN" $(podman_dirs) "$@"
}

engines_down() {
    B rm -af >/dev/null 2>&1
    B system reset --force >/dev/null 2>&1
    P rm -af -t 0 >/dev/null 2>&1
    P volume rm -af >/dev/null 2>&1
    P rmi -af >/dev/null 2>&1
    local n p
    for n in "$HB" "$HP"; do
        [ -e "/run/netns/$n" ] || continue
        # only processes of this run live in its namespaces
        for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
        ip netns del "$n"
    done
    # this mount namespace's mounts under the state dir (tmpfs, overlays), innermost first
    awk -v s="$state" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$state"
    remove_made_dirs
}
