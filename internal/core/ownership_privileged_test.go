package core_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// A container interface that is not berth's survives the teardown of a
// setup that failed because of it: a veth named eth0 that someone else
// put into the namespace.
func TestPrivilegedTeardownSparesForeignContainerVeth(t *testing.T) {
	tp := newTopo(t, nil, nil)
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if out, err := nettest.Run(tp.host, 5*time.Second, "ip", "link", "add", "foreign0", "type", "veth", "peer", "name", "eth0", "netns", ns.Path()); err != nil {
		t.Fatalf("make the foreign veth: %v %s", err, out)
	}
	n := bridgeNet("fv", "brfv0", "198.19.11.0/24", "198.19.11.1")
	o := opts("f1", "fv", n, "198.19.11.2")
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err == nil {
		t.Fatal("setup succeeded although eth0 exists in the namespace")
	}
	if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
		t.Logf("teardown: %v", err)
	}
	if !slices.Contains(nettest.Links(t, ns), "eth0") || !slices.Contains(nettest.Links(t, tp.host), "foreign0") {
		t.Fatalf("teardown deleted the foreign veth: container %v host %v", nettest.Links(t, ns), nettest.Links(t, tp.host))
	}
}

// Another network's eth0 in the same namespace is not this network's: a
// teardown of network b, whose setup never happened, leaves network a's
// interface in place, and a's own teardown removes it.
func TestPrivilegedTeardownSparesOtherNetworksInterface(t *testing.T) {
	tp := newTopo(t, nil, nil)
	a := bridgeNet("owna", "browna0", "198.19.12.0/24", "198.19.12.1")
	b := bridgeNet("ownb", "brownb0", "198.19.13.0/24", "198.19.13.1")
	oa := opts("o1", "own", a, "198.19.12.2")
	ns, _ := tp.container(t, oa)
	ob := opts("o1", "own", b, "198.19.13.2")
	if err := tp.m.Teardown(context.Background(), ns.Path(), ob); err != nil {
		t.Logf("teardown b: %v", err)
	}
	if !slices.Contains(nettest.Links(t, ns), "eth0") {
		t.Fatalf("network b's teardown removed network a's eth0: %v", nettest.Links(t, ns))
	}
	if err := tp.m.Teardown(context.Background(), ns.Path(), oa); err != nil {
		t.Fatalf("teardown a: %v", err)
	}
	if slices.Contains(nettest.Links(t, ns), "eth0") {
		t.Fatalf("network a's teardown left its own eth0: %v", nettest.Links(t, ns))
	}
}

// A bridge the user made and named as a network's interface is used, but
// not deleted when the last container leaves; a bridge berth made is.
func TestPrivilegedTeardownSparesUsersBridge(t *testing.T) {
	tp := newTopo(t, nil, nil)
	if out, err := nettest.Run(tp.host, 5*time.Second, "ip", "link", "add", "userbr0", "type", "bridge"); err != nil {
		t.Fatalf("make the user's bridge: %v %s", err, out)
	}
	n := bridgeNet("ub", "userbr0", "198.19.14.0/24", "198.19.14.1")
	o := opts("u1", "ub", n, "198.19.14.2")
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
		t.Fatalf("setup on the user's bridge: %v", err)
	}
	if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if !slices.Contains(nettest.Links(t, tp.host), "userbr0") {
		t.Fatalf("teardown deleted the user's bridge: %v", nettest.Links(t, tp.host))
	}
	if slices.Contains(nettest.Links(t, ns), "eth0") {
		t.Fatalf("teardown left the container's own eth0: %v", nettest.Links(t, ns))
	}
}

// A macvlan named eth0 that berth did not make survives a failed
// macvlan setup's teardown; berth's own macvlan goes at teardown.
func TestPrivilegedTeardownSparesForeignMacvlan(t *testing.T) {
	tp := newTopo(t, nil, nil)
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if out, err := nettest.Run(tp.host, 5*time.Second, "ip", "link", "add", "eth0", "netns", ns.Path(), "link", "uplink0", "type", "macvlan", "mode", "bridge"); err != nil {
		t.Skipf("no macvlan here: %v %s", err, out)
	}
	n := network.Network{
		Name: "mv", ID: bridgeNet("mv", "", "198.18.0.0/24", "198.18.0.1").ID, Driver: network.DriverMacvlan, NetworkInterface: "uplink0",
		Subnets:     []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.0.0/24"), Gateway: netip.MustParseAddr("198.18.0.1")}},
		IPAMOptions: map[string]string{"driver": "host-local"},
	}
	o := opts("m1", "mv", n, "198.18.0.50")
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err == nil {
		t.Fatal("setup succeeded although eth0 exists in the namespace")
	}
	if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
		t.Logf("teardown: %v", err)
	}
	if !slices.Contains(nettest.Links(t, ns), "eth0") {
		t.Fatalf("teardown deleted the foreign macvlan: %v", nettest.Links(t, ns))
	}
	ns2 := nettest.NewNS(t, nettest.RandName("ctr"))
	o2 := opts("m2", "mv2", n, "198.18.0.51")
	if _, err := tp.m.Setup(context.Background(), ns2.Path(), o2); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if err := tp.m.Teardown(context.Background(), ns2.Path(), o2); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if slices.Contains(nettest.Links(t, ns2), "eth0") {
		t.Fatalf("teardown left berth's own macvlan: %v", nettest.Links(t, ns2))
	}
}

