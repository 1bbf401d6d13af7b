package link

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ErrNoBridgeVLAN is returned when the kernel has no bridge VLAN filtering
// (built without CONFIG_BRIDGE_VLAN_FILTERING).
var ErrNoBridgeVLAN = errors.New("the kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)")

// ErrNoBroadcastCutoff is returned when the kernel does not apply a
// macvlan's broadcast cutoff (before Linux 6.4).
var ErrNoBroadcastCutoff = errors.New("the kernel has no macvlan broadcast cutoff (bclim, Linux 6.4 and later)")

// iflaMacvlanBCCutoff is IFLA_MACVLAN_BC_CUTOFF of linux/if_link.h
// (Linux 6.4), which vishvananda/netlink does not name.
const iflaMacvlanBCCutoff = nl.IFLA_MACVLAN_BC_QUEUE_LEN_USED + 1

// SetVLANFiltering turns VLAN filtering of bridge l on. Equivalent to:
// ip link set BR type bridge vlan_filtering 1
func (l Link) SetVLANFiltering() error {
	on := true
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: l.Name, Index: l.Index}, VlanFiltering: &on}
	if err := l.h.LinkModify(br); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("turn on VLAN filtering of bridge %s: %w: %w", l.Name, ErrNoBridgeVLAN, err)
		}
		return fmt.Errorf("turn on VLAN filtering of bridge %s: %w", l.Name, err)
	}
	return nil
}

// AddPortVLAN puts bridge port l in VLAN vid, untagged and as its PVID
// (frames it sends belong to vid). Equivalent to:
// bridge vlan add dev PORT vid VID pvid untagged master
func (l Link) AddPortVLAN(vid uint16) error {
	if err := l.h.BridgeVlanAdd(l.nl(), vid, true, true, false, true); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("put %s in VLAN %d: %w: %w", l.Name, vid, ErrNoBridgeVLAN, err)
		}
		return fmt.Errorf("put %s in VLAN %d: %w", l.Name, vid, err)
	}
	return nil
}

// SetBroadcastCutoff sets macvlan l's broadcast cutoff and reads it back:
// a kernel that ignores the attribute gives an error wrapping
// ErrNoBroadcastCutoff. Equivalent to: ip link set LINK type macvlan bclim N
func (l Link) SetBroadcastCutoff(cutoff int32) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(l.Index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("macvlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(iflaMacvlanBCCutoff, nl.Uint32Attr(uint32(cutoff)))
	req.AddData(info)
	if _, err := l.h.execute(req, 0); err != nil {
		return fmt.Errorf("set broadcast cutoff of %s: %w", l.Name, err)
	}
	got, ok, err := l.BroadcastCutoff()
	if err != nil {
		return err
	}
	if !ok || got != cutoff {
		return fmt.Errorf("set broadcast cutoff of %s to %d: %w", l.Name, cutoff, ErrNoBroadcastCutoff)
	}
	return nil
}

// BroadcastCutoff returns macvlan l's broadcast cutoff, and false when the
// kernel reports none. Equivalent to: ip -d link show LINK
func (l Link) BroadcastCutoff() (int32, bool, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(l.Index)
	req.AddData(msg)
	msgs, err := l.h.execute(req, unix.RTM_NEWLINK)
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", l.Name, err)
	}
	for _, m := range msgs {
		if v, ok := macvlanCutoff(m); ok {
			return v, true, nil
		}
	}
	return 0, false, nil
}

// macvlanCutoff finds IFLA_MACVLAN_BC_CUTOFF in an RTM_NEWLINK message.
func macvlanCutoff(m []byte) (cutoff int32, found bool) {
	if len(m) < unix.SizeofIfInfomsg {
		return 0, false
	}
	walkAttrs(m[unix.SizeofIfInfomsg:], unix.IFLA_LINKINFO, func(info []byte) {
		walkAttrs(info, nl.IFLA_INFO_DATA, func(data []byte) {
			walkAttrs(data, iflaMacvlanBCCutoff, func(v []byte) {
				if len(v) >= 4 {
					cutoff, found = int32(nl.NativeEndian().Uint32(v[:4])), true
				}
			})
		})
	})
	return cutoff, found
}

// walkAttrs calls fn with the value of each netlink attribute of type typ
// in b; it stops at the first malformed attribute (netlink's own parser
// panics on some).
func walkAttrs(b []byte, typ uint16, fn func(v []byte)) {
	for len(b) >= unix.SizeofRtAttr {
		l := int(nl.NativeEndian().Uint16(b[0:2]))
		if l < unix.SizeofRtAttr || l > len(b) {
			return
		}
		if nl.NativeEndian().Uint16(b[2:4])&nlaTypeMask == typ {
			fn(b[unix.SizeofRtAttr:l])
		}
		next := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if next >= len(b) {
			return
		}
		b = b[next:]
	}
}

// nlaTypeMask clears an attribute type's NLA_F_NESTED and
// NLA_F_NET_BYTEORDER flags.
const nlaTypeMask = 0x3fff
