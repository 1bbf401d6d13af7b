#!/usr/bin/env bash
# Installs what berth's tests need on a Debian 12 machine that has only Go:
# the Debian packages the kernel and acceptance tests drive (Podman 4.3.1,
# podman-compose, docker.io, docker-compose, runc, containerd, etcd, dnsmasq,
# nftables, iptables, ...),
# the Go modules, crictl (built from the Go module proxy into
# /var/cache/berth-tools) and Docker Compose v2 (built from the Go module
# proxy into .cache/tools by scripts/compose-v2.sh).
# Idempotent: it installs only what is missing. `make check` runs it first.
#
# Packages must not start services on this machine (etcd-server,
# firewalld and docker-registry ship one; the overlay tests run their own
# etcd members, the firewalld tests their own bus and firewalld, and the
# registry tests their own registries inside test namespaces), so a
# policy-rc.d that refuses service starts is in place while apt runs.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	podman runc conmon slirp4netns uidmap catatonit etcd-server passwd
	containerd containernetworking-plugins
	nftables iptables iproute2 util-linux procps
	busybox-static dnsutils dnsmasq-base jq curl ca-certificates
	firewalld dbus-daemon passt docker-registry podman-compose
	make gcc git
	docker.io docker-compose
)

if [ "$(id -u)" != 0 ]; then
	echo "deps: not root: not installing Debian packages (the kernel tests need root anyway)"
else
	missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "deps: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		policy_rc=/usr/sbin/policy-rc.d
		if [ ! -e "$policy_rc" ]; then
			printf '#!/bin/sh\nexit 101\n' >"$policy_rc" && chmod 755 "$policy_rc"
			trap 'rm -f "$policy_rc"' EXIT
		fi
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

go version
go mod download
scripts/lint.sh fetch >/dev/null
# crictl for test/acceptance/cri.sh: the proxy is reachable here, not inside
# the suite's private network namespace.
if [ "$(id -u)" = 0 ] && command -v containerd >/dev/null; then
	test/acceptance/cri.sh tools || { echo "deps: crictl could not be installed"; exit 1; }
fi
# Compose v2 for test/acceptance/docker-api.sh, for the same reason.
if command -v docker-compose >/dev/null; then
	scripts/compose-v2.sh >/dev/null || { echo "deps: Compose v2 could not be built"; exit 1; }
fi
echo "deps: ready"
