package link_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/nettest"
)

// newPort adds a veth pair (name and name+"p") and returns the first end:
// a parent for macvlans, a device for routes.
func newPort(t *testing.T, h *link.Handle, name string) link.Link {
	return addLink(t, h, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"})
}

// AddBridge makes a down bridge with the MAC and MTU asked for; a second
// one of the same name fails with EEXIST. Link finds it with its kind, and
// a missing link is ErrNotFound.
func TestPrivilegedAddBridgeAndLink(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, nettest.RandName("bb"))
	h := nettest.Handle(t, ns.NetNS)
	mac, _ := net.ParseMAC("02:42:c6:12:00:01")
	spec := link.BridgeSpec{Name: "bbr2", MTU: 1300, MAC: mac}
	if err := h.AddBridge(spec); err != nil {
		t.Fatal(err)
	}
	br, err := h.Link("bbr2")
	if err != nil {
		t.Fatal(err)
	}
	if br.Kind != "bridge" || br.MTU != 1300 || br.MAC.String() != mac.String() || br.Up || br.Index == 0 {
		t.Errorf("bridge %+v", br)
	}
	if err := h.AddBridge(spec); !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "create bridge bbr2") {
		t.Errorf("second bridge: %v, want EEXIST", err)
	}
	if _, err := h.Link("nosuch0"); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("missing link: %v, want ErrNotFound", err)
	}
	// MTU 0 leaves the kernel's default.
	if err := h.AddBridge(link.BridgeSpec{Name: "bbr3", MAC: mac}); err != nil {
		t.Fatal(err)
	}
	if b3, err := h.Link("bbr3"); err != nil || b3.MTU != 1500 {
		t.Errorf("bridge without MTU: %+v %v, want MTU 1500", b3, err)
	}
}

// A bridge with MasterIndex is a port of that VRF.
func TestPrivilegedAddBridgeInVRF(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, nettest.RandName("bv"))
	h := nettest.Handle(t, ns.NetNS)
	if err := h.LinkAdd(&netlink.Vrf{LinkAttrs: netlink.LinkAttrs{Name: "bvrf"}, Table: 10}); err != nil {
		t.Skipf("this kernel has no vrf links (%v)", err)
	}
	vrf, err := h.Link("bvrf")
	if err != nil || vrf.Kind != "vrf" {
		t.Fatalf("vrf %+v %v", vrf, err)
	}
	if err := h.AddBridge(link.BridgeSpec{Name: "bbr4", MasterIndex: vrf.Index}); err != nil {
		t.Fatal(err)
	}
	if br, err := h.Link("bbr4"); err != nil || br.MasterIndex != vrf.Index {
		t.Errorf("bridge %+v %v, want master %d", br, err, vrf.Index)
	}
}

// AddMacvlan makes a macvlan link on the parent straight in the other
// namespace, with the mode, MTU and MAC asked for; the kernel's refusal
// names the kind and the parent.
func TestPrivilegedAddMacvlan(t *testing.T) {
	nettest.Privileged(t)
	_, ctr, hh, ch := twoNS(t, "bm")
	parent := newPort(t, hh, "bpar0")
	mac, _ := net.ParseMAC("02:42:c6:12:00:02")
	if err := hh.AddMacvlan(link.SublinkSpec{Name: "mv0", Parent: parent, NSFd: ctr.Fd(), MTU: 1400, MAC: mac, Mode: "private"}); err != nil {
		t.Fatal(err)
	}
	if err := hh.AddMacvlan(link.SublinkSpec{Name: "mv1", Parent: parent, NSFd: ctr.Fd()}); err != nil {
		t.Fatal(err)
	}
	if _, err := hh.Link("mv0"); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("macvlan in the host namespace: %v", err)
	}
	l, err := ch.ByName("mv0")
	if err != nil {
		t.Fatal(err)
	}
	mv, ok := l.(*netlink.Macvlan)
	if !ok || mv.Mode != netlink.MACVLAN_MODE_PRIVATE || mv.Attrs().MTU != 1400 || mv.Attrs().HardwareAddr.String() != mac.String() {
		t.Errorf("macvlan %T %+v", l, l)
	}
	if l, err := ch.ByName("mv1"); err != nil || l.(*netlink.Macvlan).Mode != netlink.MACVLAN_MODE_BRIDGE {
		t.Errorf("macvlan with no mode: %+v %v, want bridge", l, err)
	}
	err = hh.AddMacvlan(link.SublinkSpec{Name: "mv0", Parent: link.Link{Name: "gone0", Index: 9999}, NSFd: ctr.Fd()})
	if err == nil || !strings.HasPrefix(err.Error(), "create macvlan link on gone0: ") {
		t.Errorf("macvlan on a missing parent: %v", err)
	}
}

