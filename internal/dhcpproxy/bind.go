package dhcpproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

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

func (b *nsBinder) open() (*link.Handle, link.Link, error) {
	ns, err := netns.Open(b.nsPath)
	if err != nil {
		return nil, link.Link{}, err
	}
	defer ns.Close()
	h, err := link.NewHandle(ns)
	if err != nil {
		return nil, link.Link{}, err
	}
	l, err := h.Link(b.ifname)
	if err != nil {
		h.Close()
		return nil, link.Link{}, err
	}
	return h, l, nil
}

// routes returns the routes a lease asks for: option 121's, else a default
// route through the first router.
func (b *nsBinder) routes(l *dhcp.Lease, ifindex int) []link.Route {
	var out []link.Route
	add := func(dst netip.Prefix, gw netip.Addr) {
		if dst.Bits() == 0 && b.noDefaultRoute {
			return
		}
		r := link.Route{Dev: ifindex, Dst: dst, Metric: b.metric, Proto: link.ProtoDHCP}
		if gw.IsValid() && !gw.IsUnspecified() {
			r.Via = gw
		} else {
			r.Scope = link.ScopeLink
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

func sameRoute(a, b link.Route) bool {
	return a.Dst == b.Dst && a.Via == b.Via && a.Metric == b.Metric
}

// Bind implements dhcp.Binder. Equivalent to: ip addr add ADDR dev IF;
// ip route add default via GW dev IF proto dhcp metric M.
func (b *nsBinder) Bind(prev, next *dhcp.Lease) error {
	h, l, err := b.open()
	if err != nil {
		return err
	}
	defer h.Close()
	idx := l.Index
	want := b.routes(next, idx)
	if prev != nil {
		for _, r := range b.routes(prev, idx) {
			keep := false
			for _, w := range want {
				keep = keep || sameRoute(r, w)
			}
			if !keep {
				if err := h.DelRoute(r); err != nil {
					return fmt.Errorf("delete route to %s: %w", r.Dst, err)
				}
			}
		}
		// The old address goes before the new one comes: deleting a primary
		// address also deletes the secondaries of its subnet (unless
		// promote_secondaries is set).
		if prev.Addr != next.Addr {
			if err := l.DelAddr(prev.Addr); err != nil {
				return err
			}
		}
	}
	if err := l.AddAddr(next.Addr); err != nil {
		return err
	}
	for _, r := range want {
		if err := h.AddRoute(r); err != nil {
			// net.IP prints a missing gateway as <nil>.
			return fmt.Errorf("add route to %s via %s: %w", r.Dst, net.IP(r.Via.AsSlice()), err)
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
	for _, r := range b.routes(lease, l.Index) {
		if err := h.DelRoute(r); err != nil {
			errs = append(errs, fmt.Errorf("delete route to %s: %w", r.Dst, err))
		}
	}
	if err := l.DelAddr(lease.Addr); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
