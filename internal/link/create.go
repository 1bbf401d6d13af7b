package link

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrUnknownMode is returned for a macvlan or ipvlan mode the kernel does
// not know.
var ErrUnknownMode = errors.New("unknown mode")

// BridgeSpec is a bridge for AddBridge.
type BridgeSpec struct {
	Name string
	// MTU: 0 leaves the kernel's default.
	MTU int
	MAC net.HardwareAddr
	// MasterIndex enslaves the bridge (to a VRF); 0: none.
	MasterIndex int
}

// AddBridge creates a bridge, down and without addresses. A bridge of that
// name that exists already is an error wrapping unix.EEXIST.
// Equivalent to: ip link add NAME [mtu MTU] address MAC [master VRF] type
// bridge
func (h *Handle) AddBridge(b BridgeSpec) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = b.Name
	attrs.HardwareAddr = b.MAC
	if b.MTU > 0 {
		attrs.MTU = b.MTU
	}
	attrs.MasterIndex = b.MasterIndex
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return fmt.Errorf("create bridge %s: %w", b.Name, err)
	}
	return nil
}

// SublinkSpec is a macvlan or ipvlan link for AddMacvlan and AddIPVlan: made
// on a parent link of the handle's namespace, straight into another
// namespace.
type SublinkSpec struct {
	Name   string
	Parent Link
	// NSFd is the namespace the new link goes into.
	NSFd int
	// MTU: 0 takes the parent's.
	MTU int
	// MAC: nil lets the kernel choose.
	MAC net.HardwareAddr
	// Mode is the mode by its ip-link name; "" is bridge for a macvlan,
	// l2 for an ipvlan.
	Mode string
}

// AddMacvlan creates a macvlan link. A kernel without macvlan support
// gives an error wrapping unix.EOPNOTSUPP or unix.ENOTSUP.
// Equivalent to: ip link add NAME link PARENT [mtu MTU] [address MAC]
// netns NS type macvlan mode MODE
func (h *Handle) AddMacvlan(s SublinkSpec) error {
	mode, err := macvlanMode(s.Mode)
	if err != nil {
		return err
	}
	return h.addSublink(&netlink.Macvlan{LinkAttrs: s.attrs(), Mode: mode}, s.Parent.Name)
}

// SetMacvlanSources sets the source MAC addresses a macvlan link of mode
// source receives frames from (replacing the list it had). Equivalent to:
// ip link set LINK type macvlan macaddr set MAC...
func (l Link) SetMacvlanSources(macs []net.HardwareAddr) error {
	ml := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: l.Name, Index: l.Index}}
	if err := l.h.MacvlanMACAddrSet(ml, macs); err != nil {
		return fmt.Errorf("set source MACs of %s: %w", l.Name, err)
	}
	return nil
}

// MacvlanSources returns the source MAC addresses of a macvlan link of
// mode source. Equivalent to: ip -d link show LINK
func (l Link) MacvlanSources() ([]net.HardwareAddr, error) {
	nl, err := l.h.ByIndex(l.Index)
	if err != nil {
		return nil, err
	}
	mv, ok := nl.(*netlink.Macvlan)
	if !ok {
		return nil, fmt.Errorf("%s is a %s link, not a macvlan", l.Name, nl.Type())
	}
	return mv.MACAddrs, nil
}

// AddIPVlan creates an ipvlan link, as AddMacvlan does a macvlan.
// Equivalent to: ip link add NAME link PARENT [mtu MTU] netns NS type
// ipvlan mode MODE
func (h *Handle) AddIPVlan(s SublinkSpec) error {
	mode, err := ipvlanMode(s.Mode)
	if err != nil {
		return err
	}
	return h.addSublink(&netlink.IPVlan{LinkAttrs: s.attrs(), Mode: mode}, s.Parent.Name)
}

func (s SublinkSpec) attrs() netlink.LinkAttrs {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = s.Name
	attrs.ParentIndex = s.Parent.Index
	attrs.Namespace = netlink.NsFd(s.NSFd)
	if s.MTU > 0 {
		attrs.MTU = s.MTU
	}
	if len(s.MAC) > 0 {
		attrs.HardwareAddr = s.MAC
	}
	return attrs
}

func (h *Handle) addSublink(l netlink.Link, parent string) error {
	kind := l.Type()
	if err := h.LinkAdd(l); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("create %s link: the kernel has no %s support: %w", kind, kind, err)
		}
		return fmt.Errorf("create %s link on %s: %w", kind, parent, err)
	}
	return nil
}

var macvlanModes = map[string]netlink.MacvlanMode{
	"": netlink.MACVLAN_MODE_BRIDGE, "bridge": netlink.MACVLAN_MODE_BRIDGE, "private": netlink.MACVLAN_MODE_PRIVATE,
	"vepa": netlink.MACVLAN_MODE_VEPA, "passthru": netlink.MACVLAN_MODE_PASSTHRU,
	"source": netlink.MACVLAN_MODE_SOURCE,
}

var ipvlanModes = map[string]netlink.IPVlanMode{
	"": netlink.IPVLAN_MODE_L2, "l2": netlink.IPVLAN_MODE_L2, "l3": netlink.IPVLAN_MODE_L3, "l3s": netlink.IPVLAN_MODE_L3S,
}

// macvlanMode returns the macvlan mode called name ("" is bridge), or an
// error wrapping ErrUnknownMode.
func macvlanMode(name string) (netlink.MacvlanMode, error) {
	m, ok := macvlanModes[name]
	if !ok {
		return 0, fmt.Errorf("macvlan mode %q: %w (want bridge, private, vepa, passthru or source)", name, ErrUnknownMode)
	}
	return m, nil
}

// ipvlanMode returns the ipvlan mode called name ("" is l2), or an error
// wrapping ErrUnknownMode.
func ipvlanMode(name string) (netlink.IPVlanMode, error) {
	m, ok := ipvlanModes[name]
	if !ok {
		return 0, fmt.Errorf("ipvlan mode %q: %w (want l2, l3 or l3s)", name, ErrUnknownMode)
	}
	return m, nil
}
