package core_test

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// A macvlan network of mode source receives frames from the MACs of its
// source_macs option only: the LAN peer whose MAC is listed reaches the
// container, and with the list empty it does not.
func TestPrivilegedMacvlanSourceMode(t *testing.T) {
	tp := newTopo(t, nil, nil)
	lan := nettest.NewNS(t, "lan")
	nettest.Connect(t, tp.host, "lanparent", netip.Prefix{}, lan, "eth0", netip.MustParsePrefix("198.18.1.1/24"))
	peerMAC := linkIn(t, lan, "eth0").Attrs().HardwareAddr
	n := network.Network{Name: "mvs", ID: "2222222222222222222222222222222222222222222222222222222222222222", Driver: network.DriverMacvlan,
		NetworkInterface: "lanparent", Options: map[string]string{"mode": "source", "source_macs": peerMAC.String()},
		Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.1.0/24"), Gateway: netip.MustParseAddr("198.18.1.1")}}}
	ctr, _ := tp.container(t, opts("s1", "mvs", n, "198.18.1.40"))
	l, ok := linkIn(t, ctr, "eth0").(*netlink.Macvlan)
	if !ok || l.Mode != netlink.MACVLAN_MODE_SOURCE {
		t.Fatalf("container link: %#v", linkIn(t, ctr, "eth0"))
	}
	if !slices.ContainsFunc(l.MACAddrs, func(m net.HardwareAddr) bool { return m.String() == peerMAC.String() }) {
		t.Errorf("source MACs %v, want %s", l.MACAddrs, peerMAC)
	}
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "src")
	if got, err := nettest.Fetch(lan, "tcp4", "198.18.1.40:80"); err != nil || got != "src" {
		t.Errorf("listed LAN peer to the container: %q %v", got, err)
	}

	// Without the peer's MAC listed, nothing from it arrives.
	n2 := n
	n2.Name = "mvs2"
	n2.Options = map[string]string{"mode": "source"}
	ctr2, _ := tp.container(t, opts("s2", "mvs2", n2, "198.18.1.41"))
	nettest.ServeBanner(nettest.Listen(t, ctr2, "tcp4", "0.0.0.0:80"), "src2")
	if got, err := nettest.FetchWithin(lan, "tcp4", "198.18.1.41:80", time.Second); err == nil {
		t.Errorf("unlisted LAN peer reached the container: %q", got)
	}
}

// Several static IPs in one subnet (netavark 2.x): the container has them
// all, and each is reachable from the host.
func TestPrivilegedSeveralStaticIPsPerSubnet(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("multi", "bmulti0", "198.19.48.0/24", "198.19.48.1")
	o := opts("mi1", "multi", n, "198.19.48.5")
	o.Networks[0].StaticIPs = append(o.Networks[0].StaticIPs, netip.MustParseAddr("198.19.48.10"), netip.MustParseAddr("198.19.48.15"))
	ctr, res := tp.container(t, o)
	if got := len(res["multi"].Interfaces["eth0"].Subnets); got != 3 {
		t.Errorf("status has %d addresses, want 3: %+v", got, res["multi"])
	}
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "multi")
	for _, ip := range []string{"198.19.48.5", "198.19.48.10", "198.19.48.15"} {
		if got, err := nettest.Fetch(tp.host, "tcp4", ip+":80"); err != nil || got != "multi" {
			t.Errorf("host to %s: %q %v", ip, got, err)
		}
	}
	if got := run(t, ctr, "ip", "route", "show", "default"); !strings.Contains(got, "via 198.19.48.1") {
		t.Errorf("default route: %s", got)
	}
}
