#!/bin/bash
# cni-compare.sh - CNI ADD/DEL latency: berth's chain vs the reference chain,
# side by side in one run, interleaved (A B, B A, ...).
#
#   berth:     berth-bridge (berth-ipam in process, publishing the port itself)
#   berth-portmap: berth-bridge -> berth-portmap
#   reference: bridge (host-local) -> portmap -> firewall   (Debian
#              containernetworking-plugins 1.1.1 in /usr/lib/cni, iptables)
#
# Every chain gets one published port (portMappings capability) and is
# driven by libcni in process (bench/cnibench), as containerd and CRI-O do,
# each with its own bridge, subnet (198.18.60.0/24, 198.18.61.0/24) and
# libcni cache; no cnitool start is in the timed path. Everything runs
# inside a throwaway "host" namespace created here ($P-h); container
# namespaces live under the run's temp dir.
#
# Usage (as root, after `make` and bench/deps.sh):
#   bench/cni-compare.sh            30 cycles per chain (about 30 s)
#   bench/cni-compare.sh --quick    10 cycles per chain (about 15 s)
# Env: N (timed cycles per chain; default 30, --quick 10), P (name prefix,
#      default bcb), BERTH_DIR (default <repo>/bin), REF_DIR (default
#      /usr/lib/cni), CNI_VERSION (default 1.0.0), OUT (result file;
#      default bench/results/cni-<timestamp>.md).
# The result file starts with the commit (git describe --dirty), kernel,
# CPUs and load before and after the run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
if [ "${1:-}" = --quick ]; then N=${N:-10}; fi
P=${P:-bcb}
N=${N:-30}
BERTH_DIR=${BERTH_DIR:-$PWD/bin}
REF_DIR=${REF_DIR:-/usr/lib/cni}
need_root
need "$BERTH_DIR/berth-bridge:make" "$BERTH_DIR/berth-portmap:make" \
	"$REF_DIR/bridge:containernetworking-plugins" "$REF_DIR/host-local:containernetworking-plugins" \
	"$REF_DIR/portmap:containernetworking-plugins" "$REF_DIR/firewall:containernetworking-plugins" \
	iptables:iptables ip:iproute2 strace:strace go:go "$PYTHON:python3"
mkdir -p bench/results
OUT=${OUT:-bench/results/cni-$(date +%Y%m%d-%H%M%S).md}
WORK=$(mktemp -d -t "$P-cni.XXXXXX")
HNS=$P-h
cleanup() {
	ip netns del "$HNS" 2>/dev/null || true
	# container namespaces pinned under $WORK
	for m in "$WORK"/bcb-ctr-*; do [ -e "$m" ] && umount "$m" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$HNS"; then
	echo "cni-compare.sh: network namespace $HNS exists already (another run?); choose another P" >&2
	exit 2
fi
go build -o "$WORK/cnibench" ./bench/cnibench
before=$(run_info --md)
ip netns add "$HNS"
ip -n "$HNS" link set lo up
{
	echo "# CNI ADD/DEL: berth vs reference ($(date -u +%Y-%m-%dT%H:%MZ))"
	echo
	echo "- before: $before"
	echo
	ip netns exec "$HNS" "$WORK/cnibench" -berth "$BERTH_DIR" -ref "$REF_DIR" -n "$N" -state "$WORK" -cni-version "${CNI_VERSION:-1.0.0}" 2>"$WORK/json"
	echo
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
	echo "- after: $(run_info --md)"
	echo
	echo '```json'
	grep '^{' "$WORK/json" || true
	echo '```'
} | tee "$OUT"
grep -v '^{' "$WORK/json" >&2 || true
echo "written to $OUT" >&2
