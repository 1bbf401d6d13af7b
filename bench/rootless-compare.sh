#!/usr/bin/env bash
# rootless-compare.sh [--quick] [REPS] - user-mode network stacks for rootless
# containers side by side in one run, interleaved: berth's bin/slirp4netns,
# Debian's slirp4netns 1.2 (with its own port forwarder and with Podman
# 4.3.1's default one, rootlessport), pasta (Debian's passt, Podman 5's
# default), berth's bin/pasta (berth-pasta) and, as the ceiling, a kernel
# veth with nftables NAT.
#
# Topology, all in namespaces this script creates (the whole run is inside
# `unshare --net --mount`, whose network namespace plays the machine):
#   host       198.18.70.1/24 on veth rlh0, default route via the peer; the
#              rootless stack runs here as an unprivileged uid ($RUN_UID, no
#              account needed) and forwards host ports 8201 -> 5201 (iperf3),
#              8280 -> 8080 (httpd) and 8202 -> 5202 (echo) into the container
#   peer       ($PFX-peer) 198.18.70.2/24, "a remote server" 198.18.71.1 on
#              lo: iperf3, busybox httpd and the echo server; the clients of
#              inbound tests
#   container  a new user + network namespace owned by $RUN_UID (as rootless
#              Podman makes one): iperf3, busybox httpd and the echo server
#              (rootless-helper.py rrserve, which records each client's
#              address)
# /dev/net/tun is bound to a 0666 node inside the private mount namespace
# when the machine's is not usable by an unprivileged user.
#
# Tests (TESTS):
#   out1, out4  container -> remote, iperf3 with 1 / 4 streams
#   in          peer -> host:8201 -> forward -> container (iperf3)
#   inlo        host 127.0.0.1:8201 -> forward -> container (iperf3)
#   http1       peer -> host:8280 -> forward -> container httpd, wrk with 1
#               connection; busybox closes every connection, so each request
#               is a new TCP connection
#   rrout       container -> remote echo server, TCP ping-pong of 1-byte
#               messages over one connection for RR_TIME s (rootless-helper.py
#               rr): median round trip in µs, p99 and count in the row
#   rrin        peer -> host:8202 -> forward -> container echo server, the
#               same; the row also says which client address the container's
#               server saw (src=) and whether it is the peer's (kept=yes|no)
# Per test: the value (receiver-side bit/s, requests/s or µs), the CPU
# seconds of the stack's processes (forwarder included) and their RSS /
# peak RSS.
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/rootless-compare.sh [REPS]    IPERF_TIME=10, REPS 1 (about 8 min a rep)
#   bench/rootless-compare.sh --quick   IPERF_TIME=3 WRK_TIME=3 RR_TIME=2, 1 rep
#                                       (about 4 min)
# Env: VARIANTS (default "kernel slirp4netns rootlessport pasta berth-pasta
#      berth berth-podman"; also slirp4netns-podman: slirp4netns with the
#      arguments Podman 4.3.1 passes, --enable-sandbox --enable-seccomp
#      --enable-ipv6; berth-podman is berth with the same), TESTS (default
#      "out1 out4 in inlo http1 rrout rrin"), IPERF_TIME (10), WRK_TIME (5),
#      RR_TIME (5), PFX (brl), RUN_UID (uid the stacks and the container run
#      as, default 59999), SLIRP4NETNS_BERTH (default <repo>/bin/slirp4netns),
#      PASTA_BERTH (default <repo>/bin/pasta), RESDIR (default
#      bench/results/rootless-<timestamp>).
# Both pastas are started as Podman 5 / 6 start pasta: by the unprivileged
# uid inside the container's user namespace (where it is root), with
#   --config-net -t H:C... --dns-forward 169.254.1.1 -u none -T none -U none
#   --no-map-gw --quiet [--map-guest-addr 169.254.1.2] --pid FILE --netns PATH
# (PATH a bind mount of the container's network namespace; Debian's 2023
# pasta lacks --map-guest-addr, so only berth-pasta gets it).
# Output: RESDIR/raw.tsv (one row per measurement), RESDIR/summary.md
# (also printed; rootless-summarize.py re-creates it from raw.tsv files) and
# RESDIR/run.log. Exit status 1 when a stack did not start.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PFX:-brl}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
PFX=$PREFIX

