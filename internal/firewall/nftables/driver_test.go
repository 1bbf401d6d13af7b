package nftables

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// These tests run the driver against fakeKernel: no kernel, no root. They
// check the messages the driver sends, decoded into nft's syntax.

var (
	bridgeA = firewall.NetworkRules{ID: "net-a", Name: "a", Bridge: "bra0",
		Subnets:  []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("fd00:19:1::/64")},
		Gateways: []netip.Addr{netip.MustParseAddr("198.19.1.1")}, Isolation: network.IsolateStrict, DNSPort: 5353}
	bridgeB = firewall.NetworkRules{ID: "net-b", Name: "b", Bridge: "brb0",
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}, DNSPort: 53}
	// web publishes 8080/tcp on every address (IPv4 and IPv6) and
	// 127.0.0.1:15000-15001/udp.
	web = firewall.PortForward{NetworkID: "net-a", ContainerID: "c1",
		IPv4: netip.MustParseAddr("198.19.1.2"), IPv6: netip.MustParseAddr("fd00:19:1::2"),
		Mappings: []network.PortMapping{
			{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 1},
			{HostPort: 15000, ContainerPort: 5000, Protocol: "udp", Range: 2, HostIP: "127.0.0.1"},
		}}
	// rival asks for web's 8080/tcp.
	rival = firewall.PortForward{NetworkID: "net-a", ContainerID: "c2", IPv4: netip.MustParseAddr("198.19.1.3"),
		Mappings: []network.PortMapping{{HostPort: 8080, ContainerPort: 8000, Protocol: "tcp", Range: 1}}}
)

// The rules of bridgeA, as nft prints them.
var bridgeARules = []string{
	`add rule postrouting meta nfproto ipv4 ip saddr 198.19.1.0/24 ip daddr 198.19.1.0/24 ct status dnat masquerade comment "berth net net-a"`,
	`add rule postrouting meta nfproto ipv4 ip saddr 198.19.1.0/24 ip daddr != 198.19.1.0/24 ip daddr != 224.0.0.0/4 masquerade comment "berth net net-a"`,
	`add rule forward meta nfproto ipv4 ip daddr 198.19.1.0/24 ct state established,related accept comment "berth net net-a"`,
	`add rule forward meta nfproto ipv4 ip saddr 198.19.1.0/24 accept comment "berth net net-a"`,
	`add rule postrouting meta nfproto ipv6 ip6 saddr fd00:19:1::/64 ip6 daddr fd00:19:1::/64 ct status dnat masquerade comment "berth net net-a"`,
	`add rule postrouting meta nfproto ipv6 ip6 saddr fd00:19:1::/64 ip6 daddr != fd00:19:1::/64 ip6 daddr != ff00::/8 masquerade comment "berth net net-a"`,
	`add rule forward meta nfproto ipv6 ip6 daddr fd00:19:1::/64 ct state established,related accept comment "berth net net-a"`,
	`add rule forward meta nfproto ipv6 ip6 saddr fd00:19:1::/64 accept comment "berth net net-a"`,
	`add element bridges { bra0 }`,
	`add element isolated { bra0 }`,
	`add rule isolation iifname bra0 oifname != bra0 oifname @bridges drop comment "berth net net-a"`,
	`insert rule hostports meta nfproto ipv4 ip daddr 198.19.1.1 meta l4proto udp th dport 53 dnat ip to 198.19.1.1:5353 comment "berth net net-a"`,
	`insert rule hostports meta nfproto ipv4 ip daddr 198.19.1.1 meta l4proto tcp th dport 53 dnat ip to 198.19.1.1:5353 comment "berth net net-a"`,
}

// The map elements of web.
var webElements = []string{
	`add element pf4 { 127.0.0.1 . udp . 15000 : 198.19.1.2 . 5000, 127.0.0.1 . udp . 15001 : 198.19.1.2 . 5001 }`,
	`add element pf4any { tcp . 8080 : 198.19.1.2 . 80 }`,
	`add element pf6any { tcp . 8080 : fd00:19:1::2 . 80 }`,
}

// sameLines fails unless got and want hold the same lines (the driver
// queues map elements in map order, so batches are compared as sets).
func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s:\ngot\n\t%s\nwant\n\t%s", what, strings.Join(g, "\n\t"), strings.Join(w, "\n\t"))
	}
}

// verb replaces the leading verb of each line ("add" -> "delete").
func verb(lines []string, from, to string) []string {
	var out []string
	for _, l := range lines {
		l = strings.Replace(l, "insert rule", "add rule", 1)
		out = append(out, strings.Replace(l, from+" ", to+" ", 1))
	}
	return out
}

