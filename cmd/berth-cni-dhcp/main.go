//go:debug containermaxprocs=0

// Command berth-cni-dhcp is berth's CNI plugins with the DHCP proxy's gRPC
// client and delegation to foreign IPAM plugins (libcni's pkg/invoke)
// linked in. The plugins in bin/berth-cni hand a call to it when a network
// leases its addresses by DHCP (berth-macvlan with berth-ipam in mode dhcp)
// or names another IPAM plugin (host-local, dhcp, static), so the common
// path stays free of gRPC, net/http and TLS. It is run as
// `berth-cni-dhcp PLUGIN`.
package main

import (
	"fmt"
	"os"

	"github.com/berthnet/berth/internal/compat/cni"
	"github.com/berthnet/berth/internal/compat/cni/delegate"
	"github.com/berthnet/berth/internal/dhcpproxy"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: berth-cni-dhcp PLUGIN (with the CNI environment and configuration)")
		os.Exit(2)
	}
	os.Exit(cni.Main(os.Args[1], cni.Env{DHCP: dhcpproxy.NewLeaser, Delegate: delegate.Invoke{}}))
}