if [ -z "${_ROOTLESS_INNER:-}" ]; then
	if [ "${1:-}" = --quick ]; then
		shift
		export IPERF_TIME=${IPERF_TIME:-3} WRK_TIME=${WRK_TIME:-3} RR_TIME=${RR_TIME:-2}
	fi
	export REPS=${1:-1}
	export VARIANTS=${VARIANTS:-kernel slirp4netns rootlessport pasta berth-pasta berth berth-podman}
	export TESTS=${TESTS:-out1 out4 in inlo http1 rrout rrin}
	export IPERF_TIME=${IPERF_TIME:-10} WRK_TIME=${WRK_TIME:-5} RR_TIME=${RR_TIME:-5}
	export RUN_UID=${RUN_UID:-59999}
	export SLIRP4NETNS_BERTH=${SLIRP4NETNS_BERTH:-$REPO/bin/slirp4netns}
	export PASTA_BERTH=${PASTA_BERTH:-$REPO/bin/pasta}
	need_root
	reqs=(ip:iproute2 nsenter:util-linux unshare:util-linux setpriv:util-linux iperf3:iperf3
		/bin/busybox:busybox-static nft:nftables "$PYTHON:python3")
	case " $TESTS " in *" http"*) reqs+=(wrk:wrk) ;; esac
	for v in $VARIANTS; do
		case $v in
		slirp4netns | slirp4netns-podman) reqs+=(slirp4netns:slirp4netns) ;;
		rootlessport) reqs+=(slirp4netns:slirp4netns /usr/lib/podman/rootlessport:podman) ;;
		pasta) reqs+=(pasta:passt) ;;
		berth-pasta) reqs+=("$PASTA_BERTH:make") ;;
		berth | berth-podman) reqs+=("$SLIRP4NETNS_BERTH:make") ;;
		kernel) ;;
		*) echo "rootless-compare.sh: unknown variant $v" >&2; exit 2 ;;
		esac
	done
	need "${reqs[@]}"
	RESDIR=${RESDIR:-$HERE/results/rootless-$(date -u +%Y%m%dT%H%M%SZ)}
	mkdir -p "$RESDIR"
	export RESDIR
	exec 2> >(tee -a "$RESDIR/run.log" >&2)
	run_info >"$RESDIR/info-before.json"
	rc=0
	mark_outer_ns
	_ROOTLESS_INNER=1 unshare --net --mount --propagation private -- "$0" || rc=$?
	run_info >"$RESDIR/info-after.json"
	if [ -s "$RESDIR/raw.tsv" ]; then
		"$PYTHON" "$HERE/rootless-summarize.py" --info "$RESDIR/info-before.json" --info "$RESDIR/info-after.json" \
			"$RESDIR/raw.tsv" >"$RESDIR/summary.md"
		cat "$RESDIR/summary.md"
		# a stack that did not start fails the run
		if awk -F'\t' '$6 == "setup"' "$RESDIR/raw.tsv" | grep -q .; then rc=1; fi
	fi
	log "results: $RESDIR"
	exit $rc
fi

# ---------------------------------------------------------------- inside the private namespaces
require_private_ns net mnt
# keep going when one variant fails: its rows say FAIL
set +e
HOST_IP=198.18.70.1 PEER_IP=198.18.70.2 REMOTE_IP=198.18.71.1
KHOST_IP=198.18.72.1 KCTR_IP=198.18.72.2
P_IPERF=5201 P_HTTP=8080 P_RR=5202 F_IPERF=8201 F_HTTP=8280 F_RR=8202
PEER=$PFX-peer
ip link set lo up
mount -t tmpfs -o mode=755 "${PFX}run" /run
mkdir -p /run/netns
ST=$(mktemp -d -p /run "$PFX.XXXXXX")
chmod 755 "$ST"
U=$ST/u # the unprivileged uid's own directory
mkdir -p "$U" "$ST/www" "$U/bin"
chown "$RUN_UID:$RUN_UID" "$U"
head -c 100 /dev/zero | tr '\0' x >"$ST/www/index.html"
chmod -R a+rX "$ST/www"
# berth's slirp4netns and pasta copied where the unprivileged uid may execute them
if [ -x "$SLIRP4NETNS_BERTH" ]; then install -m 0755 "$SLIRP4NETNS_BERTH" "$U/bin/slirp4netns"; fi
if [ -x "$PASTA_BERTH" ]; then install -m 0755 "$PASTA_BERTH" "$U/bin/pasta"; fi
if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
	mknod -m 0666 "$ST/tun" c 10 200
	mount --bind "$ST/tun" /dev/net/tun
