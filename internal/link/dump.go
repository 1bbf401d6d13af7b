package link

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpTries bounds how often a dump the kernel interrupted is repeated.
const dumpTries = 8

// redump repeats a netlink dump while the kernel reports it interrupted
// (NLM_F_DUMP_INTR: the table changed while it was read, so the answer may
// miss or repeat entries). A dump that stays interrupted returns its last
// answer with netlink.ErrDumpInterrupted, which callers that can live with
// a partial view may ignore.
func redump[T any](dump func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range dumpTries {
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}

// LinkList lists the namespace's links, repeating an interrupted dump.
func (h *Handle) LinkList() ([]netlink.Link, error) {
	return redump(h.Handle.LinkList)
}

// AddrList lists addresses (of link, or all when nil), repeating an
// interrupted dump.
func (h *Handle) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	return redump(func() ([]netlink.Addr, error) { return h.Handle.AddrList(link, family) })
}

// RouteList lists routes (of link, or all when nil), repeating an
// interrupted dump.
func (h *Handle) RouteList(link netlink.Link, family int) ([]netlink.Route, error) {
	return redump(func() ([]netlink.Route, error) { return h.Handle.RouteList(link, family) })
}

// RouteListFiltered lists the routes that match filter, repeating an
// interrupted dump.
func (h *Handle) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	return redump(func() ([]netlink.Route, error) { return h.Handle.RouteListFiltered(family, filter, mask) })
}

// NeighList lists the neighbours of a link, repeating an interrupted
// dump.
func (h *Handle) NeighList(linkIndex, family int) ([]netlink.Neigh, error) {
	return redump(func() ([]netlink.Neigh, error) { return h.Handle.NeighList(linkIndex, family) })
}
