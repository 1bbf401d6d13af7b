package dhcpproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/dhcp"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
)

// DefaultMetric is the metric of a default route from a lease when the
// caller names none (netavark 2.x's macvlan default).
const DefaultMetric = 99

// nsBinder configures leases on a container interface through a netlink
// handle bound to the container's namespace, opened per call.
type nsBinder struct {
	nsPath         string
	ifname         string
	metric         uint32
	noDefaultRoute bool
}

func (b *nsBinder) open() (*link.Handle, netlink.Link, error) {
	ns, err := netns.Open(b.nsPath)
	if err != nil {
		return nil, nil, err
	}
	defer ns.Close()
	h, err := link.NewHandle(ns)
	if err != nil {
		return nil, nil, err
	}
	l, err := h.ByName(b.ifname)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, l, nil
}

// routes returns the routes a lease asks for: option 121's, else a default
// route through the first router.
func (b *nsBinder) routes(l *dhcp.Lease, ifindex int) []*netlink.Route {
	var out []*netlink.Route
	add := func(dst netip.Prefix, gw netip.Addr) {
		if dst.Bits() == 0 && b.noDefaultRoute {
			return
		}
		r := &netlink.Route{LinkIndex: ifindex, Dst: link.IPNet(dst), Priority: int(b.metric), Protocol: unix.RTPROT_DHCP}
		if gw.IsValid() && !gw.IsUnspecified() {
			r.Gw = net.IP(gw.AsSlice())
		} else {
			r.Scope = netlink.SCOPE_LINK
		}
		out = append(out, r)
	}
	if len(l.Routes) > 0 {
		for _, r := range l.Routes {
			add(r.Dst, r.Gateway)
		}
		return out
	}
	if gw := l.Gateway(); gw.IsValid() {
		add(netip.MustParsePrefix("0.0.0.0/0"), gw)
	}
	return out
}

func sameRoute(a, b *netlink.Route) bool {
	return a.Dst.String() == b.Dst.String() && a.Gw.Equal(b.Gw) && a.Priority == b.Priority
}

// Bind implements dhcp.Binder. Equivalent to: ip addr add ADDR dev IF;
// ip route add default via GW dev IF proto dhcp metric M.
func (b *nsBinder) Bind(prev, next *dhcp.Lease) error {
	h, l, err := b.open()
	if err != nil {
		return err
	}
	defer h.Close()
	idx := l.Attrs().Index
	want := b.routes(next, idx)
	if prev != nil {
		for _, r := range b.routes(prev, idx) {
			keep := false
			for _, w := range want {
				keep = keep || sameRoute(r, w)
			}
			if !keep {
				if err := h.RouteDel(r); err != nil && !gone(err) {
					return fmt.Errorf("delete route to %s: %w", r.Dst, err)
				}
			}
		}
		// The old address goes before the new one comes: deleting a primary
		// address also deletes the secondaries of its subnet (unless
		// promote_secondaries is set).
		if prev.Addr != next.Addr {
			if err := h.AddrDel(l, &netlink.Addr{IPNet: link.IPNet(prev.Addr)}); err != nil && !gone(err) {
				return fmt.Errorf("delete address %s from %s: %w", prev.Addr, b.ifname, err)
			}
		}
	}
	if err := h.AddAddr(l, next.Addr); err != nil {
		return err
	}
	for _, r := range want {
		if err := h.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add route to %s via %s: %w", r.Dst, r.Gw, err)
		}
	}
	return nil
}

// Unbind implements dhcp.Binder: removes the lease's routes and address.
// An interface or namespace that is gone is not an error.
func (b *nsBinder) Unbind(lease *dhcp.Lease) error {
	h, l, err := b.open()
	if err != nil {
		if errors.Is(err, link.ErrNotFound) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer h.Close()
	var errs []error
	for _, r := range b.routes(lease, l.Attrs().Index) {
		if err := h.RouteDel(r); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("delete route to %s: %w", r.Dst, err))
		}
	}
	if err := h.AddrDel(l, &netlink.Addr{IPNet: link.IPNet(lease.Addr)}); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("delete address %s from %s: %w", lease.Addr, b.ifname, err))
	}
	return errors.Join(errs...)
}

// gone reports whether a netlink delete failed because the object is
// already gone.
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV)
}
