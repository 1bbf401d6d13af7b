package pasta

import (
	"errors"
	"net"
	"net/netip"
	"slices"

	"github.com/berthnet/berth/internal/usernet"
)

// hostReader reads what pasta copies from the host for a family (swapped
// in tests).
var hostReader = usernet.ReadHostFamily

// plan builds the user-mode network's configuration from the options and
// the host's interfaces, as pasta(1) does with --config-net: the guest's
// interface takes the host's name, address, prefix length and gateway of
// each family whose default route the host has, unless -a, -n, -g, -I,
// -i or --outbound-if4/6 say otherwise; -4 and -6 keep one family.
func plan(o *Options) (usernet.Config, error) {
	p := usernet.PastaPlan{
		DNSForward:      o.DNSForward,
		MapGuest:        o.MapGuestAddr,
		MapHostLoopback: o.MapHostLoopback,
	}
	for _, v6 := range []bool{false, true} {
		if v6 && o.IPv4Only || !v6 && o.IPv6Only {
			continue
		}
		hf, own, err := hostFamily(o, v6)
		if errors.Is(err, usernet.ErrNoHostRoute) && !familyForced(o, v6) {
			continue // as pasta: a host without that family's route runs without it
		}
		if err != nil {
			return usernet.Config{}, err
		}
		if p.IfName == "" {
			p.IfName = hf.IfName
		}
		if v6 {
			p.Addr6, p.Gateway6, p.HostAddr6 = hf.Addr, hf.Gateway, own
		} else {
			p.Addr4, p.Gateway4, p.HostAddr4 = hf.Addr, hf.Gateway, own
		}
		if !o.NoCopyRoutes {
			p.Routes = append(p.Routes, hf.Routes...)
		}
		if o.MapGW || !o.NoMapGW && len(o.MapHostLoopback) == 0 {
			// pasta maps the gateway to the host's loopback unless
			// --no-map-gw (Podman passes it unless the user asks --map-gw).
			p.MapHostLoopback = append(p.MapHostLoopback, hf.Gateway)
		}
	}
	if !p.Addr4.IsValid() && !p.Addr6.IsValid() {
		if o.IPv6Only || len(o.Addrs) > 0 || o.Iface != "" {
			return usernet.Config{}, usagef("External interface not usable")
		}
		localMode(&p, o)
	}
	if o.NSIfname != "" {
		p.IfName = o.NSIfname
	}
	if p.IfName == "" {
		p.IfName = "tap0"
	}
	cfg := usernet.Config{Pasta: &p, MTU: o.MTU}
	if o.MTU <= 0 { // unset, or 0: pasta's own 65520
		cfg.MTU = usernet.DefaultMTU
	}
	if len(o.MAC) == 6 {
		cfg.MAC = o.MAC
	}
	var err error
	if cfg.OutboundAddr, cfg.OutboundAddr6, err = outbound(o); err != nil {
		return cfg, err
	}
	return cfg.WithDefaults()
}

// familyForced reports whether the options name an address or gateway of
// the family, so that a host without it is an error rather than a family
// left out.
func familyForced(o *Options, v6 bool) bool {
	for _, a := range slices.Concat(o.Addrs, o.Gateways) {
		if a.Is6() == v6 {
			return true
		}
	}
	return false
}

// hostFamily reads the host's family and applies -a, -n and -g; own is
// the host's own address of the family (what a mapped guest address
// reaches), whatever -a gives the guest.
func hostFamily(o *Options, v6 bool) (hf usernet.HostFamily, own netip.Addr, err error) {
	ifname := o.Iface
	if ifname == "" && !v6 {
		ifname = o.OutboundIf4
	}
	if ifname == "" && v6 {
		ifname = o.OutboundIf6
	}
	hf, err = hostReader(v6, ifname)
	own = hf.Addr.Addr()
	for _, a := range o.Addrs {
		if a.Is6() != v6 {
			continue
		}
		bits := 64
		if !v6 {
			bits = hf.Addr.Bits()
			if !hf.Addr.IsValid() {
				bits = classfulBits(a)
			}
			if o.Netmask >= 0 {
				bits = o.Netmask
			}
		}
		hf.Addr = netip.PrefixFrom(a, bits)
	}
	for _, g := range o.Gateways {
		if g.Is6() == v6 {
			hf.Gateway = g
		}
	}
	if errors.Is(err, usernet.ErrNoHostRoute) && hf.Addr.IsValid() && hf.Gateway.IsValid() {
		err = nil // all given on the command line
	}
	if !own.IsValid() {
		own = hf.Addr.Addr()
	}
	return hf, own, err
}

// classfulBits is the netmask pasta assumes for an IPv4 address given
// without one when the host has none to copy.
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

// outbound resolves -o and --outbound-if4/6 to the addresses relayed
// connections are bound to.
func outbound(o *Options) (v4, v6 netip.Addr, err error) {
	for _, a := range o.Outbound {
		if a.Is4() {
			v4 = a
		} else {
			v6 = a
		}
	}
	if !v4.IsValid() && o.OutboundIf4 != "" {
		if v4, err = ifaceAddr(o.OutboundIf4, false); err != nil {
			return v4, v6, err
		}
	}
	if !v6.IsValid() && o.OutboundIf6 != "" {
		if v6, err = ifaceAddr(o.OutboundIf6, true); err != nil {
			return v4, v6, err
		}
	}
	return v4, v6, nil
}

// ifaceAddr is the first global address of the family on a host
// interface.
func ifaceAddr(name string, v6 bool) (netip.Addr, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, usagef("Invalid interface name %s: %v", name, err)
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(n.IP)
			if ip = ip.Unmap(); ip.Is6() == v6 && !ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, usagef("Interface %s has no usable IPv%s address", name, map[bool]string{false: "4", true: "6"}[v6])
}

// Local mode, as current pasta has it: with no host interface to copy
// (no default route: a machine offline, or a namespace with only lo),
// the guest still gets a network, on link-local addresses, and reaches
// the host through the mapped addresses (the host's own address is its
// loopback then).
var (
	localGuest   = netip.MustParsePrefix("169.254.2.1/16")
	localGateway = netip.MustParseAddr("169.254.2.2")
)

// localMode fills in the local-mode plan (IPv4).
func localMode(p *usernet.PastaPlan, o *Options) {
	p.Addr4, p.Gateway4 = localGuest, localGateway
	p.HostAddr4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if p.IfName == "" {
		p.IfName = "tap0"
	}
	if o.MapGW || !o.NoMapGW && len(o.MapHostLoopback) == 0 {
		p.MapHostLoopback = append(p.MapHostLoopback, localGateway)
	}
}

// isLocal reports whether the plan is local mode's.
func isLocal(p *usernet.PastaPlan) bool { return p.Addr4 == localGuest && p.Gateway4 == localGateway }
