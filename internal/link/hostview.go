package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HostFamily is what pasta copies from the host for one address family:
// the interface carrying the default route, its first global address and
// the gateway, and the interface's other routes through a gateway.
type HostFamily struct {
	IfName  string
	MTU     int
	MAC     net.HardwareAddr
	Addr    netip.Prefix
	Gateway netip.Addr
	Routes  []netip.Prefix
}

// ErrNoHostRoute means the host has no default route of the family (or
// not on the interface asked for): pasta then runs without that family.
var ErrNoHostRoute = errors.New("no default route")

// HostFamily reads the handle's namespace for the family (v6: IPv6) on
// the interface ifname, or on the one with the first default route when
// ifname is empty. Equivalent to: ip route show default; ip addr show dev IF
func (h *Handle) HostFamily(v6 bool, ifname string) (HostFamily, error) {
	fam := netlink.FAMILY_V4
	if v6 {
		fam = netlink.FAMILY_V6
	}
	routes, err := h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return HostFamily{}, fmt.Errorf("list routes: %w", err)
	}
	var hf HostFamily
	idx := 0
	for _, r := range routes {
		if !isDefault(r) || r.Gw == nil || r.LinkIndex == 0 {
			continue
		}
		l, err := h.ByIndex(r.LinkIndex)
		if err != nil || ifname != "" && l.Attrs().Name != ifname {
			continue
		}
		idx = r.LinkIndex
		hf.IfName, hf.MTU, hf.MAC = l.Attrs().Name, l.Attrs().MTU, l.Attrs().HardwareAddr
		hf.Gateway, _ = netip.AddrFromSlice(r.Gw)
		hf.Gateway = hf.Gateway.Unmap()
		break
	}
	if idx == 0 {
		if ifname != "" {
			return hf, fmt.Errorf("%w on %s", ErrNoHostRoute, ifname)
		}
		return hf, ErrNoHostRoute
	}
	l, _ := h.ByIndex(idx)
	addrs, err := h.AddrList(l, fam)
	if err != nil {
		return hf, fmt.Errorf("list addresses of %s: %w", hf.IfName, err)
	}
	for _, a := range addrs {
		p, ok := hostPrefixOf(a)
		if ok && a.Scope == unix.RT_SCOPE_UNIVERSE && !p.Addr().IsLinkLocalUnicast() {
			hf.Addr = p
			break
		}
	}
	if !hf.Addr.IsValid() {
		return hf, fmt.Errorf("%w: %s has no global address", ErrNoHostRoute, hf.IfName)
	}
	for _, r := range routes {
		if r.LinkIndex != idx || isDefault(r) || r.Gw == nil || r.Dst == nil {
			continue
		}
		if p, ok := netPrefixOf(r.Dst); ok {
			hf.Routes = append(hf.Routes, p)
		}
	}
	return hf, nil
}

func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

func hostPrefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func netPrefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}
