package core

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/sysctl"
)

// bridgeMAC derives a stable, locally administered MAC for a bridge, so the
// bridge's address does not follow its ports (netavark 1.4 lets it change).
func bridgeMAC(n network.Network) net.HardwareAddr {
	h := sha256.Sum256([]byte("berth-bridge:" + n.ID + ":" + n.NetworkInterface))
	mac := net.HardwareAddr(h[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac
}

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

// ensureBridge finds or creates the network's bridge and returns it.
func (m *Manager) ensureBridge(sess *session, hostH *link.Handle, n network.Network, ports []network.PortMapping, rb *undo, at *attachment) (netlink.Link, error) {
	name := n.NetworkInterface
	br, err := hostH.ByName(name)
	if err == nil {
		if br.Type() != "bridge" {
			return nil, fmt.Errorf("bridge interface %s already exists but is a %s interface", name, br.Type())
		}
	} else if !errors.Is(err, link.ErrNotFound) {
		return nil, err
	} else {
		if n.Unmanaged() {
			return nil, fmt.Errorf("bridge %s does not exist (mode=unmanaged uses an existing bridge)", name)
		}
		if err := m.fail("bridge"); err != nil {
			return nil, err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.HardwareAddr = bridgeMAC(n)
		if v := mtu(n, hostH); v > 0 {
			attrs.MTU = v
		}
		if vrf := n.Option(network.OptVRF); vrf != "" {
			v, err := hostH.ByName(vrf)
			if err != nil {
				return nil, fmt.Errorf("vrf %s: %w", vrf, err)
			}
			if v.Type() != "vrf" {
				return nil, fmt.Errorf("vrf %s is a %s interface, not a vrf", vrf, v.Type())
			}
			attrs.MasterIndex = v.Attrs().Index
		}
		if err := hostH.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			if !errors.Is(err, unix.EEXIST) {
				return nil, fmt.Errorf("create bridge %s: %w", name, err)
			}
		} else {
			at.createdBridge = true
			rb.push(func() error {
				if l, err := hostH.ByName(name); err == nil {
					return hostH.Delete(l)
				}
				return nil
			})
		}
		if br, err = hostH.ByName(name); err != nil {
			return nil, err
		}
	}
	if n.Unmanaged() {
		return br, nil
	}
	localnet := !n.Internal && firewall.NeedsRouteLocalnet([]firewall.PortForward{{IPv4: netip.IPv4Unspecified(), Mappings: ports}})
	// A bridge that already serves berth's containers is configured; only
	// route_localnet may still be needed by this container's ports.
	id := n.ID
	if id == "" {
		id = n.Name
	}
	if !at.createdBridge && sess.others(id, at.ctrID) {
		if localnet {
			return br, sysctl.Apply(m.cfg.HostNS, []sysctl.Setting{{Key: sysctl.Key("net", "ipv4", "conf", name, "route_localnet"), Value: "1"}})
		}
		return br, nil
	}
	// Sysctls before addresses: IPv6 DAD must be off before the gateway
	// address is added.
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
	if err := m.fail("sysctl"); err != nil {
		return nil, err
	}
	if err := sysctl.Apply(m.cfg.HostNS, host); err != nil {
		return nil, err
	}
	for _, s := range n.Subnets {
		if !s.Gateway.IsValid() {
			continue
		}
		if err := hostH.AddAddr(br, netip.PrefixFrom(s.Gateway, s.Subnet.Bits())); err != nil {
			return nil, err
		}
	}
	if err := hostH.Up(br); err != nil {
		return nil, err
	}
	return br, nil
}

func (m *Manager) setupBridge(sess *session, ctrNS *netns.NetNS, hostH, ctrH *link.Handle, at *attachment, ports []network.PortMapping, rb *undo) error {
	n := at.net
	br, err := m.ensureBridge(sess, hostH, n, ports, rb, at)
	if err != nil {
		return err
	}
	if err := m.fail("veth"); err != nil {
		return err
	}
	name := at.opts.Options["host_interface_name"]
	if name == "" {
		name = network.HostVethName(at.ctrID, n.Name)
	}
	mtu := n.MTU()
	if mtu <= 0 {
		mtu = br.Attrs().MTU
	}
	spec := link.VethSpec{Name: name, MTU: mtu, MasterIndex: br.Attrs().Index, PeerName: at.opts.InterfaceName, PeerNSFd: ctrNS.Fd()}
	if at.opts.StaticMAC != "" {
		spec.PeerMAC, _ = network.ParseMAC(at.opts.StaticMAC)
	}
	// The host end goes up only after its IPv6 address generation is off
	// (below).
	spec.Down = true
	idx, err := hostH.AddVeth(spec)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			if _, cerr := ctrH.ByName(at.opts.InterfaceName); cerr == nil {
				return fmt.Errorf("create veth pair: interface %s already exists in the container namespace", at.opts.InterfaceName)
			}
			return fmt.Errorf("create veth pair: host interface %q already exists: %w", name, err)
		}
		return fmt.Errorf("create veth pair: %w", err)
	}
	hostVeth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, Index: idx}}
	rb.push(func() error { return hostH.Delete(hostVeth) })
	peer, err := ctrH.ByName(at.opts.InterfaceName)
	if err != nil {
		return fmt.Errorf("find container interface: %w", err)
	}
	// A bridge port needs no IPv6 address of its own (the bridge forwards
	// IPv6 at layer 2). Without one the host end sends no DAD and no MLD
	// reports, which the bridge floods to every other container, and adds
	// no link-local routes to the host's IPv6 table, which every link
	// change walks: with 1000 containers running, both made each setup
	// and teardown slower. A kernel without IPv6 refuses the attribute.
	if err := hostH.LinkSetIP6AddrGenMode(hostVeth, in6AddrGenModeNone); err != nil && !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("turn off IPv6 addresses on %s: %w", name, err)
	}
	if err := hostH.Up(hostVeth); err != nil {
		return err
	}
	// Hairpin: a container reaches its own published port through the
	// host's address (the reply leaves by the port it came in on).
	if err := hostH.LinkSetHairpin(hostVeth, true); err != nil {
		return fmt.Errorf("set hairpin on %s: %w", name, err)
	}
	return m.configureContainer(ctrNS, ctrH, peer, at)
}

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE (linux/if_link.h): no
// IPv6 addresses are generated for the link.
const in6AddrGenModeNone = 1

