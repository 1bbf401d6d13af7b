package core_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/sysctl"
)

func run(t *testing.T, ns *nettest.NS, name string, args ...string) string {
	t.Helper()
	out, err := nettest.Run(ns, 5*time.Second, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

func sysctlIn(t *testing.T, ns *nettest.NS, key string) string {
	t.Helper()
	v, err := sysctl.Get(ns.NetNS, key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func linkIn(t *testing.T, ns *nettest.NS, name string) netlink.Link {
	t.Helper()
	l, err := nettest.Handle(t, ns.NetNS).ByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPrivilegedMTUMACRoutesMetric(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("feat", "bfeat0", "198.19.11.0/24", "198.19.11.1")
	n.Options = map[string]string{"mtu": "1400", "metric": "250"}
	metric := uint32(7)
	n.Routes = []network.Route{
		{Destination: netip.MustParsePrefix("198.20.0.0/16"), Gateway: netip.MustParseAddr("198.19.11.254")},
		{Destination: netip.MustParsePrefix("198.21.0.0/16"), Gateway: netip.MustParseAddr("198.19.11.253"), Metric: &metric},
		{Destination: netip.MustParsePrefix("198.22.0.0/16"), RouteType: "blackhole"},
	}
	o := opts("m1", "feat", n, "198.19.11.5")
	o.Networks[0].StaticMAC = "02:42:c6:13:0b:05"
	o.Networks[0].InterfaceName = "net7"
	ctr, res := tp.container(t, o)

	if mac := res["feat"].Interfaces["net7"].MACAddress; mac != "02:42:c6:13:0b:05" {
		t.Errorf("status mac %s", mac)
	}
	eth := linkIn(t, ctr, "net7")
	if eth.Attrs().HardwareAddr.String() != "02:42:c6:13:0b:05" || eth.Attrs().MTU != 1400 {
		t.Errorf("container link mac %s mtu %d", eth.Attrs().HardwareAddr, eth.Attrs().MTU)
	}
	br := linkIn(t, tp.host, "bfeat0")
	if br.Attrs().MTU != 1400 {
		t.Errorf("bridge mtu %d", br.Attrs().MTU)
	}
	routes := run(t, ctr, "ip", "route", "show")
	for _, want := range []string{
		"default via 198.19.11.1 dev net7 proto static metric 250",
		"198.20.0.0/16 via 198.19.11.254 dev net7 proto static metric 250",
		"198.21.0.0/16 via 198.19.11.253 dev net7 proto static metric 7",
		"blackhole 198.22.0.0/16 proto static metric 250",
	} {
		if !strings.Contains(routes, want) {
			t.Errorf("missing route %q in:\n%s", want, routes)
		}
	}
	// The bridge keeps its own MAC instead of following the lowest port.
	brMAC := br.Attrs().HardwareAddr.String()
	tp.container(t, opts("m2", "feat2", n, "198.19.11.6"))
	if got := linkIn(t, tp.host, "bfeat0").Attrs().HardwareAddr.String(); got != brMAC {
		t.Errorf("bridge MAC changed from %s to %s when a port was added", brMAC, got)
	}
	if v := sysctlIn(t, ctr, "net.ipv4.conf.net7.arp_notify"); v != "1" {
		t.Errorf("arp_notify %s", v)
	}
	if v := sysctlIn(t, ctr, "net.ipv4.conf.net7.rp_filter"); v != "2" {
		t.Errorf("container rp_filter %s", v)
	}
	if v := sysctlIn(t, tp.host, "net.ipv4.ip_forward"); v != "1" {
		t.Errorf("host ip_forward %s", v)
	}
	// No port published through 127.0.0.1: route_localnet stays off.
	if v := sysctlIn(t, tp.host, "net.ipv4.conf.bfeat0.route_localnet"); v != "0" {
		t.Errorf("route_localnet %s without a localhost mapping", v)
	}
}

func TestPrivilegedNoDefaultRouteAndDefaultMTU(t *testing.T) {
	tp := newTopo(t, nil, nil)
	// The host's default route goes out a link with MTU 1300: bridges
	// created without an mtu option follow it.
	h := nettest.Handle(t, tp.host.NetNS)
	up := linkIn(t, tp.host, "uplink0")
	if err := h.LinkSetMTU(up, 1300); err != nil {
		t.Fatal(err)
	}
	run(t, tp.host, "ip", "route", "add", "default", "via", "198.18.0.2")
	n := bridgeNet("ndr", "bndr0", "198.19.12.0/24", "198.19.12.1")
	n.Options = map[string]string{"no_default_route": "true"}
	ctr, _ := tp.container(t, opts("n1", "ndr", n, "198.19.12.2"))
	if out := run(t, ctr, "ip", "route", "show", "default"); strings.TrimSpace(out) != "" {
		t.Errorf("default route despite no_default_route: %s", out)
	}
	if m := linkIn(t, tp.host, "bndr0").Attrs().MTU; m != 1300 {
		t.Errorf("bridge MTU %d, want the default-route link's 1300", m)
	}
	if m := linkIn(t, ctr, "eth0").Attrs().MTU; m != 1300 {
		t.Errorf("container MTU %d, want 1300", m)
	}
}

func TestPrivilegedTeardownAfterNamespaceGone(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("gone", "bgone0", "198.19.13.0/24", "198.19.13.1")
	o := opts("q1", "gone", n, "198.19.13.2", network.PortMapping{ContainerPort: 80, HostPort: 8093, Protocol: "tcp", Range: 1})
	path := t.TempDir() + "/ctr"
	ns, err := netns.NewPinned(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.m.Setup(context.Background(), path, o); err != nil {
		t.Fatal(err)
	}
	ns.Close()
	if err := netns.Unpin(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("namespace file still there")
	}
	if err := tp.m.Teardown(context.Background(), path, o); err != nil {
		t.Fatalf("teardown without namespace: %v", err)
	}
	if left := residue(t, tp); len(left) > 0 {
		t.Errorf("residue: %v", left)
	}
}

func TestPrivilegedMacvlanStatic(t *testing.T) {
	tp := newTopo(t, nil, nil)
	lan := nettest.NewNS(t, "lan")
	nettest.Connect(t, tp.host, "lanparent", netip.Prefix{}, lan, "eth0", netip.MustParsePrefix("198.18.1.1/24"))
	n := network.Network{Name: "mv", ID: "1111111111111111111111111111111111111111111111111111111111111111", Driver: network.DriverMacvlan,
		NetworkInterface: "lanparent", Options: map[string]string{"mode": "bridge", "mtu": "1400"},
		Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.1.0/24"), Gateway: netip.MustParseAddr("198.18.1.1")}}}
	o := opts("r1", "mv", n, "198.18.1.33")
	o.Networks[0].StaticMAC = "02:42:c6:12:01:21"
	ctr, res := tp.container(t, o)
	if res["mv"].Interfaces["eth0"].MACAddress != "02:42:c6:12:01:21" {
		t.Errorf("status: %+v", res["mv"])
	}
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "macvlan")
	if got, err := nettest.Fetch(lan, "tcp4", "198.18.1.33:80"); err != nil || got != "macvlan" {
		t.Errorf("LAN peer to macvlan container: %q %v", got, err)
	}
	routes := run(t, ctr, "ip", "route", "show", "default")
	if !strings.Contains(routes, "via 198.18.1.1") || !strings.Contains(routes, "metric 99") {
		t.Errorf("macvlan default route (metric 99 like netavark 2): %s", routes)
	}
	// Teardown removes the macvlan and nothing on the host.
	if err := tp.m.Teardown(context.Background(), ctr.Path(), o); err != nil {
		t.Fatal(err)
	}
	if links := nettest.Links(t, ctr); len(links) != 1 {
		t.Errorf("container keeps %v", links)
	}
	// A missing parent is a clear error and leaves nothing behind.
	n.NetworkInterface = "nosuch0"
	o2 := opts("r2", "mv2", n, "198.18.1.34")
	o2.NetworkInfo = map[string]network.Network{"mv": n}
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	_, err := tp.m.Setup(context.Background(), ns.Path(), o2)
	if err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("missing parent: %v", err)
	}
}

func TestPrivilegedVRF(t *testing.T) {
	tp := newTopo(t, nil, nil)
	h := nettest.Handle(t, tp.host.NetNS)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "vrfblue"
	if err := h.LinkAdd(&netlink.Vrf{LinkAttrs: attrs, Table: 10}); err != nil {
		t.Skipf("this kernel has no vrf links (%v)", err)
	}
	n := bridgeNet("vrf", "bvrf0", "198.19.14.0/24", "198.19.14.1")
	n.Options = map[string]string{"vrf": "vrfblue"}
	tp.container(t, opts("v1", "vrf", n, "198.19.14.2"))
	br := linkIn(t, tp.host, "bvrf0")
	vrf := linkIn(t, tp.host, "vrfblue")
	if br.Attrs().MasterIndex != vrf.Attrs().Index {
		t.Errorf("bridge not enslaved to the vrf")
	}
}

func TestPrivilegedUnmanagedBridge(t *testing.T) {
	tp := newTopo(t, nil, nil)
	run(t, tp.host, "ip", "link", "add", "bexist0", "type", "bridge")
	run(t, tp.host, "ip", "addr", "add", "198.19.15.1/24", "dev", "bexist0")
	run(t, tp.host, "ip", "link", "set", "bexist0", "up")
	n := bridgeNet("um", "bexist0", "198.19.15.0/24", "198.19.15.1")
	n.Options = map[string]string{"mode": "unmanaged"}
	o := opts("u1", "um", n, "198.19.15.2", network.PortMapping{ContainerPort: 80, HostPort: 8095, Protocol: "tcp", Range: 1})
	ctr, _ := tp.container(t, o)
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "um")
	if got, err := nettest.Fetch(tp.host, "tcp4", "198.19.15.2:80"); err != nil || got != "um" {
		t.Errorf("host to container on the unmanaged bridge: %q %v", got, err)
	}
	if out, _ := nettest.Run(tp.host, 5*time.Second, "nft", "list", "ruleset"); strings.Contains(out, "198.19.15") {
		t.Errorf("unmanaged bridge got firewall rules:\n%s", out)
	}
	if err := tp.m.Teardown(context.Background(), ctr.Path(), o); err != nil {
		t.Fatal(err)
	}
	linkIn(t, tp.host, "bexist0") // still there: berth did not create it
	// A missing unmanaged bridge is an error, not created.
	n.NetworkInterface = "bnosuch0"
	o2 := opts("u2", "um", n, "198.19.15.3")
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o2); err == nil || !strings.Contains(err.Error(), "mode=unmanaged") {
		t.Errorf("missing unmanaged bridge: %v", err)
	}
}

// TestPrivilegedConnectSecondNetworkKeepsFirst: Podman's `network connect`
// sets a running container up on one more network with a separate call, and
// `disconnect` tears one down; berth's record keeps the rest, so a firewall
// reload restores every network the container is still on.
func TestPrivilegedConnectSecondNetworkKeepsFirst(t *testing.T) {
	tp := newTopo(t, nil, nil)
	na := bridgeNet("cna", "bcna0", "198.19.16.0/24", "198.19.16.1")
	nb := bridgeNet("cnb", "bcnb0", "198.19.17.0/24", "198.19.17.1")
	oa := opts("k1", "two", na, "198.19.16.2", network.PortMapping{ContainerPort: 80, HostPort: 8096, Protocol: "tcp", Range: 1})
	ctr, _ := tp.container(t, oa)
	ob := opts("k1", "two", nb, "198.19.17.2")
	ob.Networks[0].InterfaceName = "eth1"
	if _, err := tp.m.Setup(context.Background(), ctr.Path(), ob); err != nil {
		t.Fatal(err)
	}
	rules := func() string { return run(t, tp.host, "nft", "list", "ruleset") }
	run(t, tp.host, "nft", "flush", "ruleset")
	if _, err := tp.m.FirewallReload(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := rules()
	for _, want := range []string{"198.19.16.0/24", "198.19.17.0/24", "tcp . 8096"} {
		if !strings.Contains(out, want) {
			t.Errorf("after reload the ruleset lacks %s:\n%s", want, out)
		}
	}
	// Disconnect from the first network: the second stays recorded.
	if err := tp.m.Teardown(context.Background(), ctr.Path(), oa); err != nil {
		t.Fatal(err)
	}
	run(t, tp.host, "nft", "flush", "ruleset")
	if _, err := tp.m.FirewallReload(context.Background()); err != nil {
		t.Fatal(err)
	}
	out = rules()
	// The published port now goes to the container's remaining network.
	if !strings.Contains(out, "198.19.17.0/24") || strings.Contains(out, "198.19.16.") || !strings.Contains(out, "198.19.17.2 . 80") {
		t.Errorf("after disconnecting the first network:\n%s", out)
	}
	if err := tp.m.Teardown(context.Background(), ctr.Path(), ob); err != nil {
		t.Fatal(err)
	}
	if left := residue(t, tp); len(left) > 0 {
		t.Errorf("residue: %v", left)
	}
}
