package engine

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/link"
)

// HostLinks is what the host already uses: link names and the addresses
// (with prefix) configured on them. berth reads it, never changes it.
type HostLinks struct {
	Names  []string
	Prefix []netip.Prefix
}

// ReadHostLinks lists the links and addresses of the calling process's
// network namespace over netlink (read-only: ip -o addr); loopback and
// link-local addresses are left out.
func ReadHostLinks() (HostLinks, error) {
	h, err := link.NewHandle(nil)
	if err != nil {
		return HostLinks{}, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return HostLinks{}, fmt.Errorf("list host links: %w", err)
	}
	var out HostLinks
	for _, l := range links {
		out.Names = append(out.Names, l.Attrs().Name)
	}
	addrs, err := h.AddrList(nil, unix.AF_UNSPEC) // every family
	if err != nil {
		return HostLinks{}, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		out.Prefix = append(out.Prefix, netip.PrefixFrom(ip, ones))
	}
	return out, nil
}
