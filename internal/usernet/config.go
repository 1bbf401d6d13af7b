package usernet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
)

// Defaults of the user-mode network, the layout slirp4netns and Podman use.
var (
	DefaultCIDR       = netip.MustParsePrefix("10.0.2.0/24")
	DefaultIPv6Prefix = netip.MustParsePrefix("fd00::/64")
	// DefaultMAC is the stack's own link address, the one slirp4netns
	// answers with for its gateway.
	DefaultMAC = net.HardwareAddr{0x52, 0x56, 0x00, 0x00, 0x00, 0x02}
)

// DefaultMTU is the TAP MTU berth uses unless told otherwise (slirp4netns's
// own default is 1500; Podman always passes 65520).
const DefaultMTU = 65520

// MaxMTU is the largest MTU accepted (slirp4netns's limit).
const MaxMTU = 65521

// Config describes one user-mode network.
type Config struct {
	// CIDR is the IPv4 network of the TAP side (default 10.0.2.0/24); the
	// gateway (and host) is network+2, the DNS forwarder network+3 and the
	// guest network+100.
	CIDR netip.Prefix
	// IPv6 enables IPv6 on IPv6Prefix (default fd00::/64): gateway ::2,
	// DNS ::3, the guest configures itself from router advertisements.
	IPv6       bool
	IPv6Prefix netip.Prefix
	// MTU of the link (default DefaultMTU).
	MTU int
	// DisableHostLoopback refuses connections to the gateway address; by
	// default they reach the host's loopback (127.0.0.1, ::1).
	DisableHostLoopback bool
	// DisableDNS turns off the built-in DNS forwarder.
	DisableDNS bool
	// OutboundAddr and OutboundAddr6 are host addresses outbound
	// connections are bound to (zero: the kernel chooses).
	OutboundAddr, OutboundAddr6 netip.Addr
	// ResolvConf is the file the DNS forwarder takes its upstream servers
	// from (default /etc/resolv.conf); DNSPort their port (default 53).
	ResolvConf string
	DNSPort    uint16
	// MAC is the stack's link address (default DefaultMAC).
	MAC net.HardwareAddr
	// Logger receives diagnostics (default: discarded).
	Logger *slog.Logger
	// GuestNetNS is the path of the guest's network namespace (the one
	// with the TAP). When the process may configure it, TCP port forwards
	// to the guest are carried by kernel sockets there, keeping the
	// client's address (see kernelfwd.go); otherwise, or when empty, by
	// the user-mode stack.
	GuestNetNS string
	// Pasta, when set, gives the network pasta's address model instead of
	// the NAT network above (CIDR and IPv6Prefix are then unused, and
	// IPv6 follows the plan's IPv6 address).
	Pasta *PastaPlan
}

// ErrInvalidConfig wraps every configuration error.
var ErrInvalidConfig = errors.New("invalid user-mode network configuration")