// configureContainer sets sysctls, addresses, link state and routes on the
// container end.
func (m *Manager) configureContainer(ctrNS *netns.NetNS, ctrH *link.Handle, l netlink.Link, at *attachment) error {
	n := at.net
	ifn := l.Attrs().Name
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
	if err := ctrH.SetIPv4Conf(l, map[int]uint32{link.IPv4ConfArpNotify: 1, link.IPv4ConfRPFilter: 2}); err != nil {
		return err
	}
	if err := sysctl.Apply(ctrNS, set); err != nil {
		return err
	}

	if n.IPAMDriver() == network.IPAMHostLocal {
		for _, ip := range at.opts.StaticIPs {
			s, _ := n.SubnetFor(ip)
			p := netip.PrefixFrom(ip, s.Subnet.Bits())
			if err := ctrH.AddAddr(l, p); err != nil {
				return err
			}
			at.addrs = append(at.addrs, p)
		}
	}
	if err := m.fail("addresses"); err != nil {
		return err
	}
	if err := ctrH.Up(l); err != nil {
		return err
	}
	at.mac = l.Attrs().HardwareAddr.String()
	return m.addRoutes(ctrH, l, at)
}

func (m *Manager) addRoutes(ctrH *link.Handle, l netlink.Link, at *attachment) error {
	n := at.net
	if err := m.fail("routes"); err != nil {
		return err
	}
	def := uint32(100)
	if n.Driver != network.DriverBridge {
		def = 99
	}
	metric := n.Metric(def)
	if !n.Internal && !n.NoDefaultRoute() {
		done4, done6 := false, false
		for _, s := range n.Subnets {
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
			r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: link.IPNet(dst), Gw: net.IP(s.Gateway.AsSlice()), Priority: int(metric), Protocol: unix.RTPROT_STATIC}
			if err := ctrH.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("add default route via %s: %w", s.Gateway, err)
			}
			if is4 {
				done4 = true
			} else {
				done6 = true
			}
		}
	}
	for _, rt := range n.Routes {
		r := &netlink.Route{Dst: link.IPNet(rt.Destination.Masked()), Protocol: unix.RTPROT_STATIC, Priority: int(metric)}
		if rt.Metric != nil {
			r.Priority = int(*rt.Metric)
		}
		switch rt.RouteType {
		case "blackhole":
			r.Type = unix.RTN_BLACKHOLE
		case "unreachable":
			r.Type = unix.RTN_UNREACHABLE
		case "prohibit":
			r.Type = unix.RTN_PROHIBIT
		default:
			r.LinkIndex = l.Attrs().Index
			r.Gw = net.IP(rt.Gateway.AsSlice())
		}
		if err := ctrH.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add route to %s: %w", rt.Destination, err)
		}
	}
	return nil
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
func (m *Manager) setupMacvlan(ctrNS *netns.NetNS, hostH, ctrH *link.Handle, at *attachment, rb *undo) error {
	n := at.net
	// ipam driver dhcp: the link is created without an address; Setup then
	// asks the DHCP proxy for a lease (leaseDHCP).
	if _, err := ctrH.ByName(at.opts.InterfaceName); err == nil {
		return fmt.Errorf("interface %s already exists in the container namespace", at.opts.InterfaceName)
	}
	parentName := n.NetworkInterface
	if parentName == "" {
		var err error
		if parentName, err = hostH.DefaultRouteLink(); err != nil {
			return err
		}
	}
	parent, err := hostH.ByName(parentName)
	if err != nil {
		return fmt.Errorf("parent interface: %w", err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = at.opts.InterfaceName
	attrs.ParentIndex = parent.Attrs().Index
	attrs.Namespace = netlink.NsFd(ctrNS.Fd())
	if v := n.MTU(); v > 0 {
		attrs.MTU = v
	}
	if at.opts.StaticMAC != "" {
		attrs.HardwareAddr, _ = network.ParseMAC(at.opts.StaticMAC)
	}
	var l netlink.Link
	if n.Driver == network.DriverIPvlan {
		mode := map[string]netlink.IPVlanMode{"": netlink.IPVLAN_MODE_L2, "l2": netlink.IPVLAN_MODE_L2, "l3": netlink.IPVLAN_MODE_L3, "l3s": netlink.IPVLAN_MODE_L3S}[n.Option(network.OptMode)]
		l = &netlink.IPVlan{LinkAttrs: attrs, Mode: mode}
	} else {
		mode := map[string]netlink.MacvlanMode{"": netlink.MACVLAN_MODE_BRIDGE, "bridge": netlink.MACVLAN_MODE_BRIDGE, "private": netlink.MACVLAN_MODE_PRIVATE, "vepa": netlink.MACVLAN_MODE_VEPA, "passthru": netlink.MACVLAN_MODE_PASSTHRU}[n.Option(network.OptMode)]
		l = &netlink.Macvlan{LinkAttrs: attrs, Mode: mode}
	}
	if err := m.fail("macvlan"); err != nil {
		return err
	}
	if err := hostH.LinkAdd(l); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("create %s link: the kernel has no %s support: %w", n.Driver, n.Driver, err)
		}
		return fmt.Errorf("create %s link on %s: %w", n.Driver, parentName, err)
	}
	created, err := ctrH.ByName(at.opts.InterfaceName)
	if err != nil {
		return fmt.Errorf("find container interface: %w", err)
	}
	rb.push(func() error { return ctrH.Delete(created) })
	return m.configureContainer(ctrNS, ctrH, created, at)
}

// bridgeHasPorts reports whether any link is still enslaved to the bridge.
func bridgeHasPorts(hostH *link.Handle, br netlink.Link) (bool, error) {
	links, err := hostH.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			return true, nil
		}
	}
	return false, nil
}