// AddIPVlan makes an ipvlan link on the parent straight in the other
// namespace, with the mode asked for.
func TestPrivilegedAddIPVlan(t *testing.T) {
	nettest.Privileged(t)
	_, ctr, hh, ch := twoNS(t, "bi")
	parent1 := newPort(t, hh, "bpar1")
	err := hh.AddIPVlan(link.SublinkSpec{Name: "iv0", Parent: parent1, NSFd: ctr.Fd(), Mode: "l3"})
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
		t.Skipf("no ipvlan: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if l, err := ch.ByName("iv0"); err != nil || l.(*netlink.IPVlan).Mode != netlink.IPVLAN_MODE_L3 {
		t.Errorf("ipvlan %+v %v, want l3", l, err)
	}
}

// A Link's own operations: up and down, addresses added and removed (twice
// is fine), MTU, MAC, hairpin, no IPv6 addresses, ports and deletion.
func TestPrivilegedLinkOperations(t *testing.T) {
	nettest.Privileged(t)
	host, ctr, hh, _ := twoNS(t, "bo")
	if err := hh.AddBridge(link.BridgeSpec{Name: "bbr5"}); err != nil {
		t.Fatal(err)
	}
	br, _ := hh.Link("bbr5")
	if busy, err := br.HasPorts(); err != nil || busy {
		t.Errorf("new bridge has ports: %v %v", busy, err)
	}
	hv, err := hh.AddVeth(link.VethSpec{Name: "bveth5", MasterIndex: br.Index, PeerName: "eth0", PeerNSFd: ctr.Fd(), Down: true})
	if err != nil {
		t.Fatal(err)
	}
	if busy, err := br.HasPorts(); err != nil || !busy {
		t.Errorf("bridge with a veth: ports %v %v", busy, err)
	}
	if err := hv.NoIPv6Addrs(); err != nil {
		t.Fatal(err)
	}
	if err := hv.SetUp(); err != nil {
		t.Fatal(err)
	}
	if err := hv.SetHairpin(true); err != nil {
		t.Fatal(err)
	}
	if err := hv.SetMTU(1280); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:42:c6:12:00:05")
	if err := hv.SetMAC(mac); err != nil {
		t.Fatal(err)
	}
	got, err := hh.Link("bveth5")
	if err != nil || !got.Up || got.MTU != 1280 || got.MAC.String() != mac.String() {
		t.Errorf("veth after the settings: %+v %v", got, err)
	}
	nl, err := hh.ByName("bveth5")
	if err != nil {
		t.Fatal(err)
	}
	if pi, err := hh.LinkGetProtinfo(nl); err != nil || !pi.Hairpin {
		t.Errorf("hairpin %+v %v, want on", pi, err)
	}
	if out, err := nettest.Run(host, 5*time.Second, "cat", "/proc/sys/net/ipv6/conf/bveth5/addr_gen_mode"); err == nil && strings.TrimSpace(out) != "1" {
		t.Errorf("addr_gen_mode %q, want 1 (none)", out)
	}
	if addrs, _ := hh.AddrList(nl, netlink.FAMILY_V6); len(addrs) != 0 {
		t.Errorf("IPv6 addresses on a link without generation: %v", addrs)
	}

	p := netip.MustParsePrefix("198.18.5.1/24")
	for range 2 {
		if err := br.AddAddr(p); err != nil {
			t.Fatal(err)
		}
	}
	if !hasAddr(t, hh, "bbr5", p) {
		t.Errorf("bridge lacks %s", p)
	}
	for range 2 {
		if err := br.DelAddr(p); err != nil {
			t.Fatal(err)
		}
	}
	if hasAddr(t, hh, "bbr5", p) {
		t.Errorf("bridge keeps %s", p)
	}
	if err := hv.SetDown(); err != nil {
		t.Fatal(err)
	}
	if got, _ := hh.Link("bveth5"); got.Up {
		t.Errorf("veth up after SetDown")
	}
	for range 2 {
		if err := hv.Delete(); err != nil {
			t.Fatal(err)
		}
	}
	if busy, err := br.HasPorts(); err != nil || busy {
		t.Errorf("bridge without its veth: ports %v %v", busy, err)
	}
}

