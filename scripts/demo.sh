#!/usr/bin/env bash
# berth's main job, end to end on a fresh Debian 12 machine (run as root):
# the first scenario of Podman's Basic Networking Guide with berth alone.
# It builds the "banner" web server image from Debian's busybox-static
# (offline), runs `berth run -d --name webserver -p 8080:80 banner`, and an
# "outside" machine fetches the page through the host's address.
#
# Everything happens in a sandbox this script creates and removes: a "host"
# and an "outside" network namespace joined by a veth (198.18.0.1 and
# 198.18.0.2), a private mount namespace (tmpfs over /run/containers/networks
# and /run/berth), and a temporary image and container store. The machine's
# own network is never touched. scripts/demo-podman.sh is the same job done
# by Podman 4.3.1 with berth as its network backend.
set -euo pipefail
# shellcheck source=scripts/demo-lib.sh
. "$(dirname "$0")/demo-lib.sh"
demo_prepare "$0" "$@" -- runc:runc busybox:busybox-static curl:curl nsenter:util-linux ip:iproute2 nft:nftables

id=$$
H=berthdemo-host-$id O=berthdemo-out-$id
state=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
export CONTAINERS_CONF=$state/containers.conf

berth() {
	nsenter --net="/run/netns/$H" -- "$top/bin/berth" --root "$state/root" --runroot /run/berth \
		--network-config-dir "$state/networks" "$@"
}
cleanup() {
	set +e
	if [ -e "/run/netns/$H" ]; then
		berth rm -af >/dev/null 2>&1
		berth system reset --force >/dev/null 2>&1
		ip netns del "$H"
	fi
	[ -e "/run/netns/$O" ] && ip netns del "$O"
	rm -rf "$state"
}
trap cleanup EXIT

for d in /run/containers/networks /run/berth; do mkdir -p "$d" && mount -t tmpfs tmpfs "$d"; done
# container subnets stay in the benchmarking range 198.18.0.0/15
cat >"$CONTAINERS_CONF" <<EOF
[network]
default_subnet = "198.19.0.0/24"
default_subnet_pools = [{base = "198.19.0.0/16", size = 24}]
EOF

demo_sandbox "$H" "$O"

echo "== image: scripts/mkbanner.sh (busybox httpd from Debian's busybox-static, offline)"
BERTH_ROOT=$state/root scripts/mkbanner.sh "$top/bin/berth" banner >/dev/null
berth images --format '   {{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}'

echo "== berth info --format {{.Host.NetworkBackend}}: $(berth info --format '{{.Host.NetworkBackend}}')"
echo "== berth run -d --name webserver -p 8080:80 banner"
berth run -d --name webserver -p 8080:80 banner | sed 's/^/   /'
berth ps --format '   {{.Names}}  {{.Status}}  {{.Ports}}  {{.Networks}}'
echo "   container address: $(berth inspect -f '{{.NetworkSettings.IPAddress}}' webserver)"
echo "== berth's firewall in the host namespace (nft list table inet berth):"
nsenter --net="/run/netns/$H" -- nft list table inet berth | sed -n '/map pf4any/,/}/p'

demo_fetch "$O" http://198.18.0.1:8080/
echo "== berth logs webserver"
berth logs webserver 2>&1 | sed 's/^/   /'
echo "== cleaning up (container, image, namespaces, state)"
berth rm -f webserver >/dev/null
echo "demo: OK"
