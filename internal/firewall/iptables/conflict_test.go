package iptables

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// conflictNets are two networks; pubA publishes ports of container A on the
// first.
func conflictNets() (n1, n2 firewall.NetworkRules, pubA firewall.PortForward) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	n1 = firewall.NetworkRules{ID: "1111", Name: "net1", Bridge: "b1", Subnets: []netip.Prefix{p("198.18.1.0/24"), p("fd10:1::/64")}, Gateways: []netip.Addr{a("198.18.1.1"), a("fd10:1::1")}, DNSPort: 53}
	n2 = firewall.NetworkRules{ID: "2222", Name: "net2", Bridge: "b2", Subnets: []netip.Prefix{p("198.18.2.0/24")}, Gateways: []netip.Addr{a("198.18.2.1")}, DNSPort: 53}
	pubA = firewall.PortForward{NetworkID: n1.ID, NetworkName: n1.Name, ContainerID: "aaaa", IPv4: a("198.18.1.2"), IPv6: a("fd10:1::2"),
		Mappings: []network.PortMapping{
			{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			{HostIP: "127.0.0.1", HostPort: 15000, ContainerPort: 5000, Range: 2, Protocol: "udp"},
		}}
	return n1, n2, pubA
}

func pub(ctr string, n firewall.NetworkRules, ip string, ms ...network.PortMapping) firewall.PortForward {
	pf := firewall.PortForward{NetworkID: n.ID, NetworkName: n.Name, ContainerID: ctr, Mappings: ms}
	if a := netip.MustParseAddr(ip); a.Is4() {
		pf.IPv4 = a
	} else {
		pf.IPv6 = a
	}
	return pf
}

func TestHostPortOfAnotherContainerIsErrPortInUse(t *testing.T) {
	n1, n2, pubA := conflictNets()
	cases := []struct {
		name string
		nets []firewall.NetworkRules
		b    firewall.PortForward
		want string
	}{
		{"same network", []firewall.NetworkRules{n1}, pub("bbbb", n1, "198.18.1.3", network.PortMapping{HostPort: 8080, ContainerPort: 81, Protocol: "tcp"}),
			"host port 8080/tcp is already published to 198.18.1.2:80"},
		{"another network", []firewall.NetworkRules{n2}, pub("bbbb", n2, "198.18.2.3", network.PortMapping{HostPort: 8080, ContainerPort: 81, Protocol: "tcp"}),
			"host port 8080/tcp is already published to 198.18.1.2:80"},
		{"inside a range", []firewall.NetworkRules{n1}, pub("bbbb", n1, "198.18.1.3", network.PortMapping{HostIP: "127.0.0.1", HostPort: 14990, ContainerPort: 1, Range: 12, Protocol: "udp"}),
			"host port 127.0.0.1:15000/udp is already published to 198.18.1.2:5000"},
		{"range end", []firewall.NetworkRules{n1}, pub("bbbb", n1, "198.18.1.3", network.PortMapping{HostIP: "127.0.0.1", HostPort: 15001, ContainerPort: 7, Protocol: "udp"}),
			"host port 127.0.0.1:15001/udp is already published to 198.18.1.2:5001"},
		{"IPv6", []firewall.NetworkRules{n1}, pub("bbbb", n1, "fd10:1::3", network.PortMapping{HostPort: 8080, ContainerPort: 81, Protocol: "tcp"}),
			"host port 8080/tcp is already published to [fd10:1::2]:80"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := newFakeKernel()
			d := k.driver(t)
			must(t, "setup A", d.Setup([]firewall.NetworkRules{n1}, []firewall.PortForward{pubA}))
			before4, before6 := k.rs[ipv4].render(sortedTables(k.rs[ipv4].tables)...), k.rs[ipv6].render(sortedTables(k.rs[ipv6].tables)...)
			restores := k.count("iptables-restore") + k.count("ip6tables-restore")
			err := d.Setup(c.nets, []firewall.PortForward{c.b})
			if !errors.Is(err, firewall.ErrPortInUse) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want firewall.ErrPortInUse with %q", err, c.want)
			}
			if n := k.count("iptables-restore") + k.count("ip6tables-restore"); n != restores {
				t.Errorf("the refused setup changed rules (%d restores)", n-restores)
			}
			if k.rs[ipv4].render(sortedTables(k.rs[ipv4].tables)...) != before4 || k.rs[ipv6].render(sortedTables(k.rs[ipv6].tables)...) != before6 {
				t.Error("rules changed")
			}
			// Podman tears B down after its failed setup: A keeps its port.
			must(t, "teardown B", d.Teardown([]firewall.PortForward{c.b}, nil))
			if !strings.Contains(k.rs[ipv4].render(tableNAT), "--to-destination 198.18.1.2:80") {
				t.Error("B's teardown removed A's forward")
			}
		})
	}
}