fi
RESULTS=$RESDIR/raw.tsv
[ -s "$RESULTS" ] || printf 'time\tlabel\tstack\tfwd_mode\trep\ttest\tvalue\tunit\tcpu_s\trss_kib\thwm_kib\textra\n' >"$RESULTS"

helper() { "$PYTHON" "$HERE/rootless-helper.py" "$@"; }
# Command prefixes (arrays, not functions, so that `"${AS_UID[@]}" cmd &`
# leaves the command's own pid in $!: each of them execs the next)
AS_UID=(setpriv --reuid="$RUN_UID" --regid="$RUN_UID" --clear-groups -- env HOME="$U")
IN_PEER=(ip netns exec "$PEER")
in_peer() { "${IN_PEER[@]}" "$@"; }
in_ctr() { nsenter -t "$CPID" -U -n -- "$@"; }
wait_for() { # SECONDS CMD...
	local n=$(($1 * 10)); shift
	while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

PEER_PIDS="" CPID="" STACK_PIDS="" CSRV="" RP_FD=""
cleanup() {
	set +e
	stack_down
	ctr_stop
	for p in $PEER_PIDS; do kill "$p" 2>/dev/null; done
	ip netns del "$PEER" 2>/dev/null
	umount /dev/net/tun 2>/dev/null
	return 0
}
trap cleanup EXIT

# ---- host <-> peer
ip netns add "$PEER"
ip -n "$PEER" link set lo up
ip link add rlh0 type veth peer name rlp0 netns "$PEER"
ip addr add "$HOST_IP/24" dev rlh0
ip link set rlh0 up
ip -n "$PEER" addr add "$PEER_IP/24" dev rlp0
ip -n "$PEER" addr add "$REMOTE_IP/32" dev lo
ip -n "$PEER" link set rlp0 up
ip route add default via "$PEER_IP"
"${IN_PEER[@]}" iperf3 -s -B "$REMOTE_IP" -p "$P_IPERF" >/dev/null 2>&1 &
PEER_PIDS+=" $!"
"${IN_PEER[@]}" busybox httpd -f -p "$REMOTE_IP:$P_HTTP" -h "$ST/www" &
PEER_PIDS+=" $!"
"${IN_PEER[@]}" "$PYTHON" "$HERE/rootless-helper.py" rrserve "$P_RR" "$REMOTE_IP" >/dev/null &
PEER_PIDS+=" $!"
wait_for 10 busybox wget -q -O /dev/null "http://$REMOTE_IP:$P_HTTP/index.html" || { log "peer httpd unreachable"; exit 1; }

# ---- the container: a user + network namespace of RUN_UID
ctr_start() {
	"${AS_UID[@]}" unshare --user --map-root-user --net sh -c 'ip link set lo up; exec sleep infinity' &
	CPID=$!
	local me; me=$(readlink /proc/self/ns/user)
	wait_for 5 sh -c "[ \"\$(readlink /proc/$CPID/ns/user)\" != '$me' ] && [ \"\$(readlink /proc/$CPID/exe)\" = \"\$(readlink -f \"\$(command -v sleep)\")\" ]" \
		|| { log "container did not start"; return 1; }
}
ctr_stop() {
	[ -n "$CSRV" ] && kill $CSRV 2>/dev/null
	[ -n "$CPID" ] && { kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; }
	CPID="" CSRV=""
	return 0
}

# ---- stacks: stack_up sets STACK_PIDS, CTR_IP; stack_down undoes it
stack_up() { # VARIANT
	local bin=slirp4netns args=(--configure --mtu=65520 --disable-host-loopback) fwd=native
	case $1 in
	kernel) kernel_up; return ;;
	pasta) pasta_up pasta; return ;;
	berth-pasta) pasta_up "$U/bin/pasta" --map-guest-addr 169.254.1.2; return ;;
	slirp4netns) ;;
	slirp4netns-podman) args+=(--enable-sandbox --enable-seccomp --enable-ipv6) ;;
	rootlessport) fwd=rootlessport ;;
	berth) bin=$U/bin/slirp4netns ;;
	berth-podman) bin=$U/bin/slirp4netns; args+=(--enable-sandbox --enable-seccomp --enable-ipv6) ;;
	esac
	rm -f "$U/api.sock"
	"${AS_UID[@]}" "$bin" "${args[@]}" --api-socket "$U/api.sock" "$CPID" tap0 >"$ST/stack.log" 2>&1 &
	STACK_PIDS=$!
	wait_for 10 sh -c "nsenter -t $CPID -n ip -4 addr show tap0 | grep -q 10.0.2.100 && [ -S '$U/api.sock' ]" \
		|| { log "$1: $(head -c 300 "$ST/stack.log")"; return 1; }
	CTR_IP=10.0.2.100
	if [ $fwd = native ]; then
		helper hostfwd "$U/api.sock" "$F_IPERF:$P_IPERF" "$F_HTTP:$P_HTTP" "$F_RR:$P_RR" || return 1
	else
		rootlessport_up || return 1
	fi
}
stack_down() {
	local p
	if [ -n "$STACK_PIDS" ]; then
		local all; all=$(helper tree $STACK_PIDS)
		for p in $all; do kill "$p" 2>/dev/null; done
		for p in $all; do wait_for 3 sh -c "! kill -0 $p"; done
	fi
	[ -n "$RP_FD" ] && { exec {RP_FD}>&-; RP_FD=""; }
	mountpoint -q "$U/netns" && umount "$U/netns"
	nft delete table ip "${PFX}k" 2>/dev/null
	ip link del rlk0 2>/dev/null
	STACK_PIDS=""
	return 0
}

