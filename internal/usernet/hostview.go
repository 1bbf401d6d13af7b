package usernet

import "github.com/berthnet/berth/internal/link"

// HostFamily is what pasta copies from the host for one address family
// (see link.HostFamily).
type HostFamily = link.HostFamily

// ErrNoHostRoute means the host has no default route of the family.
var ErrNoHostRoute = link.ErrNoHostRoute

// ReadHostFamily reads the calling thread's namespace for the family (v6:
// IPv6) on the interface ifname, or on the one with the first default
// route when ifname is empty.
func ReadHostFamily(v6 bool, ifname string) (HostFamily, error) {
	h, err := link.NewHandle(nil)
	if err != nil {
		return HostFamily{}, err
	}
	defer h.Close()
	return h.HostFamily(v6, ifname)
}
