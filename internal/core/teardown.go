package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

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
	h, closeCtr, err := m.openContainer(nsPath)
	defer closeCtr()
	if err != nil {
		errs = append(errs, err)
	}
	if h.host, err = link.NewHandle(m.cfg.HostNS); err != nil {
		return err
	}
	defer h.host.Close()

	errs = append(errs, m.teardownDNS(o)...)
	att, complete, emptyBridges, linkErrs := m.teardownLinks(ctx, sess, h, o)
	errs = append(errs, linkErrs...)
	errs = append(errs, m.teardownFirewall(sess, h, o, att, complete, emptyBridges)...)
	m.step("teardown-state")
	if err := sess.remove(o); err != nil {
		errs = append(errs, err)
	}
	m.step("teardown-done")
	err = errors.Join(errs...)
	m.settleFirewall(sess, err == nil)
	return err
}

// detachHandles are the namespaces and link handles a teardown works
// through. ns and ctr are nil when the container namespace is gone (or
// its handle could not be made): then only the host side is cleaned up.
type detachHandles struct {
	nsPath string
	ns     *netns.NetNS
	ctr    *link.Handle
	host   *link.Handle
}

// openContainer opens the container namespace at nsPath and a link handle
// in it (the host handle is left to the caller); done releases what it
// opened and is never nil. A namespace that is gone is no error (it is
// logged); a handle that cannot be made is returned as the error, with
// the namespace still open in the result.
func (m *Manager) openContainer(nsPath string) (h *detachHandles, done func(), err error) {
	h = &detachHandles{nsPath: nsPath}
	ctrNS, err := netns.Open(nsPath)
	if err != nil {
		m.log.Info("container namespace is gone; cleaning up the host side only", "netns", nsPath, "error", err)
		return h, func() {}, nil
	}
	h.ns = ctrNS
	if h.ctr, err = link.NewHandle(ctrNS); err != nil {
		return h, func() { ctrNS.Close() }, err
	}
	return h, func() { h.ctr.Close(); ctrNS.Close() }, nil
}