# kernel: a veth into the container, forwarding and NAT in the host
kernel_up() {
	ip link add rlk0 type veth peer name eth0 netns "$CPID" || return 1
	ip addr add "$KHOST_IP/24" dev rlk0
	ip link set rlk0 up
	nsenter -t "$CPID" -n ip addr add "$KCTR_IP/24" dev eth0
	nsenter -t "$CPID" -n ip link set eth0 up
	nsenter -t "$CPID" -n ip route add default via "$KHOST_IP"
	echo 1 >/proc/sys/net/ipv4/ip_forward
	echo 1 >/proc/sys/net/ipv4/conf/rlk0/route_localnet
	nft -f - <<-EOF || return 1
		table ip ${PFX}k {
			chain pre {
				type nat hook prerouting priority dstnat;
				tcp dport $F_IPERF dnat to $KCTR_IP:$P_IPERF
				tcp dport $F_HTTP dnat to $KCTR_IP:$P_HTTP
				tcp dport $F_RR dnat to $KCTR_IP:$P_RR
			}
			chain out {
				type nat hook output priority -100;
				ip daddr { 127.0.0.1, $HOST_IP } tcp dport $F_IPERF dnat to $KCTR_IP:$P_IPERF
				ip daddr { 127.0.0.1, $HOST_IP } tcp dport $F_HTTP dnat to $KCTR_IP:$P_HTTP
				ip daddr { 127.0.0.1, $HOST_IP } tcp dport $F_RR dnat to $KCTR_IP:$P_RR
			}
			chain post {
				type nat hook postrouting priority srcnat;
				ip saddr $KCTR_IP/24 oifname != "rlk0" masquerade
				ip saddr 127.0.0.0/8 oifname "rlk0" masquerade
			}
		}
	EOF
	STACK_PIDS="" CTR_IP=$KCTR_IP
}

