#!/usr/bin/env bash
# cri.sh - CNI plugins under containerd's CRI (Debian containerd 1.6), driven
# by crictl the way a kubelet would: pod sandboxes get their network from a
# conflist, hostPorts are reached from another network namespace, and
# stopping/removing a pod gives everything back.
#
# Everything happens in a sandbox this script creates and removes:
#   a private mount namespace with tmpfs over /run (containerd 1.6 keeps shim
#     sockets in /run/containerd/s and pod netns in /run/netns whatever its
#     config says) and over a work directory holding containerd's root, state,
#     socket, the CNI config and the image;
#   <pfx>-eh  the "engine host" netns: containerd runs here (nsenter --net
#             only, so /sys and cgroups stay visible), so the plugins' bridge,
#             veths and NAT rules live here           (198.18.80.1/24)
#   <pfx>-ex  an outside client, veth-connected to it (198.18.80.2/24)
# Pods get 198.19.80.0/24. The machine's own network is never touched.
# The sandbox ("pause") and app image is built offline from Debian's
# busybox-static and catatonit and imported with `ctr images import`.
#
# Usage:  sudo test/acceptance/cri.sh          (about 5 s on a 2-core VM, once
#                                             crictl is built)
#         sudo test/acceptance/cri.sh cleanup  (what a run killed with SIGKILL
#                                             left: processes, cgroups, dirs)
#         sudo test/acceptance/cri.sh tools    (only install crictl, and with
#                                             NERDCTL_BUILD=1 nerdctl: needs
#                                             the module proxy, so run it
#                                             before entering a netns)
# Env:    CNI         reference (default: Debian's bridge+host-local+portmap
#                     in /usr/lib/cni) or berth (berth-bridge, berth-ipam,
#                     berth-portmap); sets the defaults of the next two
#         PLUGIN_DIR  the CNI plugin directory (containerd's cni.bin_dir);
#                     with CNI=berth and no PLUGIN_DIR, cmd/berth-cni is built
#                     into a temporary directory with a link per plugin name
#         CONFLIST    the conflist to use; the placeholders @NAME@ @BRIDGE@
#                     @SUBNET@ @GATEWAY@ @STATE@ are filled in
#                     (default test/acceptance/cri/<CNI>.conflist)
#         CRICTL      crictl binary; default: crictl in PATH or
#                     $TOOLS/crictl, installed from the Go module proxy
#                     (sigs.k8s.io/cri-tools v1.37.0) into TOOLS
#                     (default /var/cache/berth-tools) when missing
#         NERDCTL     nerdctl binary for the nerdctl checks; default: nerdctl
#                     in PATH or $TOOLS/nerdctl; without one they print SKIP.
#                     NERDCTL_BUILD=1 builds nerdctl v1.7.7 from the Go
#                     module proxy into TOOLS first (a few minutes)
#         PFX         name prefix of namespaces, links, cgroups (default bk)
#         LOG_DIR     containerd's log and the run's log
#                     (default /var/tmp/<pfx>-cri-logs)
# Output: one "PASS name" / "FAIL name: reason" / "SKIP name: reason" line
#         per check, then the plain line "N passed, M failed, K skipped"
#         and the time the run took.
# Exit:   0 all checks passed; 1 a check failed (or cleanup left residue);
#         2 usage error; 77 skipped (not root, or containerd/runc missing:
#         "SKIP cri: reason" says which).
set -u -o pipefail
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export PATH=$PATH:/usr/sbin:/sbin

SELF=$(readlink -f "$0")
HERE=$(dirname "$SELF")
TOP=$(cd "$HERE/../.." && pwd)
PFX=${PFX:-bk}
CNI=${CNI:-reference}
BUILT_PLUGINS=""                       # a temporary plugin dir this run built
case $CNI in
reference) : "${PLUGIN_DIR:=/usr/lib/cni}" ;;
berth) ;;                              # PLUGIN_DIR unset: built below
*) echo "cri.sh: CNI=$CNI: want reference or berth" >&2; exit 2 ;;
esac
CONFLIST=${CONFLIST:-$HERE/cri/$CNI.conflist}
TOOLS=${TOOLS:-/var/cache/berth-tools}
CRICTL_MODULE=sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0
NERDCTL_MODULE=github.com/containerd/nerdctl@v1.7.7
LOG_DIR=${LOG_DIR:-/var/tmp/${PFX}-cri-logs}
LOG=$LOG_DIR/cri.log
RESULTS=$LOG_DIR/results

