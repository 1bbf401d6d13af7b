package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is a link of a handle's namespace as the rest of berth sees it.
// Its methods act through the handle that found or made it, so a Link is
// valid while that handle is open.
type Link struct {
	Name  string
	Index int
	// Kind is the kernel's kind of link ("bridge", "veth", "vrf",
	// "macvlan", ...; "device" for one without a kind, such as lo).
	Kind        string
	MTU         int
	MAC         net.HardwareAddr
	MasterIndex int
	// Up: the link is administratively up.
	Up bool
	// Alias is the link's ifalias ("" when none is set).
	Alias string
	// PeerIndex is the index of the link's other end (a veth's peer, in
	// the peer's namespace) or its parent (a macvlan's); 0 when none.
	PeerIndex int

	h *Handle
}

// fromNetlink describes a netlink link found through h.
func fromNetlink(h *Handle, l netlink.Link) Link {
	a := l.Attrs()
	return Link{
		Name: a.Name, Index: a.Index, Kind: l.Type(), MTU: a.MTU,
		MAC: a.HardwareAddr, MasterIndex: a.MasterIndex, Up: a.Flags&net.FlagUp != 0,
		Alias: a.Alias, PeerIndex: a.ParentIndex,
		h: h,
	}
}

// nl is the link as netlink's calls take it: every call made here names
// the link by its index (the name is for netlink's own messages).
func (l Link) nl() netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: l.Name, Index: l.Index}}
}

// Link returns the named link, or an error wrapping ErrNotFound.
// Equivalent to: ip link show NAME
func (h *Handle) Link(name string) (Link, error) {
	l, err := h.ByName(name)
	if err != nil {
		return Link{}, err
	}
	return fromNetlink(h, l), nil
}

// LinkByIndex returns the link with the index, or an error wrapping
// ErrNotFound.
func (h *Handle) LinkByIndex(idx int) (Link, error) {
	l, err := h.ByIndex(idx)
	if err != nil {
		return Link{}, err
	}
	return fromNetlink(h, l), nil
}

// Links lists the namespace's links. Equivalent to: ip link show
func (h *Handle) Links() ([]Link, error) {
	nls, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	links := make([]Link, len(nls))
	for i, l := range nls {
		links[i] = fromNetlink(h, l)
	}
	return links, nil
}

// LinkToward returns the link that routes to dst.
// Equivalent to: ip route get DST
func (h *Handle) LinkToward(dst netip.Addr) (Link, error) {
	rs, err := h.RouteGet(dst.AsSlice())
	if err != nil {
		return Link{}, fmt.Errorf("find the host link toward %s: %w", dst, err)
	}
	if len(rs) == 0 {
		return Link{}, fmt.Errorf("find the host link toward %s: no route", dst)
	}
	l, err := h.ByIndex(rs[0].LinkIndex)
	if err != nil {
		return Link{}, err
	}
	return fromNetlink(h, l), nil
}

// SetUp sets the link up. Equivalent to: ip link set LINK up
func (l Link) SetUp() error { return l.h.Up(l.nl()) }

// SetDown sets the link down. Equivalent to: ip link set LINK down
func (l Link) SetDown() error {
	if err := l.h.LinkSetDown(l.nl()); err != nil {
		return fmt.Errorf("set %s down: %w", l.Name, err)
	}
	return nil
}

// SetAlias sets the link's ifalias. Equivalent to: ip link set LINK alias S
func (l Link) SetAlias(alias string) error {
	if err := l.h.LinkSetAlias(l.nl(), alias); err != nil {
		return fmt.Errorf("set alias of %s: %w", l.Name, err)
	}
	return nil
}

// Delete removes the link; one that is already gone is fine.
// Equivalent to: ip link del LINK
func (l Link) Delete() error { return l.h.Delete(l.nl()) }

// AddAddr adds an address; one that is already there is fine. IPv6
// addresses skip duplicate address detection.
// Equivalent to: ip addr add ADDR dev LINK [nodad]
func (l Link) AddAddr(p netip.Prefix) error { return l.h.AddAddr(l.nl(), p) }

