package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// outbound_addr4 (netavark 2.x): a network's outgoing traffic leaves from
// that host address instead of the outgoing interface's own, with both
// firewall drivers; an address the host does not have is refused before
// anything is made.
func TestPrivilegedOutboundAddr(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			tp := newTopo(t, d.new, nil)
			if out, err := nettest.Run(tp.host, 5*time.Second, "ip", "addr", "add", "198.18.0.3/24", "dev", "uplink0"); err != nil {
				t.Fatalf("%v %s", err, out)
			}
			peers := nettest.ServeBanner(nettest.Listen(t, tp.outside, "tcp4", "198.18.0.2:80"), "outside")
			n := bridgeNet("ob", "brob0", "198.19.24.0/24", "198.19.24.1")
			n.Options = map[string]string{network.OptOutboundAddr4: "198.18.0.3"}
			c, _ := tp.container(t, opts("o1", "ob", n, "198.19.24.2"))
			if got, err := nettest.Fetch(c, "tcp4", "198.18.0.2:80"); err != nil || got != "outside" {
				t.Fatalf("egress: %q %v", got, err)
			}
			if p := <-peers; !strings.HasPrefix(p, "198.18.0.3:") {
				t.Errorf("outside saw the container as %s, want the outbound address 198.18.0.3", p)
			}

			bad := bridgeNet("obx", "brobx0", "198.19.25.0/24", "198.19.25.1")
			bad.Options = map[string]string{network.OptOutboundAddr4: "198.18.0.99"}
			ns := nettest.NewNS(t, nettest.RandName("ctr"))
			if _, err := tp.m.Setup(context.Background(), ns.Path(), opts("o2", "obx", bad, "198.19.25.2")); !errors.Is(err, network.ErrInvalid) || !strings.Contains(err.Error(), "not an address of this host") {
				t.Errorf("an outbound address the host does not have: %v", err)
			}
			if links := nettest.Links(t, ns); len(links) != 1 {
				t.Errorf("the refused setup left links %v", links)
			}
		})
	}
}
