package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckSubnetRefusesReservedAndTinySubnets(t *testing.T) {
	bad := map[string]string{
		"127.0.0.0/8":     "loopback range 127.0.0.0/8",
		"127.5.0.0/16":    "loopback range",
		"::1/128":         "loopback address ::1/128",
		"224.0.0.0/4":     "multicast range 224.0.0.0/4",
		"239.1.0.0/16":    "multicast range",
		"ff00::/8":        "multicast range ff00::/8",
		"ff02::/16":       "multicast range",
		"169.254.0.0/16":  "link-local range 169.254.0.0/16",
		"169.254.10.0/24": "link-local range",
		"fe80::/10":       "link-local range fe80::/10",
		"fe80::/64":       "link-local range",
		"0.0.0.0/8":       "unspecified",
		"0.0.0.0/0":       "unspecified",
		"::/0":            "unspecified",
		"::/64":           "unspecified",
		"10.0.0.7/32":     "10.0.0.7/32 has no room for a gateway and a container; want a prefix length of /30 or shorter",
		"10.0.0.6/31":     "want a prefix length of /30 or shorter",
		"fd00::1/128":     "want a prefix length of /126 or shorter",
		"fd00::/127":      "want a prefix length of /126 or shorter",
	}
	for in, want := range bad {
		err := CheckSubnet(netip.MustParsePrefix(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
	for _, in := range []string{"10.88.0.0/16", "192.168.1.0/30", "198.19.0.0/24", "fd00::/64", "fd00::/126", "2001:db8::/64", "100.64.0.0/10"} {
		if err := CheckSubnet(netip.MustParsePrefix(in)); err != nil {
			t.Errorf("%s refused: %v", in, err)
		}
	}
}

func TestCheckHostAddr(t *testing.T) {
	cases := []struct{ subnet, ip, want string }{
		{"10.1.0.0/24", "10.1.0.0", "network address of subnet 10.1.0.0/24; want an address from 10.1.0.1 to 10.1.0.254"},
		{"10.1.0.0/24", "10.1.0.255", "broadcast address of subnet 10.1.0.0/24; want an address from 10.1.0.1 to 10.1.0.254"},
		{"10.1.0.128/25", "10.1.0.128", "network address"},
		{"10.1.0.128/25", "10.1.0.255", "broadcast address"},
		{"fd00::/64", "fd00::", "network address of subnet fd00::/64; want an address from fd00::1 to fd00::ffff:ffff:ffff:ffff"},
		{"10.1.0.0/24", "10.1.0.1", ""},
		{"10.1.0.0/24", "10.1.0.254", ""},
		{"fd00::/64", "fd00::ffff:ffff:ffff:ffff", ""}, // IPv6 has no broadcast address
	}
	for _, c := range cases {
		err := CheckHostAddr(netip.MustParsePrefix(c.subnet), netip.MustParseAddr(c.ip))
		if c.want == "" {
			if err != nil {
				t.Errorf("%s in %s: %v", c.ip, c.subnet, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s in %s: got %v, want %q", c.ip, c.subnet, err, c.want)
		}
	}
}

func TestNetworkValidateRefusesBadSubnets(t *testing.T) {
	for _, sub := range []string{"127.0.0.0/8", "224.0.0.0/4", "169.254.0.0/16", "10.0.0.1/32", "fe80::/10", "ff00::/8", "::1/128", "fd00::/127"} {
		n := Network{Name: "n", Driver: DriverBridge, NetworkInterface: "br0", Subnets: []Subnet{{Subnet: netip.MustParsePrefix(sub)}}}
		err := n.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "network n.subnets[0].subnet" {
			t.Errorf("%s: got %v, want an error on network n.subnets[0].subnet", sub, err)
		}
	}
}

// What setup refuses under the newer rules, teardown still accepts, so
// that what an earlier setup left can be torn down.
func TestTeardownAcceptsWhatOnlySetupRefuses(t *testing.T) {
	in := &Options{
		ContainerID:  "c1",
		Networks:     Attachments{{Name: "n1", PerNetworkOptions: PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{netip.MustParseAddr("127.0.0.255")}}}},
		NetworkInfo:  map[string]Network{"n1": {Name: "n1", Driver: DriverBridge, NetworkInterface: "br1", Subnets: []Subnet{{Subnet: netip.MustParsePrefix("127.0.0.0/24")}}}},
		PortMappings: []PortMapping{{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 80, ContainerPort: 81, Protocol: "tcp"}},
	}
	if err := in.Validate(); err != nil {
		t.Errorf("teardown input refused: %v", err)
	}
	n := in.NetworkInfo["n1"]
	if err := n.ValidateExisting(); err != nil {
		t.Errorf("existing network refused: %v", err)
	}
	if err := n.Validate(); err == nil {
		t.Error("new network with a loopback subnet accepted")
	}
	if err := in.ValidateSetup(); err == nil {
		t.Error("setup input accepted")
	}
}

func TestSetupNeedsANetwork(t *testing.T) {
	for _, in := range []Attachments{nil, {}} {
		o := &Options{ContainerID: "c1", Networks: in, NetworkInfo: map[string]Network{}}
		err := o.ValidateSetup()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "networks" || !strings.Contains(fe.Msg, "must specify at least one network") {
			t.Errorf("networks %#v: got %v", in, err)
		}
		if err := o.Validate(); err != nil {
			t.Errorf("teardown input without networks refused: %v", err)
		}
	}
}

func TestCheckPortConflicts(t *testing.T) {
	pm := func(host, ctr, rng uint16, proto, ip string) PortMapping {
		return PortMapping{HostPort: host, ContainerPort: ctr, Range: rng, Protocol: proto, HostIP: ip}
	}
	cases := []struct {
		name string
		ms   []PortMapping
		want string // "" for no conflict
	}{
		{"distinct", []PortMapping{pm(80, 80, 1, "tcp", ""), pm(81, 80, 1, "tcp", "")}, ""},
		{"other protocol", []PortMapping{pm(80, 80, 1, "tcp", ""), pm(80, 81, 1, "udp", "")}, ""},
		{"other host ip", []PortMapping{pm(80, 80, 1, "tcp", "127.0.0.1"), pm(80, 81, 1, "tcp", "127.0.0.2")}, ""},
		{"specific and any", []PortMapping{pm(80, 80, 1, "tcp", "127.0.0.1"), pm(80, 81, 1, "tcp", "")}, ""},
		{"v4 any and v6 any", []PortMapping{pm(80, 80, 1, "tcp", "0.0.0.0"), pm(80, 81, 1, "tcp", "::")}, ""},
		{"same", []PortMapping{pm(80, 80, 1, "tcp", ""), pm(80, 81, 1, "TCP", "")},
			"host port 80/tcp (all addresses) is published twice: to container port 80 (mapping 0) and to container port 81 (mapping 1)"},
		{"same host ip", []PortMapping{pm(80, 80, 1, "udp", "127.0.0.1"), pm(80, 81, 1, "udp", "127.0.0.1")},
			"host port 80/udp (127.0.0.1) is published twice"},
		{"empty and 0.0.0.0", []PortMapping{pm(80, 80, 1, "tcp", ""), pm(80, 81, 1, "tcp", "0.0.0.0")}, "host port 80/tcp"},
		{"ranges overlap", []PortMapping{pm(1000, 2000, 100, "tcp", ""), pm(1050, 3000, 10, "tcp", "")},
			"host port 1050/tcp (all addresses) is published twice: to container port 2050 (mapping 0) and to container port 3000 (mapping 1)"},
		{"range inside a wider one", []PortMapping{pm(1000, 1000, 1000, "tcp", ""), pm(1200, 1200, 1, "tcp", ""), pm(1500, 80, 1, "tcp", "")},
			"host port 1200/tcp (all addresses) is published twice: to container port 1200 (mapping 0) and to container port 1200 (mapping 1)"},
		{"later mapping first", []PortMapping{pm(1500, 80, 1, "tcp", ""), pm(1000, 1000, 1000, "tcp", "")},
			"host port 1500/tcp (all addresses) is published twice: to container port 80 (mapping 0) and to container port 1500 (mapping 1)"},
		{"port to be chosen", []PortMapping{pm(0, 80, 1, "tcp", ""), pm(0, 81, 1, "tcp", "")}, ""},
	}
	for _, c := range cases {
		err := CheckPortConflicts(c.ms)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var pc *PortConflictError
		if !errors.As(err, &pc) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestCheckPortConflictsOfManyMappingsIsQuick(t *testing.T) {
	ms := []PortMapping{{HostPort: 10000, ContainerPort: 10000, Range: 10000, Protocol: "tcp"}}
	for i := 0; i < 20000; i++ {
		ms = append(ms, PortMapping{HostPort: uint16(30000 + i), ContainerPort: 80, Protocol: "tcp"})
	}
	if err := CheckPortConflicts(ms); err != nil {
		t.Fatal(err)
	}
	ms = append(ms, PortMapping{HostPort: 19999, ContainerPort: 5, Protocol: "tcp"})
	if err := CheckPortConflicts(ms); err == nil || !strings.Contains(err.Error(), "host port 19999/tcp") {
		t.Fatalf("got %v", err)
	}
}
