package nftables_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/firewall"
	fwnft "github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

func list(t *testing.T, ns *nettest.NS) string {
	t.Helper()
	out, err := nettest.Run(ns, 5*time.Second, "nft", "list", "ruleset")
	if err != nil {
		t.Fatalf("nft list ruleset: %v %s", err, out)
	}
	return out
}

var (
	netA = firewall.NetworkRules{ID: strings.Repeat("a", 64), Name: "a", Bridge: "bra0", Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("fd00:19:1::/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("198.19.1.1")}, Isolation: network.IsolateStrict, DNSPort: 5353}
	netB = firewall.NetworkRules{ID: strings.Repeat("b", 64), Name: "b", Bridge: "brb0", Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}, DNSPort: 53}
	pfA  = firewall.PortForward{NetworkID: netA.ID, ContainerID: strings.Repeat("1", 64), IPv4: netip.MustParseAddr("198.19.1.2"), IPv6: netip.MustParseAddr("fd00:19:1::2"),
		Mappings: []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 1}, {HostPort: 15000, ContainerPort: 5000, Protocol: "udp", Range: 2, HostIP: "127.0.0.1"}}}
	pfB = firewall.PortForward{NetworkID: netB.ID, ContainerID: strings.Repeat("2", 64), IPv4: netip.MustParseAddr("198.19.2.2"),
		Mappings: []network.PortMapping{{HostPort: 9090, ContainerPort: 90, Protocol: "sctp", Range: 1}}}
)

func TestPrivilegedRulesAppearAndDisappear(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "fw")
	d := fwnft.New(ns.Fd())
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{pfA}); err != nil {
		t.Fatal(err)
	}
	if err := d.Setup([]firewall.NetworkRules{netA, netB}, []firewall.PortForward{pfB}); err != nil {
		t.Fatal(err)
	}
	// Setting up a network again adds nothing (idempotent).
	if err := d.Setup([]firewall.NetworkRules{netA, netB}, []firewall.PortForward{pfA}); err != nil {
		t.Fatal(err)
	}
	out := list(t, ns)
	for _, want := range []string{
		`tcp . 8080 comment "111111111111" : 198.19.1.2 . 80`,
		`127.0.0.1 . udp . 15001 comment "111111111111" : 198.19.1.2 . 5001`,
		`tcp . 8080 comment "111111111111" : fd00:19:1::2 . 80`,
		`sctp . 9090 comment "222222222222" : 198.19.2.2 . 90`,
		`ip saddr 198.19.1.0/24 ip daddr != 198.19.1.0/24 ip daddr != 224.0.0.0/4 masquerade`,
		`ip6 saddr fd00:19:1::/64 ip6 daddr != fd00:19:1::/64 ip6 daddr != ff00::/8 masquerade`,
		`ip saddr 198.19.2.0/24 accept`,
		`iifname "bra0" oifname != "bra0" oifname @bridges drop`,
		`ip daddr 198.19.1.1 udp dport 53 dnat ip to 198.19.1.1:5353`,
		`fib daddr type local jump hostports`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, out)
		}
	}
	if i := strings.Index(out, "set bridges {"); i < 0 || !strings.Contains(out[i:i+strings.Index(out[i:], "}")], `"bra0"`) || !strings.Contains(out[i:i+strings.Index(out[i:], "}")], `"brb0"`) {
		t.Errorf("set bridges should hold bra0 and brb0:\n%s", out)
	}
	if n := strings.Count(out, `ip saddr 198.19.1.0/24 accept`); n != 1 {
		t.Errorf("network rules added %d times", n)
	}
	// The same host port for another container is refused with the owner named.
	clash := pfB
	clash.Mappings = []network.PortMapping{{HostPort: 8080, ContainerPort: 81, Protocol: "tcp", Range: 1}}
	err := d.Setup(nil, []firewall.PortForward{clash})
	if !errors.Is(err, firewall.ErrPortInUse) || !strings.Contains(err.Error(), "8080/tcp") || !strings.Contains(err.Error(), "198.19.1.2:80") {
		t.Errorf("conflict: %v", err)
	}
	// Teardown of A's ports and network removes exactly A's rules.
	if err := d.Teardown([]firewall.PortForward{pfA}, []firewall.NetworkRules{netA}); err != nil {
		t.Fatal(err)
	}
	out = list(t, ns)
	if strings.Contains(out, "198.19.1.") || strings.Contains(out, "bra0") || strings.Contains(out, "fd00:19:1") {
		t.Errorf("network A's rules left:\n%s", out)
	}
	if !strings.Contains(out, "198.19.2.2 . 90") {
		t.Errorf("network B's forward lost:\n%s", out)
	}
	// Tearing down again (elements already gone) is not an error.
	if err := d.Teardown([]firewall.PortForward{pfA}, nil); err != nil {
		t.Errorf("repeated teardown: %v", err)
	}
	// The last network gone: the table goes too.
	if err := d.Teardown([]firewall.PortForward{pfB}, []firewall.NetworkRules{netB}); err != nil {
		t.Fatal(err)
	}
	if out := list(t, ns); strings.TrimSpace(out) != "" {
		t.Errorf("ruleset after the last teardown:\n%s", out)
	}
}

