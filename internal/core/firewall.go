package core

import (
	"fmt"
	"strings"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/beside"
	"github.com/berthnet/berth/internal/firewall/firewalld"
	"github.com/berthnet/berth/internal/firewall/iptables"
	"github.com/berthnet/berth/internal/firewall/nftables"
	"github.com/berthnet/berth/internal/firewall/none"
	"github.com/berthnet/berth/internal/netns"
)

// FirewallDrivers are the names NewFirewall accepts (besides "", the
// default), in the words of netavark's firewall_driver.
var FirewallDrivers = []string{firewall.DriverNftables, firewall.DriverIptables, firewall.DriverFirewalld, firewall.DriverNone}

var (
	_ firewall.Checker = (*nftables.Driver)(nil)
	_ firewall.Checker = none.Driver{}
)

// NewFirewall returns the firewall driver called name ("" is nftables,
// case does not matter) that programs the firewall of host, or of the
// calling process's network namespace when host is nil. The nftables and
// iptables drivers keep berth's accept rules in other programs' forward
// chains that drop by policy (Docker's DOCKER-USER, a host's own nftables
// table; see beside.Wrap). In the caller's namespace they also live
// alongside a firewalld on the system bus, as netavark's drivers do
// (firewalld.Alongside). An unknown name is firewall.ErrUnknownDriver,
// with the valid names in the message; callers add the field the name
// came from.
func NewFirewall(name string, host *netns.NetNS) (firewall.Driver, error) {
	fd, path := -1, ""
	if host != nil {
		fd, path = host.Fd(), host.Path()
	}
	var d firewall.Driver
	switch strings.ToLower(name) {
	case "", firewall.DriverNftables:
		nft := nftables.New(fd)
		d = beside.Wrap(nft, beside.Options{Nft: nft, Outbound: true, NetNSPath: path})
	case firewall.DriverIptables:
		ipt, err := iptables.New(iptables.Options{NetNSPath: path})
		if err != nil {
			return nil, fmt.Errorf("firewall driver iptables: %w", err)
		}
		d = beside.Wrap(ipt, beside.Options{Nft: nftables.New(fd), Iptables: ipt, NetNSPath: path})
	case firewall.DriverNone:
		return none.Driver{}, nil
	case firewall.DriverFirewalld:
		// firewalld is reached over the D-Bus system bus, wherever
		// host is.
		return firewalld.New(firewalld.Options{}), nil
	default:
		return nil, fmt.Errorf("%w %q (want %s)", firewall.ErrUnknownDriver, name, validDrivers())
	}
	if host != nil {
		return d, nil
	}
	return firewalld.Alongside(d, firewalld.Options{}), nil
}

func validDrivers() string {
	n := len(FirewallDrivers)
	return strings.Join(FirewallDrivers[:n-1], ", ") + " or " + FirewallDrivers[n-1]
}
