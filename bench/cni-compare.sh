#!/bin/bash
# cni-compare.sh - CNI ADD/DEL latency: berth's chain vs the reference chain,
# side by side in one run, interleaved (A B, B A, ...).
#
#   berth:     berth-bridge (berth-ipam in process) -> berth-portmap
#   reference: bridge (host-local) -> portmap -> firewall   (Debian
#              containernetworking-plugins 1.1.1 in /usr/lib/cni, iptables)
#
# Both chains get one published port (portMappings capability) and are driven
# by libcni in process (bench/cnibench), as containerd/CRI-O do, each with
# its own bridge, subnet (198.18.60.0/24, 198.18.61.0/24) and libcni cache.
# Everything runs inside a throwaway "host" namespace created here
# ($P-h); container namespaces live under the state directory. Adapted from
# /work/shared/bench/cni/cni-chain-bench.sh (same chain and options; timing
# in process instead of around cnitool, so neither side pays a cnitool
# start).
#
# Usage (root; on the shared box under the kernel-test lock):
#   make && flock /tmp/berth-kernel-tests.lock bench/cni-compare.sh
# Env: N (timed cycles per chain, default 30), P (name prefix, default bcb),
#      BERTH_DIR (default <repo>/bin), REF_DIR (default /usr/lib/cni),
#      CNI_VERSION (default 1.0.0), OUT (result file; default
#      bench/results/cni-<timestamp>.md).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "cni-compare.sh: needs root" >&2; exit 1; }
P=${P:-bcb}
N=${N:-30}
BERTH_DIR=${BERTH_DIR:-$PWD/bin}
REF_DIR=${REF_DIR:-/usr/lib/cni}
for f in "$BERTH_DIR/berth-bridge" "$REF_DIR/bridge" "$REF_DIR/firewall"; do
	[ -x "$f" ] || { echo "cni-compare.sh: $f missing (make; apt-get install containernetworking-plugins)" >&2; exit 1; }
done
command -v iptables >/dev/null || { echo "cni-compare.sh: the reference plugins need iptables" >&2; exit 1; }
mkdir -p bench/results
OUT=${OUT:-bench/results/cni-$(date +%Y%m%d-%H%M%S).md}
WORK=$(mktemp -d "/tmp/$P-cni.XXXXXX")
HNS=$P-h
cleanup() {
	ip netns del "$HNS" 2>/dev/null || true
	# container namespaces pinned under $WORK
	for m in "$WORK"/bcb-ctr-*; do [ -e "$m" ] && umount "$m" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
go build -o "$WORK/cnibench" ./bench/cnibench
ip netns add "$HNS"
ip -n "$HNS" link set lo up
{
	echo "# CNI ADD/DEL: berth vs reference ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
	ip netns exec "$HNS" "$WORK/cnibench" -berth "$BERTH_DIR" -ref "$REF_DIR" -n "$N" -state "$WORK" -cni-version "${CNI_VERSION:-1.0.0}" 2>"$WORK/json"
	echo
	if command -v strace >/dev/null; then
		# process starts per ADD+DEL cycle: one traced run per chain with
		# 1 cycle (plus the warm-up: 2 cycles); the run's own process
		# (cnibench) is not counted. berth's include the reaper children
		# that delete retired veths after DEL.
		counts=""
		for c in berth berth-portmap reference; do
			ip netns exec "$HNS" strace -f -qq -e trace=execve -o "$WORK/execs-$c" "$WORK/cnibench" -only "$c" -berth "$BERTH_DIR" -ref "$REF_DIR" -n 1 -state "$WORK" -cni-version "${CNI_VERSION:-1.0.0}" >/dev/null 2>&1 || true
			total=$(grep -c 'execve(' "$WORK/execs-$c" || true)
			counts="$counts${counts:+, }$c $(((total - 1) / 2))"
		done
		echo "process starts per ADD+DEL cycle: $counts"
		echo
	fi
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo '```json'
	grep '^{' "$WORK/json" || true
	echo '```'
} | tee "$OUT"
grep -v '^{' "$WORK/json" >&2 || true
echo "written to $OUT" >&2