// WithDefaults returns c with every zero field set to its default, and
// validates the result.
func (c Config) WithDefaults() (Config, error) {
	if !c.CIDR.IsValid() {
		c.CIDR = DefaultCIDR
	}
	if !c.IPv6Prefix.IsValid() {
		c.IPv6Prefix = DefaultIPv6Prefix
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.DNSPort == 0 {
		c.DNSPort = 53
	}
	if len(c.MAC) == 0 {
		c.MAC = DefaultMAC
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Pasta != nil {
		p, err := c.Pasta.withDefaults()
		if err != nil {
			return c, err
		}
		c.Pasta, c.IPv6 = &p, p.Addr6.IsValid()
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	c.CIDR = c.CIDR.Masked()
	c.IPv6Prefix = c.IPv6Prefix.Masked()
	return c, nil
}

func (c Config) validate() error {
	if !c.CIDR.Addr().Is4() {
		return fmt.Errorf("%w: cidr %s: must be an IPv4 network such as 10.0.2.0/24", ErrInvalidConfig, c.CIDR)
	}
	if c.CIDR.Bits() < 1 || c.CIDR.Bits() > 25 {
		return fmt.Errorf("%w: cidr %s: prefix length must be 1-25 (the guest is network+100)", ErrInvalidConfig, c.CIDR)
	}
	if !c.IPv6Prefix.Addr().Is6() || c.IPv6Prefix.Addr().Is4In6() || c.IPv6Prefix.Bits() != 64 {
		return fmt.Errorf("%w: ipv6 prefix %s: must be an IPv6 /64 such as fd00::/64", ErrInvalidConfig, c.IPv6Prefix)
	}
	if c.MTU < 68 || c.MTU > MaxMTU {
		return fmt.Errorf("%w: mtu %d: must be 68-%d", ErrInvalidConfig, c.MTU, MaxMTU)
	}
	if c.IPv6 && c.MTU < 1280 {
		return fmt.Errorf("%w: mtu %d: IPv6 needs at least 1280", ErrInvalidConfig, c.MTU)
	}
	if c.OutboundAddr.IsValid() && !c.OutboundAddr.Is4() {
		return fmt.Errorf("%w: outbound address %s: must be IPv4", ErrInvalidConfig, c.OutboundAddr)
	}
	if c.OutboundAddr6.IsValid() && !c.OutboundAddr6.Is6() {
		return fmt.Errorf("%w: outbound IPv6 address %s: must be IPv6", ErrInvalidConfig, c.OutboundAddr6)
	}
	if len(c.MAC) != 6 {
		return fmt.Errorf("%w: mac %s: must be 6 bytes", ErrInvalidConfig, c.MAC)
	}
	return nil
}

// nth returns the address n after the start of p.
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// Gateway is the IPv4 gateway (network+2); connections to it reach the
// host's loopback unless DisableHostLoopback.
func (c Config) Gateway() netip.Addr {
	if c.Pasta != nil {
		return c.Pasta.Gateway4
	}
	return nth(c.CIDR, 2)
}

// DNS is the IPv4 address of the built-in DNS forwarder (network+3).
// Under pasta's model it is the first IPv4 DNS forward address, if any.
func (c Config) DNS() netip.Addr {
	if c.Pasta != nil {
		return firstOf(c.Pasta.DNSForward, true)
	}
	return nth(c.CIDR, 3)
}

// firstOf returns the first address of as of the family (IPv4 when v4).
func firstOf(as []netip.Addr, v4 bool) netip.Addr {
	for _, a := range as {
		if a.Is4() == v4 {
			return a
		}
	}
	return netip.Addr{}
}

// Guest is the address the guest gets with --configure (network+100).
// Under pasta's model it is the guest's IPv4 address (the host's copy).
func (c Config) Guest() netip.Addr {
	if c.Pasta != nil {
		return c.Pasta.Addr4.Addr()
	}
	return nth(c.CIDR, 100)
}

// Guest6 is the guest's IPv6 address under pasta's model (invalid under
// slirp's, where the guest configures itself).
func (c Config) Guest6() netip.Addr {
	if c.Pasta != nil && c.Pasta.Addr6.IsValid() {
		return c.Pasta.Addr6.Addr()
	}
	return netip.Addr{}
}

// inGuestNet reports whether a client address belongs to the guest's side
// (so a connection cannot keep it as its source there): the NAT networks
// under slirp's model, the guest's own addresses under pasta's.
func (c Config) inGuestNet(a netip.Addr) bool {
	if c.Pasta != nil {
		return c.Pasta.isGuest(a)
	}
	return c.CIDR.Contains(a) || c.IPv6 && c.IPv6Prefix.Contains(a)
}

// Gateway6 is the IPv6 gateway (prefix::2).
func (c Config) Gateway6() netip.Addr {
	if c.Pasta != nil {
		return c.Pasta.Gateway6
	}
	return nth(c.IPv6Prefix, 2)
}

// DNS6 is the IPv6 address of the DNS forwarder (prefix::3).
func (c Config) DNS6() netip.Addr {
	if c.Pasta != nil {
		return firstOf(c.Pasta.DNSForward, false)
	}
	return nth(c.IPv6Prefix, 3)
}

// RouterLinkLocal is the link-local address router advertisements come
// from (fe80::2, as slirp4netns).
func (c Config) RouterLinkLocal() netip.Addr { return netip.MustParseAddr("fe80::2") }

// Translate maps a destination the guest asked for to the host address to
// connect to. ok is false when the connection must be refused: addresses
// inside the guest networks other than the gateway, the gateway when host
// loopback is disabled, and multicast, broadcast and unspecified addresses.
func (c Config) Translate(dst netip.Addr) (host netip.Addr, ok bool) {
	dst = dst.Unmap()
	if c.Pasta != nil {
		return c.Pasta.translate(dst)
	}
	switch {
	case dst == c.Gateway():
		if c.DisableHostLoopback {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	case c.IPv6 && dst == c.Gateway6():
		if c.DisableHostLoopback {
			return netip.Addr{}, false
		}
		return netip.IPv6Loopback(), true
	case c.CIDR.Contains(dst), c.IPv6 && c.IPv6Prefix.Contains(dst):
		return netip.Addr{}, false
	case dst.IsUnspecified(), dst.IsMulticast(), dst.IsLinkLocalUnicast(), dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Addr{}, false
	case dst.IsLoopback():
		// The guest's own loopback never reaches the stack; refuse rather
		// than hand the host's loopback to a spoofed packet.
		return netip.Addr{}, false
	}
	return dst, true
}

// stackAddrs are the addresses the stack holds on its NIC: the gateway
// and the DNS forwarder (and, with IPv6, the router's link-local address)
// under slirp's model; the gateways, DNS forwarders and mapped addresses
// under pasta's.
func (c Config) stackAddrs() []netip.Prefix {
	if c.Pasta != nil {
		var out []netip.Prefix
		for _, a := range c.Pasta.own() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
		return out
	}
	out := []netip.Prefix{
		netip.PrefixFrom(c.Gateway(), c.CIDR.Bits()),
		netip.PrefixFrom(c.DNS(), 32),
	}
	if c.IPv6 {
		out = append(out,
			netip.PrefixFrom(c.Gateway6(), 64),
			netip.PrefixFrom(c.DNS6(), 128),
			netip.PrefixFrom(c.RouterLinkLocal(), 64))
	}
	return out
}

// dnsAddrs are the addresses the DNS forwarder answers on.
func (c Config) dnsAddrs() []netip.Addr {
	if c.Pasta != nil {
		var out []netip.Addr
		for _, a := range c.Pasta.DNSForward {
			if a.Is4() && c.Pasta.Addr4.IsValid() || a.Is6() && c.Pasta.Addr6.IsValid() {
				out = append(out, a)
			}
		}
		return out
	}
	out := []netip.Addr{c.DNS()}
	if c.IPv6 {
		out = append(out, c.DNS6())
	}
	return out
}

// answersEcho reports whether the stack itself answers echo requests to
// dst (its own addresses that stand for nothing beyond it).
func (c Config) answersEcho(dst netip.Addr) bool {
	if c.Pasta != nil {
		return slices.Contains(c.Pasta.DNSForward, dst) || slices.Contains(c.Pasta.MapHostLoopback, dst)
	}
	return dst == c.Gateway() || dst == c.DNS() || c.IPv6 && (dst == c.Gateway6() || dst == c.DNS6())
}