func TestHostPortsThatDoNotClash(t *testing.T) {
	n1, n2, pubA := conflictNets()
	k := newFakeKernel()
	d := k.driver(t)
	must(t, "setup A", d.Setup([]firewall.NetworkRules{n1}, []firewall.PortForward{pubA}))
	for what, b := range map[string]firewall.PortForward{
		"other host IP":  pub("bbbb", n1, "198.18.1.3", network.PortMapping{HostIP: "127.0.0.2", HostPort: 15000, ContainerPort: 5000, Protocol: "udp"}),
		"other protocol": pub("cccc", n1, "198.18.1.4", network.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "udp"}),
		"other port":     pub("dddd", n1, "198.18.1.5", network.PortMapping{HostPort: 8081, ContainerPort: 80, Protocol: "tcp"}),
	} {
		if err := d.Setup([]firewall.NetworkRules{n1}, []firewall.PortForward{b}); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	// A again, and A on a second network (network connect) with the same
	// ports: its own forwards are no conflict.
	must(t, "setup A again", d.Setup([]firewall.NetworkRules{n1}, []firewall.PortForward{pubA}))
	onN2 := pub("aaaa", n2, "198.18.2.2", pubA.Mappings...)
	must(t, "connect A to net2", d.Setup([]firewall.NetworkRules{n2}, []firewall.PortForward{onN2}))
}

// scenarioPortConflict: a second container asking for a published host
// port gets firewall.ErrPortInUse and changes nothing; its teardown leaves
// the holder's forward; another host IP is no conflict.
func scenarioPortConflict(t *testing.T, e env) {
	n1, _, pubA := conflictNets()
	must(t, "setup A", e.d.Setup([]firewall.NetworkRules{n1}, []firewall.PortForward{pubA}))
	before := e.state(t, ipv4) + e.state(t, ipv6)
	b := pub("bbbb", n1, "198.18.1.3", network.PortMapping{HostPort: 8080, ContainerPort: 81, Protocol: "tcp"})
	err := e.d.Setup([]firewall.NetworkRules{n1}, []firewall.PortForward{b})
	if !errors.Is(err, firewall.ErrPortInUse) || !strings.Contains(err.Error(), "host port 8080/tcp is already published to 198.18.1.2:80") {
		t.Fatalf("second publisher of 8080/tcp: %v", err)
	}
	if after := e.state(t, ipv4) + e.state(t, ipv6); after != before {
		t.Errorf("the refused setup changed rules:\n%s", after)
	}
	must(t, "teardown B", e.d.Teardown([]firewall.PortForward{b}, nil))
	if !strings.Contains(e.state(t, ipv4), "--to-destination 198.18.1.2:80") {
		t.Error("B's teardown removed A's forward")
	}
	c := pub("cccc", n1, "198.18.1.4", network.PortMapping{HostIP: "127.0.0.2", HostPort: 15000, ContainerPort: 5000, Protocol: "udp"})
	must(t, "other host IP", e.d.Setup([]firewall.NetworkRules{n1}, []firewall.PortForward{c}))
	must(t, "reset", e.d.Reset())
}

func TestPortConflictScenario(t *testing.T) {
	e, _ := fakeEnv(t)
	scenarioPortConflict(t, e)
}
