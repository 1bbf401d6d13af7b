package link

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route becomes the netlink route berth always sent: a zero field leaves
// netlink's field zero, so the message carries no attribute for it.
func TestRouteToNetlink(t *testing.T) {
	cases := []struct {
		name string
		r    Route
		want netlink.Route
	}{
		{"default via gateway", Route{Dev: 3, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.0.1"), Metric: 100, Proto: ProtoStatic},
			netlink.Route{LinkIndex: 3, Dst: &net.IPNet{IP: net.IP{0, 0, 0, 0}, Mask: net.CIDRMask(0, 32)}, Gw: net.IP{198, 18, 0, 1}, Priority: 100, Protocol: unix.RTPROT_STATIC}},
		{"no destination", Route{Dev: 2, Via: netip.MustParseAddr("10.0.2.2")},
			netlink.Route{LinkIndex: 2, Gw: net.IP{10, 0, 2, 2}}},
		{"blackhole", Route{Dst: netip.MustParsePrefix("198.19.0.0/16"), Type: RouteBlackhole, Proto: ProtoStatic, Metric: 7},
			netlink.Route{Dst: &net.IPNet{IP: net.IP{198, 19, 0, 0}, Mask: net.CIDRMask(16, 32)}, Type: unix.RTN_BLACKHOLE, Protocol: unix.RTPROT_STATIC, Priority: 7}},
		{"on-link dhcp", Route{Dev: 5, Dst: netip.MustParsePrefix("198.18.1.0/24"), Scope: ScopeLink, Proto: ProtoDHCP, Metric: 99},
			netlink.Route{LinkIndex: 5, Dst: &net.IPNet{IP: net.IP{198, 18, 1, 0}, Mask: net.CIDRMask(24, 32)}, Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_DHCP, Priority: 99}},
		{"local table", Route{Dev: 1, Dst: netip.MustParsePrefix("::/0"), Type: RouteLocal, Scope: ScopeHost, Table: 25204},
			netlink.Route{LinkIndex: 1, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, Table: 25204}},
	}
	for _, c := range cases {
		got := c.r.nl()
		if !got.Equal(c.want) || got.Dst.String() != c.want.Dst.String() || got.Table != c.want.Table {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		if (got.Dst == nil) != (c.want.Dst == nil) || (got.Gw == nil) != (c.want.Gw == nil) {
			t.Errorf("%s: dst %v gw %v, want dst %v gw %v", c.name, got.Dst, got.Gw, c.want.Dst, c.want.Gw)
		}
	}
}

// A Link found through netlink keeps what callers read of it.
func TestFromNetlink(t *testing.T) {
	mac, _ := net.ParseMAC("02:42:c6:12:00:09")
	nl := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "v0", Index: 4, MTU: 1400, HardwareAddr: mac, MasterIndex: 2, Flags: net.FlagUp | net.FlagBroadcast}}
	l := fromNetlink(nil, nl)
	if l.Name != "v0" || l.Index != 4 || l.Kind != "veth" || l.MTU != 1400 || l.MAC.String() != mac.String() || l.MasterIndex != 2 || !l.Up {
		t.Errorf("link %+v", l)
	}
	if a := l.nl().Attrs(); a.Name != "v0" || a.Index != 4 {
		t.Errorf("back to netlink: %+v", a)
	}
}
