package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rollback"
)

// DHCPClient asks a DHCP proxy (netavark's dhcp-proxy API) for leases on
// container interfaces. The proxy configures the address and default route
// in the container's namespace itself and keeps renewing.
type DHCPClient interface {
	// Lease gets a lease for r.ContainerIface and returns it.
	Lease(ctx context.Context, r DHCPRequest) (DHCPLease, error)
	// Release stops renewing and releases the lease of r.ContainerIface.
	Release(ctx context.Context, r DHCPRequest) error
}

// DHCPRequest names the interface a lease is for.
type DHCPRequest struct {
	HostIface      string // macvlan parent or bridge
	ContainerIface string
	ContainerMAC   string
	HostName       string
	NsPath         string
	ContainerID    string
	Metric         uint32
	NoDefaultRoute bool
}

// DHCPLease is what the proxy got from the DHCP server.
type DHCPLease struct {
	Addr     netip.Prefix
	Gateways []netip.Addr
	DNS      []netip.Addr
	Domain   string
}

// ErrNoDHCPClient: a network uses the dhcp IPAM driver but the Manager has
// no DHCP client.
var ErrNoDHCPClient = errors.New("no DHCP proxy client configured")

// DefaultDHCPMetric is the default route metric of a macvlan interface
// leased through DHCP (netavark's proxy uses 99, bridges 100).
const DefaultDHCPMetric = 99

// proxyCallTimeout bounds one call to the DHCP proxy; the proxy's own
// timeout (8 s by default) ends a lease request that gets no answer first.
const proxyCallTimeout = 2 * time.Minute

// dhcpLease is what a DHCP lease adds to an attachment's status.
type dhcpLease struct {
	gateway netip.Addr
	dns     []netip.Addr
	domain  string
}

// dhcpParent names the host side for the proxy: the macvlan parent (the
// default-route link when the network names none) or the bridge.
func dhcpParent(hostH *link.Handle, n network.Network) string {
	if n.NetworkInterface != "" || n.Driver == network.DriverBridge {
		return n.NetworkInterface
	}
	name, _ := hostH.DefaultRouteLink()
	return name
}

// leaseDHCP asks the DHCP proxy for a lease on the attachment's interface
// (which setupMacvlan or setupBridge created without an address). The proxy
// configures address and default route in the container namespace and
// keeps renewing; the network's static routes follow here.
func (m *Manager) leaseDHCP(ctx context.Context, ctrNS *netns.NetNS, hostH, ctrH *link.Handle, at *attachment, o *network.Options, rb *rollback.Stack) error {
	if err := m.fail("dhcp"); err != nil {
		return err
	}
	if m.cfg.DHCP == nil {
		return ErrNoDHCPClient
	}
	ifname := at.opts.InterfaceName
	req := dhcpRequest(ctrNS, hostH, at, o)
	cctx, cancel := context.WithTimeout(ctx, proxyCallTimeout)
	defer cancel()
	lease, err := m.cfg.DHCP.Lease(cctx, req)
	if err != nil {
		return fmt.Errorf("get dhcp lease for %s: %w", ifname, err)
	}
	rb.Push(func() error { return m.releaseDHCP(context.Background(), req) })
	at.addrs = []netip.Prefix{lease.Addr}
	d := &dhcpLease{domain: lease.Domain, dns: lease.DNS}
	if len(lease.Gateways) > 0 {
		d.gateway = lease.Gateways[0]
	}
	at.dhcp = d
	return m.addLeaseRoutes(ctrH, at, o)
}

// dhcpRequest is the lease request for the attachment's interface: the
// host interface the DHCP server is reached through, the container's
// hostname (else its name), and the metric and default-route choice of
// the network.
func dhcpRequest(ctrNS *netns.NetNS, hostH *link.Handle, at *attachment, o *network.Options) DHCPRequest {
	n := at.net
	def := uint32(100)
	if n.Driver != network.DriverBridge {
		def = DefaultDHCPMetric
	}
	hostname := o.ContainerHostname
	if hostname == "" {
		hostname = o.ContainerName
	}
	return DHCPRequest{
		HostIface:      dhcpParent(hostH, n),
		ContainerIface: at.opts.InterfaceName,
		ContainerMAC:   at.mac,
		HostName:       hostname,
		NsPath:         ctrNS.Path(),
		ContainerID:    o.ContainerID,
		Metric:         n.Metric(def),
		NoDefaultRoute: n.Internal || n.NoDefaultRoute(),
	}
}

// addLeaseRoutes adds the network's static routes (held back by attach)
// on the attachment's interface, now that the lease made their gateways
// reachable. On failure the routes added so far stay (they go when the
// link does).
func (m *Manager) addLeaseRoutes(ctrH *link.Handle, at *attachment, o *network.Options) error {
	routes := o.NetworkInfo[at.net.Name].Routes
	if len(routes) == 0 {
		return nil
	}
	l, err := ctrH.Link(at.opts.InterfaceName)
	if err != nil {
		return fmt.Errorf("find container interface: %w", err)
	}
	withRoutes := *at
	withRoutes.net.Routes = routes
	withRoutes.net.Subnets = nil
	return m.addRoutes(ctrH, l, &withRoutes)
}

// releaseDHCP tells the proxy to stop renewing and release the lease.
func (m *Manager) releaseDHCP(ctx context.Context, r DHCPRequest) error {
	if m.cfg.DHCP == nil {
		return fmt.Errorf("release dhcp lease of %s: %w", r.ContainerIface, ErrNoDHCPClient)
	}
	cctx, cancel := context.WithTimeout(ctx, proxyCallTimeout)
	defer cancel()
	if err := m.cfg.DHCP.Release(cctx, r); err != nil {
		return fmt.Errorf("release dhcp lease of %s: %w", r.ContainerIface, err)
	}
	return nil
}

// teardownDHCP releases the lease of a dhcp network's interface before the
// interface goes (the DHCPRELEASE leaves through it). Without the namespace
// the proxy finds the lease by container ID and interface name.
func (m *Manager) teardownDHCP(ctx context.Context, ctrH *link.Handle, nsPath, ctrID string, n network.Network, ifname string) error {
	r := DHCPRequest{ContainerIface: ifname, NsPath: nsPath, ContainerID: ctrID, HostIface: n.NetworkInterface}
	if ctrH != nil {
		if l, err := ctrH.Link(ifname); err == nil {
			r.ContainerMAC = l.MAC.String()
		}
	}
	return m.releaseDHCP(ctx, r)
}
