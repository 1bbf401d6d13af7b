package engine

import (
	"fmt"
	"net/netip"

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
	links, err := h.Links()
	if err != nil {
		return HostLinks{}, fmt.Errorf("list host links: %w", err)
	}
	var out HostLinks
	for _, l := range links {
		out.Names = append(out.Names, l.Name)
	}
	addrs, err := h.Addrs()
	if err != nil {
		return HostLinks{}, fmt.Errorf("list host addresses: %w", err)
	}
	for _, p := range addrs {
		if ip := p.Addr(); !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			out.Prefix = append(out.Prefix, p)
		}
	}
	return out, nil
}