// Links and LinkByIndex find what Link finds; Addrs gives a link's
// addresses of both families with their prefixes; SetNoMaster takes a port
// off its bridge and Rename frees the old name (the Link keeps acting on
// the renamed link, by index).
func TestPrivilegedListAddrsRenameNoMaster(t *testing.T) {
	nettest.Privileged(t)
	_, ctr, hh, _ := twoNS(t, "bl")
	br := newBridge(t, hh, "bbr6")
	hv, err := hh.AddVeth(link.VethSpec{Name: "bveth6", MasterIndex: br.Index, PeerName: "eth0", PeerNSFd: ctr.Fd(), Down: true})
	if err != nil {
		t.Fatal(err)
	}
	links, err := hh.Links()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]link.Link{}
	for _, l := range links {
		byName[l.Name] = l
	}
	if lo := byName["lo"]; lo.Index != 1 || lo.Kind != "device" {
		t.Errorf("lo in the list: %+v", lo)
	}
	// The bridge as it is now (its MTU followed its port's).
	if b, want := byName["bbr6"], mustLink(t, hh, "bbr6"); b.Index != br.Index || b.Kind != "bridge" || b.MTU != want.MTU || b.MAC.String() != want.MAC.String() {
		t.Errorf("bridge in the list: %+v, want %+v", b, want)
	}
	if v := byName["bveth6"]; v.Index != hv.Index || v.Kind != "veth" || v.MasterIndex != br.Index {
		t.Errorf("veth in the list: %+v", v)
	}
	if got, err := hh.LinkByIndex(hv.Index); err != nil || got.Name != "bveth6" || got.Kind != "veth" || got.MasterIndex != br.Index {
		t.Errorf("LinkByIndex(%d) = %+v %v", hv.Index, got, err)
	}
	if _, err := hh.LinkByIndex(99999); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("missing index: %v, want ErrNotFound", err)
	}

	if addrs, err := hv.Addrs(); err != nil || len(addrs) != 0 {
		t.Errorf("addresses of a new veth: %v %v", addrs, err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("198.18.6.2/24"), netip.MustParsePrefix("fd00:6::2/64")}
	for _, p := range want {
		if err := hv.AddAddr(p); err != nil {
			t.Fatal(err)
		}
	}
	if addrs, err := hv.Addrs(); err != nil || !slices.Equal(addrs, want) {
		t.Errorf("addresses %v %v, want %v", addrs, err, want)
	}
	// The namespace's whole list (one dump) holds them too.
	all, err := hh.Addrs()
	for _, p := range want {
		if err != nil || !slices.Contains(all, p) {
			t.Errorf("namespace addresses %v %v, want %v among them", all, err, p)
		}
	}

	if err := hv.SetNoMaster(); err != nil {
		t.Fatal(err)
	}
	if busy, err := br.HasPorts(); err != nil || busy {
		t.Errorf("bridge keeps its port after SetNoMaster: %v %v", busy, err)
	}
	if err := hv.Rename("bgone6"); err != nil {
		t.Fatal(err)
	}
	if _, err := hh.Link("bveth6"); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("old name after Rename: %v, want ErrNotFound", err)
	}
	got, err := hh.Link("bgone6")
	if err != nil || got.Index != hv.Index || got.MasterIndex != 0 {
		t.Errorf("renamed link %+v %v", got, err)
	}
	if err := hv.Rename("bgone6x"); err != nil {
		t.Errorf("rename through the Link with the old name: %v", err)
	}
	if err := hh.AddBridge(link.BridgeSpec{Name: "bbr7"}); err != nil {
		t.Fatal(err)
	}
	if err := hv.Rename("bbr7"); !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "rename bveth6 to bbr7") {
		t.Errorf("rename to a taken name: %v, want EEXIST", err)
	}
	if err := hv.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := hv.SetNoMaster(); !errors.Is(err, unix.ENODEV) {
		t.Errorf("SetNoMaster of a deleted link: %v, want ENODEV", err)
	}
}

