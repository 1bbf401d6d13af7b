package core

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/sysctl"
)

// What front-ends ask of links outside an attachment (the CNI plugins'
// results, STATUS and loopback), so that they need no kernel adapter.

// ErrNetns is returned when a network namespace cannot be opened.
var ErrNetns = errors.New("cannot open network namespace")

// LinkMAC returns the MAC address of a link in the calling process's
// namespace, or "" when there is no such link.
func LinkMAC(name string) string {
	h, err := link.NewHandle(nil)
	if err != nil {
		return ""
	}
	defer h.Close()
	l, err := h.Link(name)
	if err != nil {
		return ""
	}
	return l.MAC.String()
}

// HostLink returns an error unless a link called name exists in the
// calling process's namespace.
func HostLink(name string) error {
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := h.Link(name); err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return nil
}

// RouteLocalnetToward sets route_localnet on the link of the calling
// process's namespace that routes to ip, so that connections to
// 127.0.0.1 forwarded to ip leave through it.
func RouteLocalnetToward(ip netip.Addr) error {
	h, err := link.NewHandle(nil)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkToward(ip)
	if err != nil {
		return err
	}
	return sysctl.Apply(nil, []sysctl.Setting{{Key: sysctl.Key("net", "ipv4", "conf", l.Name, "route_localnet"), Value: "1"}})
}

// Loopback sets the lo link of the namespace at nsPath up or down. A
// namespace that cannot be opened is ErrNetns.
func Loopback(nsPath string, up bool) error {
	h, done, err := nsHandle(nsPath)
	if err != nil {
		return err
	}
	defer done()
	lo, err := h.Link("lo")
	if err != nil {
		return err
	}
	if up {
		return h.LoopbackUp()
	}
	return lo.SetDown()
}

// LoopbackIsUp reports whether the lo link of the namespace at nsPath is up.
// A namespace that cannot be opened is ErrNetns.
func LoopbackIsUp(nsPath string) (bool, error) {
	h, done, err := nsHandle(nsPath)
	if err != nil {
		return false, err
	}
	defer done()
	lo, err := h.Link("lo")
	if err != nil {
		return false, err
	}
	return lo.Up, nil
}

// nsHandle opens a link handle in the namespace at nsPath; done closes
// both.
func nsHandle(nsPath string) (h *link.Handle, done func(), err error) {
	ns, err := netns.Open(nsPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%w %s: %w", ErrNetns, nsPath, err)
	}
	h, err = link.NewHandle(ns)
	if err != nil {
		ns.Close()
		return nil, nil, err
	}
	return h, func() { h.Close(); ns.Close() }, nil
}
