package dhcpproxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/berthnet/berth/internal/core"
	proxypb "github.com/berthnet/berth/internal/dhcpproxy/proto"
)

// Leaser is core's DHCP client: each call dials the proxy's socket,
// makes one gRPC call and closes the connection.
type Leaser struct {
	// Socket is the proxy's unix socket (DefaultSocket when empty).
	Socket string
}

var _ core.DHCPClient = Leaser{}

// NewLeaser returns a Leaser of the proxy at socket ("" for
// DefaultSocket).
func NewLeaser(socket string) core.DHCPClient { return Leaser{Socket: socket} }

func (l Leaser) socket() string {
	if l.Socket == "" {
		return DefaultSocket
	}
	return l.Socket
}

func config(r core.DHCPRequest) *proxypb.NetworkConfig {
	return &proxypb.NetworkConfig{
		HostIface:        r.HostIface,
		ContainerIface:   r.ContainerIface,
		ContainerMacAddr: r.ContainerMAC,
		HostName:         r.HostName,
		NsPath:           r.NsPath,
		ContainerId:      r.ContainerID,
		Metric:           r.Metric,
		NoDefaultRoute:   r.NoDefaultRoute,
	}
}

// Lease asks the proxy for a lease (NetavarkProxy.Setup) and converts it.
func (l Leaser) Lease(ctx context.Context, r core.DHCPRequest) (core.DHCPLease, error) {
	c, err := Dial(l.socket())
	if err != nil {
		return core.DHCPLease{}, err
	}
	defer c.Close()
	lease, err := c.Setup(ctx, config(r))
	if err != nil {
		return core.DHCPLease{}, err
	}
	return convertLease(lease)
}

// Release releases a lease (NetavarkProxy.Teardown).
func (l Leaser) Release(ctx context.Context, r core.DHCPRequest) error {
	c, err := Dial(l.socket())
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Teardown(ctx, config(r))
	return err
}

// convertLease reads the proxy's lease message.
func convertLease(lease *proxypb.Lease) (core.DHCPLease, error) {
	ip, err := netip.ParseAddr(lease.GetYiaddr())
	if err != nil {
		return core.DHCPLease{}, fmt.Errorf("bad address %q in the lease", lease.GetYiaddr())
	}
	mask, err := netip.ParseAddr(lease.GetSubnetMask())
	ones, size := 0, 0
	if err == nil && mask.Is4() {
		ones, size = net.IPMask(mask.AsSlice()).Size()
	}
	if size != 32 {
		return core.DHCPLease{}, fmt.Errorf("bad subnet mask %q in the lease", lease.GetSubnetMask())
	}
	out := core.DHCPLease{Addr: netip.PrefixFrom(ip, ones), Domain: lease.GetDomainName()}
	for _, g := range lease.GetGateways() {
		if a, err := netip.ParseAddr(g); err == nil {
			out.Gateways = append(out.Gateways, a)
		}
	}
	for _, s := range lease.GetDnsServers() {
		if a, err := netip.ParseAddr(s); err == nil {
			out.DNS = append(out.DNS, a)
		}
	}
	return out, nil
}
