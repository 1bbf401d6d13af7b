package engine

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/usernet"
)

func TestForwardsOf(t *testing.T) {
	ports := []network.PortMapping{
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 2},
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
	}
	g := netip.MustParseAddr("10.0.2.100")
	fs, err := forwardsOf(ports, g, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []usernet.Forward{
		{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, GuestAddr: g, GuestPort: 80},
		{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 8081, GuestAddr: g, GuestPort: 81},
		{Proto: "udp", HostPort: 5353, GuestAddr: g, GuestPort: 53},
	}
	if !reflect.DeepEqual(fs, want) {
		t.Errorf("forwards %+v, want %+v", fs, want)
	}
	// Into the rootless netns: host port to the same port.
	fs, _ = forwardsOf(ports[:1], g, true)
	if fs[1].GuestPort != 8081 {
		t.Errorf("toHost: %+v", fs)
	}
	if _, err := forwardsOf([]network.PortMapping{{HostPort: 9, ContainerPort: 9, Protocol: "sctp"}}, g, false); err == nil || !strings.Contains(err.Error(), "tcp and udp only") {
		t.Errorf("sctp: %v", err)
	}
	// A rootless bridge container: TCP straight into its namespace, UDP
	// through the uplink's own address (zero: whatever address the
	// uplink's stack has, pasta's or slirp4netns's) and the firewall.
	gw := netip.MustParseAddr("198.19.5.1")
	res := map[string]network.StatusBlock{"n": {Interfaces: map[string]network.Interface{"eth0": {Subnets: []network.NetAddress{{IPNet: netip.MustParsePrefix("198.19.5.2/24"), Gateway: &gw}}}}}}
	fs, err = bridgeForwards(ports, "/run/x/netns", res, []string{"n"})
	if err != nil {
		t.Fatal(err)
	}
	if f := fs[0]; f.NetNS != "/run/x/netns" || f.GuestAddr.String() != "198.19.5.2" || f.GuestPort != 80 || f.Gateway != gw {
		t.Errorf("tcp: %+v", f)
	}
	if f := fs[2]; f.NetNS != "" || f.GuestAddr.IsValid() || f.GuestPort != 5353 {
		t.Errorf("udp: %+v", f)
	}
}

// TestPastaFacts: a pasta container's /etc files as Podman 5.3+ writes
// them: its names on the namespace's addresses, host.containers.internal at
// the --map-guest-addr address, the --dns-forward address as nameserver,
// each only for a family the namespace has.
func TestPastaFacts(t *testing.T) {
	c := &Container{Config: Config{Name: "web", Hostname: "abc"}}
	pc := rootless.PastaCommand{DNSForward: []string{"169.254.1.1", "fd00::1"}, MapGuestAddr: []string{"169.254.1.2"}}
	addrs := []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:db8::5")}
	f := pastaFactsOf(c, pc, addrs, netFacts{gw4: "10.0.2.2", servers: []netip.Addr{netip.MustParseAddr("10.0.2.3")}})
	if f.gw4 != "169.254.1.2" || !f.ipv6 || len(f.entries) != 2 || f.entries[0].IP != "198.18.0.1" || f.entries[1].Names[1] != "web" {
		t.Errorf("facts %+v", f)
	}
	if len(f.servers) != 2 || f.servers[0].String() != "169.254.1.1" || f.servers[1].String() != "fd00::1" {
		t.Errorf("servers %v", f.servers)
	}
	// IPv6 only: no IPv4 forwarder, no host.containers.internal.
	f = pastaFactsOf(c, pc, addrs[1:], netFacts{})
	if f.gw4 != "" || len(f.servers) != 1 || f.servers[0].String() != "fd00::1" {
		t.Errorf("ipv6 only: %+v", f)
	}
}