func TestPrivilegedLeavesForeignTablesAlone(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "fw")
	if out, err := nettest.Run(ns, 5*time.Second, "nft", "add table inet other; add chain inet other c { type filter hook forward priority 0; policy accept; }"); err != nil {
		t.Fatal(err, out)
	}
	d := fwnft.New(ns.Fd())
	if err := d.Setup([]firewall.NetworkRules{netB}, []firewall.PortForward{pfB}); err != nil {
		t.Fatal(err)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	out := list(t, ns)
	if !strings.Contains(out, "table inet other") || strings.Contains(out, "berth") {
		t.Errorf("after reset:\n%s", out)
	}
}

// A table of berth's name that berth did not make (none of its rules
// carries berth's comment) is neither changed by a setup nor deleted by a
// reset.
func TestPrivilegedLeavesATableOfItsNameAlone(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "fw")
	if out, err := nettest.Run(ns, 5*time.Second, "nft", "add table inet berth; add chain inet berth forward { type filter hook forward priority 0; policy accept; }; add chain inet berth isolation; add chain inet berth hostports; add rule inet berth forward counter accept"); err != nil {
		t.Fatal(err, out)
	}
	before := list(t, ns)
	d := fwnft.New(ns.Fd())
	if err := d.Setup([]firewall.NetworkRules{netB}, []firewall.PortForward{pfB}); !errors.Is(err, fwnft.ErrNotOurs) {
		t.Errorf("setup on a foreign table: %v, want ErrNotOurs", err)
	}
	if err := d.Reset(); !errors.Is(err, fwnft.ErrNotOurs) {
		t.Errorf("reset of a foreign table: %v, want ErrNotOurs", err)
	}
	if after := list(t, ns); after != before {
		t.Errorf("the foreign table changed:\n%s\nwas\n%s", after, before)
	}
}

// TestPrivilegedTenThousandPorts: 10,000 published ports of one container
// (20,000 map elements, IPv4 and IPv6) are all in the kernel's maps after
// setup and all gone after teardown; a setup whose last port is taken
// fails and leaves none of its elements.
func TestPrivilegedTenThousandPorts(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "fw")
	d := fwnft.New(ns.Fd())
	wide := firewall.PortForward{NetworkID: netA.ID, ContainerID: strings.Repeat("3", 64), IPv4: netip.MustParseAddr("198.19.1.3"), IPv6: netip.MustParseAddr("fd00:19:1::3"),
		Mappings: []network.PortMapping{{HostPort: 10000, ContainerPort: 10000, Protocol: "tcp", Range: 10000}}}
	if err := d.Setup([]firewall.NetworkRules{netA}, []firewall.PortForward{wide}); err != nil {
		t.Fatalf("setup of 10,000 ports: %v", err)
	}
	out := list(t, ns)
	if n := strings.Count(out, `comment "333333333333"`); n != 20000 {
		t.Errorf("%d map elements of the container, want 20000", n)
	}
	for _, want := range []string{`tcp . 10000 comment "333333333333" : 198.19.1.3 . 10000`, `tcp . 19999 comment "333333333333" : fd00:19:1::3 . 19999`} {
		if !strings.Contains(out, want) {
			t.Errorf("ruleset lacks %q", want)
		}
	}
	if err := d.HasForwards([]firewall.PortForward{wide}); err != nil {
		t.Errorf("HasForwards: %v", err)
	}
	if err := d.Teardown([]firewall.PortForward{wide}, []firewall.NetworkRules{netA}); err != nil {
		t.Fatalf("teardown of 10,000 ports: %v", err)
	}
	if out := list(t, ns); strings.TrimSpace(out) != "" {
		t.Errorf("ruleset after teardown: %d bytes left", len(out))
	}

	holder := pfB
	holder.Mappings = []network.PortMapping{{HostPort: 19999, ContainerPort: 90, Protocol: "tcp", Range: 1}}
	if err := d.Setup([]firewall.NetworkRules{netA, netB}, []firewall.PortForward{holder}); err != nil {
		t.Fatal(err)
	}
	err := d.Setup(nil, []firewall.PortForward{wide})
	if !errors.Is(err, firewall.ErrPortInUse) || !strings.Contains(err.Error(), "19999/tcp is already published to 198.19.2.2:90") {
		t.Fatalf("setup over a taken port: %v", err)
	}
	out = list(t, ns)
	if n := strings.Count(out, `comment "333333333333"`); n != 0 {
		t.Errorf("the failed setup left %d map elements", n)
	}
	if !strings.Contains(out, `tcp . 19999 comment "222222222222" : 198.19.2.2 . 90`) {
		t.Error("the holder lost its port")
	}
}

// A Monitor announces the commits of other processes (here nft) and not
// those of its own process (the driver's), and ends on Close.
func TestPrivilegedMonitorSeesOtherWriters(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, "fw")
	m, err := fwnft.Subscribe(ns.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := fwnft.New(ns.Fd())
	if err := d.Setup([]firewall.NetworkRules{netB}, []firewall.PortForward{pfB}); err != nil {
		t.Fatal(err)
	}
	if out, err := nettest.Run(ns, 5*time.Second, "nft", "add", "table", "inet", "other"); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	select {
	case c := <-m.Commits():
		if c.Proc != "nft" || c.PID == 0 || c.Lost {
			t.Errorf("first announced commit %+v, want nft's (the driver's own are left out)", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no commit announced")
	}
	m.Close()
	for c := range m.Commits() {
		if c.Proc != "nft" {
			t.Errorf("announced after nft: %+v", c)
		}
	}
	if err := m.Err(); err != nil {
		t.Errorf("Err after Close: %v", err)
	}
}
