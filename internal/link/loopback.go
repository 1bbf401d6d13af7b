package link

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/berthnet/berth/internal/netns"
)

// loopbackIndex is the interface index of every network namespace's
// loopback link (LOOPBACK_IFINDEX in the kernel).
const loopbackIndex = 1

// LoopbackUp sets the namespace's loopback link up, in one request (no
// lookup); a link that is up already stays so.
// Equivalent to: ip link set lo up
func (h *Handle) LoopbackUp() error {
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: loopbackIndex, Name: "lo"}}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// LoopbackUpIn sets lo up in the namespace ns (nil: the caller's).
func LoopbackUpIn(ns *netns.NetNS) error {
	h, err := NewHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.LoopbackUp()
}
