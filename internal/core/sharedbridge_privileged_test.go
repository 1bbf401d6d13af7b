package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// Two networks (two IDs) that name the same bridge: after both of their
// containers leave, nothing of berth's is left, in either order.
func TestPrivilegedTwoNetworksOneBridgeLeaveNothing(t *testing.T) {
	for _, order := range []string{"first-out-first", "last-out-first"} {
		t.Run(order, func(t *testing.T) {
			tp := newTopo(t, nil, nil)
			n1 := bridgeNet("shared1", "brshared0", "198.19.16.0/24", "198.19.16.1")
			n2 := bridgeNet("shared2", "brshared0", "198.19.17.0/24", "198.19.17.1")
			n1.Options = map[string]string{"isolate": "true"}
			o1 := opts("s1", "s1", n1, "198.19.16.2", network.PortMapping{ContainerPort: 80, HostPort: 8095, Protocol: "tcp", Range: 1})
			o2 := opts("s2", "s2", n2, "198.19.17.2")
			ns1 := nettest.NewNS(t, nettest.RandName("ctr"))
			ns2 := nettest.NewNS(t, nettest.RandName("ctr"))
			for _, c := range []struct {
				ns *nettest.NS
				o  *network.Options
			}{{ns1, o1}, {ns2, o2}} {
				if _, err := tp.m.Setup(context.Background(), c.ns.Path(), c.o); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			first, second := [2]any{ns1, o1}, [2]any{ns2, o2}
			if order == "last-out-first" {
				first, second = second, first
			}
			for _, c := range [][2]any{first, second} {
				if err := tp.m.Teardown(context.Background(), c[0].(*nettest.NS).Path(), c[1].(*network.Options)); err != nil {
					t.Fatalf("teardown: %v", err)
				}
			}
			out, _ := nettest.Run(tp.host, 5*time.Second, "nft", "list", "ruleset")
			if strings.TrimSpace(out) != "" {
				t.Errorf("left %d nft lines:\n%s", strings.Count(out, "\n"), out)
			}
			for _, l := range nettest.Links(t, tp.host) {
				if l != "lo" && l != "uplink0" {
					t.Errorf("left link %s", l)
				}
			}
		})
	}
}