// teardownDNS removes the container's names from the DNS server of every
// DNS-enabled bridge network in o and signals the server. It runs first,
// so a name stops resolving before its address goes. It leaves the
// entries in place when removing them fails, and returns what failed.
func (m *Manager) teardownDNS(o *network.Options) []error {
	m.step("teardown-dns")
	var dnsNets []string
	for _, a := range o.Networks {
		n := o.NetworkInfo[a.Name]
		if n.Driver == network.DriverBridge && n.DNSEnabled {
			n.Name = a.Name
			// An internal network's entries written before its file
			// had the suffix are removed too.
			dnsNets = append(dnsNets, dnsFile(n))
			if n.Internal {
				dnsNets = append(dnsNets, a.Name)
			}
		}
	}
	if len(dnsNets) == 0 {
		return nil
	}
	var errs []error
	if _, err := m.dnsDir().Remove(o.ContainerID, dnsNets); err != nil {
		errs = append(errs, fmt.Errorf("remove dns entries: %w", err))
	}
	if err := m.signalDNS(false); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// teardownLinks detaches every recorded attachment of o (detachLink) and
// finds what the container's leaving frees on the host: the firewall rules
// of bridge networks it was the last container on (complete) and the
// bridges now without ports (emptyBridges), both removed later by
// teardownFirewall. It goes on past failures and returns them.
func (m *Manager) teardownLinks(ctx context.Context, sess *session, h *detachHandles, o *network.Options) (att []*attachment, complete []firewall.NetworkRules, emptyBridges []network.Network, errs []error) {
	m.step("teardown-links")
	att = recorded(o)
	for _, at := range att {
		errs = append(errs, m.detachLink(ctx, sess, h, at)...)
		n := at.net
		rules, empty, err := m.bridgeFreed(sess, h.host, n, o.ContainerID)
		if err != nil {
			errs = append(errs, err)
		}
		if rules {
			r := m.rules(n)
			r.SharedBridge = sess.sharers(n.NetworkInterface, netID(n)) > 0
			complete = append(complete, r)
		}
		if empty {
			emptyBridges = append(emptyBridges, n)
		}
	}
	return att, complete, emptyBridges, errs
}

// detachLink releases the attachment's DHCP lease and removes its
// interface: from the container namespace (which takes a veth's host end
// along), or, when that namespace is gone, the host end of a bridge veth.
// It removes only a link that carries berth's mark for this attachment
// (ownership.go); another link of that name is left alone and logged. A
// link that is already gone is no error; one that cannot be removed stays,
// and the failure is returned.
func (m *Manager) detachLink(ctx context.Context, sess *session, h *detachHandles, at *attachment) []error {
	var errs []error
	n, a := at.net, at.opts
	if n.IPAMDriver() == network.IPAMDHCP {
		if err := m.teardownDHCP(ctx, h.ctr, h.nsPath, at.ctrID, n, a.InterfaceName); err != nil {
			errs = append(errs, &NetworkError{Network: n.Name, Err: err})
		}
	}
	recorded := sess.member(netID(n), at.ctrID)
	var err error
	if h.ctr != nil {
		err = m.removeContainerLink(h, at, recorded)
	} else if n.Driver == network.DriverBridge {
		// The namespace is gone (or going: the kernel destroys it
		// asynchronously); remove our host end.
		err = m.removeHostVeth(h.host, at, recorded)
	}
	if err != nil {
		errs = append(errs, &NetworkError{Network: n.Name, Err: err})
	}
	return errs
}

// removeContainerLink removes at's interface from the container namespace
// when it is berth's: a veth whose peer is at's marked host end, or a
// marked macvlan/ipvlan link.
func (m *Manager) removeContainerLink(h *detachHandles, at *attachment, recorded bool) error {
	l, err := h.ctr.Link(at.opts.InterfaceName)
	if errors.Is(err, link.ErrNotFound) && at.net.Driver == network.DriverBridge {
		// The container's end is gone or was renamed by a teardown that
		// was killed before it renamed the host end: remove that.
		return m.removeHostVeth(h.host, at, recorded)
	}
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil
		}
		return err
	}
	if at.net.Driver != network.DriverBridge {
		if !at.ownsSublink(l) && !(recorded && (l.Kind == "macvlan" || l.Kind == "ipvlan")) {
			m.notOurs(l, "container")
			return nil
		}
		return errors.Join(append(delStaticRoutes(h.ctr, at.net), m.removeLink(h.ctr, h.ns, l, nil, link.Link{}))...)
	}
	var peer link.Link
	if l.Kind == "veth" && l.PeerIndex > 0 {
		peer, err = h.host.LinkByIndex(l.PeerIndex)
	}
	if err != nil || !at.ownsHostVeth(peer, recorded) {
		m.notOurs(l, "container")
		return nil
	}
	at.learnAddrs(l)
	return errors.Join(append(delStaticRoutes(h.ctr, at.net), m.removeLink(h.ctr, h.ns, l, h.host, peer))...)
}

// removeHostVeth removes at's host veth end, when it carries berth's mark.
func (m *Manager) removeHostVeth(hostH *link.Handle, at *attachment, recorded bool) error {
	l, err := findHostVeth(hostH, at)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			return nil
		}
		return err
	}
	if !at.ownsHostVeth(l, recorded) {
		m.notOurs(l, "host")
		return nil
	}
	return m.removeLink(hostH, m.cfg.HostNS, l, nil, link.Link{})
}

// findHostVeth finds at's host veth end without the container's end: by
// the host_interface_name asked for, else by its mark (a veth berth made
// before marks, by the name it had then).
func findHostVeth(hostH *link.Handle, at *attachment) (link.Link, error) {
	if name := at.hostVethName(); name != "" {
		return hostH.Link(name)
	}
	l, err := hostH.VethByMAC(at.hostVethMAC())
	if errors.Is(err, link.ErrNotFound) {
		return hostH.Link(at.legacyHostVethName())
	}
	return l, err
}

