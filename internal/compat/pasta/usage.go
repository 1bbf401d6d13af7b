package pasta

import (
	"fmt"

	"github.com/berthnet/berth/internal/buildinfo"
)

// PastaVersion is the pasta release whose command line this front-end
// follows.
const PastaVersion = "2025_12_09.c3f1ba7"

// VersionText is what --version prints (to stdout, exit 0).
func VersionText() string {
	return fmt.Sprintf("pasta %s (berth %s)\n", PastaVersion, buildinfo.Version)
}

// Usage is the --help text. pasta prints it to stdout and exits 0 for
// --help, and to stderr with ExitUsage after a getopt error.
const Usage = `Usage: pasta [OPTION]... [COMMAND] [ARGS]...
       pasta [OPTION]... PID
       pasta [OPTION]... --netns [PATH|NAME]

Without PID or --netns, run the given command or a
default shell in a new network and user namespace, and
connect it via pasta (berth: Go user-mode network).

  -d, --debug		Be verbose
      --trace		Be extra verbose, implies --debug
  -q, --quiet		Don't print informational messages
  -f, --foreground	Don't run in background
    default: run in background
  -e, --stderr		Log to stderr too (deprecated, ignored)
  -l, --log-file PATH	Log (only) to given file
  --log-size BYTES	Maximum size of log file (accepted, ignored)
  --runas UID|UID:GID 	Run as given UID, GID (accepted, ignored)
  -h, --help		Display this help message and exit
  --version		Show version and exit
  -I, --ns-ifname NAME	namespace interface name
    default: same interface name as external one
  -F, --fd FD		Use FD as pre-opened connected socket (ignored)
  -p, --pcap FILE	Log tap-facing traffic to pcap file (ignored)
  -P, --pid FILE	Write own PID to the given file
  --berth-api-socket PATH  Serve slirp4netns's port-forward API (add_hostfwd,
    list_hostfwd, remove_hostfwd) on PATH (berth only)
  -m, --mtu MTU	Assign MTU via DHCP/NDP
    a zero value disables assignment
    default: 65520: maximum 802.3 MTU minus 802.3 header
                    length, rounded to 32 bits (IPv4 words)
  -a, --address ADDR	Assign IPv4 or IPv6 address ADDR
    can be specified zero to two times (for IPv4 and IPv6)
    default: use addresses from interface with default route
  -n, --netmask MASK	Assign IPv4 MASK, dot-decimal or bits
    default: netmask from matching address on the host
  -M, --mac-addr ADDR	Use source MAC address ADDR
    default: 9a:55:9a:55:9a:55 (locally administered)
  -g, --gateway ADDR	Pass IPv4 or IPv6 address as gateway
    default: gateway from interface with default route
  -i, --interface NAME	Interface for addresses and routes
    default: from --outbound-if4 and --outbound-if6, if any
             otherwise interface with first default route
  -o, --outbound ADDR	Bind to address as outbound source
    can be specified zero to two times (for IPv4 and IPv6)
    default: use source address from routing tables
  --outbound-if4 NAME	Bind to outbound interface for IPv4
    default: use interface from default route
  --outbound-if6 NAME	Bind to outbound interface for IPv6
    default: use interface from default route
  -D, --dns ADDR	Use IPv4 or IPv6 address as DNS
    can be specified multiple times
    'none' disables DNS information
    default: use addresses from /etc/resolv.conf
  -S, --search LIST	Space-separated list, search domains
    'none' disables the DNS search list
    default: use search list from /etc/resolv.conf
  -H, --hostname NAME 	Hostname to configure client with
  --fqdn NAME		FQDN to configure client with
  --dhcp-dns		Pass DNS list via DHCP/DHCPv6/NDP
  --dhcp-search		Pass list via DHCP/DHCPv6/NDP
  --map-host-loopback ADDR	Translate ADDR to refer to host
    can be specified zero to two times (for IPv4 and IPv6)
    default: gateway address
  --map-guest-addr ADDR	Translate ADDR to guest's address
    can be specified zero to two times (for IPv4 and IPv6)
    default: none
  --dns-forward ADDR	Forward DNS queries sent to ADDR
    can be specified zero to two times (for IPv4 and IPv6)
    default: don't forward DNS queries
  --dns-host ADDR	Host nameserver to direct queries to
    can be specified zero to two times (for IPv4 and IPv6)
    default: first nameserver from host's /etc/resolv.conf
  --no-tcp		Disable TCP protocol handler
  --no-udp		Disable UDP protocol handler
  --no-icmp		Disable ICMP/ICMPv6 protocol handler
  --no-dhcp		Disable DHCP server
  --no-ndp		Disable NDP responses
  --no-dhcpv6		Disable DHCPv6 server
  --no-ra		Disable router advertisements
  --freebind		Bind to any address for forwarding (ignored)
  --no-map-gw		Don't map gateway address to host
  -4, --ipv4-only	Enable IPv4 operation only
  -6, --ipv6-only	Enable IPv6 operation only
  -t, --tcp-ports SPEC	TCP port forwarding to namespace
    can be specified multiple times
    SPEC can be:
      'none': don't forward any ports
      'auto': forward all ports currently bound in namespace
      'all': forward all unbound, non-ephemeral ports
      a comma-separated list, optionally ranged with '-'
        and optional target ports after ':', with optional
        address specification suffixed by '/' and optional
        interface prefixed by '%'. Examples:
        -t 22	Forward local port 22 to port 22 in netns
        -t 22:23	Forward local port 22 to port 23
        -t 22,25	Forward ports 22, 25 to ports 22, 25
        -t 22-80	Forward ports 22 to 80
        -t 22-80:32-90	Forward ports 22 to 80 to
			corresponding port numbers plus 10
        -t 192.0.2.1/5	Bind port 5 of 192.0.2.1 to namespace
        -t 5-25,~10-20	Forward ports 5 to 9, and 21 to 25
        -t ~25		Forward all bound ports except for 25
    default: auto
    IPv6 bound ports are also forwarded for IPv4
  -u, --udp-ports SPEC	UDP port forwarding to namespace
    SPEC is as described for TCP above
    default: auto
  -T, --tcp-ns SPEC	TCP port forwarding to init namespace
    SPEC is as described above
    default: auto
  -U, --udp-ns SPEC	UDP port forwarding to init namespace
    SPEC is as described above
    default: auto
  --host-lo-to-ns-lo	Translate host-loopback forwards to
			namespace loopback
  --userns NSPATH 	Target user namespace to join
  --netns PATH|NAME	Target network namespace to join
  --netns-only		Don't join existing user namespace
    implied if PATH or NAME are given without --userns
  --no-netns-quit	Don't quit if filesystem-bound target
  			network namespace is deleted
  --config-net		Configure tap interface in namespace
  --no-copy-routes	DEPRECATED:
			Don't copy all routes to namespace
  --no-copy-addrs	DEPRECATED:
			Don't copy all addresses to namespace
  --ns-mac-addr ADDR	Set MAC address on tap interface
  --no-splice		Disable inbound socket splicing (ignored)
  --splice-only		Only enable loopback forwarding (ignored)
  --map-gw		Accepted for Podman (not a pasta option)
`
