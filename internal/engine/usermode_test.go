package engine

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/usernet"
)

func TestForwardsOf(t *testing.T) {
	ports := []network.PortMapping{
		{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp", Range: 2},
		{HostPort: 5353, ContainerPort: 53, Protocol: "udp"},
	}
	g := netip.MustParseAddr("10.0.2.100")
	fs, err := forwardsOf(ports, g, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []usernet.Forward{
		{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, GuestAddr: g, GuestPort: 80},
		{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 8081, GuestAddr: g, GuestPort: 81},
		{Proto: "udp", HostPort: 5353, GuestAddr: g, GuestPort: 53},
	}
	if !reflect.DeepEqual(fs, want) {
		t.Errorf("forwards %+v, want %+v", fs, want)
	}
	// Into the rootless netns: host port to the same port.
	fs, _ = forwardsOf(ports[:1], g, true)
	if fs[1].GuestPort != 8081 {
		t.Errorf("toHost: %+v", fs)
	}
	if _, err := forwardsOf([]network.PortMapping{{HostPort: 9, ContainerPort: 9, Protocol: "sctp"}}, g, false); err == nil || !strings.Contains(err.Error(), "tcp and udp only") {
		t.Errorf("sctp: %v", err)
	}
	// A rootless bridge container: TCP straight into its namespace, UDP
	// through the uplink's address and the firewall.
	gw := netip.MustParseAddr("198.19.5.1")
	res := map[string]network.StatusBlock{"n": {Interfaces: map[string]network.Interface{"eth0": {Subnets: []network.NetAddress{{IPNet: netip.MustParsePrefix("198.19.5.2/24"), Gateway: &gw}}}}}}
	fs, err = bridgeForwards(ports, "/run/x/netns", res, []string{"n"})
	if err != nil {
		t.Fatal(err)
	}
	if f := fs[0]; f.NetNS != "/run/x/netns" || f.GuestAddr.String() != "198.19.5.2" || f.GuestPort != 80 || f.Gateway != gw {
		t.Errorf("tcp: %+v", f)
	}
	if f := fs[2]; f.NetNS != "" || f.GuestAddr.String() != "10.0.2.100" || f.GuestPort != 5353 {
		t.Errorf("udp: %+v", f)
	}
}
