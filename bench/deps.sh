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

want=$(printf '%s\n' "$PKGS" | awk 'NF {print $1}')
missing=""
for p in $want; do
    if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "deps.sh: every package the benchmarks need is installed"
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "deps.sh: missing:$missing"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing:$missing; run as root to install them" >&2
    exit 2
fi
echo "deps.sh: installing:$missing"
apt-get update
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
echo "deps.sh: done"
