package core

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rollback"
	"github.com/berthnet/berth/internal/sysctl"
)

func hasV6(n network.Network) bool {
	for _, s := range n.Subnets {
		if s.Subnet.Addr().Is6() {
			return true
		}
	}
	return false
}

// mtu returns the network's MTU: the option, else the MTU of the host's
// default-route link, else 0 (kernel default).
func mtu(n network.Network, hostH *link.Handle) int {
	if v := n.MTU(); v > 0 {
		return v
	}
	return hostH.DefaultRouteMTU()
}

// ensureBridge finds or creates the network's bridge and returns it,
// configured (bridgeSysctls, gateway addresses, up) unless it is unmanaged
// or already serves other containers. A bridge it created is on rb; a
// failed configuration leaves the bridge as it is for rb to remove.
func (m *Manager) ensureBridge(sess *session, hostH *link.Handle, n network.Network, ports []network.PortMapping, rb *rollback.Stack, at *attachment) (link.Link, error) {
	localnet := !n.Internal && firewall.NeedsRouteLocalnet([]firewall.PortForward{{IPv4: netip.IPv4Unspecified(), Mappings: ports}})
	br, err := m.findBridge(hostH, n, localnet, rb, at)
	if err != nil {
		return link.Link{}, err
	}
	if n.Unmanaged() {
		return br, nil
	}
	// A bridge that already serves berth's containers is configured; only
	// route_localnet may still be needed by this container's ports.
	if !at.createdBridge && sess.others(netID(n), at.ctrID) {
		if localnet {
			return br, sysctl.Apply(m.cfg.HostNS, []sysctl.Setting{{Key: sysctl.Key("net", "ipv4", "conf", n.NetworkInterface, "route_localnet"), Value: "1"}})
		}
		return br, nil
	}
	if err := m.configureBridge(br, n, localnet); err != nil {
		return link.Link{}, err
	}
	return br, nil
}

// findBridge returns the network's bridge, creating it (createBridge)
// when it does not exist. An interface of that name that is not a bridge
// is an error.
func (m *Manager) findBridge(hostH *link.Handle, n network.Network, localnet bool, rb *rollback.Stack, at *attachment) (link.Link, error) {
	name := n.NetworkInterface
	br, err := hostH.Link(name)
	if err == nil {
		if br.Kind != "bridge" {
			return link.Link{}, fmt.Errorf("bridge interface %s already exists but is a %s interface", name, br.Kind)
		}
		return br, nil
	}
	if !errors.Is(err, link.ErrNotFound) {
		return link.Link{}, err
	}
	return m.createBridge(hostH, n, localnet, rb, at)
}

// configureBridge applies the bridge's host sysctls (bridgeSysctls), adds
// the gateway addresses and sets the bridge up. Sysctls go before
// addresses: IPv6 DAD must be off before the gateway address is added.
// On failure the bridge keeps what was applied so far.
func (m *Manager) configureBridge(br link.Link, n network.Network, localnet bool) error {
	if err := m.fail("sysctl"); err != nil {
		return err
	}
	if err := sysctl.Apply(m.cfg.HostNS, bridgeSysctls(n, localnet)); err != nil {
		return err
	}
	for _, s := range n.Subnets {
		if !s.Gateway.IsValid() {
			continue
		}
		p := netip.PrefixFrom(s.Gateway, s.Subnet.Bits())
		if err := br.AddAddr(p); err != nil {
			return &network.BridgeAddrError{Addr: p, Bridge: n.NetworkInterface, Err: err}
		}
	}
	return br.SetUp()
}

// bridgeSysctls lists the host sysctls a bridge network needs: forwarding
// (on for a routed network, off on an internal network's bridge), no DAD
// or router advertisements on the bridge, loose reverse-path filtering,
// and route_localnet when published ports need it (localnet).
func bridgeSysctls(n network.Network, localnet bool) []sysctl.Setting {
	name := n.NetworkInterface
	var host []sysctl.Setting
	if !n.Internal {
		host = append(host, sysctl.Setting{Key: "net.ipv4.ip_forward", Value: "1"})
		if hasV6(n) {
			host = append(host, sysctl.Setting{Key: "net.ipv6.conf.all.forwarding", Value: "1"})
		}
	}
	if hasV6(n) {
		host = append(host,
			sysctl.Setting{Key: sysctl.Key("net", "ipv6", "conf", name, "accept_dad"), Value: "0", Optional: true},
			sysctl.Setting{Key: sysctl.Key("net", "ipv6", "conf", name, "accept_ra"), Value: "0", Optional: true})
	}
	host = append(host, sysctl.Setting{Key: sysctl.Key("net", "ipv4", "conf", name, "rp_filter"), Value: "2", Optional: true})
	if n.Internal {
		host = append(host,
			sysctl.Setting{Key: sysctl.Key("net", "ipv4", "conf", name, "forwarding"), Value: "0"},
			sysctl.Setting{Key: sysctl.Key("net", "ipv6", "conf", name, "forwarding"), Value: "0", Optional: true})
	} else if localnet {
		host = append(host, sysctl.Setting{Key: sysctl.Key("net", "ipv4", "conf", name, "route_localnet"), Value: "1"})
	}
	return host
}

