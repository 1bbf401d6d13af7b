package usernet

import (
	"errors"
	"net/netip"
	"testing"
)

func TestConfigDefaultsAndAddresses(t *testing.T) {
	c, err := Config{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.MTU != 65520 || c.CIDR.String() != "10.0.2.0/24" || c.ResolvConf != "/etc/resolv.conf" || c.DNSPort != 53 {
		t.Fatalf("defaults: %+v", c)
	}
	for got, want := range map[netip.Addr]string{
		c.Gateway(): "10.0.2.2", c.DNS(): "10.0.2.3", c.Guest(): "10.0.2.100",
		c.Gateway6(): "fd00::2", c.DNS6(): "fd00::3",
	} {
		if got.String() != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	c, err = Config{CIDR: netip.MustParsePrefix("10.99.5.7/25")}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.CIDR.String() != "10.99.5.0/25" || c.Guest().String() != "10.99.5.100" || c.Gateway().String() != "10.99.5.2" {
		t.Errorf("cidr 10.99.5.7/25: %s guest %s gateway %s", c.CIDR, c.Guest(), c.Gateway())
	}
}

func TestConfigRejects(t *testing.T) {
	for name, c := range map[string]Config{
		"ipv6 cidr":          {CIDR: netip.MustParsePrefix("fd00::/64")},
		"cidr too small":     {CIDR: netip.MustParsePrefix("10.0.2.0/26")},
		"mtu too big":        {MTU: 65522},
		"mtu too small":      {MTU: 67},
		"ipv6 small mtu":     {MTU: 1200, IPv6: true},
		"ipv6 prefix not 64": {IPv6Prefix: netip.MustParsePrefix("fd00::/48")},
		"outbound v6 as v4":  {OutboundAddr: netip.MustParseAddr("fd00::1")},
		"outbound v4 as v6":  {OutboundAddr6: netip.MustParseAddr("10.0.0.1")},
	} {
		if _, err := c.WithDefaults(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestTranslate(t *testing.T) {
	c, _ := Config{IPv6: true}.WithDefaults()
	off := c
	off.DisableHostLoopback = true
	for _, tc := range []struct {
		cfg  Config
		dst  string
		want string // "" = refused
	}{
		{c, "10.0.2.2", "127.0.0.1"},
		{c, "fd00::2", "::1"},
		{off, "10.0.2.2", ""},
		{off, "fd00::2", ""},
		{c, "10.0.2.100", ""},
		{c, "10.0.2.77", ""},
		{c, "fd00::100", ""},
		{c, "127.0.0.1", ""},
		{c, "224.0.0.251", ""},
		{c, "255.255.255.255", ""},
		{c, "0.0.0.0", ""},
		{c, "198.18.0.2", "198.18.0.2"},
		{c, "2001:db8::1", "2001:db8::1"},
	} {
		got, ok := tc.cfg.Translate(netip.MustParseAddr(tc.dst))
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("Translate(%s, loopback disabled=%v) = %s, %v; want %q", tc.dst, tc.cfg.DisableHostLoopback, got, ok, tc.want)
		}
	}
}
