package vxlan_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/overlay/lease"
	"github.com/berthnet/berth/internal/vxlan"
)

// addrs lists a link's IPv4 addresses in namespace ns.
func addrs(t *testing.T, ns *nettest.NS, name string) []netip.Prefix {
	t.Helper()
	h := nettest.Handle(t, ns.NetNS)
	l, err := h.ByName(name)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	for _, a := range list {
		ip, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out
}

// Ensure finds the underlay's address, turns on forwarding, creates the
// VXLAN device and the bridge (reusing them on a second call), SetSubnet
// moves their addresses to a new subnet, and Reconcile programs and
// withdraws a remote host's FDB entry, neighbour and route.
func TestPrivilegedDevice(t *testing.T) {
	nettest.Privileged(t)
	host := nettest.NewNS(t, nettest.RandName("bvh"))
	peer := nettest.NewNS(t, nettest.RandName("bvp"))
	nettest.Connect(t, host, "bvu0", netip.MustParsePrefix("198.18.5.1/24"), peer, "bvu1", netip.MustParsePrefix("198.18.5.2/24"))
	nettest.Connect(t, host, "bvbare", netip.Prefix{}, peer, "bvbare1", netip.Prefix{})

	if _, err := vxlan.Ensure(host.NetNS, vxlan.Spec{VXLAN: "bvx", Bridge: "bvbr", VNI: 42, Port: 4789, Iface: "bvbare"}); !errors.Is(err, vxlan.ErrNoAddress) {
		t.Fatalf("Ensure on an underlay without IPv4: %v, want ErrNoAddress", err)
	}
	spec := vxlan.Spec{VXLAN: "bvx", Bridge: "bvbr", VNI: 42, Port: 4789, Iface: "bvu0"}
	d, err := vxlan.Ensure(host.NetNS, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.PublicIP() != netip.MustParseAddr("198.18.5.1") || d.MTU() != 1500-vxlan.VXLANOverhead {
		t.Errorf("public IP %s MTU %d, want 198.18.5.1 and %d", d.PublicIP(), d.MTU(), 1500-vxlan.VXLANOverhead)
	}
	if out, err := nettest.Run(host, 5*time.Second, "cat", "/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("ip_forward = %q, %v; want 1", out, err)
	}
	h := nettest.Handle(t, host.NetNS)
	vx, err := h.ByName("bvx")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := vx.(*netlink.Vxlan)
	if !ok || v.VxlanId != 42 || v.Learning || v.Attrs().HardwareAddr.String() != d.MAC().String() {
		t.Fatalf("vxlan device %+v, want VNI 42, nolearning, MAC %s", vx, d.MAC())
	}
	again, err := vxlan.Ensure(host.NetNS, spec)
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
	if vx2, _ := h.ByName("bvx"); vx2 == nil || vx2.Attrs().Index != vx.Attrs().Index {
		t.Error("a second Ensure with the same parameters replaced the VXLAN device")
	}

	for _, s := range []string{"198.19.4.0/24", "198.19.5.0/24"} {
		if err := d.SetSubnet(netip.MustParsePrefix(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := addrs(t, host, "bvx"); len(got) != 1 || got[0] != netip.MustParsePrefix("198.19.5.0/32") {
		t.Errorf("vxlan addresses %v, want only 198.19.5.0/32", got)
	}
	if got := addrs(t, host, "bvbr"); len(got) != 1 || got[0] != netip.MustParsePrefix("198.19.5.1/24") {
		t.Errorf("bridge addresses %v, want only 198.19.5.1/24", got)
	}

	remote := lease.State{
		FDB:    []lease.FDB{{MAC: "0a:2a:c6:12:05:02", Dst: netip.MustParseAddr("198.18.5.2")}},
		Neighs: []lease.Neigh{{IP: netip.MustParseAddr("198.19.7.0"), MAC: "0a:2a:c6:12:05:02"}},
		Routes: []lease.Route{{Dst: netip.MustParsePrefix("198.19.7.0/24"), Via: netip.MustParseAddr("198.19.7.0")}},
	}
	if _, set, err := d.Reconcile(remote); err != nil || set.String() != remote.String() {
		t.Fatalf("Reconcile set %s, %v; want %s", set, err, remote)
	}
	ro, err := vxlan.Open(host.NetNS, "bvx")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if have, err := ro.Programmed(); err != nil || have.String() != remote.String() {
		t.Errorf("programmed %s, %v; want %s", have, err, remote)
	}
	if del, _, err := d.Reconcile(lease.State{}); err != nil || del.String() != remote.String() {
		t.Errorf("Reconcile to nothing deleted %s, %v; want %s", del, err, remote)
	}
	if have, err := ro.Programmed(); err != nil || !have.Empty() {
		t.Errorf("after withdrawing: %s, %v", have, err)
	}

	spec.VNI = 43
	d43, err := vxlan.Ensure(host.NetNS, spec)
	if err != nil {
		t.Fatal(err)
	}
	d43.Close()
	if vx3, err := h.ByName("bvx"); err != nil || vx3.(*netlink.Vxlan).VxlanId != 43 || vx3.Attrs().Alias != vxlan.Alias {
		t.Errorf("Ensure with another VNI: %+v, %v; want the device replaced with VNI 43, alias %s", vx3, err, vxlan.Alias)
	}

	// Someone else's VXLAN device of that name, with other parameters,
	// is refused, not replaced.
	if out, err := nettest.Run(host, 5*time.Second, "ip", "link", "add", "bvtheirs", "type", "vxlan", "id", "77", "dstport", "4789", "dev", "bvu0"); err != nil {
		t.Fatalf("add a foreign vxlan device: %v %s", err, out)
	}
	theirs, _ := h.ByName("bvtheirs")
	spec.VXLAN = "bvtheirs"
	if _, err := vxlan.Ensure(host.NetNS, spec); !errors.Is(err, vxlan.ErrNotOurs) {
		t.Errorf("Ensure over a foreign device: %v, want ErrNotOurs", err)
	}
	if l, err := h.ByName("bvtheirs"); err != nil || l.Attrs().Index != theirs.Attrs().Index || l.(*netlink.Vxlan).VxlanId != 77 {
		t.Errorf("the foreign device was changed: %+v %v", l, err)
	}
}
