package netconf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/network"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func used() Used {
	return Used{
		Interfaces: []string{"podman0", "podman1", "eth0"},
		Names:      map[string]string{"podman": "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"},
		Subnets:    []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16"), netip.MustParsePrefix("10.89.0.0/24"), netip.MustParsePrefix("10.89.2.0/23")},
	}
}

func TestBridgeDefaults(t *testing.T) {
	n, err := Complete(network.Network{Name: "web", DNSEnabled: true}, used(), Options{CheckUsedSubnets: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != "bridge" || n.NetworkInterface != "podman2" || len(n.ID) != 64 || n.IPAMOptions["driver"] != "host-local" {
		t.Errorf("defaults: %+v", n)
	}
	if len(n.Subnets) != 1 || n.Subnets[0].Subnet.String() != "10.89.1.0/24" || n.Subnets[0].Gateway.String() != "10.89.1.1" {
		t.Errorf("want the first free /24 10.89.1.0/24 with gateway .1, got %+v", n.Subnets)
	}
	if n.Created != "2026-11-27T12:00:00Z" {
		t.Errorf("created %q", n.Created)
	}
	// The next free block skips 10.89.2.0/23.
	u := used()
	u.Subnets = append(u.Subnets, n.Subnets[0].Subnet)
	n2, err := Complete(network.Network{Name: "web2"}, u, Options{}, now)
	if err != nil || n2.Subnets[0].Subnet.String() != "10.89.4.0/24" {
		t.Errorf("second network: %v %+v", err, n2.Subnets)
	}
}

func TestCustomPoolsAndIPv6(t *testing.T) {
	pools := []SubnetPool{{netip.MustParsePrefix("198.19.0.0/16"), 26}}
	n, err := Complete(network.Network{Name: "v6", IPv6Enabled: true}, Used{Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/26")}}, Options{SubnetPools: pools}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Subnets) != 2 || n.Subnets[0].Subnet.String() != "198.19.0.64/26" || !n.Subnets[1].Subnet.Addr().Is6() || n.Subnets[1].Subnet.Bits() != 64 {
		t.Errorf("subnets %+v", n.Subnets)
	}
	if !strings.HasPrefix(n.Subnets[1].Subnet.String(), "fd") || n.Subnets[1].Gateway != n.Subnets[1].Subnet.Addr().Next() {
		t.Errorf("ipv6 subnet should be a ULA /64 with gateway ::1: %+v", n.Subnets[1])
	}
}

func TestMacvlanAndIPAM(t *testing.T) {
	n, err := Complete(network.Network{Name: "mv", Driver: "macvlan", DNSEnabled: true, Options: map[string]string{"parent": "eth0", "mode": "vepa"}}, used(), Options{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if n.IPAMOptions["driver"] != "dhcp" || n.NetworkInterface != "eth0" || n.DNSEnabled || n.Options["parent"] != "" {
		t.Errorf("macvlan without subnets: %+v", n)
	}
	n, err = Complete(network.Network{Name: "mv2", Driver: "macvlan", Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.1.0/24")}}}, used(), Options{}, now)
	// Podman gives a macvlan subnet its first address as gateway (the
	// container's default route), unless the network is internal.
	if err != nil || n.IPAMOptions["driver"] != "host-local" || n.Subnets[0].Gateway.String() != "198.18.1.1" {
		t.Errorf("macvlan with subnet: %v %+v", err, n)
	}
	n, err = Complete(network.Network{Name: "mv3", Driver: "macvlan", Internal: true, Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.1.0/24")}}}, used(), Options{}, now)
	if err != nil || n.Subnets[0].Gateway.IsValid() {
		t.Errorf("internal macvlan: %v %+v", err, n)
	}
	n, err = Complete(network.Network{Name: "none", IPAMOptions: map[string]string{"driver": "none"}, DNSEnabled: true}, used(), Options{}, now)
	if err != nil || len(n.Subnets) != 0 || n.DNSEnabled {
		t.Errorf("ipam none: %v %+v", err, n)
	}
}

func TestInternalWithoutDNSHasNoGateway(t *testing.T) {
	n, err := Complete(network.Network{Name: "int", Internal: true, Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.19.9.0/24")}}}, used(), Options{}, now)
	if err != nil || n.Subnets[0].Gateway.IsValid() {
		t.Errorf("%v %+v", err, n.Subnets)
	}
}

func TestOptionNormalisation(t *testing.T) {
	n, err := Complete(network.Network{Name: "o", Options: map[string]string{"isolate": "1", "no_default_route": "t", "com.docker.network.bridge.name": "dock0", "com.docker.network.driver.mtu": "1400"}}, used(), Options{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if n.Options["isolate"] != "true" || n.Options["no_default_route"] != "true" || n.NetworkInterface != "dock0" || n.Options["mtu"] != "1400" {
		t.Errorf("options %+v interface %s", n.Options, n.NetworkInterface)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		n    network.Network
		opts Options
		want string
	}{
		{network.Network{Name: "bad name"}, Options{}, "names must match"},
		{network.Network{Name: "podman"}, Options{}, "already used"},
		{network.Network{Name: "x", ID: "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"}, Options{}, "already used by network podman"},
		{network.Network{Name: "x", ID: "short"}, Options{}, "64 hexadecimal"},
		{network.Network{Name: "x", NetworkInterface: "podman1"}, Options{}, "bridge name podman1 already in use"},
		{network.Network{Name: "x", Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("10.88.5.0/24")}}}, Options{CheckUsedSubnets: true}, "already used on the host"},
		{network.Network{Name: "x", Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("10.50.0.0/24"), Gateway: netip.MustParseAddr("10.51.0.1")}}}, Options{}, "gateway 10.51.0.1 not in subnet 10.50.0.0/24"},
		{network.Network{Name: "x", IPAMOptions: map[string]string{"driver": "none"}, Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("10.50.0.0/24")}}}, Options{}, "none ipam driver is set but subnets are given"},
		{network.Network{Name: "x", IPAMOptions: map[string]string{"driver": "foo"}}, Options{}, `unsupported ipam driver "foo"`},
		{network.Network{Name: "x", Driver: "macvlan", IPAMOptions: map[string]string{"driver": "host-local"}}, Options{}, "needs at least one subnet"},
		{network.Network{Name: "x", Driver: "ipvlan", IPAMOptions: map[string]string{"driver": "dhcp"}}, Options{}, "not supported with ipvlan"},
		{network.Network{Name: "x", Options: map[string]string{"foo": "1"}}, Options{}, "unsupported bridge network option foo"},
		{network.Network{Name: "x", Options: map[string]string{"mtu": "-1"}}, Options{}, "mtu -1 is less than zero"},
		{network.Network{Name: "x", NetworkDNSServers: []netip.Addr{netip.MustParseAddr("1.1.1.1")}}, Options{}, "DNS is not enabled"},
		{network.Network{Name: "x", Driver: "foo"}, Options{}, `unsupported driver foo (want bridge, macvlan or ipvlan): invalid argument`},
		{network.Network{Name: "x", Options: map[string]string{"mtu": "abc"}}, Options{}, "option mtu=abc: not a number"},
		{network.Network{Name: "x", Options: map[string]string{"vlan": "5000"}}, Options{}, "vlan ID 5000 must be between 0 and 4094"},
		{network.Network{Name: "x", Options: map[string]string{"isolate": "maybe"}}, Options{}, "option isolate=maybe: want true, false or strict"},
		{network.Network{Name: "x", Options: map[string]string{"metric": "-5"}}, Options{}, "option metric=-5"},
		{network.Network{Name: "x", Options: map[string]string{"no_default_route": "perhaps"}}, Options{}, "option no_default_route=perhaps"},
		{network.Network{Name: "x", Options: map[string]string{"mode": "foo"}}, Options{}, `unknown bridge mode "foo" (want managed, unmanaged)`},
		{network.Network{Name: "x", Driver: "macvlan", Options: map[string]string{"mode": "l3"}}, Options{}, `unknown macvlan mode "l3"`},
		{network.Network{Name: "x", Driver: "macvlan", Options: map[string]string{"isolate": "true"}}, Options{}, "unsupported macvlan network option isolate"},
		{network.Network{Name: "x", Driver: "ipvlan", Options: map[string]string{"bclim": "1"}}, Options{}, "unsupported ipvlan network option bclim"},
		{network.Network{Name: "x", Driver: "macvlan", NetworkInterface: "nosuch0", Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("10.50.0.0/24")}}}, Options{}, "parent interface nosuch0 does not exist"},
		{network.Network{Name: "x", Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("10.50.0.0/24"), LeaseRange: &network.LeaseRange{StartIP: netip.MustParseAddr("10.51.0.1")}}}}, Options{}, "lease range start ip 10.51.0.1 not in subnet 10.50.0.0/24"},
		{network.Network{Name: "x", Routes: []network.Route{{Destination: netip.MustParsePrefix("10.9.0.1/16"), Gateway: netip.MustParseAddr("10.89.0.7")}}}, Options{}, "invalid route: destination 10.9.0.1/16 must be a network address"},
		{network.Network{Name: "x"}, Options{SubnetPools: []SubnetPool{{netip.MustParsePrefix("10.88.0.0/16"), 24}}}, "could not find free subnet"},
	}
	for _, tc := range cases {
		u := used()
		u.HostInterfaces = []string{"lo", "eth0"}
		_, err := Complete(tc.n, u, tc.opts, now)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.n, err, tc.want)
		}
	}
	_, err := Complete(network.Network{Name: "podman"}, used(), Options{}, now)
	if !errors.Is(err, ErrExists) {
		t.Errorf("want ErrExists, got %v", err)
	}
}

func TestAutomaticNames(t *testing.T) {
	u := Used{Interfaces: []string{"podman0"}, Names: map[string]string{"podman": "x"}}
	n, err := Complete(network.Network{}, u, Options{}, now)
	if err != nil || n.Name != "podman1" || n.NetworkInterface != "podman1" {
		t.Fatalf("first automatic name: %v %s/%s", err, n.Name, n.NetworkInterface)
	}
	// A named network took bridge podman1: the next automatic name skips it.
	u.Interfaces = append(u.Interfaces, "podman1")
	u.Names["a2net"] = "y"
	n, err = Complete(network.Network{}, u, Options{}, now)
	if err != nil || n.Name != "podman2" {
		t.Fatalf("second automatic name: %v %s", err, n.Name)
	}
	// A network named podman2 (bridge elsewhere) is skipped too.
	u.Names["podman2"] = "z"
	if got := FreeDeviceName(u, ""); got != "podman3" {
		t.Errorf("FreeDeviceName = %s, want podman3", got)
	}
}

func TestIPv6AddsMissingFamily(t *testing.T) {
	n, err := Complete(network.Network{Name: "v6only", IPv6Enabled: true, Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("fd00:9::/64")}}}, used(), Options{}, now)
	if err != nil || len(n.Subnets) != 2 || !n.Subnets[1].Subnet.Addr().Is4() {
		t.Errorf("--ipv6 with only an IPv6 subnet should add an IPv4 one: %v %+v", err, n.Subnets)
	}
	n, err = Complete(network.Network{Name: "v6plain", Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("fd00:9::/64")}}}, used(), Options{}, now)
	if err != nil || len(n.Subnets) != 1 || !n.IPv6Enabled {
		t.Errorf("an IPv6 subnet alone without --ipv6: %v %+v", err, n)
	}
}