# pasta as Podman 5 / 6 start it (pkg/netns and libpod's pasta setup): by
# the uid inside the container's user namespace, one -t per published port,
# the network namespace as a bind-mounted file; ports forwarded by pasta
# itself. The command returns once the network is ready.
pasta_up() { # BINARY [EXTRA ARGS...]
	local bin=$1; shift
	rm -f "$U/pasta.pid"
	: >"$U/netns"
	mount --bind "/proc/$CPID/ns/net" "$U/netns" || return 1
	"${AS_UID[@]}" nsenter --user="/proc/$CPID/ns/user" --preserve-credentials -- "$bin" --config-net \
		-t "$F_IPERF:$P_IPERF" -t "$F_HTTP:$P_HTTP" -t "$F_RR:$P_RR" --dns-forward 169.254.1.1 \
		-u none -T none -U none --no-map-gw --quiet "$@" --pid "$U/pasta.pid" --netns "$U/netns" \
		>"$ST/stack.log" 2>&1 </dev/null || { log "$bin: $(head -c 300 "$ST/stack.log")"; return 1; }
	wait_for 10 test -s "$U/pasta.pid" || { log "$bin: no pid file"; return 1; }
	STACK_PIDS=$(cat "$U/pasta.pid")
	wait_for 10 sh -c "nsenter -t $CPID -n ip -4 route show default | grep -q via" || return 1
	CTR_IP=$(nsenter -t "$CPID" -n ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)
}

# Podman 4.3.1's default port forwarder for slirp4netns: rootlessport runs
# in the container's user namespace and the host's network namespace; it
# exits when its exit pipe closes and writes 1 to its ready pipe.
rootlessport_up() {
	local m="" f
	for f in "$F_IPERF:$P_IPERF" "$F_HTTP:$P_HTTP" "$F_RR:$P_RR"; do
		m+="${m:+,}{\"host_ip\":\"\",\"container_port\":${f#*:},\"host_port\":${f%%:*},\"range\":1,\"protocol\":\"tcp\"}"
	done
	rm -f "$U/rp.exit" "$U/rp.ready"
	mkfifo "$U/rp.exit"
	mkdir -p "$U/rptmp"
	chown "$RUN_UID:$RUN_UID" "$U/rp.exit" "$U/rptmp"
	exec {RP_FD}<>"$U/rp.exit"
	printf '{"Mappings":[%s],"NetNSPath":"/proc/%s/ns/net","ExitFD":3,"ReadyFD":4,"TmpDir":"%s","ChildIP":"%s","ContainerID":"%sctr","RootlessCNI":false}' \
		"$m" "$CPID" "$U/rptmp" "$CTR_IP" "$PFX" >"$ST/rp.json"
	nsenter --user="/proc/$CPID/ns/user" -- /usr/lib/podman/rootlessport <"$ST/rp.json" \
		3<"$U/rp.exit" 4>"$U/rp.ready" >"$ST/rp.log" 2>&1 &
	STACK_PIDS+=" $!"
	wait_for 10 grep -q 1 "$U/rp.ready" || { log "rootlessport: $(head -c 300 "$ST/rp.log")"; return 1; }
}