// notOurs logs a link a teardown leaves because it is not berth's.
func (m *Manager) notOurs(l link.Link, where string) {
	m.log.Info("interface is not berth's (no ownership mark); leaving it", "namespace", where, "interface", l.Name, "kind", l.Kind)
}

// bridgeFreed reports what container ctrID leaving managed bridge network
// n frees: its firewall rules (rules) when no other container is on it,
// and its bridge (bridge) when that has no ports left either. With
// KeepBridges nothing is freed. A bridge that is gone still frees the
// rules; one whose ports cannot be read frees nothing, and the error is
// returned. It changes nothing itself.
func (m *Manager) bridgeFreed(sess *session, hostH *link.Handle, n network.Network, ctrID string) (rules, bridge bool, err error) {
	if !n.ManagedBridge() {
		return false, false, nil
	}
	if sess.others(netID(n), ctrID) || m.cfg.KeepBridges {
		return false, false, nil
	}
	br, err := hostH.Link(n.NetworkInterface)
	if err != nil {
		if errors.Is(err, link.ErrNotFound) {
			err = nil
		}
		return !n.Internal, false, err
	}
	ports, err := br.Ports()
	if err != nil {
		return false, false, err
	}
	// Ports beyond those of berth's containers on other networks that
	// name the same bridge belong to containers berth does not know (set
	// up by another netavark): their traffic keeps the rules.
	if ports > sess.sharers(n.NetworkInterface, netID(n)) {
		return false, false, nil
	}
	// A bridge berth did not make (a network whose interface names the
	// host's uplink or a bridge of the user's) is never berth's to delete.
	return !n.Internal, ports == 0 && ownedBridge(br, n), nil
}