// createBridge creates the network's bridge (in its VRF, when it names
// one) and returns it; a bridge made meanwhile by someone else is taken as
// it is.
func (m *Manager) createBridge(hostH *link.Handle, n network.Network, localnet bool, rb *rollback.Stack, at *attachment) (link.Link, error) {
	name := n.NetworkInterface
	if n.Unmanaged() {
		return link.Link{}, &network.MissingLinkError{Role: "bridge", Name: name, Err: link.ErrNotFound}
	}
	if err := m.fail("bridge"); err != nil {
		return link.Link{}, err
	}
	if err := m.writeDropIn(n, localnet, rb); err != nil {
		return link.Link{}, err
	}
	spec := link.BridgeSpec{Name: name, MAC: bridgeMAC(n), MTU: mtu(n, hostH)}
	if vrf := n.Option(network.OptVRF); vrf != "" {
		v, err := hostH.Link(vrf)
		if errors.Is(err, link.ErrNotFound) {
			return link.Link{}, &network.MissingLinkError{Role: "vrf", Name: vrf, Err: err}
		}
		if err != nil {
			return link.Link{}, fmt.Errorf("vrf %s: %w", vrf, err)
		}
		if v.Kind != "vrf" {
			return link.Link{}, fmt.Errorf("vrf %s is a %s interface, not a vrf", vrf, v.Kind)
		}
		spec.MasterIndex = v.Index
	}
	if err := hostH.AddBridge(spec); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return link.Link{}, err
		}
	} else {
		at.createdBridge = true
		rb.Push(func() error {
			if l, err := hostH.Link(name); err == nil && ownedBridge(l, n) {
				return l.Delete()
			}
			return nil
		})
	}
	return hostH.Link(name)
}

// dropInPath is where SysctlDDir keeps n's sysctls ("" without one).
func (m *Manager) dropInPath(n network.Network) string {
	if m.cfg.SysctlDDir == "" {
		return ""
	}
	return filepath.Join(m.cfg.SysctlDDir, "10-netavark-"+n.NetworkInterface+".conf")
}

// writeDropIn writes n's bridge sysctls to its sysctl.d file, before the
// bridge exists (systemd applies such a file when a link of its name
// appears), and pushes the removal of a file it created onto rb.
func (m *Manager) writeDropIn(n network.Network, localnet bool, rb *rollback.Stack) error {
	path := m.dropInPath(n)
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(m.cfg.SysctlDDir, 0o755); err != nil {
		return fmt.Errorf("sysctl.d directory: %w", err)
	}
	created, err := sysctl.WriteDropIn(path, bridgeSysctls(n, localnet))
	if created {
		rb.Push(func() error { return m.removeDropIn(n) })
	}
	return err
}

