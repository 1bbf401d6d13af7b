package lease

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// FDB is a VXLAN forwarding entry: frames for MAC go to the VTEP at Dst.
// Equivalent to: bridge fdb replace MAC dev VXLAN dst DST self permanent
type FDB struct {
	MAC string
	Dst netip.Addr
}

// Neigh is a permanent neighbour entry on the VXLAN device.
// Equivalent to: ip neigh replace IP lladdr MAC dev VXLAN nud permanent
type Neigh struct {
	IP  netip.Addr
	MAC string
}

// Route sends a remote subnet to its host's VTEP address, on-link.
// Equivalent to: ip route replace DST via VIA dev VXLAN onlink
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// State is the forwarding state of one host's VXLAN device, as programmed
// or as wanted.
type State struct {
	FDB    []FDB
	Neighs []Neigh
	Routes []Route
}

// Desired returns the state a host whose own subnet is own must hold for
// the leases: one FDB entry, one neighbour entry and one route per remote
// lease. The host's own lease and leases of other VNIs are left out; a
// malformed lease is skipped (Decode has already refused it).
func Desired(own netip.Prefix, leases []Lease) State {
	var st State
	for _, l := range leases {
		if l.Subnet == own {
			continue
		}
		mac, err := l.MAC()
		if err != nil {
			continue
		}
		m := mac.String()
		st.FDB = append(st.FDB, FDB{MAC: m, Dst: l.PublicIP})
		st.Neighs = append(st.Neighs, Neigh{IP: VTEPAddr(l.Subnet), MAC: m})
		st.Routes = append(st.Routes, Route{Dst: l.Subnet, Via: VTEPAddr(l.Subnet)})
	}
	st.sort()
	return st
}

func (s *State) sort() {
	sort.Slice(s.FDB, func(i, j int) bool { return s.FDB[i].MAC < s.FDB[j].MAC })
	sort.Slice(s.Neighs, func(i, j int) bool { return s.Neighs[i].IP.Less(s.Neighs[j].IP) })
	sort.Slice(s.Routes, func(i, j int) bool { return s.Routes[i].Dst.Addr().Less(s.Routes[j].Dst.Addr()) })
}

// Empty reports whether the state holds no entry.
func (s State) Empty() bool { return len(s.FDB)+len(s.Neighs)+len(s.Routes) == 0 }

// String renders the state as iproute2 commands, one per line, for tests
// and logs.
func (s State) String() string {
	var b strings.Builder
	for _, f := range s.FDB {
		fmt.Fprintf(&b, "fdb %s dst %s\n", f.MAC, f.Dst)
	}
	for _, n := range s.Neighs {
		fmt.Fprintf(&b, "neigh %s lladdr %s\n", n.IP, n.MAC)
	}
	for _, r := range s.Routes {
		fmt.Fprintf(&b, "route %s via %s\n", r.Dst, r.Via)
	}
	return b.String()
}

// Diff returns what to delete from have and what to set (replace) so that
// have becomes want. Entries are identified by MAC (FDB), IP (neighbours)
// and destination (routes): one whose value changed is only set, not
// deleted first.
func Diff(have, want State) (del, set State) {
	del.FDB, set.FDB = diffBy(have.FDB, want.FDB, func(f FDB) string { return f.MAC })
	del.Neighs, set.Neighs = diffBy(have.Neighs, want.Neighs, func(n Neigh) netip.Addr { return n.IP })
	del.Routes, set.Routes = diffBy(have.Routes, want.Routes, func(r Route) netip.Prefix { return r.Dst })
	del.sort()
	set.sort()
	return del, set
}

// diffBy compares two lists of entries identified by key: del holds the
// entries of have whose key is not wanted, set the wanted entries that are
// missing or differ.
func diffBy[E comparable, K comparable](have, want []E, key func(E) K) (del, set []E) {
	w := map[K]bool{}
	for _, e := range want {
		w[key(e)] = true
	}
	h := map[K]E{}
	for _, e := range have {
		h[key(e)] = e
		if !w[key(e)] {
			del = append(del, e)
		}
	}
	for _, e := range want {
		if old, ok := h[key(e)]; !ok || old != e {
			set = append(set, e)
		}
	}
	return del, set
}
