package usernet

import (
	"fmt"
	"net/netip"
	"slices"
)

// PastaPlan is pasta(1)'s address model, which replaces slirp4netns's NAT
// network when set (Config.Pasta): the guest has a copy of the host's
// address and gateway, so the container sees the same addresses the
// host's peers see, and a few well-known addresses stand for the host:
//
//   - connections to a MapGuest address reach the host's own address
//     (the one the guest also has, so it cannot use it: Podman passes
//     --map-guest-addr 169.254.1.2);
//   - connections to a MapHostLoopback address reach the host's loopback
//     (pasta's gateway mapping, --map-gw or --map-host-loopback);
//   - DNS queries to a DNSForward address are answered by forwarding them
//     to the host's resolvers (Podman: --dns-forward 169.254.1.1).
//
// Every other destination, the gateway included, is reached from the
// host as itself.
type PastaPlan struct {
	// IfName is the guest interface's name (the host's, by default).
	IfName string
	// Addr4 and Addr6 are the guest's addresses with the host's prefix
	// lengths; an invalid one turns that family off.
	Addr4, Addr6 netip.Prefix
	// Gateway4 and Gateway6 are the guest's default gateways; the stack
	// answers as them.
	Gateway4, Gateway6 netip.Addr
	// Routes are further destinations the guest reaches through its
	// gateway (copies of the host's routes on the interface).
	Routes []netip.Prefix
	// DNSForward, MapGuest and MapHostLoopback: see the type's doc.
	DNSForward, MapGuest, MapHostLoopback []netip.Addr
	// HostAddr4 and HostAddr6 are what MapGuest reaches: the host's own
	// address of the family (default: the guest's, which is its copy).
	HostAddr4, HostAddr6 netip.Addr
}

// withDefaults fills the host addresses in and validates the plan.
func (p PastaPlan) withDefaults() (PastaPlan, error) {
	if !p.Addr4.IsValid() && !p.Addr6.IsValid() {
		return p, fmt.Errorf("%w: pasta: the guest needs an IPv4 or IPv6 address (the host has none to copy: give one with -a)", ErrInvalidConfig)
	}
	if p.Addr4.IsValid() && (!p.Addr4.Addr().Is4() || !p.Gateway4.Is4()) {
		return p, fmt.Errorf("%w: pasta: IPv4 address %s needs an IPv4 gateway (have %s)", ErrInvalidConfig, p.Addr4, p.Gateway4)
	}
	if p.Addr6.IsValid() && (!p.Addr6.Addr().Is6() || !p.Gateway6.Is6()) {
		return p, fmt.Errorf("%w: pasta: IPv6 address %s needs an IPv6 gateway (have %s)", ErrInvalidConfig, p.Addr6, p.Gateway6)
	}
	if p.Addr4.IsValid() && p.Gateway4 == p.Addr4.Addr() || p.Addr6.IsValid() && p.Gateway6 == p.Addr6.Addr() {
		return p, fmt.Errorf("%w: pasta: the gateway must differ from the guest's address", ErrInvalidConfig)
	}
	if !p.HostAddr4.IsValid() && p.Addr4.IsValid() {
		p.HostAddr4 = p.Addr4.Addr()
	}
	if !p.HostAddr6.IsValid() && p.Addr6.IsValid() {
		p.HostAddr6 = p.Addr6.Addr()
	}
	for _, a := range slices.Concat(p.DNSForward, p.MapGuest, p.MapHostLoopback) {
		if a == p.Addr4.Addr() || a == p.Addr6.Addr() {
			return p, fmt.Errorf("%w: pasta: %s is the guest's own address: it cannot stand for the host or DNS", ErrInvalidConfig, a)
		}
		if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			return p, fmt.Errorf("%w: pasta: %s cannot be mapped: give a unicast address such as 169.254.1.2", ErrInvalidConfig, a)
		}
	}
	return p, nil
}

// own lists the addresses the stack itself holds: the gateways (so the
// guest's neighbour lookups get an answer) and the DNS forwarders.
func (p PastaPlan) own() []netip.Addr {
	var out []netip.Addr
	for _, a := range append([]netip.Addr{p.Gateway4, p.Gateway6}, slices.Concat(p.DNSForward, p.MapGuest, p.MapHostLoopback)...) {
		if a.IsValid() && !slices.Contains(out, a) {
			if a.Is6() && !p.Addr6.IsValid() || a.Is4() && !p.Addr4.IsValid() {
				continue // a family the guest does not have
			}
			out = append(out, a)
		}
	}
	return out
}

// isGuest reports whether a is one of the guest's own addresses.
func (p PastaPlan) isGuest(a netip.Addr) bool {
	return p.Addr4.IsValid() && a == p.Addr4.Addr() || p.Addr6.IsValid() && a == p.Addr6.Addr()
}

// translate is Config.Translate under pasta's model.
func (p PastaPlan) translate(dst netip.Addr) (netip.Addr, bool) {
	switch {
	case slices.Contains(p.MapHostLoopback, dst):
		if dst.Is4() {
			return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
		}
		return netip.IPv6Loopback(), true
	case slices.Contains(p.MapGuest, dst):
		if dst.Is4() && p.HostAddr4.IsValid() {
			return p.HostAddr4, true
		}
		if dst.Is6() && p.HostAddr6.IsValid() {
			return p.HostAddr6, true
		}
		return netip.Addr{}, false
	case slices.Contains(p.DNSForward, dst), p.isGuest(dst):
		// DNS forwarders take port 53 inside the stack; the rest of
		// them, and the guest's own address, lead nowhere.
		return netip.Addr{}, false
	case dst.IsUnspecified(), dst.IsMulticast(), dst.IsLoopback(), dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, false
	case dst.IsLinkLocalUnicast() && dst != p.Gateway6 && dst != p.Gateway4:
		return netip.Addr{}, false
	}
	return dst, true
}

// sourceFor is the source address the guest sees for a connection a
// client on the host side makes to a forwarded port, and keep whether it
// is the client's own: a client with the guest's own address (the host
// itself, by its external address) shows as the first MapGuest address of
// its family, one the guest cannot route back to (loopback and the like)
// as the first MapHostLoopback address, else the gateway.
func (p PastaPlan) sourceFor(client, guest netip.Addr) (src netip.Addr, keep bool) {
	c := client.Unmap()
	if c.IsValid() && c.Is4() == guest.Is4() && !p.isGuest(c) &&
		!c.IsLoopback() && !c.IsUnspecified() && !c.IsLinkLocalUnicast() && !c.IsMulticast() {
		return c, true
	}
	pick := func(as []netip.Addr) netip.Addr {
		for _, a := range as {
			if a.Is4() == guest.Is4() {
				return a
			}
		}
		return netip.Addr{}
	}
	if p.isGuest(c) {
		if a := pick(p.MapGuest); a.IsValid() {
			return a, false
		}
	}
	if a := pick(p.MapHostLoopback); a.IsValid() {
		return a, false
	}
	if guest.Is4() {
		return p.Gateway4, false
	}
	return p.Gateway6, false
}
