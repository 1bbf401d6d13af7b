package core_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// A bridge network's vlan option puts the container's port in that VLAN
// (untagged, its PVID) on a bridge with VLAN filtering on, as netavark
// does; a kernel without bridge VLAN filtering refuses the setup with
// link.ErrNoBridgeVLAN and leaves nothing behind.
func TestPrivilegedBridgeVLAN(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("vl", "bvl0", "198.19.70.0/24", "198.19.70.1")
	n.Options = map[string]string{network.OptVLAN: "20"}
	o := opts("v1", "vl", n, "198.19.70.2")
	ns := nettest.NewNS(t, nettest.RandName("ctr"))
	before := nettest.Links(t, tp.host)
	_, err := tp.m.Setup(context.Background(), ns.Path(), o)
	if errors.Is(err, link.ErrNoBridgeVLAN) {
		if !strings.Contains(err.Error(), "vlan=20") {
			t.Errorf("the refusal does not name the option: %v", err)
		}
		if after := nettest.Links(t, tp.host); !slices.Equal(after, before) {
			t.Errorf("a refused setup left links: before %v after %v", before, after)
		}
		if slices.Contains(nettest.Links(t, ns), "eth0") {
			t.Error("a refused setup left the container's eth0")
		}
		t.Logf("refused as it must be on this kernel: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	t.Cleanup(func() { _ = tp.m.Teardown(context.Background(), ns.Path(), o) })
	if got := run(t, tp.host, "ip", "-d", "link", "show", "bvl0"); !strings.Contains(got, "vlan_filtering 1") {
		t.Errorf("bridge without VLAN filtering: %s", got)
	}
	port := newVeth(t, before, nettest.Links(t, tp.host))
	if got := run(t, tp.host, "bridge", "vlan", "show", "dev", port); !strings.Contains(got, "20 PVID Egress Untagged") {
		t.Errorf("port %s not in VLAN 20 as PVID, untagged: %s", port, got)
	}
}

// A macvlan network's bclim option is the container link's broadcast
// cutoff, as the kernel reports it back; a kernel that cannot apply it
// refuses the setup with link.ErrNoBroadcastCutoff.
func TestPrivilegedMacvlanBroadcastCutoff(t *testing.T) {
	tp := newTopo(t, nil, nil)
	lan := nettest.NewNS(t, "lan")
	nettest.Connect(t, tp.host, "bcparent", netip.Prefix{}, lan, "eth0", netip.MustParsePrefix("198.18.2.1/24"))
	for _, cutoff := range []string{"-1", "7"} {
		n := network.Network{Name: "mvb" + cutoff, ID: strings.Repeat("3", 64), Driver: network.DriverMacvlan,
			NetworkInterface: "bcparent", Options: map[string]string{network.OptBclim: cutoff},
			Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.2.0/24"), Gateway: netip.MustParseAddr("198.18.2.1")}}}
		o := opts("b"+cutoff, n.Name, n, "198.18.2.4"+strings.TrimPrefix(cutoff, "-"))
		ns := nettest.NewNS(t, nettest.RandName("ctr"))
		_, err := tp.m.Setup(context.Background(), ns.Path(), o)
		if errors.Is(err, link.ErrNoBroadcastCutoff) {
			t.Skipf("this kernel cannot apply bclim, and setup says so: %v", err)
		}
		if err != nil {
			t.Fatalf("setup with bclim=%s: %v", cutoff, err)
		}
		l, err := nettest.Handle(t, ns.NetNS).Link("eth0")
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := l.BroadcastCutoff()
		if err != nil || !ok || got != map[string]int32{"-1": -1, "7": 7}[cutoff] {
			t.Errorf("bclim=%s: the kernel reports %d (set %v, %v)", cutoff, got, ok, err)
		}
		if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}
}
