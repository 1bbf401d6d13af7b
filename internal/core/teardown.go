package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/reaper"
)

// Teardown detaches the namespace at nsPath from the networks in o. It
// carries on past errors and returns them joined. When the namespace is
// gone, the host side (firewall, DNS, bridge) is still cleaned up.
func (m *Manager) Teardown(ctx context.Context, nsPath string, o *network.Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	sess, err := m.state.open()
	if err != nil {
		return err
	}
	defer sess.close()

	var errs []error
	var ctrH *link.Handle
	ctrNS, err := netns.Open(nsPath)
	if err == nil {
		defer ctrNS.Close()
		if ctrH, err = link.NewHandle(ctrNS); err != nil {
			errs = append(errs, err)
		} else {
			defer ctrH.Close()
		}
	} else {
		m.log.Info("container namespace is gone; cleaning up the host side only", "netns", nsPath, "error", err)
	}
	hostH, err := link.NewHandle(m.cfg.HostNS)
	if err != nil {
		return err
	}
	defer hostH.Close()

	m.step("teardown-dns")
	// DNS first, so the name stops resolving before the address goes.
	var dnsNets []string
	for _, a := range o.Networks {
		n := o.NetworkInfo[a.Name]
		if n.Driver == network.DriverBridge && n.DNSEnabled {
			dnsNets = append(dnsNets, a.Name)
		}
	}
	if len(dnsNets) > 0 {
		if _, err := m.dnsDir().Remove(o.ContainerID, dnsNets); err != nil {
			errs = append(errs, fmt.Errorf("remove dns entries: %w", err))
		}
		if err := m.signalDNS(false); err != nil {
			errs = append(errs, err)
		}
	}

	m.step("teardown-links")
	att := recorded(o)
	var complete []firewall.NetworkRules
	var emptyBridges []network.Network
	for _, at := range att {
		n, a := at.net, at.opts
		if n.IPAMDriver() == network.IPAMDHCP {
			if err := m.teardownDHCP(ctx, ctrH, nsPath, o.ContainerID, n, a.InterfaceName); err != nil {
				errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
			}
		}
		hostName := ""
		if n.Driver == network.DriverBridge {
			if hostName = a.Options["host_interface_name"]; hostName == "" {
				hostName = network.HostVethName(o.ContainerID, n.Name)
			}
		}
		if ctrH != nil {
			if err := m.removeLink(ctrH, ctrNS, a.InterfaceName, hostH, hostName); err != nil {
				errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
			}
		} else if hostName != "" {
			// The namespace is gone (or going: the kernel destroys it
			// asynchronously); remove our host end by its name.
			if err := m.removeLink(hostH, m.cfg.HostNS, hostName, nil, ""); err != nil {
				errs = append(errs, fmt.Errorf("network %s: %w", n.Name, err))
			}
		}
		if n.Driver != network.DriverBridge {
			continue
		}
		if n.Unmanaged() {
			continue
		}
		id := n.ID
		if id == "" {
			id = n.Name
		}
		if sess.others(id, o.ContainerID) || m.cfg.KeepBridges {
			continue
		}
		br, err := hostH.Link(n.NetworkInterface)
		if err != nil {
			if !errors.Is(err, link.ErrNotFound) {
				errs = append(errs, err)
			}
			if !n.Internal {
				complete = append(complete, m.rules(n))
			}
			continue
		}
		busy, err := br.HasPorts()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if busy {
			continue
		}
		if !n.Internal {
			complete = append(complete, m.rules(n))
		}
		emptyBridges = append(emptyBridges, n)
	}

	m.step("teardown-firewall")
	if ports := sess.forwards(nsPath, o, att); len(ports) > 0 || len(complete) > 0 {
		if err := m.cfg.Firewall.Teardown(ports, complete); err != nil {
			errs = append(errs, fmt.Errorf("tear down firewall (%s): %w", m.cfg.Firewall.Name(), err))
		}
	}
	// Bridges go after their rules, so no packet is forwarded unfiltered.
	for _, n := range emptyBridges {
		if br, err := hostH.Link(n.NetworkInterface); err == nil {
			if err := br.Delete(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	m.step("teardown-state")
	if err := sess.remove(o); err != nil {
		errs = append(errs, err)
	}
	m.step("teardown-done")
	return errors.Join(errs...)
}

// removeLink deletes the link ifname of h's namespace ns. With
// BackgroundLinkRemoval it retires the link instead (and the veth peer
// peerName in the host namespace, which goes with it) and has a reaper
// process delete it; if retiring fails, it deletes the link itself.
func (m *Manager) removeLink(h *link.Handle, ns *netns.NetNS, ifname string, hostH *link.Handle, peerName string) error {
	l, err := h.ByName(ifname)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil
		}
		return err
	}
	if !m.cfg.BackgroundLinkRemoval {
		return h.Delete(l)
	}
	if err := reaper.Retire(h, l); err != nil {
		m.log.Debug("retire failed; deleting at once", "link", ifname, "error", err)
		return h.Delete(l)
	}
	if hostH != nil && peerName != "" {
		if p, err := hostH.ByName(peerName); err == nil {
			if err := reaper.Retire(hostH, p); err != nil {
				m.log.Debug("retire failed; deleting at once", "link", peerName, "error", err)
				return h.Delete(l)
			}
		}
	}
	if err := reaper.Start(ns, l.Attrs().Index); err != nil {
		m.log.Debug("no reaper; deleting at once", "error", err)
		return h.Delete(l)
	}
	return nil
}

// RemoveBridge removes a bridge network's bridge and firewall rules when no
// container is on it any more (for KeepBridges); it reports whether it
// removed them. A missing bridge is not an error.
func (m *Manager) RemoveBridge(ctx context.Context, n network.Network) (bool, error) {
	if !n.ManagedBridge() {
		return false, nil
	}
	sess, err := m.state.open()
	if err != nil {
		return false, err
	}
	defer sess.close()
	if sess.others(netID(n), "") {
		return false, nil
	}
	hostH, err := link.NewHandle(m.cfg.HostNS)
	if err != nil {
		return false, err
	}
	defer hostH.Close()
	br, err := hostH.Link(n.NetworkInterface)
	found := err == nil
	if found {
		busy, err := br.HasPorts()
		if err != nil || busy {
			return false, err
		}
	} else if !errors.Is(err, link.ErrNotFound) {
		return false, err
	}
	if !n.Internal {
		if err := m.cfg.Firewall.Teardown(nil, []firewall.NetworkRules{m.rules(n)}); err != nil {
			return false, fmt.Errorf("tear down firewall (%s): %w", m.cfg.Firewall.Name(), err)
		}
	}
	if found {
		if err := br.Delete(); err != nil {
			return false, err
		}
	}
	return true, nil
}

// FirewallReload re-applies the firewall rules of every container berth has
// set up, e.g. after the host's ruleset was flushed. It returns the IDs of
// the containers whose rules were restored.
func (m *Manager) FirewallReload(ctx context.Context) ([]string, error) {
	sess, err := m.state.open()
	if err != nil {
		return nil, err
	}
	defer sess.close()
	recs, loadErr := sess.all()
	var nets []firewall.NetworkRules
	seen := map[string]bool{}
	var ports []firewall.PortForward
	var ids []string
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		o := r.Options
		att := recorded(o)
		for _, at := range att {
			n := at.net
			if n.Firewalled() {
				rl := m.rules(n)
				if !seen[rl.ID] {
					seen[rl.ID] = true
					nets = append(nets, rl)
				}
			}
		}
		ports = append(ports, forwards(o, att)...)
		ids = append(ids, o.ContainerID)
	}
	if len(nets) == 0 {
		return ids, loadErr
	}
	if err := m.cfg.Firewall.Setup(nets, ports); err != nil {
		return nil, errors.Join(fmt.Errorf("reload firewall (%s): %w", m.cfg.Firewall.Name(), err), loadErr)
	}
	return ids, loadErr
}

// UpdateDNSServers sets a network's upstream DNS servers in the running DNS
// server's configuration and signals it.
func (m *Manager) UpdateDNSServers(netName string, servers []netip.Addr) error {
	ok, err := m.dnsDir().UpdateServers(netName, servers)
	if err != nil {
		return fmt.Errorf("update dns servers of %s: %w", netName, err)
	}
	if !ok {
		return nil
	}
	return m.signalDNS(false)
}

// recorded rebuilds the attachments of a container from its options, with
// the addresses IPAM gave it (static_ips), for teardown and reload.
func recorded(o *network.Options) []*attachment {
	att := make([]*attachment, 0, len(o.Networks))
	for _, a := range o.Networks {
		n := o.NetworkInfo[a.Name]
		if n.Name == "" {
			n.Name = a.Name
		}
		at := &attachment{net: n, opts: a.PerNetworkOptions, ctrID: o.ContainerID}
		for _, ip := range a.StaticIPs {
			if s, ok := n.SubnetFor(ip); ok {
				at.addrs = append(at.addrs, netip.PrefixFrom(ip, s.Subnet.Bits()))
			}
		}
		att = append(att, at)
	}
	return att
}
