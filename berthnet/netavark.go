package berthnet

import (
	"context"
	"net/netip"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/firewalld"
	"github.com/berthnet/berth/internal/network"
)

// Podman's model. Programs that already speak netavark's interface —
// berth's own netavark front-end and CLI, which read and write Podman's
// network files and do Podman's address allocation — hand a whole
// container to a Host at once with SetupNetavark and TeardownNetavark; Go
// programs that want berth to keep network definitions and addresses use
// CreateNetwork, Attach and Detach. Both run on the same core. The types
// are aliases of berth's model, whose JSON is netavark's (the setup input
// and its output).
type (
	// NetavarkOptions is one container's networks as Podman hands them to
	// `netavark setup` and `teardown`: container ID and name, published
	// ports, per-network options (static addresses, aliases, interface
	// name, MAC) and the networks' definitions.
	NetavarkOptions = network.Options
	// NetavarkNetwork is one network definition in Podman's format.
	NetavarkNetwork = network.Network
	// NetavarkStatus is netavark's answer for one network: the
	// container's interfaces with their addresses, and its DNS servers.
	NetavarkStatus = network.StatusBlock
	// FirewallDriver programs the host firewall (nftables, iptables,
	// none), for Config.FirewallDriver.
	FirewallDriver = firewall.Driver
	// DHCPClient leases addresses for DHCP networks, for Config.DHCP.
	DHCPClient = core.DHCPClient
)

// SetupNetavark attaches the namespace at netns to every network in o, in
// order, as `netavark setup` does, and returns one status per network. On
// failure nothing is left behind.
func (h *Host) SetupNetavark(ctx context.Context, netns string, o *NetavarkOptions) (map[string]NetavarkStatus, error) {
	return h.mgr.Setup(ctx, netns, o)
}

// TeardownNetavark detaches the namespace at netns from the networks in o,
// as `netavark teardown` does; when the namespace is gone, the host side is
// still cleaned up. It carries on past errors and returns them joined.
func (h *Host) TeardownNetavark(ctx context.Context, netns string, o *NetavarkOptions) error {
	return h.mgr.Teardown(ctx, netns, o)
}

// ReloadFirewall re-applies the firewall rules of every container set up
// through this Host's state (after the host's ruleset was flushed) and
// returns their IDs.
func (h *Host) ReloadFirewall(ctx context.Context) ([]string, error) {
	return h.mgr.FirewallReload(ctx)
}

// FollowFirewalldReloads re-applies the firewall rules of every container
// set up through this Host's state at once and after each reload of the
// firewalld on the system bus, until ctx ends (`netavark
// firewalld-reload`).
func (h *Host) FollowFirewalldReloads(ctx context.Context) error {
	return firewalld.Listen(ctx, "", func() error {
		_, err := h.ReloadFirewall(ctx)
		return err
	}, h.cfg.Logger)
}

// WatchFirewall runs the firewall watcher of this Host's state directory
// (see Config.FirewallWatcher): it restores berth's rules within a
// second after anyone else removed or changed them, and re-applies them
// after a reload of firewalld, until ctx ends or no firewalled network
// has containers left (with stay, it keeps running then). It fails with
// ErrWatcherRunning when one runs already.
func (h *Host) WatchFirewall(ctx context.Context, stay bool) error {
	return h.mgr.WatchFirewall(ctx, core.WatchOptions{Stay: stay})
}

// ErrWatcherRunning: another firewall watcher runs for the state
// directory.
var ErrWatcherRunning = core.ErrWatcherRunning

// UpdateDNSServers sets a network's upstream DNS servers in its running
// DNS server (`netavark update --network-dns-servers`).
func (h *Host) UpdateDNSServers(networkName string, servers []netip.Addr) error {
	return h.mgr.UpdateDNSServers(networkName, servers)
}

// SetDNSNames replaces the DNS names of a container on its networks
// (network name to names) in the running DNS server.
func (h *Host) SetDNSNames(containerID string, names map[string][]string) error {
	return h.mgr.SetDNSNames(containerID, names)
}

// AllocateNetavark gives the container addresses on network n in the
// Host's address store (Podman's ipam.db layout), as Podman does before
// `netavark setup`: the static addresses asked for, else the next free
// address of each subnet. Asking again returns the same addresses.
func (h *Host) AllocateNetavark(containerID string, n NetavarkNetwork, static []netip.Addr) ([]netip.Prefix, error) {
	return h.ipam.Allocate(containerID, n, static)
}

// ReleaseNetavark frees the container's addresses on one network.
func (h *Host) ReleaseNetavark(containerID, networkName string) error {
	return h.ipam.Release(containerID, networkName)
}

// ReleaseAllNetavark frees the container's addresses on every network.
func (h *Host) ReleaseAllNetavark(containerID string) error {
	return h.ipam.ReleaseAll(containerID)
}

// ForgetNetworkAddresses drops every address record of a network whose
// definition the caller removed from Podman's files.
func (h *Host) ForgetNetworkAddresses(networkName string) error {
	return h.ipam.RemoveNetwork(networkName)
}
