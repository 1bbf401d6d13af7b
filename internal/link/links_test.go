package link

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// prefixOf keeps an address's host bits and its prefix length, gives IPv4
// as IPv4 whether netlink held it in 4 or 16 bytes, and refuses what is
// not an address with a mask of its own size.
func TestPrefixOf(t *testing.T) {
	addr := func(ip net.IP, mask net.IPMask) netlink.Addr {
		return netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: mask}}
	}
	for _, c := range []struct {
		name string
		in   netlink.Addr
		want string // "" : refused
	}{
		{"ipv4", addr(net.IP{198, 18, 0, 2}, net.CIDRMask(16, 32)), "198.18.0.2/16"},
		{"ipv4 in 16 bytes", addr(net.ParseIP("198.18.0.2"), net.CIDRMask(120, 128)), "198.18.0.2/24"},
		{"ipv6", addr(net.ParseIP("fd00::2"), net.CIDRMask(64, 128)), "fd00::2/64"},
		{"ipv4-mapped with a short mask", addr(net.ParseIP("198.18.0.2"), net.CIDRMask(64, 128)), ""},
		{"ipv4 with an ipv6 mask", addr(net.IP{198, 18, 0, 2}, net.CIDRMask(64, 128)), ""},
		{"no mask", addr(net.IP{198, 18, 0, 2}, nil), ""},
		{"no address", netlink.Addr{}, ""},
		{"bad address", addr(net.IP{1, 2, 3}, net.CIDRMask(8, 32)), ""},
	} {
		p, ok := prefixOf(c.in)
		if got := map[bool]string{true: p.String()}[ok]; got != c.want {
			t.Errorf("%s: prefixOf = %q (ok %v), want %q", c.name, p, ok, c.want)
		}
	}
}