# ---- measurements
row() { # LABEL REP TEST VALUE UNIT CPU RSS HWM EXTRA
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$1" "$1" "$FWD" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" >>"$RESULTS"
	log "$1 rep $2 $3: $4 $5 cpu=${6}s rss=${7}KiB peak=${8}KiB $9"
}
measure() { # LABEL REP TEST CMD...
	local lab=$1 rep=$2 t=$3 c0 c1 cpu v unit extra="" mem p99 n src
	shift 3
	c0=$(helper cpu $STACK_PIDS)
	"$@" >"$ST/out" 2>"$ST/err" || true
	c1=$(helper cpu $STACK_PIDS)
	cpu=$(awk -v a="$c0" -v b="$c1" -v h="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/h}')
	case $t in
	http*) v=$(helper wrk "$ST/out") unit=req/s extra="t=$WRK_TIME" ;;
	rr*)
		read -r v p99 n <"$ST/out"
		unit=us extra="p99=$p99 n=$n t=$RR_TIME"
		if [ "$t" = rrin ]; then # the client address the container's server saw last
			src=$(awk '/^peer /{a=$2} END{print a}' "$ST/rrsrv.log")
			extra+=" src=${src:-none} kept=$([ "$src" = "$PEER_IP" ] && echo yes || echo no)"
		fi ;;
	*) v=$(helper iperf "$ST/out") unit=bit/s extra="retr=$(helper retr "$ST/out") t=$IPERF_TIME" ;;
	esac
	[ -n "$v" ] || { v=FAIL; extra=$(head -c 300 "$ST/err" "$ST/out" | tr '\n\t' '  '); }
	if [ -n "$STACK_PIDS" ]; then mem=$(helper mem $STACK_PIDS); else mem="NA NA" cpu=NA; fi
	row "$lab" "$rep" "$t" "$v" "$unit" "$cpu" ${mem% *} ${mem#* } "$extra"
}
run_variant() { # VARIANT REP
	local v=$1 rep=$2 t to=$((IPERF_TIME + WRK_TIME + 30))
	FWD=native
	[ "$v" = rootlessport ] && FWD=rootlessport
	ctr_start || { row "$v" "$rep" setup FAIL - NA NA NA "container did not start"; return; }
	if ! stack_up "$v"; then
		row "$v" "$rep" setup FAIL - NA NA NA "stack did not start"
		stack_down; ctr_stop; return
	fi
	nsenter -t "$CPID" -U -n -- iperf3 -s -p "$P_IPERF" >/dev/null 2>&1 &
	CSRV+=" $!"
	nsenter -t "$CPID" -U -n -- busybox httpd -f -p "$P_HTTP" -h "$ST/www" &
	CSRV+=" $!"
	# the echo server runs as root in the container's network namespace
	# only: the repository need not be readable by RUN_UID
	nsenter -t "$CPID" -n -- "$PYTHON" "$HERE/rootless-helper.py" rrserve "$P_RR" >"$ST/rrsrv.log" 2>&1 &
	CSRV+=" $!"
	if ! wait_for 20 in_ctr busybox wget -q -O /dev/null "http://$REMOTE_IP:$P_HTTP/index.html" ||
		! wait_for 10 in_peer busybox wget -q -O /dev/null "http://$HOST_IP:$F_HTTP/index.html"; then
		row "$v" "$rep" setup FAIL - NA NA NA "no connectivity"
		stack_down; ctr_stop; return
	fi
	local mem=NA\ NA
	[ -n "$STACK_PIDS" ] && mem=$(helper mem $STACK_PIDS)
	row "$v" "$rep" idle "${mem% *}" KiB NA NA NA "RSS after setup"
	for t in $TESTS; do
		case $t in
		out1) measure "$v" "$rep" "$t" in_ctr timeout $to iperf3 -c "$REMOTE_IP" -p "$P_IPERF" -t "$IPERF_TIME" -J ;;
		out4) measure "$v" "$rep" "$t" in_ctr timeout $to iperf3 -c "$REMOTE_IP" -p "$P_IPERF" -t "$IPERF_TIME" -P 4 -J ;;
		in) measure "$v" "$rep" "$t" in_peer timeout $to iperf3 -c "$HOST_IP" -p "$F_IPERF" -t "$IPERF_TIME" -J ;;
		inlo) measure "$v" "$rep" "$t" timeout $to iperf3 -c 127.0.0.1 -p "$F_IPERF" -t "$IPERF_TIME" -J ;;
		http1) measure "$v" "$rep" "$t" in_peer timeout $to wrk -t1 -c1 -d"${WRK_TIME}s" "http://$HOST_IP:$F_HTTP/index.html" ;;
		rrout) measure "$v" "$rep" "$t" nsenter -t "$CPID" -n -- timeout $to "$PYTHON" "$HERE/rootless-helper.py" rr "$REMOTE_IP" "$P_RR" "$RR_TIME" ;;
		rrin) measure "$v" "$rep" "$t" in_peer timeout $to "$PYTHON" "$HERE/rootless-helper.py" rr "$HOST_IP" "$F_RR" "$RR_TIME" ;;
		*) log "unknown test $t" ;;
		esac
		sleep 1
	done
	stack_down
	ctr_stop
}

log "rootless-compare: variants '$VARIANTS', tests '$TESTS', $REPS rep(s), iperf3 ${IPERF_TIME}s, wrk ${WRK_TIME}s, rr ${RR_TIME}s"
for rep in $(seq 1 "$REPS"); do
	for v in $VARIANTS; do run_variant "$v" "$rep"; done
done