func TestSetupCreatesTheTableWithANetworksRules(t *testing.T) {
	k := newFakeKernel(t)
	if err := k.driver().Setup([]firewall.NetworkRules{bridgeA}, nil); err != nil {
		t.Fatal(err)
	}
	if len(k.batches) != 1 {
		t.Fatalf("%d batches, want the table and the network in one", len(k.batches))
	}
	base := []string{
		"add table inet berth",
		"add chain hostports",
		"add chain isolation",
		"add chain prerouting { type nat hook prerouting priority -100 }",
		"add chain output { type nat hook output priority -100 }",
		"add chain postrouting { type nat hook postrouting priority 100 }",
		"add chain forward { type filter hook forward priority 0 }",
		"add map pf4", "add map pf4any", "add map pf6", "add map pf6any",
		"add set isolated", "add set bridges",
		"add rule prerouting fib daddr type local jump hostports comment \"berth\"",
		"add rule output fib daddr type local jump hostports comment \"berth\"",
		"add rule hostports dnat ip to ip daddr . meta l4proto . th dport map @pf4 comment \"berth\"",
		"add rule hostports dnat ip to meta l4proto . th dport map @pf4any comment \"berth\"",
		"add rule hostports dnat ip6 to ip6 daddr . meta l4proto . th dport map @pf6 comment \"berth\"",
		"add rule hostports dnat ip6 to meta l4proto . th dport map @pf6any comment \"berth\"",
		"add rule postrouting meta nfproto ipv4 ip saddr 127.0.0.0/8 ct status dnat masquerade comment \"berth\"",
		"add rule forward ct status dnat accept comment \"berth\"",
		"add rule forward jump isolation comment \"berth\"",
	}
	sameLines(t, "first setup", k.lastBatch(), append(base, bridgeARules...))
	// Order within chains: published ports pass before isolation, and the
	// DNS redirect comes before the port maps.
	if f := k.chain("forward"); len(f) < 2 || f[0] != `ct status dnat accept comment "berth"` || f[1] != `jump isolation comment "berth"` {
		t.Errorf("forward chain starts %q", f)
	}
	if h := k.chain("hostports"); len(h) != 6 || !strings.Contains(h[0], "th dport 53 dnat") || !strings.Contains(h[1], "th dport 53 dnat") {
		t.Errorf("hostports chain %q", h)
	}
}

func TestSetupAddsOnlyWhatIsMissing(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Setup([]firewall.NetworkRules{bridgeA}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Setup([]firewall.NetworkRules{bridgeA}, nil); err != nil {
		t.Fatal(err)
	}
	if len(k.batches) != 1 {
		t.Errorf("setup of a network that has its rules sent %q", k.lastBatch())
	}
	if err := d.Setup([]firewall.NetworkRules{bridgeA, bridgeB}, nil); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "second network", k.lastBatch(), []string{
		`add rule postrouting meta nfproto ipv4 ip saddr 198.19.2.0/24 ip daddr 198.19.2.0/24 ct status dnat masquerade comment "berth net net-b"`,
		`add rule postrouting meta nfproto ipv4 ip saddr 198.19.2.0/24 ip daddr != 198.19.2.0/24 ip daddr != 224.0.0.0/4 masquerade comment "berth net net-b"`,
		`add rule forward meta nfproto ipv4 ip daddr 198.19.2.0/24 ct state established,related accept comment "berth net net-b"`,
		`add rule forward meta nfproto ipv4 ip saddr 198.19.2.0/24 accept comment "berth net net-b"`,
		`add element bridges { brb0 }`,
	})
}

func TestPortForwardsAreMapElements(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	nets := []firewall.NetworkRules{bridgeA}
	if err := d.Setup(nets, nil); err != nil {
		t.Fatal(err)
	}
	rules := len(k.state.rules)
	if err := d.Setup(nets, []firewall.PortForward{web}); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "publish", k.lastBatch(), webElements)
	if err := d.HasForwards([]firewall.PortForward{web}); err != nil {
		t.Errorf("HasForwards after setup: %v", err)
	}
	if err := d.Teardown([]firewall.PortForward{web}, nil); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "unpublish", k.lastBatch(), verb(webElements, "add", "delete"))
	for _, m := range []string{"pf4", "pf4any", "pf6", "pf6any"} {
		if els := k.set(m); len(els) != 0 {
			t.Errorf("map %s keeps %q", m, els)
		}
	}
	if len(k.state.rules) != rules || !k.state.table {
		t.Errorf("removing a container's ports changed the network's rules")
	}
	// Which missing element it names first depends on map order.
	if err := d.HasForwards([]firewall.PortForward{web}); err == nil || !strings.Contains(err.Error(), "is missing from map pf") {
		t.Errorf("HasForwards after teardown: %v", err)
	}
}

func TestTakenHostPortIsErrPortInUse(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	nets := []firewall.NetworkRules{bridgeA}
	if err := d.Setup(nets, []firewall.PortForward{web}); err != nil {
		t.Fatal(err)
	}
	err := d.Setup(nets, []firewall.PortForward{rival})
	if !errors.Is(err, firewall.ErrPortInUse) {
		t.Fatalf("second publisher of 8080/tcp: %v, want firewall.ErrPortInUse", err)
	}
	if !strings.Contains(err.Error(), "host port 8080/tcp is already published to 198.19.1.2:80") {
		t.Errorf("error does not name the port and its holder: %v", err)
	}
	if b := k.lastBatch(); len(b) != 2 || b[0] != "add element pf4any { tcp . 8080 : 198.19.1.3 . 8000 }" || !strings.HasPrefix(b[1], "refused") {
		t.Errorf("rival's batch %q", b)
	}
	if got := k.set("pf4any"); !slices.Equal(got, []string{"tcp . 8080 : 198.19.1.2 . 80"}) {
		t.Errorf("pf4any after the refused batch: %q", got)
	}
	// Publishing the same forward again is no conflict.
	if err := d.Setup(nets, []firewall.PortForward{web}); err != nil {
		t.Errorf("setup repeated: %v", err)
	}
}