// removeDropIn removes n's sysctl.d file; one that is not there is fine.
func (m *Manager) removeDropIn(n network.Network) error {
	path := m.dropInPath(n)
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// setupBridge attaches the container to bridge network at.net: it makes
// sure of the bridge (ensureBridge), adds a veth pair between bridge and
// container (addVeth), readies the host end and configures the container
// end. What it built is on rb.
func (m *Manager) setupBridge(sess *session, ctrNS *netns.NetNS, hostH, ctrH *link.Handle, at *attachment, ports []network.PortMapping, rb *rollback.Stack) error {
	if err := checkOutboundAddrs(hostH, at.net); err != nil {
		return err
	}
	br, err := m.ensureBridge(sess, hostH, at.net, ports, rb, at)
	if err != nil {
		return err
	}
	if at.net.DNSEnabled {
		if at.dnsBind, err = dnsBindAddrs(at.net, br); err != nil {
			return err
		}
	}
	if err := m.fail("veth"); err != nil {
		return err
	}
	hostVeth, err := addVeth(ctrNS, hostH, ctrH, br, at)
	if err != nil {
		return err
	}
	rb.Push(hostVeth.Delete)
	peer, err := ctrH.Link(at.opts.InterfaceName)
	if err != nil {
		return fmt.Errorf("find container interface: %w", err)
	}
	// A bridge port needs no IPv6 address of its own (the bridge forwards
	// IPv6 at layer 2). Without one the host end sends no DAD and no MLD
	// reports, which the bridge floods to every other container, and adds
	// no link-local routes to the host's IPv6 table, which every link
	// change walks: with 1000 containers running, both made each setup
	// and teardown slower. A kernel without IPv6 refuses the attribute.
	if err := hostVeth.NoIPv6Addrs(); err != nil {
		return err
	}
	if err := joinVLAN(br, hostVeth, at.net); err != nil {
		return err
	}
	if err := hostVeth.SetUp(); err != nil {
		return err
	}
	// Hairpin: a container reaches its own published port through the
	// host's address (the reply leaves by the port it came in on).
	if err := hostVeth.SetHairpin(true); err != nil {
		return err
	}
	if err := m.configureContainer(ctrNS, ctrH, peer, at); err != nil {
		return err
	}
	m.forgetNeighbours(hostH, br, at)
	return nil
}

// joinVLAN puts the host end of a veth in the network's VLAN ("vlan"
// option), untagged and as its PVID, on bridge br with VLAN filtering on,
// as netavark does. A kernel without bridge VLAN filtering refuses it.
func joinVLAN(br, hostVeth link.Link, n network.Network) error {
	vid := n.VLAN()
	if vid <= 0 {
		return nil
	}
	if err := br.SetVLANFiltering(); err != nil {
		return fmt.Errorf("option vlan=%d: %w", vid, err)
	}
	if err := hostVeth.AddPortVLAN(uint16(vid)); err != nil {
		return fmt.Errorf("option vlan=%d: %w", vid, err)
	}
	return nil
}

// forgetNeighbours drops the host's cached MACs of the attachment's
// addresses on the bridge: an address that another container held a
// moment ago (a restart, IPAM handing it out again) would otherwise be
// sent to the old MAC for up to ten seconds when the container's
// gratuitous ARP was lost (it races the bridge port coming up).
func (m *Manager) forgetNeighbours(hostH *link.Handle, br link.Link, at *attachment) {
	for _, a := range at.addrs {
		if err := hostH.ForgetNeighbour(br.Index, a.Addr()); err != nil {
			m.log.Info("forgetting the old neighbour entry", "bridge", br.Name, "error", err)
		}
	}
}

// addVeth creates the attachment's veth pair: the host end (down, on
// bridge br) and the container end in ctrNS, with the network's MTU (else
// the bridge's) and the static MAC if one is asked for. A name already
// taken is reported as such, on whichever side it is taken.
func addVeth(ctrNS *netns.NetNS, hostH, ctrH *link.Handle, br link.Link, at *attachment) (link.Link, error) {
	name := at.hostVethName()
	mtu := at.net.MTU()
	if mtu <= 0 {
		mtu = br.MTU
	}
	spec := link.VethSpec{Name: name, MAC: at.hostVethMAC(), MTU: mtu, MasterIndex: br.Index, PeerName: at.opts.InterfaceName, PeerNSFd: ctrNS.Fd()}
	if at.opts.StaticMAC != "" {
		spec.PeerMAC, _ = network.ParseMAC(at.opts.StaticMAC)
	}
	// The host end goes up only after its IPv6 address generation is off
	// (setupBridge).
	spec.Down = true
	hostVeth, err := hostH.AddVeth(spec)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			if _, cerr := ctrH.Link(at.opts.InterfaceName); cerr == nil {
				return link.Link{}, fmt.Errorf("create veth pair: %w", &network.InterfaceExistsError{Name: at.opts.InterfaceName, Err: err})
			}
			if name == "" {
				// Only the container's side has a name to collide.
				return link.Link{}, fmt.Errorf("create veth pair: %w", &network.InterfaceExistsError{Name: at.opts.InterfaceName, Err: err})
			}
			return link.Link{}, fmt.Errorf("create veth pair: %w", &network.InterfaceExistsError{Name: at.opts.InterfaceName, HostName: name, Err: err})
		}
		return link.Link{}, fmt.Errorf("create veth pair: %w", err)
	}
	return hostVeth, nil
}

