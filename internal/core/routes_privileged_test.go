package core_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

func route(dst, gw, typ string) network.Route {
	r := network.Route{Destination: netip.MustParsePrefix(dst), RouteType: typ}
	if gw != "" {
		r.Gateway = netip.MustParseAddr(gw)
	}
	return r
}

// checkRoutes sets up a dual-stack bridge network with routes in ctr,
// checks that the routes in want are there (as `ip route` prints them),
// tears down and checks that no route to their destinations is left.
func checkRoutes(t *testing.T, tp *topo, ctr *nettest.NS, routes []network.Route, want []string) {
	t.Helper()
	n := bridgeNet("rt", "brt0", "198.19.41.0/24", "198.19.41.1")
	n.Subnets = append(n.Subnets, network.Subnet{Subnet: netip.MustParsePrefix("fd10:88:a::/64"), Gateway: netip.MustParseAddr("fd10:88:a::1")})
	n.IPv6Enabled = true
	n.Routes = routes
	o := opts("sr1", "rt", n, "198.19.41.2")
	o.Networks[0].StaticIPs = append(o.Networks[0].StaticIPs, netip.MustParseAddr("fd10:88:a::2"))
	if _, err := tp.m.Setup(context.Background(), ctr.Path(), o); err != nil {
		t.Fatalf("setup: %v", err)
	}
	show := func() string { return run(t, ctr, "ip", "route", "show") + run(t, ctr, "ip", "-6", "route", "show") }
	got := show()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("after setup, missing %q in:\n%s", w, got)
		}
	}
	if err := tp.m.Teardown(context.Background(), ctr.Path(), o); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	got = show()
	for _, r := range routes {
		if strings.Contains(got, r.Destination.String()) {
			t.Errorf("after teardown, route to %s left in:\n%s", r.Destination, got)
		}
	}
}

// Static routes whose gateway sits behind another of the container's
// links are set (the kernel picks the link) and removed at teardown,
// though they do not go with the network's link.
func TestPrivilegedStaticRoutesViaAnyLink(t *testing.T) {
	tp := newTopo(t, nil, nil)
	ctr := nettest.NewNS(t, nettest.RandName("ctr"))
	side := nettest.NewNS(t, "side")
	nettest.Connect(t, ctr, "side0", netip.MustParsePrefix("198.19.40.10/24"), side, "eth0", netip.MustParsePrefix("198.19.40.1/24"))
	nettest.Connect(t, ctr, "side1", netip.MustParsePrefix("fd10:49:b::2/64"), side, "eth1", netip.MustParsePrefix("fd10:49:b::30/64"))
	checkRoutes(t, tp, ctr, []network.Route{
		route("198.19.42.0/24", "198.19.41.3", ""),
		route("198.19.43.0/24", "198.19.40.1", ""),
		route("fd10:51:b::/64", "fd10:49:b::30", ""),
	}, []string{
		"198.19.42.0/24 via 198.19.41.3 dev eth0",
		"198.19.43.0/24 via 198.19.40.1 dev side0",
		"fd10:51:b::/64 via fd10:49:b::30 dev side1",
	})
	// The routes of the container's own links stay.
	if got := run(t, ctr, "ip", "route", "show"); !strings.Contains(got, "198.19.40.0/24 dev side0") {
		t.Errorf("teardown removed the container's own routes:\n%s", got)
	}
}

// Blackhole, unreachable and prohibit routes name no link, so teardown
// must remove them itself.
func TestPrivilegedTypedRoutesRemovedAtTeardown(t *testing.T) {
	tp := newTopo(t, nil, nil)
	ctr := nettest.NewNS(t, nettest.RandName("ctr"))
	checkRoutes(t, tp, ctr, []network.Route{
		route("198.19.44.0/24", "", "blackhole"),
		route("198.19.45.0/24", "", "unreachable"),
		route("198.19.46.0/24", "", "prohibit"),
		route("fd10:89:b::/64", "", "blackhole"),
		route("fd10:89:c::/64", "", "prohibit"),
	}, []string{
		"blackhole 198.19.44.0/24",
		"unreachable 198.19.45.0/24",
		"prohibit 198.19.46.0/24",
		"blackhole fd10:89:b::/64",
		"prohibit fd10:89:c::/64",
	})
}

// A static IP that is the network's gateway is taken as netavark 2.1
// takes it (the container shadows the gateway): setup works and the
// container has the address.
func TestPrivilegedStaticIPIsGateway(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("gwip", "bgwip0", "198.19.47.0/24", "198.19.47.1")
	ctr1, _ := tp.container(t, opts("g1", "gwip", n, "198.19.47.1"))
	tp.container(t, opts("g2", "gwip2", n, "198.19.47.2"))
	if got := run(t, ctr1, "ip", "-4", "addr", "show", "eth0"); !strings.Contains(got, "198.19.47.1/24") {
		t.Errorf("container address:\n%s", got)
	}
}
