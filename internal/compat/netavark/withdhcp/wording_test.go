package withdhcp

import (
	"errors"
	"fmt"
	"testing"

	"github.com/berthnet/berth/internal/dhcpproxy"
	"github.com/berthnet/berth/internal/link"
)

// The proxy's typed errors in netavark 2.1's words (its test-dhcp suite
// matches them).
func TestProxyWording(t *testing.T) {
	mac := func(s string) error { _, err := dhcpproxy.ParseMAC(s); return fmt.Errorf("setup: %w", err) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{mac(""), "unable to parse mac address : cannot parse integer from empty string"},
		{mac("123"), "unable to parse mac address 123: number too large to fit in target type"},
		{mac("zz:1:2:3:4:5"), "unable to parse mac address zz:1:2:3:4:5: invalid digit found in string"},
		{mac("1:2:3"), "invalid mac length for address: 1:2:3"},
		{&dhcpproxy.InterfaceError{Name: "", Err: link.ErrNotFound}, "Netlink error: No such device (os error 19)"},
		{&dhcpproxy.InterfaceError{Name: "veth990", Err: fmt.Errorf("veth990: %w", link.ErrNotFound)}, "Netlink error: No such device (os error 19)"},
		{&dhcpproxy.InterfaceError{Name: "eth0", Err: errors.New("netlink: permission denied")}, `container interface "eth0": netlink: permission denied`},
		{errors.New("other"), "other"},
	} {
		if got := proxyWording(tc.err); got != tc.want {
			t.Errorf("proxyWording(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