// configureContainer sets sysctls, addresses, link state and routes on the
// container end.
func (m *Manager) configureContainer(ctrNS *netns.NetNS, ctrH *link.Handle, l link.Link, at *attachment) error {
	n := at.net
	ifn := l.Name
	set := []sysctl.Setting{
		{Key: sysctl.Key("net", "ipv6", "conf", ifn, "autoconf"), Value: "0", Optional: true},
	}
	if hasV6(n) {
		set = append(set, sysctl.Setting{Key: sysctl.Key("net", "ipv6", "conf", ifn, "accept_dad"), Value: "0", Optional: true})
	}
	if err := m.fail("container-sysctl"); err != nil {
		return err
	}
	// net.ipv4.conf.IF.arp_notify=1 and rp_filter=2 over netlink: the
	// first /proc/sys/net/ipv4/conf lookup in a new namespace grows with
	// the number of namespaces on the host.
	if err := l.SetIPv4Conf(map[int]uint32{link.IPv4ConfArpNotify: 1, link.IPv4ConfRPFilter: 2}); err != nil {
		return err
	}
	if err := sysctl.Apply(ctrNS, set); err != nil {
		return err
	}

	if n.IPAMDriver() == network.IPAMHostLocal {
		for _, ip := range at.opts.StaticIPs {
			s, ok := n.SubnetFor(ip)
			if !ok {
				continue // a network without subnets ignores static IPs
			}
			p := netip.PrefixFrom(ip, s.Subnet.Bits())
			if err := l.AddAddr(p); err != nil {
				return err
			}
			at.addrs = append(at.addrs, p)
		}
	}
	if err := m.fail("addresses"); err != nil {
		return err
	}
	if err := l.SetUp(); err != nil {
		return err
	}
	at.mac = l.MAC.String()
	return m.addRoutes(ctrH, l, at)
}

// addRoutes adds the attachment's routes on the container end l: a
// default route per address family (defaultRoutes) and the network's
// static routes. On failure the routes added so far stay (they go when
// the link does).
func (m *Manager) addRoutes(ctrH *link.Handle, l link.Link, at *attachment) error {
	n := at.net
	if err := m.fail("routes"); err != nil {
		return err
	}
	metric := routeMetric(n)
	if !n.Internal && !n.NoDefaultRoute() {
		if err := addDefaultRoutes(ctrH, l, at, defaultRouteMetric(metric, at.opts)); err != nil {
			return err
		}
	}
	for _, rt := range n.Routes {
		if err := ctrH.AddRoute(staticRoute(rt, metric)); err != nil {
			return fmt.Errorf("add route to %s: %w", rt.Destination, err)
		}
	}
	return nil
}

// routeMetric is the metric of n's routes that name none: its metric
// option, else 100 on a bridge and 99 on macvlan/ipvlan.
func routeMetric(n network.Network) uint32 {
	def := uint32(100)
	if n.Driver != network.DriverBridge {
		def = 99
	}
	return n.Metric(def)
}

// defaultRouteMetric is the metric of an attachment's default routes:
// the network's, less the attachment's gw_priority.
func defaultRouteMetric(metric uint32, o network.PerNetworkOptions) uint32 {
	p, err := strconv.Atoi(o.Options[network.OptGwPriority])
	if err != nil || p == 0 {
		return metric
	}
	return network.GwPriorityMetric(metric, p)
}

// delStaticRoutes removes n's static routes from the container namespace:
// a route via a gateway on another of the container's links, and a
// blackhole, unreachable or prohibit route, do not go with n's link. A
// route that is already gone is fine.
func delStaticRoutes(ctrH *link.Handle, n network.Network) []error {
	var errs []error
	metric := routeMetric(n)
	for _, rt := range n.Routes {
		if err := ctrH.DelRoute(staticRoute(rt, metric)); err != nil {
			errs = append(errs, fmt.Errorf("delete route to %s: %w", rt.Destination, err))
		}
	}
	return errs
}

// addDefaultRoutes adds a default route on l via the gateway of the first
// subnet of each address family that has a gateway and holds one of the
// attachment's addresses.
func addDefaultRoutes(ctrH *link.Handle, l link.Link, at *attachment, metric uint32) error {
	done4, done6 := false, false
	for _, s := range at.net.Subnets {
		if !s.Gateway.IsValid() {
			continue
		}
		is4 := s.Gateway.Is4()
		if (is4 && done4) || (!is4 && done6) || !hasAddrIn(at.addrs, s.Subnet) {
			continue
		}
		dst := netip.MustParsePrefix("0.0.0.0/0")
		if !is4 {
			dst = netip.MustParsePrefix("::/0")
		}
		r := link.Route{Dev: l.Index, Dst: dst, Via: s.Gateway, Metric: metric, Proto: link.ProtoStatic}
		if err := ctrH.AddRoute(r); err != nil {
			return fmt.Errorf("add default route via %s: %w", s.Gateway, err)
		}
		if is4 {
			done4 = true
		} else {
			done6 = true
		}
	}
	return nil
}