// DelAddr removes an address; one that is already gone (or a link that is)
// is fine. Equivalent to: ip addr del ADDR dev LINK
func (l Link) DelAddr(p netip.Prefix) error {
	if err := l.h.AddrDel(l.nl(), &netlink.Addr{IPNet: IPNet(p)}); err != nil && !gone(err) {
		return fmt.Errorf("delete address %s from %s: %w", p, l.Name, err)
	}
	return nil
}

// Addrs returns the link's addresses of every family, each with its
// prefix length (10.88.0.2/16). Equivalent to: ip addr show dev LINK
func (l Link) Addrs() ([]netip.Prefix, error) {
	addrs, err := l.h.AddrList(l.nl(), netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", l.Name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Addrs lists the addresses of every link in the namespace in one dump,
// as prefixes that keep their host bits. Equivalent to: ip -o addr
func (h *Handle) Addrs() ([]netip.Prefix, error) {
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if p, ok := prefixOf(a); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// prefixOf converts a netlink address to a prefix that keeps its host
// bits; IPv4 addresses come out as IPv4 whatever their form.
func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	ones, bits := a.Mask.Size()
	if !ok || bits != ip.BitLen() {
		return netip.Prefix{}, false
	}
	if ip.Is4In6() {
		ip, ones = ip.Unmap(), ones-96
	}
	p := netip.PrefixFrom(ip, ones)
	return p, p.IsValid()
}

// Rename gives the link a new name; l keeps the old one in its Name (its
// methods act by index). Equivalent to: ip link set LINK name NAME
func (l Link) Rename(name string) error {
	if err := l.h.LinkSetName(l.nl(), name); err != nil {
		return fmt.Errorf("rename %s to %s: %w", l.Name, name, err)
	}
	return nil
}

// SetNoMaster takes the link off its master (a port leaves its bridge).
// Equivalent to: ip link set LINK nomaster
func (l Link) SetNoMaster() error {
	if err := l.h.LinkSetNoMaster(l.nl()); err != nil {
		return fmt.Errorf("take %s off its master: %w", l.Name, err)
	}
	return nil
}

// SetMTU sets the link's MTU. Equivalent to: ip link set LINK mtu MTU
func (l Link) SetMTU(mtu int) error {
	if err := l.h.LinkSetMTU(l.nl(), mtu); err != nil {
		return fmt.Errorf("set MTU of %s: %w", l.Name, err)
	}
	return nil
}

// SetMAC sets the link's MAC address. Equivalent to: ip link set LINK
// address MAC
func (l Link) SetMAC(mac net.HardwareAddr) error {
	if err := l.h.LinkSetHardwareAddr(l.nl(), mac); err != nil {
		return fmt.Errorf("set MAC of %s: %w", l.Name, err)
	}
	return nil
}

// SetHairpin lets a bridge port send frames back out of the port they came
// in by. Equivalent to: bridge link set dev LINK hairpin on
func (l Link) SetHairpin(on bool) error {
	if err := l.h.LinkSetHairpin(l.nl(), on); err != nil {
		return fmt.Errorf("set hairpin on %s: %w", l.Name, err)
	}
	return nil
}

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE (linux/if_link.h): no
// IPv6 addresses are generated for the link.
const in6AddrGenModeNone = 1

// NoIPv6Addrs stops the kernel from generating IPv6 addresses (the
// link-local one included) for the link; a kernel without IPv6 has none
// to stop. Equivalent to: ip link set LINK addrgenmode none
func (l Link) NoIPv6Addrs() error {
	err := l.h.LinkSetIP6AddrGenMode(l.nl(), in6AddrGenModeNone)
	if err != nil && !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("turn off IPv6 addresses on %s: %w", l.Name, err)
	}
	return nil
}

// HasPorts reports whether any link of the namespace is enslaved to this
// one (a bridge's ports). Equivalent to: ip link show master LINK
func (l Link) HasPorts() (bool, error) {
	n, err := l.Ports()
	return n > 0, err
}

// Ports counts the links whose master l is (a bridge's ports).
func (l Link) Ports() (int, error) {
	links, err := l.h.LinkList()
	if err != nil {
		return 0, fmt.Errorf("list links: %w", err)
	}
	n := 0
	for _, p := range links {
		if p.Attrs().MasterIndex == l.Index {
			n++
		}
	}
	return n, nil
}

// gone reports whether a delete failed because the object (or its link)
// is already gone.
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV)
}
