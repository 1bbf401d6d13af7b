package network

import (
	"fmt"
	"net/netip"
)

// reservedRange is an address range that cannot be a container subnet.
type reservedRange struct {
	prefix netip.Prefix
	what   string
}

// reserved are the ranges a container subnet must not overlap: their
// addresses are not unicast addresses of a link (loopback, link-local,
// multicast, unspecified) and the kernel treats them specially.
var reserved = []reservedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "the unspecified (\"this network\") range"},
	{netip.MustParsePrefix("127.0.0.0/8"), "the loopback range"},
	{netip.MustParsePrefix("169.254.0.0/16"), "the link-local range"},
	{netip.MustParsePrefix("224.0.0.0/4"), "the multicast range"},
	{netip.MustParsePrefix("255.255.255.255/32"), "the limited broadcast address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "the loopback address"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "the IPv4-mapped range"},
	{netip.MustParsePrefix("fe80::/10"), "the link-local range"},
	{netip.MustParsePrefix("ff00::/8"), "the multicast range"},
}

// Longest prefixes that leave room for a gateway and one container:
// an IPv4 subnet also loses its network and broadcast addresses, an IPv6
// subnet its subnet-router anycast address.
const (
	maxBits4 = 30
	maxBits6 = 126
)

// CheckSubnet reports why p cannot be the subnet of a container network:
// it overlaps a reserved range (loopback, link-local, multicast,
// unspecified), or it is too small to hold a gateway and a container.
// The error says what would be valid.
func CheckSubnet(p netip.Prefix) error {
	p = p.Masked()
	for _, r := range reserved {
		if p.Overlaps(r.prefix) {
			return fmt.Errorf("%s overlaps %s %s; use a private range such as 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or fd00::/8", p, r.what, r.prefix)
		}
	}
	if max := maxBits(p.Addr()); p.Bits() > max {
		return &SubnetSizeError{Subnet: p, MaxBits: max}
	}
	return nil
}

func maxBits(a netip.Addr) int {
	if a.Is4() {
		return maxBits4
	}
	return maxBits6
}

// CheckHostAddr reports why ip cannot be a container's address in subnet
// p: it is the subnet's own (network) address or its IPv4 broadcast
// address. ip must be in p. The error names the range of addresses that
// would be valid. Every front-end's static addresses (netavark input,
// --ip, CNI IPAM) are checked here.
func CheckHostAddr(p netip.Prefix, ip netip.Addr) error {
	p = p.Masked()
	ip = ip.Unmap()
	if p.Bits() > maxBits(ip) {
		return nil
	}
	first, last := HostRange(p)
	switch {
	case ip == p.Addr():
		return fmt.Errorf("%s is the network address of subnet %s; want an address from %s to %s", ip, p, first, last)
	case ip.Is4() && ip == LastAddr(p):
		return fmt.Errorf("%s is the broadcast address of subnet %s; want an address from %s to %s", ip, p, first, last)
	}
	return nil
}

// HostRange returns the first and last address of p that a host may
// have: all but the network address and, for IPv4, the broadcast
// address (both kept in a /31 or /32, or an IPv6 /127 or /128).
func HostRange(p netip.Prefix) (first, last netip.Addr) {
	p = p.Masked()
	first, last = p.Addr(), LastAddr(p)
	if p.Bits() <= maxBits(first) {
		first = first.Next()
		if first.Is4() {
			last = last.Prev()
		}
	}
	return first, last
}
