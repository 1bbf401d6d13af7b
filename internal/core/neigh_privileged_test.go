package core_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// A container that takes over the address of one just removed (a restart
// with a static IP, IPAM handing the address out again) answers within an
// ARP retry (3 s here; the ARP request itself can race the bridge port
// coming up), even when its gratuitous ARP is lost: the host does not keep
// sending to the old container's MAC until its neighbour entry times out
// (a REACHABLE entry lasts 15 to 45 s). The test drops the gratuitous ARPs itself,
// with a rule in its host namespace.
func TestPrivilegedReusedAddressAnswersAtOnce(t *testing.T) {
	tp := newTopo(t, nil, nil)
	n := bridgeNet("reuse", "breuse0", "198.19.21.0/24", "198.19.21.1")
	tp.container(t, opts("anchor", "anchor", n, "198.19.21.3")) // keeps the bridge and its neighbour table
	for _, cmd := range [][]string{
		{"add", "table", "bridge", "dropgarp"},
		{"add", "chain", "bridge", "dropgarp", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "bridge", "dropgarp", "in", "arp", "saddr", "ip", "198.19.21.2", "arp", "daddr", "ip", "198.19.21.2", "drop"},
	} {
		if out, err := nettest.Run(tp.host, 5*time.Second, "nft", cmd...); err != nil {
			t.Fatalf("drop gratuitous ARP: %v %s", err, out)
		}
	}
	pm := network.PortMapping{HostPort: 8094, ContainerPort: 80, Protocol: "tcp", Range: 1}
	for i := range 3 {
		o := opts(fmt.Sprintf("r%d", i), fmt.Sprintf("r%d", i), n, "198.19.21.2", pm)
		ns := nettest.NewNS(t, nettest.RandName("ctr"))
		if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
			t.Fatal(err)
		}
		l := nettest.Listen(t, ns, "tcp4", "0.0.0.0:80")
		nettest.ServeBanner(l, o.ContainerName)
		if got, err := nettest.FetchWithin(tp.outside, "tcp4", "198.18.0.1:8094", 3*time.Second); err != nil || got != o.ContainerName {
			nb, _ := nettest.Run(tp.host, 5*time.Second, "ip", "neigh", "show", "198.19.21.2")
			t.Errorf("container %d on the reused address: %q %v (host neighbour: %s)", i, got, err, nb)
		}
		l.Close()
		if err := tp.m.Teardown(context.Background(), ns.Path(), o); err != nil {
			t.Fatal(err)
		}
	}
}
