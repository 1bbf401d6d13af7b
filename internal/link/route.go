package link

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Route is a route as berth sets it. The zero values of the optional fields
// give a unicast route of universe scope in the main table, of no particular
// protocol (RTPROT_UNSPEC).
type Route struct {
	// Dst is the destination; the zero Prefix gives none (the default
	// route of Via's family), 0.0.0.0/0 names the default route.
	Dst netip.Prefix
	// Via is the gateway; the zero Addr: none.
	Via netip.Addr
	// Dev is the index of the outgoing link; 0: none.
	Dev    int
	Metric uint32
	Proto  RouteProto
	Type   RouteType
	Scope  RouteScope
	// Table: 0 is the main table.
	Table int
}

// RouteProto says who installed a route (RTPROT_* in linux/rtnetlink.h).
type RouteProto int

// Route protocols berth installs routes with.
const (
	ProtoStatic RouteProto = unix.RTPROT_STATIC
	ProtoDHCP   RouteProto = unix.RTPROT_DHCP
)

// RouteType is the kind of a route (RTN_* in linux/rtnetlink.h).
type RouteType int

// Route types; the zero RouteType is a unicast route.
const (
	RouteUnicast     RouteType = 0
	RouteLocal       RouteType = unix.RTN_LOCAL
	RouteBlackhole   RouteType = unix.RTN_BLACKHOLE
	RouteUnreachable RouteType = unix.RTN_UNREACHABLE
	RouteProhibit    RouteType = unix.RTN_PROHIBIT
)

// RouteScope is how far a route's destination is (RT_SCOPE_*).
type RouteScope int

// Route scopes; the zero RouteScope is universe.
const (
	ScopeUniverse RouteScope = unix.RT_SCOPE_UNIVERSE
	ScopeLink     RouteScope = unix.RT_SCOPE_LINK
	ScopeHost     RouteScope = unix.RT_SCOPE_HOST
)

// nl is the route as netlink takes it.
func (r Route) nl() *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: r.Dev, Priority: int(r.Metric), Protocol: netlink.RouteProtocol(r.Proto),
		Type: int(r.Type), Scope: netlink.Scope(r.Scope), Table: r.Table,
	}
	if r.Dst.IsValid() {
		nr.Dst = IPNet(r.Dst)
	}
	if r.Via.IsValid() {
		nr.Gw = net.IP(r.Via.AsSlice())
	}
	return nr
}

// AddRoute adds a route; one that is already there is fine. An error is
// the kernel's, for the caller to say which route it meant.
// Equivalent to: ip route add ...
func (h *Handle) AddRoute(r Route) error {
	if err := h.RouteAdd(r.nl()); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// ReplaceRoute adds a route or replaces the one to the same destination.
// An error is the kernel's, for the caller to say which route it meant.
// Equivalent to: ip route replace ...
func (h *Handle) ReplaceRoute(r Route) error {
	return h.RouteReplace(r.nl())
}

// DelRoute removes a route; one that is already gone (or whose link is)
// is fine. An error is the kernel's, for the caller to say which route it
// meant. Equivalent to: ip route del ...
func (h *Handle) DelRoute(r Route) error {
	if err := h.RouteDel(r.nl()); err != nil && !gone(err) {
		return err
	}
	return nil
}

// MarkRule is a policy routing rule that sends packets with a firewall
// mark to a routing table.
type MarkRule struct {
	IPv6     bool
	Mark     uint32
	Table    int
	Priority int
}

// AddMarkRule adds the rule; one that is already there is fine. An error
// is the kernel's (a kernel without IPv6 refuses an IPv6 rule with
// EAFNOSUPPORT or EOPNOTSUPP).
// Equivalent to: ip [-6] rule add fwmark MARK lookup TABLE pref PRIORITY
func (h *Handle) AddMarkRule(m MarkRule) error {
	rule := netlink.NewRule()
	rule.Family = unix.AF_INET
	if m.IPv6 {
		rule.Family = unix.AF_INET6
	}
	rule.Mark, rule.Table, rule.Priority = m.Mark, m.Table, m.Priority
	mask := uint32(0xffffffff)
	rule.Mask = &mask
	if err := h.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}
