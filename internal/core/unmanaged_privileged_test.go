package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// A network without a subnets key gives its containers no addresses and
// ignores their static IPs, as netavark does (a mode=unmanaged bridge of
// the user's, addressed by other means); it used to crash setup.
func TestPrivilegedStaticIPsWithoutSubnets(t *testing.T) {
	tp := newTopo(t, nil, nil)
	if out, err := nettest.Run(tp.host, 5*time.Second, "ip", "link", "add", "brum0", "type", "bridge"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	n := bridgeNet("um", "brum0", "198.19.23.0/24", "198.19.23.1")
	n.Subnets = nil
	n.Options = map[string]string{network.OptMode: "unmanaged"}
	o := opts("u1", "um", n, "198.19.23.2")
	ctr, _ := tp.container(t, o)
	out, err := nettest.Run(ctr, 5*time.Second, "ip", "-4", "addr", "show", "eth0")
	if err != nil || strings.Contains(out, "inet ") {
		t.Errorf("eth0 on a network without subnets: %v\n%s", err, out)
	}
}
