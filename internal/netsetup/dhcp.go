package netsetup

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/berthnet/berth/internal/dhcpproxy"
	proxypb "github.com/berthnet/berth/internal/dhcpproxy/proto"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
)

// DefaultDHCPProxySocket is where netavark's DHCP proxy listens.
const DefaultDHCPProxySocket = dhcpproxy.DefaultSocket

// proxyCallTimeout bounds one call to the DHCP proxy; the proxy's own
// timeout (8 s by default) ends a lease request that gets no answer first.
const proxyCallTimeout = 2 * time.Minute

// dhcpLease is what a DHCP lease adds to an attachment's status.
type dhcpLease struct {
	gateway netip.Addr
	dns     []netip.Addr
	domain  string
}

func (m *Manager) proxySocket() string {
	if m.cfg.DHCPProxySocket != "" {
		return m.cfg.DHCPProxySocket
	}
	return DefaultDHCPProxySocket
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
func (m *Manager) leaseDHCP(ctx context.Context, ctrNS *netns.NetNS, hostH, ctrH *link.Handle, at *attachment, o *network.Options, rb *undo) error {
	if err := m.fail("dhcp"); err != nil {
		return err
	}
	n := at.net
	ifname := at.opts.InterfaceName
	def := uint32(100)
	if n.Driver != network.DriverBridge {
		def = dhcpproxy.DefaultMetric
	}
	hostname := o.ContainerHostname
	if hostname == "" {
		hostname = o.ContainerName
	}
	cfg := &proxypb.NetworkConfig{
		HostIface:        dhcpParent(hostH, n),
		ContainerIface:   ifname,
		ContainerMacAddr: at.mac,
		HostName:         hostname,
		NsPath:           ctrNS.Path(),
		ContainerId:      o.ContainerID,
		Metric:           n.Metric(def),
		NoDefaultRoute:   n.Internal || n.NoDefaultRoute(),
	}
	c, err := dhcpproxy.Dial(m.proxySocket())
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, proxyCallTimeout)
	defer cancel()
	lease, err := c.Setup(cctx, cfg)
	if err != nil {
		return fmt.Errorf("get dhcp lease for %s: %w", ifname, err)
	}
	rb.push(func() error { return m.releaseDHCP(context.Background(), cfg) })

	ip, err := netip.ParseAddr(lease.GetYiaddr())
	if err != nil {
		return fmt.Errorf("read dhcp lease for %s: bad address %q", ifname, lease.GetYiaddr())
	}
	mask, err := netip.ParseAddr(lease.GetSubnetMask())
	ones, size := 0, 0
	if err == nil && mask.Is4() {
		ones, size = net.IPMask(mask.AsSlice()).Size()
	}
	if size != 32 {
		return fmt.Errorf("read dhcp lease for %s: bad subnet mask %q", ifname, lease.GetSubnetMask())
	}
	at.addrs = []netip.Prefix{netip.PrefixFrom(ip, ones)}
	d := &dhcpLease{domain: lease.GetDomainName()}
	if gws := lease.GetGateways(); len(gws) > 0 {
		d.gateway, _ = netip.ParseAddr(gws[0])
	}
	for _, s := range lease.GetDnsServers() {
		if a, err := netip.ParseAddr(s); err == nil {
			d.dns = append(d.dns, a)
		}
	}
	at.dhcp = d

	// The network's static routes, now that their gateways are reachable.
	if routes := o.NetworkInfo[n.Name].Routes; len(routes) > 0 {
		l, err := ctrH.ByName(ifname)
		if err != nil {
			return fmt.Errorf("find container interface: %w", err)
		}
		withRoutes := *at
		withRoutes.net.Routes = routes
		withRoutes.net.Subnets = nil
		if err := m.addRoutes(ctrH, l, &withRoutes); err != nil {
			return err
		}
	}
	return nil
}

// releaseDHCP tells the proxy to stop renewing and release the lease.
func (m *Manager) releaseDHCP(ctx context.Context, cfg *proxypb.NetworkConfig) error {
	c, err := dhcpproxy.Dial(m.proxySocket())
	if err != nil {
		return fmt.Errorf("release dhcp lease of %s: %w", cfg.ContainerIface, err)
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, proxyCallTimeout)
	defer cancel()
	if _, err := c.Teardown(cctx, cfg); err != nil {
		return fmt.Errorf("release dhcp lease of %s: %w", cfg.ContainerIface, err)
	}
	return nil
}

// teardownDHCP releases the lease of a dhcp network's interface before the
// interface goes (the DHCPRELEASE leaves through it). Without the namespace
// the proxy finds the lease by container ID and interface name.
func (m *Manager) teardownDHCP(ctx context.Context, ctrH *link.Handle, nsPath, ctrID string, n network.Network, ifname string) error {
	cfg := &proxypb.NetworkConfig{ContainerIface: ifname, NsPath: nsPath, ContainerId: ctrID, HostIface: n.NetworkInterface}
	if ctrH != nil {
		if l, err := ctrH.ByName(ifname); err == nil {
			cfg.ContainerMacAddr = l.Attrs().HardwareAddr.String()
		}
	}
	return m.releaseDHCP(ctx, cfg)
}
