# shellcheck shell=bash
# demo-lib.sh: what both demos (demo.sh, demo-podman.sh) share: checking
# for root and the tools, building bin/, re-entering a private mount
# namespace, the sandbox of a "host" and an "outside" network namespace
# joined by a veth (198.18.0.1 and 198.18.0.2), and fetching the page from
# outside. Sourced by the demos, which set `set -euo pipefail` first.

# demo_prepare SCRIPT ARGS... -- TOOL:PACKAGE...: as root, installs the
# missing Debian packages, builds bin/, then re-executes SCRIPT ARGS once in
# a private mount namespace (so /run/containers/networks and /run/berth can
# be the demo's own tmpfs). Sets top to the repository.
demo_prepare() {
	local script args=() need=() c
	script=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	cd "$(dirname "$script")/.."
	top=$(pwd)
	[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
	for c in "$@"; do
		command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
	done
	if [ ${#need[@]} -gt 0 ]; then
		echo "demo: installing ${need[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	fi
	export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
	make -s
	if [ -z "${BERTH_DEMO_INNER:-}" ]; then
		exec env BERTH_DEMO_INNER=1 unshare --mount --propagation private -- "$script" "${args[@]}"
	fi
}

# demo_sandbox H O: the host namespace H (uplink0 198.18.0.1/24) and the
# outside namespace O (eth0 198.18.0.2/24).
demo_sandbox() {
	local h=$1 o=$2 n
	echo "== sandbox: host namespace $h (198.18.0.1), outside namespace $o (198.18.0.2)"
	ip netns add "$h"
	ip netns add "$o"
	ip -n "$h" link add uplink0 type veth peer name eth0 netns "$o"
	ip -n "$h" addr add 198.18.0.1/24 dev uplink0
	ip -n "$o" addr add 198.18.0.2/24 dev eth0
	for n in "$h" "$o"; do ip -n "$n" link set lo up; done
	ip -n "$h" link set uplink0 up
	ip -n "$o" link set eth0 up
}

# demo_fetch O URL: fetches URL from namespace O (retrying for 6 s while the
# server starts), prints the page, fails when none came.
demo_fetch() {
	local o=$1 url=$2 page="" i
	echo "== from the outside namespace: curl $url"
	for i in $(seq 1 30); do
		page=$(ip netns exec "$o" curl -s --max-time 2 "$url" || true)
		[ -n "$page" ] && break
		sleep 0.2
	done
	if [ -z "$page" ]; then
		echo "demo: FAILED: no page from $url" >&2
		return 1
	fi
	echo "   $page"
}
