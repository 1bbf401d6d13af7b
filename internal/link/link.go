// Package link manages links, addresses and routes through netlink handles
// bound to a network namespace (vishvananda/netlink NewHandleAt). No function
// here moves a thread between namespaces.
package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/netns"
)

// ErrNotFound is returned when a link does not exist.
var ErrNotFound = errors.New("link not found")

// Handle is a netlink handle bound to one namespace.
type Handle struct {
	*netlink.Handle
}

// NewHandle binds a handle to ns (nil: the calling thread's namespace).
func NewHandle(ns *netns.NetNS) (*Handle, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if ns == nil {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandleAt(nsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("open netlink handle: %w", err)
	}
	// A bounded wait: a stuck kernel must not hang setup for ever.
	_ = h.SetSocketTimeout(10 * time.Second)
	return &Handle{h}, nil
}

// ByName returns the named link, or an error wrapping ErrNotFound.
// Equivalent to: ip link show NAME
func (h *Handle) ByName(name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("look up link %s: %w", name, err)
	}
	return l, nil
}

// ByIndex returns the link with the index, or an error wrapping ErrNotFound.
func (h *Handle) ByIndex(idx int) (netlink.Link, error) {
	l, err := h.LinkByIndex(idx)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("index %d: %w", idx, ErrNotFound)
		}
		return nil, fmt.Errorf("look up link %d: %w", idx, err)
	}
	return l, nil
}

// IPNet converts a prefix that keeps its host bits (10.88.0.2/16) to the
// netlink form.
func IPNet(p netip.Prefix) *net.IPNet {
	bits := p.Addr().BitLen()
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// AddAddr adds an address; an address that is already there is fine.
// IPv6 addresses skip duplicate address detection.
// Equivalent to: ip addr add ADDR dev LINK [nodad]
func (h *Handle) AddAddr(l netlink.Link, p netip.Prefix) error {
	a := &netlink.Addr{IPNet: IPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s to %s: %w", p, l.Attrs().Name, err)
	}
	return nil
}

// Up sets a link up. Equivalent to: ip link set LINK up
func (h *Handle) Up(l netlink.Link) error {
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
	}
	return nil
}

// Delete removes a link; one that is already gone is fine.
// Equivalent to: ip link del LINK
func (h *Handle) Delete(l netlink.Link) error {
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete link %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// DefaultRouteMTU returns the MTU of the link that carries the IPv4 default
// route, or 0 when there is none.
func (h *Handle) DefaultRouteMTU() int {
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: nil, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
			return l.Attrs().MTU
		}
	}
	return 0
}

// DefaultRouteLink returns the name of the link that carries the IPv4
// default route.
func (h *Handle) DefaultRouteLink() (string, error) {
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
			return l.Attrs().Name, nil
		}
	}
	return "", errors.New("no default route: name the parent interface")
}

func nsHandle(fd int) vnetns.NsHandle { return vnetns.NsHandle(fd) }
