package link_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/nettest"
)

// addLink creates nl through netlink (the test's own way, not the
// functions under test) and returns it as a Link.
func addLink(t *testing.T, h *link.Handle, nl netlink.Link) link.Link {
	t.Helper()
	if err := h.LinkAdd(nl); err != nil {
		t.Fatal(err)
	}
	l, err := h.Link(nl.Attrs().Name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newBridge(t *testing.T, h *link.Handle, name string) link.Link {
	return addLink(t, h, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: 1400}})
}

// twoNS returns a host and a container namespace and their handles.
func twoNS(t *testing.T, prefix string) (host, ctr *nettest.NS, hh, ch *link.Handle) {
	host = nettest.NewNS(t, nettest.RandName(prefix+"h"))
	ctr = nettest.NewNS(t, nettest.RandName(prefix+"c"))
	return host, ctr, nettest.Handle(t, host.NetNS), nettest.Handle(t, ctr.NetNS)
}

// AddVeth creates both ends in one request: the host end up, on the
// bridge, with the MTU; the peer down in the other namespace with its name,
// MTU and MAC. A second pair with the same names fails with EEXIST.
func TestPrivilegedAddVeth(t *testing.T) {
	nettest.Privileged(t)
	_, ctr, hh, ch := twoNS(t, "b")
	br := newBridge(t, hh, "bbr0")
	mac, _ := net.ParseMAC("02:42:c6:12:00:09")
	spec := link.VethSpec{Name: "bveth0", MTU: 1400, MasterIndex: br.Index, PeerName: "eth0", PeerNSFd: ctr.Fd(), PeerMAC: mac}
	got, err := hh.AddVeth(spec)
	if err != nil {
		t.Fatal(err)
	}
	hv, err := hh.ByName("bveth0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != hv.Attrs().Index || got.Name != "bveth0" || got.Kind != "veth" || got.MasterIndex != br.Index || got.MTU != 1400 {
		t.Errorf("AddVeth returned %+v, the link has index %d", got, hv.Attrs().Index)
	}
	if hv.Attrs().MasterIndex != br.Index {
		t.Errorf("host end master %d, want bridge %d", hv.Attrs().MasterIndex, br.Index)
	}
	if hv.Attrs().Flags&net.FlagUp == 0 || hv.Attrs().MTU != 1400 {
		t.Errorf("host end flags %v mtu %d, want up and 1400", hv.Attrs().Flags, hv.Attrs().MTU)
	}
	pv, err := ch.ByName("eth0")
	if err != nil {
		t.Fatalf("peer not in the container namespace: %v", err)
	}
	if pv.Attrs().HardwareAddr.String() != mac.String() || pv.Attrs().MTU != 1400 || pv.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("peer mac %s mtu %d flags %v, want %s, 1400, down", pv.Attrs().HardwareAddr, pv.Attrs().MTU, pv.Attrs().Flags, mac)
	}
	if _, err := hh.AddVeth(spec); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second pair with the same names: %v, want EEXIST", err)
	}

	spec2 := link.VethSpec{Name: "bveth1", MasterIndex: br.Index, PeerName: "eth1", PeerNSFd: ctr.Fd(), Down: true}
	if _, err := hh.AddVeth(spec2); err != nil {
		t.Fatal(err)
	}
	hv1, err := hh.ByName("bveth1")
	if err != nil {
		t.Fatal(err)
	}
	if hv1.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("Down: host end is up")
	}
}

// SetIPv4Conf changes what /proc/sys/net/ipv4/conf/<dev>/ shows in the
// link's namespace.
func TestPrivilegedSetIPv4Conf(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, nettest.RandName("bs"))
	h := nettest.Handle(t, ns.NetNS)
	br := newBridge(t, h, "bbr1")
	if err := br.SetIPv4Conf(map[int]uint32{link.IPv4ConfArpNotify: 1, link.IPv4ConfRPFilter: 2}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"arp_notify": "1", "rp_filter": "2"} {
		out, err := nettest.Run(ns, 5*time.Second, "cat", "/proc/sys/net/ipv4/conf/bbr1/"+key)
		if err != nil {
			t.Fatalf("read %s: %v %s", key, err, out)
		}
		if strings.TrimSpace(out) != want {
			t.Errorf("%s = %q, want %s", key, strings.TrimSpace(out), want)
		}
	}
}

// LoopbackUp brings a namespace's lo up (127.0.0.1 answers again), and
// calling it again changes nothing.
func TestPrivilegedLoopbackUp(t *testing.T) {
	nettest.Privileged(t)
	ns := nettest.NewNS(t, nettest.RandName("bl"))
	h := nettest.Handle(t, ns.NetNS)
	l := nettest.Listen(t, ns, "tcp", "127.0.0.1:8080")
	nettest.ServeBanner(l, "lo")
	lo, err := h.ByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(lo); err != nil {
		t.Fatal(err)
	}
	if _, err := nettest.FetchWithin(ns, "tcp", "127.0.0.1:8080", 200*time.Millisecond); err == nil {
		t.Fatal("127.0.0.1 answers with lo down")
	}
	for range 2 {
		if err := h.LoopbackUp(); err != nil {
			t.Fatal(err)
		}
		if lo, err = h.ByName("lo"); err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
			t.Fatalf("lo after LoopbackUp: %v; want up", err)
		}
	}
	if got, err := nettest.Fetch(ns, "tcp", "127.0.0.1:8080"); err != nil || got != "lo" {
		t.Errorf("fetch over lo: %q, %v", got, err)
	}
}