// teardownFirewall removes the container's published ports (when this
// teardown's networks carry them) and the rules of the networks in
// complete, then deletes the bridges in emptyBridges. Bridges go after
// their rules, so no packet is forwarded unfiltered. On failure, the rules
// or bridges that could not be removed stay, and the failures are
// returned.
func (m *Manager) teardownFirewall(sess *session, h *detachHandles, o *network.Options, att []*attachment, complete []firewall.NetworkRules, emptyBridges []network.Network) []error {
	var errs []error
	m.step("teardown-firewall")
	m.heal(sess, o.ContainerID)
	if ports := sess.forwards(h.nsPath, o, att); len(ports) > 0 || len(complete) > 0 {
		if err := m.cfg.Firewall.Teardown(ports, complete); err != nil {
			errs = append(errs, fmt.Errorf("tear down firewall (%s): %w", m.cfg.Firewall.Name(), err))
		}
	}
	for _, n := range emptyBridges {
		if br, err := h.host.Link(n.NetworkInterface); err == nil {
			if !ownedBridge(br, n) {
				continue
			}
			if err := br.Delete(); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := m.removeDropIn(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeLink deletes link l of h's namespace ns. With
// BackgroundLinkRemoval it retires the link instead (and its veth peer in
// the host namespace, when given, which goes with it) and has a reaper
// process delete it; if retiring fails, it deletes the link itself.
func (m *Manager) removeLink(h *link.Handle, ns *netns.NetNS, l link.Link, hostH *link.Handle, peer link.Link) error {
	if !m.cfg.BackgroundLinkRemoval {
		return l.Delete()
	}
	if err := reaper.Retire(l); err != nil {
		m.log.Debug("retire failed; deleting at once", "link", l.Name, "error", err)
		return l.Delete()
	}
	if hostH != nil && peer.Index > 0 {
		if err := reaper.Retire(peer); err != nil {
			m.log.Debug("retire failed; deleting at once", "link", peer.Name, "error", err)
			return l.Delete()
		}
	}
	if err := reaper.Start(ns, l.Index); err != nil {
		m.log.Debug("no reaper; deleting at once", "error", err)
		return l.Delete()
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
	found := err == nil && ownedBridge(br, n)
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
	return true, m.removeDropIn(n)
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
	return m.reload(ctx, sess)
}

// reload is FirewallReload in an open session.
func (m *Manager) reload(ctx context.Context, sess *session) ([]string, error) {
	v, loadErr := m.firewallView(sess, "")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(v.nets) == 0 {
		return v.ids, loadErr
	}
	var err error
	if h, ok := m.cfg.Firewall.(firewall.Healer); ok {
		err = h.Repair(v.nets, v.ports)
	} else {
		err = m.cfg.Firewall.Setup(v.nets, v.ports)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("reload firewall (%s): %w", m.cfg.Firewall.Name(), err), loadErr)
	}
	return v.ids, loadErr
}

// fwView is the firewall as berth's records describe it: the rules of
// every firewalled network with containers, and their port forwards.
type fwView struct {
	nets  []firewall.NetworkRules
	ports []firewall.PortForward
	ids   []string
}

// firewallView reads the records into a fwView, leaving out the ports of
// container except (whose own call is changing them). Records that cannot
// be read are skipped and returned as the error.
func (m *Manager) firewallView(sess *session, except string) (fwView, error) {
	recs, loadErr := sess.all()
	var v fwView
	seen := map[string]bool{}
	for _, r := range recs {
		o := r.Options
		att := recorded(o)
		for _, at := range att {
			if at.net.Firewalled() {
				rl := m.rules(at.net)
				if !seen[rl.ID] {
					seen[rl.ID] = true
					v.nets = append(v.nets, rl)
				}
			}
		}
		if o.ContainerID != except {
			v.ports = append(v.ports, forwards(o, att)...)
		}
		v.ids = append(v.ids, o.ContainerID)
	}
	return v, loadErr
}

// heal mends berth's firewall when it was damaged from outside: when the
// driver can tell (firewall.Healer) and finds the rules of the networks
// with containers, or the other containers' forwards, incomplete, it
// restores them all before this call changes its own, and logs what was
// missing and what it restored. Setup and teardown call it, so one more
// container's coming or going repairs the others; so does the firewall
// watcher (watch.go), which reports whether it repaired.
//
// When the ruleset is still at the generation berth's last call left
// (firewall.Versioned), nobody changed it since and the check is skipped;
// see fwgen.go.
func (m *Manager) heal(sess *session, except string) (repaired bool) {
	h, ok := m.cfg.Firewall.(firewall.Healer)
	if !ok {
		return false
	}
	if m.markFirewall(sess) {
		return false
	}
	v, _ := m.firewallView(sess, except)
	if len(v.nets) == 0 {
		return false
	}
	damage, err := h.Damage(v.nets, v.ports)
	if err != nil {
		sess.fw.good = false
		m.log.Warn("cannot check the firewall rules", "error", err)
		return false
	}
	if len(damage) == 0 {
		return false
	}
	m.log.Warn("berth's firewall rules were damaged from outside; restoring those of every container", "driver", m.cfg.Firewall.Name(), "damage", strings.Join(damage, "; "))
	if err := h.Repair(v.nets, v.ports); err != nil {
		sess.fw.good = false
		m.log.Warn("firewall repair failed", "error", err)
		return false
	}
	m.log.Info("firewall rules restored", "restored", v.restored())
	return true
}

// restored describes what a repair of v restores: "rules of 2 networks,
// 3 port forwards of 2 containers".
func (v fwView) restored() string {
	forwards := 0
	ctrs := map[string]bool{}
	for _, pf := range v.ports {
		v4, v6 := pf.Expand()
		forwards += len(v4) + len(v6)
		ctrs[pf.ContainerID] = true
	}
	return fmt.Sprintf("rules of %d network%s, %d port forward%s of %d container%s",
		len(v.nets), plural(len(v.nets)), forwards, plural(forwards), len(ctrs), plural(len(ctrs)))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// UpdateDNSServers sets a network's upstream DNS servers in the running DNS
// server's configuration and signals it.
func (m *Manager) UpdateDNSServers(netName string, servers []netip.Addr) error {
	ok, err := m.dnsDir().UpdateServers(m.dnsFileNamed(netName), servers)
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
		n := networkOf(o, a.Name)
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
