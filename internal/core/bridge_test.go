package core

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/sysctl"
)

// sysctlMap renders settings as "dotted.key=value" (with "?" after an
// optional key), for comparing.
func sysctlMap(set []sysctl.Setting) map[string]string {
	out := map[string]string{}
	for _, s := range set {
		k := strings.ReplaceAll(s.Key, "\x00", ".")
		if s.Optional {
			k += "?"
		}
		out[k] = s.Value
	}
	return out
}

func TestBridgeSysctls(t *testing.T) {
	v4 := network.Subnet{Subnet: netip.MustParsePrefix("198.18.0.0/24")}
	v6 := network.Subnet{Subnet: netip.MustParsePrefix("fd00:18::/64")}
	for _, tc := range []struct {
		name     string
		n        network.Network
		localnet bool
		want     map[string]string
	}{
		{"routed v4", network.Network{NetworkInterface: "br0", Subnets: []network.Subnet{v4}}, false, map[string]string{
			"net.ipv4.ip_forward":          "1",
			"net.ipv4.conf.br0.rp_filter?": "2",
		}},
		{"routed v4 with localnet", network.Network{NetworkInterface: "br0", Subnets: []network.Subnet{v4}}, true, map[string]string{
			"net.ipv4.ip_forward":              "1",
			"net.ipv4.conf.br0.rp_filter?":     "2",
			"net.ipv4.conf.br0.route_localnet": "1",
		}},
		{"routed dual stack", network.Network{NetworkInterface: "br0", Subnets: []network.Subnet{v4, v6}}, false, map[string]string{
			"net.ipv4.ip_forward":           "1",
			"net.ipv6.conf.all.forwarding":  "1",
			"net.ipv6.conf.br0.accept_dad?": "0",
			"net.ipv6.conf.br0.accept_ra?":  "0",
			"net.ipv4.conf.br0.rp_filter?":  "2",
		}},
		{"internal ignores localnet", network.Network{NetworkInterface: "br1", Internal: true, Subnets: []network.Subnet{v6}}, true, map[string]string{
			"net.ipv6.conf.br1.accept_dad?": "0",
			"net.ipv6.conf.br1.accept_ra?":  "0",
			"net.ipv4.conf.br1.rp_filter?":  "2",
			"net.ipv4.conf.br1.forwarding":  "0",
			"net.ipv6.conf.br1.forwarding?": "0",
		}},
	} {
		got := sysctlMap(bridgeSysctls(tc.n, tc.localnet))
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q (all: %v)", tc.name, k, got[k], v, got)
			}
		}
	}
}

func TestHostVethName(t *testing.T) {
	o := &network.Options{ContainerID: "c1", NetworkInfo: map[string]network.Network{"a": {Driver: network.DriverBridge}}}
	n := networkOf(o, "a")
	if n.Name != "a" {
		t.Fatalf("networkOf left the name out: %+v", n)
	}
	at := &attachment{net: n, ctrID: o.ContainerID}
	if got := at.hostVethName(); got != "" {
		t.Errorf("default name %q, want none (the kernel names it)", got)
	}
	if got, want := at.legacyHostVethName(), network.HostVethName("c1", "a"); got != want {
		t.Errorf("legacy name %q, want %q", got, want)
	}
	at.opts.Options = map[string]string{"host_interface_name": "myveth"}
	if got := at.hostVethName(); got != "myveth" {
		t.Errorf("named host end %q, want myveth", got)
	}
}

// A host end is the attachment's by its mark whatever the kernel named it;
// an unmarked one only by berth's old name while the state records it; a
// host_interface_name asked for must match too.
func TestOwnsHostVeth(t *testing.T) {
	n := network.Network{Name: "a", Driver: network.DriverBridge}
	at := &attachment{net: n, ctrID: "c1", opts: network.PerNetworkOptions{InterfaceName: "eth0"}}
	mark := at.hostVethMAC()
	other := link.DerivedMAC("someone else")
	for _, tc := range []struct {
		name     string
		l        link.Link
		asked    string
		recorded bool
		want     bool
	}{
		{"marked, kernel name", link.Link{Kind: "veth", Name: "veth0", MAC: mark}, "", false, true},
		{"unmarked, kernel name, recorded", link.Link{Kind: "veth", Name: "veth0", MAC: other}, "", true, false},
		{"unmarked, old name, recorded", link.Link{Kind: "veth", Name: at.legacyHostVethName(), MAC: other}, "", true, true},
		{"unmarked, old name, not recorded", link.Link{Kind: "veth", Name: at.legacyHostVethName(), MAC: other}, "", false, false},
		{"marked but not a veth", link.Link{Kind: "macvlan", Name: "veth0", MAC: mark}, "", false, false},
		{"asked name, marked", link.Link{Kind: "veth", Name: "my", MAC: mark}, "my", false, true},
		{"asked name, other name", link.Link{Kind: "veth", Name: "veth0", MAC: mark}, "my", false, false},
		{"asked name, unmarked, recorded", link.Link{Kind: "veth", Name: "my", MAC: other}, "my", true, true},
	} {
		at.opts.Options = nil
		if tc.asked != "" {
			at.opts.Options = map[string]string{"host_interface_name": tc.asked}
		}
		if got := at.ownsHostVeth(tc.l, tc.recorded); got != tc.want {
			t.Errorf("%s: owns = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStaticRoute(t *testing.T) {
	seven := uint32(7)
	dst := netip.MustParsePrefix("198.19.1.9/24")
	gw := netip.MustParseAddr("198.18.0.1")
	for _, tc := range []struct {
		rt   network.Route
		want link.Route
	}{
		{network.Route{Destination: dst, Gateway: gw}, link.Route{Dst: dst.Masked(), Via: gw, Metric: 100, Proto: link.ProtoStatic}},
		{network.Route{Destination: dst, Gateway: gw, Metric: &seven}, link.Route{Dst: dst.Masked(), Via: gw, Metric: 7, Proto: link.ProtoStatic}},
		{network.Route{Destination: dst, Gateway: gw, RouteType: "blackhole"}, link.Route{Dst: dst.Masked(), Metric: 100, Proto: link.ProtoStatic, Type: link.RouteBlackhole}},
		{network.Route{Destination: dst, RouteType: "unreachable"}, link.Route{Dst: dst.Masked(), Metric: 100, Proto: link.ProtoStatic, Type: link.RouteUnreachable}},
		{network.Route{Destination: dst, RouteType: "prohibit"}, link.Route{Dst: dst.Masked(), Metric: 100, Proto: link.ProtoStatic, Type: link.RouteProhibit}},
	} {
		if got := staticRoute(tc.rt, 100); got != tc.want {
			t.Errorf("%+v: got %+v, want %+v", tc.rt, got, tc.want)
		}
	}
}

// A network's failure names the network, and front-ends can take the
// cause out of it.
func TestNetworkError(t *testing.T) {
	cause := errors.New("boom")
	err := fmt.Errorf("setup: %w", &NetworkError{Network: "podman", Err: cause})
	var ne *NetworkError
	if err.Error() != "setup: network podman: boom" || !errors.As(err, &ne) || ne.Err != cause || !errors.Is(err, cause) {
		t.Errorf("%v", err)
	}
}
