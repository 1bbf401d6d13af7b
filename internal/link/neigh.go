package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ForgetNeighbour drops what the namespace cached as ip's link-layer
// address on link index (an address that has just moved to another
// interface, whose gratuitous ARP may have been lost), so the next packet
// asks again instead of going to the old MAC until the entry times out.
// No entry is no error. Equivalent to: ip neigh del IP dev LINK
func (h *Handle) ForgetNeighbour(index int, ip netip.Addr) error {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	err := h.NeighDel(&netlink.Neigh{LinkIndex: index, Family: fam, IP: net.IP(ip.AsSlice())})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("forget neighbour %s: %w", ip, err)
	}
	return nil
}