// A teardown killed after it renamed the container's end of the veth (a
// retired link) but before the host end: the next teardown finds no eth0
// in the namespace and removes the marked host end, which takes the pair.
func TestPrivilegedTeardownAfterAKilledRetire(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("kr", "brkr0", "198.19.18.0/24", "198.19.18.1")
	o := opts("k1", "kr", n, "198.19.18.2")
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	before := nettest.Links(t, tp.host)
	if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
		t.Fatal(err)
	}
	hostVeth := newVeth(t, before, nettest.Links(t, tp.host))
	if out, err := nettest.Run(ns, 5*time.Second, "ip", "link", "set", "eth0", "name", "brtgone99"); err != nil {
		t.Fatalf("rename: %v %s", err, out)
	}
	if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if slices.Contains(nettest.Links(t, tp.host), hostVeth) || slices.Contains(nettest.Links(t, ns), "brtgone99") {
		t.Fatalf("left the veth: host %v container %v", nettest.Links(t, tp.host), nettest.Links(t, ns))
	}
}

// The teardown of an attach killed after it published a port but before
// it recorded anything knows the port from its request but not the
// address (a CNI DEL carries no IPAM result): it finds the address on the
// container's interface, proven berth's, and removes the port's element;
// another container's port stays. A second Manager, whose state holds the
// other container but not this one, plays the process that finds no
// record.
func TestPrivilegedUnrecordedTeardownRemovesItsPorts(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("ur", "brur0", "198.19.19.0/24", "198.19.19.1")
	fresh, err := core.New(core.Config{ConfigDir: t.TempDir(), Firewall: tp.fw, HostNS: tp.host.NetNS, AardvarkBinary: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	other := nettest.NewNS(t, nettest.RandName("ctr"))
	if _, err := fresh.Setup(context.Background(), other.Path(), opts("u0", "ur", n, "198.19.19.3", network.PortMapping{HostPort: 8092, ContainerPort: 80, Protocol: "tcp", Range: 1})); err != nil {
		t.Fatal(err)
	}
	pm := network.PortMapping{HostPort: 8091, ContainerPort: 80, Protocol: "tcp", Range: 1}
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	if _, err := tp.m.Setup(context.Background(), ns.Path(), opts("u1", "ur", n, "198.19.19.2", pm)); err != nil {
		t.Fatal(err)
	}
	elements := func() string {
		out, _ := nettest.Run(tp.host, 5*time.Second, "nft", "list", "map", "inet", "berth", "pf4any")
		return out
	}
	if e := elements(); !strings.Contains(e, "tcp . 8091 ") || !strings.Contains(e, ": 198.19.19.2 . 80") {
		t.Fatalf("setup did not publish the port:\n%s", e)
	}
	attempt := opts("u1", "ur", n, "198.19.19.2", pm)
	attempt.Networks[0].StaticIPs = nil
	n.IPAMOptions = map[string]string{"driver": network.IPAMNone}
	attempt.NetworkInfo[n.Name] = n
	if err := fresh.Teardown(context.Background(), ns.Path(), attempt); err != nil {
		t.Fatalf("teardown without a record: %v", err)
	}
	if e := elements(); strings.Contains(e, "8091") || !strings.Contains(e, "tcp . 8092 ") {
		t.Errorf("want 8091 gone and 8092 kept:\n%s", e)
	}
	if slices.Contains(nettest.Links(t, ns), "eth0") {
		t.Errorf("the interface stayed: %v", nettest.Links(t, ns))
	}
}

// newVeth is the one veth in after that is not in before: the host end a
// setup made (the kernel names it).
func newVeth(t *testing.T, before, after []string) string {
	t.Helper()
	var made []string
	for _, l := range after {
		if strings.HasPrefix(l, "veth") && !slices.Contains(before, l) {
			made = append(made, l)
		}
	}
	if len(made) != 1 {
		t.Fatalf("want one new host veth, have %v (before %v)", made, before)
	}
	return made[0]
}
