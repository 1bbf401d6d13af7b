package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// After berth's rules were damaged from outside, the next setup (and the
// next teardown) of any container restores every other container's
// published ports, not only its own.
func TestPrivilegedSetupAndTeardownHealTheFirewall(t *testing.T) {
	damages := map[string][]string{
		"flush ruleset":   {"flush", "ruleset"},
		"flush hostports": {"flush", "chain", "inet", "berth", "hostports"},
		"flush forward":   {"flush", "chain", "inet", "berth", "forward"},
		"flush pf4any":    {"flush", "map", "inet", "berth", "pf4any"},
	}
	for name, cmd := range damages {
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) {
			tp := newTopo(t, nil, nil)
			n := bridgeNet("heal", "brheal0", "198.19.15.0/24", "198.19.15.1")
			for i, c := range []struct{ id, ip, banner string }{{"h1", "198.19.15.2", "one"}, {"h2", "198.19.15.3", "two"}} {
				ctr, _ := tp.container(t, opts(c.id, "heal"+c.id, n, c.ip, network.PortMapping{ContainerPort: 80, HostPort: uint16(8090 + i), Protocol: "tcp", Range: 1}))
				nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), c.banner)
			}
			reachable := func(when string) {
				t.Helper()
				for port, want := range map[string]string{"8090": "one", "8091": "two"} {
					if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:"+port); err != nil || got != want {
						t.Errorf("%s: port %s: %q %v", when, port, got, err)
					}
				}
			}
			reachable("before damage")
			table := func() string {
				out, err := nettest.Run(tp.host, 5*time.Second, "nft", "list", "table", "inet", "berth")
				if err != nil {
					t.Fatalf("nft list: %v %s", err, out)
				}
				return out
			}
			whole := table()
			same := func(when string) {
				t.Helper()
				if got := table(); got != whole {
					t.Errorf("%s: table is\n%s\nwant\n%s", when, got, whole)
				}
			}
			damage := func() {
				if out, err := nettest.Run(tp.host, 5*time.Second, "nft", cmd...); err != nil {
					t.Fatalf("nft %v: %v %s", cmd, err, out)
				}
				if _, err := nettest.FetchWithin(tp.outside, "tcp4", "198.18.0.1:8090", time.Second); err == nil && name != "flush forward" {
					t.Fatalf("%s did not break the published port", name)
				}
			}
			damage()
			o3 := opts("h3", "heal3", n, "198.19.15.4")
			ns3 := nettest.NewNS(t, nettest.RandName("ctr"))
			if _, err := tp.m.Setup(context.Background(), ns3.Path(), o3); err != nil {
				t.Fatalf("setup of a third container: %v", err)
			}
			reachable("after the next setup")
			if err := tp.m.Teardown(context.Background(), ns3.Path(), o3); err != nil {
				t.Fatalf("teardown of the third container: %v", err)
			}
			same("after the next setup and its teardown")
			if _, err := tp.m.Setup(context.Background(), ns3.Path(), o3); err != nil {
				t.Fatalf("setup of the third container again: %v", err)
			}
			damage()
			if err := tp.m.Teardown(context.Background(), ns3.Path(), o3); err != nil {
				t.Fatalf("teardown of the third container: %v", err)
			}
			reachable("after the next teardown")
			same("after the next teardown")
		})
	}
}
