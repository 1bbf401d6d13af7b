package firewall

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

func TestExpandFamiliesRangesAndHostIPs(t *testing.T) {
	pf := PortForward{
		ContainerID: "c1",
		IPv4:        netip.MustParseAddr("198.19.0.2"),
		IPv6:        netip.MustParseAddr("fd00::2"),
		Mappings: []network.PortMapping{
			{HostPort: 8080, ContainerPort: 80, Protocol: "TCP", Range: 1},
			{HostPort: 15000, ContainerPort: 5000, Protocol: "udp", Range: 3, HostIP: "127.0.0.1"},
			{HostPort: 9000, ContainerPort: 90, Protocol: "sctp", HostIP: "::1"},
			{HostPort: 7000, ContainerPort: 70, Protocol: "tcp", HostIP: "0.0.0.0"},
		},
	}
	got := Describe(nil, []PortForward{pf})
	want := `forward tcp/*:8080 -> 198.19.0.2:80
forward udp/127.0.0.1:15000 -> 198.19.0.2:5000
forward udp/127.0.0.1:15001 -> 198.19.0.2:5001
forward udp/127.0.0.1:15002 -> 198.19.0.2:5002
forward tcp/*:7000 -> 198.19.0.2:70
forward tcp/*:8080 -> [fd00::2]:80
forward sctp/::1:9000 -> [fd00::2]:90
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Without an IPv6 address, nothing is forwarded over IPv6.
	pf.IPv6 = netip.Addr{}
	if _, v6 := pf.Expand(); len(v6) != 0 {
		t.Errorf("v6 forwards without a v6 address: %v", v6)
	}
}

func TestNeedsRouteLocalnet(t *testing.T) {
	c := netip.MustParseAddr("198.19.0.2")
	cases := []struct {
		host string
		want bool
	}{{"", true}, {"127.0.0.1", true}, {"198.18.0.1", false}, {"::1", false}}
	for _, tc := range cases {
		pf := PortForward{IPv4: c, IPv6: netip.MustParseAddr("fd00::2"), Mappings: []network.PortMapping{{HostPort: 1, ContainerPort: 1, Protocol: "tcp", HostIP: tc.host}}}
		if got := NeedsRouteLocalnet([]PortForward{pf}); got != tc.want {
			t.Errorf("host_ip %q: %v, want %v", tc.host, got, tc.want)
		}
	}
	if NeedsRouteLocalnet(nil) {
		t.Error("no ports needs no route_localnet")
	}
}

func TestDescribeNetworks(t *testing.T) {
	d := Describe([]NetworkRules{{Name: "b", ID: "bbbbbbbbbb", Bridge: "br1", Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.1.7/24")}, Isolation: network.IsolateStrict, DNSPort: 53}}, nil)
	if !strings.Contains(d, "network b id=bbbbbbbb bridge=br1 isolate=strict dns=53") || !strings.Contains(d, "masquerade 198.19.1.0/24") {
		t.Errorf("%s", d)
	}
}

func TestMark(t *testing.T) {
	for id, want := range map[string]string{
		"4a59abe2f59b": "berth net 4a59abe2f59b",
		"web_net-1.a":  "berth net web_net-1.a",
		`a"b\c d`:      "berth net a_b_c_d",
	} {
		got := Mark(id)
		if got != want {
			t.Errorf("Mark(%q) = %q, want %q", id, got, want)
		}
		if back, ok := MarkedID(got); !ok || Mark(back) != got {
			t.Errorf("MarkedID(%q) = %q, %v", got, back, ok)
		}
	}
	if got := Mark(strings.Repeat("a", 300)); len(got) != len(MarkPrefix)+200 {
		t.Errorf("long ID: mark of %d bytes", len(got))
	}
	for _, c := range []string{"berth", "berth net ", "berth network x", ""} {
		if id, ok := MarkedID(c); ok {
			t.Errorf("MarkedID(%q) = %q, true", c, id)
		}
	}
}
