#!/usr/bin/env bash
# The Podman edition of the main job (scripts/demo.sh runs berth alone), on a
# fresh Debian 12 machine as root:
# Podman 4.3.1 runs a web server with `-p 8080:80` using berth as its network
# backend, and an "outside" machine fetches the page through the host's
# address — the first scenario of Podman's Basic Networking Guide.
#
# Everything happens in a sandbox this script creates and removes: a "host"
# and an "outside" network namespace joined by a veth (198.18.0.1 and
# 198.18.0.2), a private mount namespace (its own /run/containers/networks),
# and private Podman storage. The machine's own network is never touched.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_prepare "$0" "$@" -- podman:podman runc:runc conmon:conmon busybox:busybox-static curl:curl nsenter:util-linux ip:iproute2 nft:nftables

id=$$
H=berthdemo-host-$id O=berthdemo-out-$id
state=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
helpers=$state/helpers
cleanup() {
	set +e
	[ -n "${P_READY:-}" ] && pod rm -af -t 0 >/dev/null 2>&1
	ip netns del "$H" 2>/dev/null
	ip netns del "$O" 2>/dev/null
	umount "$state/runroot" 2>/dev/null
	rm -rf "$state"
}
trap cleanup EXIT

mkdir -p /run/containers/networks && mount -t tmpfs tmpfs /run/containers/networks
mkdir -p "$helpers" "$state/runroot" && mount -t tmpfs tmpfs "$state/runroot"
ln -s "$top/bin/netavark" "$helpers/netavark"
ln -s "$top/bin/aardvark-dns" "$helpers/aardvark-dns"
cat >"$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
helper_binaries_dir = ["$helpers", "/usr/libexec/podman", "/usr/lib/podman"]
[network]
network_backend = "netavark"
network_config_dir = "$state/networks"
# container subnets stay in the benchmarking range 198.18.0.0/15
default_subnet = "198.19.0.0/24"
EOF

demo_sandbox "$H" "$O"

pod() {
	CONTAINERS_CONF=$state/containers.conf nsenter --net="/run/netns/$H" -- podman \
		--root "$state/storage" --runroot "$state/runroot" --tmpdir "$state/tmp" \
		--network-config-dir "$state/networks" "$@"
}

echo "== image: the banner web server (scripts/mkbanner.sh's root filesystem, Debian's busybox-static)"
MKBANNER_TAR_ONLY=$state/banner.tar scripts/mkbanner.sh >/dev/null
pod import "$state/banner.tar" localhost/banner >/dev/null 2>"$state/import.log" || { cat "$state/import.log" >&2; exit 1; }
P_READY=1

echo "== podman info --format {{.Host.NetworkBackend}}: $(pod info --format '{{.Host.NetworkBackend}}')"
echo "== podman run -d --name webserver -p 8080:80 banner"
pod run -d --name webserver -p 8080:80 localhost/banner httpd -f -p 80 -h /www >/dev/null
echo "   container address: $(pod inspect -f '{{.NetworkSettings.IPAddress}}' webserver)"
echo "== berth's firewall in the host namespace (nft list table inet berth):"
nsenter --net="/run/netns/$H" -- nft list table inet berth | sed -n '/map pf4any/,/}/p'

demo_fetch "$O" http://198.18.0.1:8080/
echo "== cleaning up (containers, namespaces, state)"
pod rm -f -t 0 webserver >/dev/null
echo "demo: OK"