func TestTeardownRemovesWhatSetupAdded(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Setup([]firewall.NetworkRules{bridgeA, bridgeB}, []firewall.PortForward{web}); err != nil {
		t.Fatal(err)
	}
	before := map[string][]string{}
	for _, ch := range []string{"forward", "postrouting", "hostports", "isolation"} {
		before[ch] = k.chain(ch)
	}
	if err := d.Teardown([]firewall.PortForward{web}, []firewall.NetworkRules{bridgeA}); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, b := range k.batches[1:] {
		deleted = append(deleted, b...)
	}
	sameLines(t, "teardown of web and its network", deleted, verb(append(slices.Clone(bridgeARules), webElements...), "add", "delete"))
	for ch, rules := range before {
		var want []string
		for _, r := range rules {
			if !strings.Contains(r, `"berth net net-a"`) {
				want = append(want, r)
			}
		}
		if got := k.chain(ch); !slices.Equal(got, want) {
			t.Errorf("chain %s after teardown:\n%q\nwant\n%q", ch, got, want)
		}
	}
	if got := k.set("bridges"); !slices.Equal(got, []string{"brb0"}) {
		t.Errorf("bridges after teardown: %q", got)
	}
	if has, err := d.HasNetwork("net-a"); has || err != nil {
		t.Errorf("HasNetwork(net-a) = %v, %v after teardown", has, err)
	}
	if has, err := d.HasNetwork("net-b"); !has || err != nil {
		t.Errorf("HasNetwork(net-b) = %v, %v", has, err)
	}

	// The last network gone, the table goes too.
	if err := d.Teardown(nil, []firewall.NetworkRules{bridgeB}); err != nil {
		t.Fatal(err)
	}
	if b := k.lastBatch(); !slices.Equal(b, []string{"delete table inet berth"}) {
		t.Errorf("last batch %q, want the table deleted", b)
	}
	if k.state.table {
		t.Error("table left after the last network")
	}
}

func TestTeardownDeletesTheForwardsThatRemain(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Setup([]firewall.NetworkRules{bridgeA}, []firewall.PortForward{web}); err != nil {
		t.Fatal(err)
	}
	// Someone deleted the IPv6 element (nft delete element ...).
	k.state.elems["pf6any"] = nil
	if err := d.Teardown([]firewall.PortForward{web}, nil); err != nil {
		t.Fatalf("teardown with an element gone: %v", err)
	}
	sameLines(t, "teardown", k.lastBatch(), verb(webElements[:2], "add", "delete"))
	for _, m := range []string{"pf4", "pf4any", "pf6any"} {
		if els := k.set(m); len(els) != 0 {
			t.Errorf("map %s keeps %q", m, els)
		}
	}
}

// A failed setup's teardown (Podman runs teardown after setup fails) asks
// to remove a host port another container holds: the holder keeps it.
func TestTeardownLeavesAnotherContainersPort(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Setup([]firewall.NetworkRules{bridgeA}, []firewall.PortForward{web}); err != nil {
		t.Fatal(err)
	}
	if err := d.Setup(nil, []firewall.PortForward{rival}); !errors.Is(err, firewall.ErrPortInUse) {
		t.Fatalf("rival's setup: %v, want ErrPortInUse", err)
	}
	before := len(k.batches)
	if err := d.Teardown([]firewall.PortForward{rival}, nil); err != nil {
		t.Fatalf("rival's teardown: %v", err)
	}
	if len(k.batches) != before {
		t.Errorf("rival's teardown sent %q", k.batches[before:])
	}
	if els := k.set("pf4any"); !slices.Contains(els, "tcp . 8080 : 198.19.1.2 . 80") {
		t.Errorf("web lost its 8080/tcp to rival's teardown: pf4any = %q", els)
	}
}

func TestTeardownAndResetWithoutTableSendNothing(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Teardown([]firewall.PortForward{web}, []firewall.NetworkRules{bridgeA}); err != nil {
		t.Errorf("teardown without table: %v", err)
	}
	if err := d.Reset(); err != nil {
		t.Errorf("reset without table: %v", err)
	}
	if len(k.batches) != 0 {
		t.Errorf("sent %q", k.batches)
	}
}

func TestResetDeletesTheTable(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Setup([]firewall.NetworkRules{bridgeA, bridgeB}, []firewall.PortForward{web}); err != nil {
		t.Fatal(err)
	}
	if err := d.Reset(); err != nil {
		t.Fatal(err)
	}
	if b := k.lastBatch(); !slices.Equal(b, []string{"delete table inet berth"}) || k.state.table {
		t.Errorf("reset sent %q", b)
	}
}