EH=$PFX-eh EX=$PFX-ex
IF_EH=$PFX-ehx IF_EX=$PFX-exh
EH_IP=198.18.80.1 EX_IP=198.18.80.2
SUBNET=198.19.80.0/24 GATEWAY=198.19.80.1
NET_NAME=$PFX-cri BRIDGE=$PFX-cbr0
CG_PARENT=$PFX-cri                     # cgroup parent of every pod (cgroupfs)
IMAGE=localhost/$PFX-pause:1           # sandbox image, also the app image
EX_TOKEN="$PFX-cri outside server"
HP1=18081 HP2=18082                    # hostPorts of pod1 and pod2 (pod2 with hostIP)

log() { printf '%s\n' "$*" >>"$LOG"; }
pass() { printf 'PASS %s\n' "$1"; printf 'PASS %s\n' "$1" >>"$RESULTS"; log "PASS $1"; }
fail() { printf 'FAIL %s\n' "$1"; printf 'FAIL %s\n' "$1" >>"$RESULTS"; log "FAIL $1"; }
skipped() { printf 'SKIP %s\n' "$1"; printf 'SKIP %s\n' "$1" >>"$RESULTS"; log "SKIP $1"; }

# ============================================================ outer part ===
# Checks prerequisites, gets crictl, runs the inner part in a private mount
# namespace, then checks from outside that nothing was left behind.
if [ -z "${_BK_CRI_INNER:-}" ]; then
	skip() { echo "SKIP cri: $*"; exit 77; }
	# sweep: what a run killed with SIGKILL left (it had no chance to clean
	# up): processes naming a work dir of ours, pod processes in our cgroup
	# parent, its cgroups, and the empty work dirs
	sweep() {
		local p c n=0
		for p in /proc/[0-9]*; do
			grep -qF "/var/tmp/$PFX-cri." "$p/cmdline" 2>/dev/null || continue
			[ "${p#/proc/}" = $$ ] && continue
			kill -9 "${p#/proc/}" 2>/dev/null && n=$((n + 1))
		done
		for c in /sys/fs/cgroup/pids/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT"; do
			[ -d "$c" ] || continue
			# shellcheck disable=SC2044 # PIDs: no blanks
			for p in $(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null); do
				kill -9 "$p" 2>/dev/null && n=$((n + 1))
			done
		done
		[ $n = 0 ] || { echo "cri.sh: killed $n processes of an earlier run"; sleep 0.5; }
		for c in /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT"; do
			[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
		done
		for c in /var/tmp/"$PFX"-cri.*; do
			[ -d "$c" ] && ! grep -qF "$c" /proc/self/mountinfo && rm -rf "$c"
		done
		return 0
	}
	[ "$(id -u)" = 0 ] || skip "needs root"
	TOOLS_ONLY=""
	case ${1:-} in
	"") ;;
	cleanup) sweep; exit 0 ;;
	tools) TOOLS_ONLY=1 ;;
	*) echo "usage: $0 [cleanup|tools]" >&2; exit 2 ;;
	esac
	if [ -z "$TOOLS_ONLY" ]; then
		# one run per prefix at a time (they share the cgroup parent)
		exec 9>"/var/tmp/$PFX-cri.lock"
		flock -n 9 || { echo "FAIL cri: another cri.sh with PFX=$PFX is running"; exit 1; }
		sweep
	fi
	for t in containerd ctr runc nsenter unshare ip curl jq sha256sum; do
		command -v "$t" >/dev/null || skip "$t not found (apt-get install containerd runc curl jq)"
	done
	if [ -z "${PLUGIN_DIR:-}" ]; then       # CNI=berth: build the plugins
		command -v go >/dev/null || skip "CNI=berth needs go to build cmd/berth-cni (or set PLUGIN_DIR)"
		BUILT_PLUGINS=$(mktemp -d "/var/tmp/$PFX-cri-plugins.XXXXXX")
		PLUGIN_DIR=$BUILT_PLUGINS
		trap 'rm -rf "$BUILT_PLUGINS"' EXIT
		t0=$(date +%s)
		(cd "$TOP" && CGO_ENABLED=0 go build -trimpath -o "$PLUGIN_DIR/berth-cni" ./cmd/berth-cni) ||
			{ echo "FAIL build: go build ./cmd/berth-cni in $TOP"; exit 1; }
		# containerd's CRI runs "loopback" for every pod, from the same dir:
		# berth-cni answers to that name too
		for n in berth-bridge berth-ipam berth-portmap berth-macvlan loopback; do ln -s berth-cni "$PLUGIN_DIR/$n"; done
		echo "cri.sh: built berth's CNI plugins into $PLUGIN_DIR in $(($(date +%s) - t0)) s"
	fi
	[ -d "$PLUGIN_DIR" ] || skip "PLUGIN_DIR $PLUGIN_DIR does not exist"
	if [ ! -x "$PLUGIN_DIR/loopback" ]; then
		echo "FAIL setup: $PLUGIN_DIR has no loopback plugin, which containerd's CRI runs for every pod (apt-get install containernetworking-plugins; ln -s /usr/lib/cni/loopback $PLUGIN_DIR/)"
		exit 1
	fi
	[ -r "$CONFLIST" ] || { echo "cri.sh: CONFLIST $CONFLIST not readable" >&2; exit 2; }
	for t in busybox catatonit; do
		[ -x "/usr/bin/$t" ] || [ -x "/bin/$t" ] || skip "$t not found (apt-get install busybox-static catatonit)"
	done
	if [ -z "${CRICTL:-}" ]; then
		CRICTL=$(command -v crictl || true)
		[ -n "$CRICTL" ] || CRICTL=$TOOLS/crictl
		if [ ! -x "$CRICTL" ]; then
			command -v go >/dev/null || skip "no crictl and no go to build it"
			echo "cri.sh: installing crictl ($CRICTL_MODULE) into $TOOLS"
			mkdir -p "$TOOLS"
			(cd / && GOBIN=$TOOLS GOFLAGS=-mod=mod go install "$CRICTL_MODULE") || { echo "FAIL crictl: go install $CRICTL_MODULE failed"; exit 1; }
		fi
	fi
	if [ -z "${NERDCTL:-}" ]; then
		NERDCTL=$(command -v nerdctl || true)
		[ -n "$NERDCTL" ] || [ ! -x "$TOOLS/nerdctl" ] || NERDCTL=$TOOLS/nerdctl
		if [ -z "$NERDCTL" ] && [ "${NERDCTL_BUILD:-0}" = 1 ]; then
			# `go install` of v1.7.7 is refused by the proxy's deprecation
			# check; building a copy of the downloaded module works
			echo "cri.sh: building nerdctl ($NERDCTL_MODULE) into $TOOLS"
			src=$(mktemp -d "/var/tmp/$PFX-nerdctl-src.XXXXXX")
			if d=$(cd / && GOFLAGS=-mod=mod go mod download -json "$NERDCTL_MODULE" | jq -r .Dir) &&
				cp -r "$d/." "$src" && chmod -R u+w "$src" &&
				(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$TOOLS/nerdctl" ./cmd/nerdctl); then
				NERDCTL=$TOOLS/nerdctl
			else
				echo "FAIL nerdctl: building $NERDCTL_MODULE failed"
			fi
			rm -rf "$src"
		fi
	fi
	[ -z "$TOOLS_ONLY" ] || { echo "cri.sh: crictl $CRICTL, nerdctl ${NERDCTL:-none}"; exit 0; }
	export CRICTL PLUGIN_DIR CONFLIST NERDCTL
	mkdir -p "$LOG_DIR"
	: >"$LOG"; : >"$RESULTS"
	WORK=$(mktemp -d "/var/tmp/$PFX-cri.XXXXXX")
	export WORK
	start=$(date +%s.%N)
	log "cri.sh: CNI=$CNI PLUGIN_DIR=$PLUGIN_DIR CONFLIST=$CONFLIST CRICTL=$CRICTL WORK=$WORK"
	# an interrupt reaches the inner part too, which cleans up; the outer
	# waits for it and still checks for residue
	interrupted=0
	trap 'interrupted=1' INT TERM
	_BK_CRI_INNER=1 unshare --mount --propagation private -- "$SELF" "$@" 9>&-
	rc=$?
	[ "$interrupted" = 0 ] || fail "interrupted"
	# --- residue, seen from the machine's own namespaces
	left=""
	for p in /proc/[0-9]*; do
		grep -qF "$WORK" "$p/cmdline" 2>/dev/null && left+=" pid ${p#/proc/}($(tr '\0' ' ' <"$p/cmdline" | cut -c1-60))"
	done
	for c in /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT"; do
		[ -d "$c" ] && left+=" cgroup $c"
	done
	grep -qF "$WORK" /proc/self/mountinfo && left+=" mount under $WORK"
	for d in /opt/containerd /var/lib/containerd/io.containerd.grpc.v1.cri; do
		[ -e "$d" ] && [ "$d" -nt "$WORK" ] && left+=" $d"
	done
	if [ -z "$left" ]; then
		pass "no residue: no processes, cgroups, mounts or namespaces left"
	else
		fail "residue:$left"
	fi
	rmdir "$WORK" 2>/dev/null || rm -rf "$WORK"
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')
	np=$(grep -c '^PASS' "$RESULTS") nf=$(grep -c '^FAIL' "$RESULTS") ns=$(grep -c '^SKIP' "$RESULTS")
	echo "$np passed, $nf failed, $ns skipped"
	echo "cri.sh: $secs s (CNI=$CNI)"
	log "$np passed, $nf failed, $ns skipped in $secs s (inner rc=$rc)"
	[ "$nf" = 0 ] && [ "$rc" = 0 ] && exit 0
	echo "cri.sh: log in $LOG, containerd's in $LOG_DIR/containerd.log"
	exit 1
fi

# ============================================================ inner part ===
# Runs in the private mount namespace.
SOCK=$WORK/run/containerd.sock
CRICTL_CONF=$WORK/crictl.yaml
CTRD_PID=""
RUNP_MS=""                             # crictl runp times, for the summary
EXSRV_PID=""

inh() { nsenter --net="/run/netns/$EH" -- "$@"; }
inx() { nsenter --net="/run/netns/$EX" -- "$@"; }
# C runs crictl in the engine host netns (exec/attach streams go to
# containerd's stream server on the host netns' loopback).
C() { inh timeout -k 5 120 "$CRICTL" --config "$CRICTL_CONF" "$@" 2>>"$LOG"; }
CTR() { timeout -k 5 60 ctr --address "$SOCK" "$@"; }

# fetch <url>: the body, from the outside netns
fetch() { inx curl -s -m 3 "$1" 2>/dev/null; }
# wait_fetch <url> <want>: poll up to 15 s
wait_fetch() {
	local out
	for _ in $(seq 1 30); do
		out=$(fetch "$1")
		[ "$out" = "$2" ] && return 0
		sleep 0.5
	done
	log "  $1 gave '$out', want '$2'"
	return 1
}

# pod_json <name> <hostport> [hostip]
pod_json() {
	local pm
	pm="{\"protocol\":0,\"container_port\":80,\"host_port\":$2${3:+,\"host_ip\":\"$3\"}}"
	mkdir -p "$WORK/logs/$1"
	cat >"$WORK/$1.json" <<-EOF
	{"metadata":{"name":"$1","namespace":"default","uid":"$PFX-uid-$1","attempt":0},
	 "hostname":"$1","log_directory":"$WORK/logs/$1",
	 "port_mappings":[$pm],
	 "linux":{"cgroup_parent":"/$CG_PARENT"}}
	EOF
}

# run_pod <name>: runp + an httpd container serving /etc (so /hostname is the
# pod's hostname) on port 80; sets POD_ID and CID
run_pod() {
	local t0 t1
	t0=$(date +%s%N)
	POD_ID=$(C runp "$WORK/$1.json") || { POD_ID=""; return 1; }
	t1=$(date +%s%N)
	log "  runp $1: $POD_ID in $(((t1 - t0) / 1000000)) ms"
	RUNP_MS+=" $(((t1 - t0) / 1000000))"
	cat >"$WORK/$1-web.json" <<-EOF
	{"metadata":{"name":"web"},"image":{"image":"$IMAGE"},
	 "command":["/bin/httpd","-f","-p","80","-h","/etc"],"log_path":"web.log","linux":{}}
	EOF
	CID=$(C create --no-pull "$POD_ID" "$WORK/$1-web.json" "$WORK/$1.json") || return 1
	C start "$CID" >>"$LOG" || return 1
}

pod_ip() { C inspectp "$1" | jq -r '.status.network.ip // empty'; }
pod_netns() { C inspectp "$1" | jq -r '.info.runtimeSpec.linux.namespaces[] | select(.type=="network") | .path'; }
# veths on the bridge in the engine host
bridge_ports() { inh ip -o link show master "$BRIDGE" 2>/dev/null | wc -l; }

cleanup() {
	local p c m
	set +e
	log "--- cleanup"
	if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
		for p in $(C pods -q); do
			C stopp "$p" >>"$LOG"
			C rmp "$p" >>"$LOG"
		done
		containerd_stop
	fi
	[ -n "$EXSRV_PID" ] && kill "$EXSRV_PID" 2>/dev/null && wait "$EXSRV_PID" 2>/dev/null
	# what containerd started and left running: shims (their command line
	# names our socket) and the pods' processes (in our cgroup parent)
	for p in /proc/[0-9]*; do
		grep -qF "$WORK" "$p/cmdline" 2>/dev/null || continue
		p=${p#/proc/}
		[ "$p" = $$ ] && continue
		log "  killing leftover pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline")"
		kill -9 "$p" 2>/dev/null
	done
	for c in /sys/fs/cgroup/pids/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT"; do
		[ -d "$c" ] || continue
		find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
			log "  killing leftover pod pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
			kill -9 "$p" 2>/dev/null
		done
	done
	sleep 0.3
	for c in /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT"; do
		[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>>"$LOG"
	done
	ip netns del "$EX" 2>/dev/null
	ip netns del "$EH" 2>/dev/null
	# mounts die with this mount namespace; unmount ours anyway (deepest first)
	awk -v w="$WORK" '$5 ~ "^"w"/" {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	[ -f "$WORK/run/containerd.log" ] && cp "$WORK/run/containerd.log" "$LOG_DIR/containerd.log"
	umount -l "$WORK" 2>/dev/null
	umount -l /run 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- sandbox: private /run and work dir, two netns
mount -t tmpfs -o mode=0755 "$PFX-run" /run || { fail "setup: tmpfs on /run"; exit 1; }
mount -t tmpfs -o mode=0700 "$PFX-work" "$WORK" || { fail "setup: tmpfs on $WORK"; exit 1; }
mkdir -p "$WORK"/{root,run,net.d,state,logs,img,exwww} /run/netns
for ns in "$EH" "$EX"; do ip netns add "$ns" && ip -n "$ns" link set lo up; done
ip -n "$EH" link add "$IF_EH" type veth peer name "$IF_EX" netns "$EX" &&
	ip -n "$EH" addr add "$EH_IP/24" dev "$IF_EH" && ip -n "$EH" link set "$IF_EH" up &&
	ip -n "$EX" addr add "$EX_IP/24" dev "$IF_EX" && ip -n "$EX" link set "$IF_EX" up ||
	{ fail "setup: topology"; exit 1; }
# an outside server the pods reach only through masquerade (no route back)
echo "$EX_TOKEN" >"$WORK/exwww/token"
# (nsenter execs the server: $! is its PID)
nsenter --net="/run/netns/$EX" -- busybox httpd -f -p 18080 -h "$WORK/exwww" >>"$LOG" 2>&1 &
EXSRV_PID=$!

# --- the image: busybox + catatonit, docker-archive, no registry
mkimage() {
	local r=$WORK/img/rootfs a bb cat lsha csha arch
	bb=$(command -v busybox) cat=$(command -v catatonit)
	mkdir -p "$r"/{bin,dev,proc,sys,etc,root,run,tmp}
	install -m 0755 "$bb" "$r/bin/busybox"
	install -m 0755 "$cat" "$r/bin/catatonit"
	for a in sh httpd wget timeout ip cat hostname sleep ls; do ln -s busybox "$r/bin/$a"; done
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\n' >"$r/etc/group"
	tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$r" -cf "$WORK/img/layer.tar" .
	lsha=$(sha256sum "$WORK/img/layer.tar" | cut -d' ' -f1)
	arch=$(go env GOARCH 2>/dev/null || dpkg --print-architecture)
	printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Entrypoint":["/bin/catatonit","-P"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$arch" "$lsha" >"$WORK/img/config.json"
	csha=$(sha256sum "$WORK/img/config.json" | cut -d' ' -f1)
	mv "$WORK/img/config.json" "$WORK/img/$csha.json"
	mv "$WORK/img/layer.tar" "$WORK/img/$lsha.tar"
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s.tar"]}]' "$csha" "$IMAGE" "$lsha" >"$WORK/img/manifest.json"
	tar -C "$WORK/img" -cf "$WORK/image.tar" manifest.json "$csha.json" "$lsha.tar"
}
mkimage || { fail "setup: image"; exit 1; }

# --- CNI config and containerd
sed -e "s|@NAME@|$NET_NAME|g" -e "s|@BRIDGE@|$BRIDGE|g" -e "s|@SUBNET@|$SUBNET|g" \
	-e "s|@GATEWAY@|$GATEWAY|g" -e "s|@STATE@|$WORK/state|g" "$CONFLIST" >"$WORK/net.d/10-$NET_NAME.conflist"
jq -e . "$WORK/net.d/10-$NET_NAME.conflist" >/dev/null || { fail "setup: $CONFLIST is not valid JSON"; exit 1; }
log "conflist: $(jq -c . "$WORK/net.d/10-$NET_NAME.conflist")"
cat >"$WORK/containerd.toml" <<EOF
version = 2
root = "$WORK/root"
state = "$WORK/run/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$WORK/run/debug.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE"
  stream_server_address = "127.0.0.1"
  # CRI gives sandboxes oom_score_adj -998; without CAP_SYS_RESOURCE (as on
  # this VM) runc then fails with "can't get final child's PID from pipe"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$PLUGIN_DIR"
    conf_dir = "$WORK/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      BinaryName = "runc"
      Root = "$WORK/run/runc"
      SystemdCgroup = false
EOF
cat >"$CRICTL_CONF" <<EOF
runtime-endpoint: unix://$SOCK
image-endpoint: unix://$SOCK
timeout: 60
pull-image-on-create: false
EOF

# containerd_start: start containerd in the engine host, wait for its API,
# set ver; containerd_stop: SIGTERM and wait (shims and pods live on)
containerd_start() {
	local t0
	t0=$(date +%s%N)
	nsenter --net="/run/netns/$EH" -- containerd --config "$WORK/containerd.toml" >>"$WORK/run/containerd.log" 2>&1 &
	CTRD_PID=$!
	for _ in $(seq 1 120); do
		CTR version >/dev/null 2>&1 && break
		kill -0 "$CTRD_PID" 2>/dev/null || break
		sleep 0.25
	done
	ver=$(CTR version 2>>"$LOG" | awk '/Server:/{s=1} s && /Version:/{print $2; exit}') || return 1
	log "containerd $ver up in $((($(date +%s%N) - t0) / 1000000)) ms"
}
containerd_stop() {
	kill "$CTRD_PID" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$CTRD_PID" 2>/dev/null || break; sleep 0.2; done
	kill -9 "$CTRD_PID" 2>/dev/null
	wait "$CTRD_PID" 2>/dev/null
	CTRD_PID=""
}
if ! containerd_start; then
	fail "containerd starts: see $LOG_DIR/containerd.log"
	exit 1
fi
if ! CTR -n k8s.io images import "$WORK/image.tar" >>"$LOG" 2>&1; then
	fail "ctr images import of the offline image"
	exit 1
fi

# --- 1: CRI sees the network
ready=""
for _ in $(seq 1 40); do
	info=$(C info)
	ready=$(jq -r '.status.conditions[] | select(.type=="NetworkReady") | .status' <<<"$info")
	[ "$ready" = true ] && break
	sleep 0.25
done
names=$(jq -r '[.cniconfig.Networks[]?.Config.Name] | join(",")' <<<"$info" 2>/dev/null)
if [ "$ready" = true ] && grep -qw "$NET_NAME" <<<"$names"; then
	pass "containerd $ver CRI: NetworkReady with conflist $NET_NAME (plugins from $PLUGIN_DIR)"
else
	fail "containerd $ver CRI: NetworkReady=$ready, networks '$names', want $NET_NAME"
	exit 1
fi
C images >>"$LOG"

# --- 2: a pod sandbox gets its network from the conflist
pod_json "${PFX}pod1" $HP1
if ! run_pod "${PFX}pod1"; then
	fail "crictl runp ${PFX}pod1 with hostPort $HP1 (see $LOG)"
	exit 1
fi
POD1=$POD_ID CID1=$CID
ip1=$(pod_ip "$POD1") ns1=$(pod_netns "$POD1")
state=$(C inspectp "$POD1" | jq -r .status.state)
gw=$(nsenter --net="$ns1" ip -4 route show default 2>/dev/null | awk '{print $3; exit}')
if [ "$state" = SANDBOX_READY ] && [[ $ip1 == 198.19.80.* ]] &&
	nsenter --net="$ns1" ip -4 -o addr show eth0 2>/dev/null | grep -q "inet $ip1/24" && [ "$gw" = "$GATEWAY" ]; then
	pass "runp ${PFX}pod1: SANDBOX_READY, eth0 $ip1/24 from $SUBNET, default via $GATEWAY"
else
	fail "runp ${PFX}pod1: state '$state', IP '$ip1', default via '$gw' (want 198.19.80.x/24 via $GATEWAY)"
fi

# --- 3: its hostPort from another namespace
if wait_fetch "http://$EH_IP:$HP1/hostname" "${PFX}pod1"; then
	pass "hostPort: $EX -> $EH_IP:$HP1 reaches ${PFX}pod1:80"
else
	fail "hostPort: $EX -> $EH_IP:$HP1 did not reach ${PFX}pod1:80"
fi

# --- 3b: and from the engine host itself (the node), by its address and
# by 127.0.0.1 (DNAT in the output hook)
o1=$(inh curl -s -m 3 "http://$EH_IP:$HP1/hostname" 2>/dev/null)
o2=$(inh curl -s -m 3 "http://127.0.0.1:$HP1/hostname" 2>/dev/null)
if [ "$o1" = "${PFX}pod1" ] && [ "$o2" = "${PFX}pod1" ]; then
	pass "hostPort from the engine host: $EH_IP:$HP1 and 127.0.0.1:$HP1 reach ${PFX}pod1"
else
	fail "hostPort from the engine host: $EH_IP:$HP1 gave '$o1', 127.0.0.1:$HP1 gave '$o2'"
fi

# --- 4: egress through masquerade ($EX has no route to the pod subnet)
# (no wget -T: busybox-static 1.35's wget segfaults with it)
out=$(C exec "$CID1" timeout 5 wget -q -O - "http://$EX_IP:18080/token")
if [ "$out" = "$EX_TOKEN" ]; then
	pass "egress: ${PFX}pod1 -> $EX_IP (masquerade)"
else
	fail "egress: ${PFX}pod1 -> $EX_IP:18080 gave '$out'"
fi

# --- 4b: hairpin: the pod reaches itself through its own hostPort
out=$(C exec "$CID1" timeout 5 wget -q -O - "http://$EH_IP:$HP1/hostname")
if [ "$out" = "${PFX}pod1" ]; then
	pass "hairpin: ${PFX}pod1 -> $EH_IP:$HP1 -> itself"
else
	fail "hairpin: ${PFX}pod1 -> $EH_IP:$HP1 gave '$out'"
fi

# --- 5: a second pod, its hostPort bound to a host IP
pod_json "${PFX}pod2" $HP2 "$EH_IP"
if run_pod "${PFX}pod2"; then
	POD2=$POD_ID
	ip2=$(pod_ip "$POD2")
	if [[ $ip2 == 198.19.80.* ]] && [ "$ip2" != "$ip1" ] &&
		wait_fetch "http://$EH_IP:$HP2/hostname" "${PFX}pod2" && wait_fetch "http://$EH_IP:$HP1/hostname" "${PFX}pod1"; then
		pass "second pod ${PFX}pod2 $ip2: hostIP $EH_IP:$HP2 reaches it, $HP1 still reaches ${PFX}pod1"
	else
		fail "second pod ${PFX}pod2: IP '$ip2' (pod1 $ip1), or a hostPort failed"
	fi
else
	POD2=""
	fail "crictl runp ${PFX}pod2 with hostIP $EH_IP hostPort $HP2 (see $LOG)"
fi
# pod to pod over the bridge
out=$(C exec "$CID1" timeout 5 wget -q -O - "http://${ip2:-none}/hostname")
[ "$out" = "${PFX}pod2" ] && pass "pod to pod: ${PFX}pod1 -> ${PFX}pod2 $ip2:80" || fail "pod to pod: ${PFX}pod1 -> ${ip2:-?}:80 gave '$out'"

# --- 6: stopp + rmp give everything back (CNI DEL)
ports_before=$(bridge_ports)
C stopp "$POD1" >>"$LOG" && C rmp "$POD1" >>"$LOG"
rc=$?
sleep 0.5
ports_after=$(bridge_ports)
out=$(fetch "http://$EH_IP:$HP1/hostname")
if [ $rc = 0 ] && [ -z "$out" ] && [ "$ports_after" = $((ports_before - 1)) ] && [ ! -e "$ns1" ] &&
	wait_fetch "http://$EH_IP:$HP2/hostname" "${PFX}pod2"; then
	pass "stopp+rmp ${PFX}pod1: hostPort $HP1 closed, veth and netns gone, ${PFX}pod2 still served"
else
	fail "stopp+rmp ${PFX}pod1: rc $rc, :$HP1 answers '$out', bridge ports $ports_before -> $ports_after, netns $ns1 $([ -e "$ns1" ] && echo still there || echo gone)"
fi

# --- 7: a new pod on the freed hostPort gets a working address again
pod_json "${PFX}pod3" $HP1
if run_pod "${PFX}pod3" && wait_fetch "http://$EH_IP:$HP1/hostname" "${PFX}pod3"; then
	pass "re-use: ${PFX}pod3 on hostPort $HP1 ($(pod_ip "$POD_ID"))"
else
	fail "re-use: ${PFX}pod3 on hostPort $HP1 not reachable"
fi

# --- 8: containerd restarts under running pods (as in an upgrade): they keep
# their network meanwhile, CRI finds them again, and removing them after the
# restart (below) still gives everything back
containerd_stop
down=$(fetch "http://$EH_IP:$HP2/hostname")
if containerd_start; then
	ready=$(C pods --state ready -q | wc -l)
	if [ "$down" = "${PFX}pod2" ] && [ "$ready" = 2 ] && wait_fetch "http://$EH_IP:$HP1/hostname" "${PFX}pod3"; then
		pass "containerd restart: pods served while it was down, 2 ready sandboxes after"
	else
		fail "containerd restart: while down :$HP2 gave '$down'; $ready ready sandboxes after (want 2)"
	fi
else
	fail "containerd restart: it did not come back (see $LOG_DIR/containerd.log)"
	exit 1
fi

# --- 9: after all pods are gone, nothing of theirs stays in the engine host
for p in $(C pods -q); do C stopp "$p" >>"$LOG"; C rmp "$p" >>"$LOG"; done
sleep 0.5
ports=$(bridge_ports)
netns_left=$(find /run/netns -name 'cni-*' | wc -l)
out=$(fetch "http://$EH_IP:$HP2/hostname")
# no firewall rule (nftables, or iptables on either backend) still names a
# pod address (198.19.80.2 and up) or a hostPort
rules=$( (inh nft list ruleset; inh iptables-save; inh iptables-legacy-save) 2>/dev/null)
stale=$(grep -E "198\.19\.80\.([2-9]|[1-9][0-9]+)([^0-9]|$)|\b($HP1|$HP2)\b" <<<"$rules")
log "engine host ruleset after all pods:"; log "$rules"
if [ "$ports" = 0 ] && [ "$netns_left" = 0 ] && [ -z "$out" ] && [ -z "$stale" ] && [ -z "$(C pods -q)" ]; then
	pass "all pods removed: no veths on $BRIDGE, no pod netns, hostPorts closed, no firewall rule names a pod or hostPort"
else
	fail "all pods removed: $ports veths on $BRIDGE, $netns_left pod netns, :$HP2 answers '$out', stale rules: $(head -3 <<<"$stale" | tr '\n' ' ')"
fi

echo "cri.sh: crictl runp (sandbox + CNI ADD) took$RUNP_MS ms"

# --- 10: nerdctl run --network <the conflist> -p (optional)
# nerdctl gets a conflist dir of its own with the same plugins on other
# bridges and subnets: $PFX-nerd for --network, and "bridge", nerdctl's
# default network (without one, nerdctl 1.7 writes its own conflist for it,
# which needs the reference plugins in its --cni-path).
if [ -z "${NERDCTL:-}" ]; then
	skipped "nerdctl: no nerdctl (NERDCTL=path, or NERDCTL_BUILD=1 to build v1.7.7)"
	exit 0
fi
NNET=$PFX-nerd NBR=$PFX-nbr0 HP3=18083
mkdir -p "$WORK/nerd-net.d" "$WORK/nerdctl"
sed -e "s|@NAME@|$NNET|g" -e "s|@BRIDGE@|$NBR|g" -e "s|@SUBNET@|198.19.81.0/24|g" \
	-e "s|@GATEWAY@|198.19.81.1|g" -e "s|@STATE@|$WORK/state|g" "$CONFLIST" >"$WORK/nerd-net.d/10-$NNET.conflist"
sed -e "s|@NAME@|bridge|g" -e "s|@BRIDGE@|$PFX-nbr1|g" -e "s|@SUBNET@|198.19.82.0/24|g" \
	-e "s|@GATEWAY@|198.19.82.1|g" -e "s|@STATE@|$WORK/state|g" "$CONFLIST" >"$WORK/nerd-net.d/nerdctl-bridge.conflist"
N() {
	nsenter --net="/run/netns/$EH" -- timeout -k 5 120 "$NERDCTL" --address "$SOCK" --namespace "$PFX" \
		--data-root "$WORK/nerdctl" --cni-path "$PLUGIN_DIR" --cni-netconfpath "$WORK/nerd-net.d" "$@" 2>>"$LOG"
}
CTR -n "$PFX" images import "$WORK/image.tar" >>"$LOG" 2>&1
# (the image's entrypoint is catatonit -P, the pause process)
if N run -d --name "$PFX-web" --network "$NNET" -p "$HP3:80" --cgroup-parent "/$CG_PARENT" \
	--entrypoint /bin/httpd "$IMAGE" -f -p 80 -h /etc >>"$LOG"; then
	hn=$(N inspect -f '{{.Config.Hostname}}' "$PFX-web")
	nip=$(N inspect -f '{{.NetworkSettings.IPAddress}}' "$PFX-web")
	if [ -n "$hn" ] && [[ $nip == 198.19.81.* ]] && wait_fetch "http://$EH_IP:$HP3/hostname" "$hn"; then
		pass "nerdctl run --network $NNET -p $HP3:80: $nip, $EX -> $EH_IP:$HP3 reaches it"
		served=1
	else
		fail "nerdctl run --network $NNET -p $HP3:80: IP '$nip', hostname '$hn', $EH_IP:$HP3 gave '$(fetch "http://$EH_IP:$HP3/hostname")'"
		{ N ps -a; N logs "$PFX-web"; } >>"$LOG" 2>&1
		served=0
	fi
	N rm -f "$PFX-web" >>"$LOG"
	sleep 0.5
	out=$(fetch "http://$EH_IP:$HP3/hostname")
	np=$(inh ip -o link show master "$NBR" 2>/dev/null | wc -l)
	if [ "$served" = 1 ] && [ -z "$out" ] && [ "$np" = 0 ] && [ -z "$(N ps -aq)" ]; then
		pass "nerdctl rm -f: port $HP3 closed, no veth on $NBR"
	else
		fail "nerdctl rm -f: :$HP3 answers '$out', $np veths on $NBR"
	fi
else
	fail "nerdctl run -d --network $NNET -p $HP3:80 (see $LOG)"
fi
exit 0