func mustLink(t *testing.T, h *link.Handle, name string) link.Link {
	t.Helper()
	l, err := h.Link(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func hasAddr(t *testing.T, h *link.Handle, name string, p netip.Prefix) bool {
	t.Helper()
	l, err := h.ByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IPNet.String() == p.String() {
			return true
		}
	}
	return false
}

// AddRoute, ReplaceRoute and DelRoute install what Route says (device,
// gateway, metric, protocol, type, scope, table); adding twice and
// deleting twice are fine. LinkToward finds the link of a route.
func TestPrivilegedRoutes(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, nettest.RandName("br"))
	h := nettest.Handle(t, ns.NetNS)
	d := newPort(t, h, "brt0")
	if err := d.SetUp(); err != nil {
		t.Fatal(err)
	}
	if err := d.AddAddr(netip.MustParsePrefix("198.18.7.2/24")); err != nil {
		t.Fatal(err)
	}
	def := link.Route{Dev: d.Index, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.7.1"), Metric: 100, Proto: link.ProtoStatic}
	onlink := link.Route{Dev: d.Index, Dst: netip.MustParsePrefix("198.19.8.0/24"), Scope: link.ScopeLink, Metric: 99, Proto: link.ProtoDHCP}
	hole := link.Route{Dst: netip.MustParsePrefix("198.19.9.0/24"), Type: link.RouteBlackhole, Proto: link.ProtoStatic, Metric: 5}
	local := link.Route{Dev: 1, Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: 25204, Type: link.RouteLocal, Scope: link.ScopeHost}
	for _, r := range []link.Route{def, onlink, hole} {
		for range 2 {
			if err := h.AddRoute(r); err != nil {
				t.Fatalf("add %+v: %v", r, err)
			}
		}
	}
	for range 2 {
		if err := h.ReplaceRoute(local); err != nil {
			t.Fatalf("replace %+v: %v", local, err)
		}
	}
	routes := func(table int) []netlink.Route {
		rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	find := func(rs []netlink.Route, dst string) *netlink.Route {
		for i, r := range rs {
			if (r.Dst == nil && dst == "0.0.0.0/0") || (r.Dst != nil && r.Dst.String() == dst) {
				return &rs[i]
			}
		}
		return nil
	}
	main := routes(unix.RT_TABLE_MAIN)
	if r := find(main, "0.0.0.0/0"); r == nil || r.LinkIndex != d.Index || r.Gw.String() != "198.18.7.1" || r.Priority != 100 || r.Protocol != unix.RTPROT_STATIC {
		t.Errorf("default route %+v", r)
	}
	if r := find(main, "198.19.8.0/24"); r == nil || r.LinkIndex != d.Index || r.Gw != nil || r.Scope != netlink.SCOPE_LINK || r.Priority != 99 || r.Protocol != unix.RTPROT_DHCP {
		t.Errorf("on-link route %+v", r)
	}
	if r := find(main, "198.19.9.0/24"); r == nil || r.Type != unix.RTN_BLACKHOLE || r.Priority != 5 {
		t.Errorf("blackhole route %+v", r)
	}
	if r := find(routes(25204), "0.0.0.0/0"); r == nil || r.Type != unix.RTN_LOCAL || r.Scope != netlink.SCOPE_HOST || r.LinkIndex != 1 {
		t.Errorf("local route in table 25204 %+v", r)
	}
	if l, err := h.LinkToward(netip.MustParseAddr("198.19.8.9")); err != nil || l.Name != "brt0" {
		t.Errorf("link toward an on-link destination: %+v %v", l, err)
	}
	if _, err := h.LinkToward(netip.MustParseAddr("198.19.9.9")); err == nil {
		t.Errorf("link toward a blackhole: no error")
	}
	for _, r := range []link.Route{def, onlink, hole, local} {
		for range 2 {
			if err := h.DelRoute(r); err != nil {
				t.Fatalf("delete %+v: %v", r, err)
			}
		}
	}
	if r := find(routes(unix.RT_TABLE_MAIN), "0.0.0.0/0"); r != nil {
		t.Errorf("default route left: %+v", r)
	}
	if len(routes(25204)) != 0 {
		t.Errorf("table 25204 left: %+v", routes(25204))
	}
}

// AddMarkRule sends marked packets to the table, in both families; adding
// twice is fine.
func TestPrivilegedAddMarkRule(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, nettest.RandName("bru"))
	h := nettest.Handle(t, ns.NetNS)
	for _, v6 := range []bool{false, true} {
		if v6 {
			if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
				continue
			}
		}
		rule := link.MarkRule{IPv6: v6, Mark: 0x62727468, Table: 25204, Priority: 100}
		for range 2 {
			if err := h.AddMarkRule(rule); err != nil {
				t.Fatalf("%+v: %v", rule, err)
			}
		}
		fam := netlink.FAMILY_V4
		if v6 {
			fam = netlink.FAMILY_V6
		}
		rules, err := h.RuleList(fam)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rules {
			if r.Mark == 0x62727468 && r.Table == 25204 && r.Priority == 100 && r.Mask != nil && *r.Mask == 0xffffffff {
				n++
			}
		}
		if n != 1 {
			t.Errorf("v6=%v: %d fwmark rules, want 1: %+v", v6, n, rules)
		}
	}
}
