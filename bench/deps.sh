#!/bin/sh
# deps.sh - installs the Debian packages the benchmarks use or compare
# against. Idempotent: installs only what is missing. Run as root.
#
#   bench/deps.sh          install
#   bench/deps.sh --check  only list what is missing (exit 1 if anything is)
#
# berth's own binaries come from `make`; Go as the README says.
set -eu

# package            what for
PKGS="
iproute2             ip: namespaces, links
util-linux           nsenter, unshare, setpriv
coreutils            timeout, sha256sum, mkfifo
procps               ps
python3              result summaries, helpers
strace               process counts per call
iptables             reference netavark's and CNI plugins' firewall
nftables             nft: rule counts
bind9-dnsutils       dig: DNS sanity checks
netavark             reference netavark (/usr/lib/podman/netavark)
aardvark-dns         reference DNS server (/usr/lib/podman/aardvark-dns)
podman               reference engine, rootlessport
podman-compose       compose-compare.sh drives both engines with it
docker-compose       docker-compare.sh drives both Docker API services with it
catatonit            Podman's --init (compose-compare.sh's project)
runc                 container runtime for run-compare.sh
conmon               Podman's container monitor
containernetworking-plugins  reference CNI plugins (/usr/lib/cni)
dnsmasq-base         DHCP server, DNS upstream and references
dnsperf              DNS load generator
slirp4netns          reference user-mode network stack
passt                pasta, user-mode stack Podman 5 uses
iperf3               throughput through the rootless stacks
wrk                  HTTP requests through port forwards
busybox-static       httpd (rootless HTTP test), banner image (scripts/mkbanner.sh)
"

# files the benchmarks run, by package: an installed package whose file was
# removed by hand is installed again
FILES="
netavark:/usr/lib/podman/netavark
aardvark-dns:/usr/lib/podman/aardvark-dns
podman:/usr/lib/podman/rootlessport
containernetworking-plugins:/usr/lib/cni/bridge
"

installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing="" broken=""
for p in $(printf '%s\n' "$PKGS" | awk 'NF {print $1}'); do
    installed "$p" || missing="$missing $p"
done
for pf in $FILES; do
    p=${pf%%:*} f=${pf#*:}
    if installed "$p" && [ ! -e "$f" ]; then broken="$broken $p"; fi
done

if [ -z "$missing$broken" ]; then
    echo "deps.sh: every package the benchmarks need is installed"
    exit 0
fi
status="missing:${missing:- none}; installed but files removed:${broken:- none}"
if [ "${1:-}" = --check ]; then
    echo "deps.sh: $status"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: $status; run as root to install them" >&2
    exit 2
fi
apt-get update
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
    echo "deps.sh: installing:$missing"
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi
if [ -n "$broken" ]; then
    echo "deps.sh: installing again (files removed by hand):$broken"
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends --reinstall $broken
fi
echo "deps.sh: done"