// staticRoute is the kernel route for the network route rt: a blackhole,
// unreachable or prohibit route, or one via its gateway, with rt's metric
// or else metric. It names no link: the kernel picks the one of the
// container's links that reaches the gateway, which need not be the
// network's own.
func staticRoute(rt network.Route, metric uint32) link.Route {
	r := link.Route{Dst: rt.Destination.Masked(), Proto: link.ProtoStatic, Metric: metric}
	if rt.Metric != nil {
		r.Metric = *rt.Metric
	}
	switch rt.RouteType {
	case "blackhole":
		r.Type = link.RouteBlackhole
	case "unreachable":
		r.Type = link.RouteUnreachable
	case "prohibit":
		r.Type = link.RouteProhibit
	default:
		r.Via = rt.Gateway
	}
	return r
}

// setSourceMACs gives a macvlan link of mode source the network's list of
// source MACs (option source_macs), when it has one.
func setSourceMACs(l link.Link, n network.Network) error {
	if n.Driver != network.DriverMacvlan || n.Option(network.OptMode) != "source" {
		return nil
	}
	macs, err := n.SourceMACs()
	if err != nil || len(macs) == 0 {
		return err
	}
	return l.SetMacvlanSources(macs)
}

func hasAddrIn(addrs []netip.Prefix, s netip.Prefix) bool {
	for _, a := range addrs {
		if s.Contains(a.Addr()) {
			return true
		}
	}
	return false
}

// setupMacvlan creates a macvlan (or ipvlan) link on the parent directly in
// the container namespace.
func (m *Manager) setupMacvlan(ctrNS *netns.NetNS, hostH, ctrH *link.Handle, at *attachment, rb *rollback.Stack) error {
	n := at.net
	// ipam driver dhcp: the link is created without an address; Setup then
	// asks the DHCP proxy for a lease (leaseDHCP).
	if _, err := ctrH.Link(at.opts.InterfaceName); err == nil {
		return &network.InterfaceExistsError{Name: at.opts.InterfaceName, Err: unix.EEXIST}
	}
	parentName := n.NetworkInterface
	if parentName == "" {
		var err error
		if parentName, err = hostH.DefaultRouteLink(); err != nil {
			return err
		}
	}
	parent, err := hostH.Link(parentName)
	if err != nil {
		return fmt.Errorf("parent interface: %w", err)
	}
	spec := link.SublinkSpec{Name: at.opts.InterfaceName, Parent: parent, NSFd: ctrNS.Fd(), MTU: n.MTU(), Mode: n.Option(network.OptMode)}
	if at.opts.StaticMAC != "" {
		spec.MAC, _ = network.ParseMAC(at.opts.StaticMAC)
	}
	add := hostH.AddMacvlan
	if n.Driver == network.DriverIPvlan {
		add = hostH.AddIPVlan
	}
	if err := m.fail("macvlan"); err != nil {
		return err
	}
	if err := add(spec); err != nil {
		return err
	}
	created, err := ctrH.Link(at.opts.InterfaceName)
	if err != nil {
		return fmt.Errorf("find container interface: %w", err)
	}
	rb.Push(created.Delete)
	if err := created.SetAlias(sublinkAlias(at.ctrID)); err != nil {
		return err
	}
	if err := setSourceMACs(created, n); err != nil {
		return err
	}
	if cutoff, ok := n.BroadcastCutoff(); ok && n.Driver == network.DriverMacvlan {
		if err := created.SetBroadcastCutoff(cutoff); err != nil {
			return fmt.Errorf("option bclim=%d: %w", cutoff, err)
		}
	}
	return m.configureContainer(ctrNS, ctrH, created, at)
}

// checkOutboundAddrs makes sure the network's outbound addresses, which
// its traffic is source-NATed to, are addresses of the host: replies to
// any other would never come back.
func checkOutboundAddrs(hostH *link.Handle, n network.Network) error {
	want := map[string]netip.Addr{network.OptOutboundAddr4: n.OutboundAddr(false), network.OptOutboundAddr6: n.OutboundAddr(true)}
	if !want[network.OptOutboundAddr4].IsValid() && !want[network.OptOutboundAddr6].IsValid() {
		return nil
	}
	have, err := hostH.Addrs()
	if err != nil {
		return err
	}
	for _, k := range []string{network.OptOutboundAddr4, network.OptOutboundAddr6} {
		a := want[k]
		if a.IsValid() && !slices.ContainsFunc(have, func(p netip.Prefix) bool { return p.Addr() == a }) {
			return fmt.Errorf("option %s: %s is not an address of this host: %w", k, a, network.ErrInvalid)
		}
	}
	return nil
}
