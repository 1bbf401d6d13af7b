package link

import (
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// linkMessage is an RTM_NEWLINK body: an ifinfomsg and a LINKINFO of kind
// macvlan whose data holds attrs.
func linkMessage(attrs ...*nl.RtAttr) []byte {
	b := nl.NewIfInfomsg(unix.AF_UNSPEC).Serialize()
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("macvlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	for _, a := range attrs {
		data.AddChild(a)
	}
	name := nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated("eth0"))
	return append(append(b, name.Serialize()...), info.Serialize()...)
}

func TestMacvlanCutoff(t *testing.T) {
	minus1 := int32(-1)
	got, ok := macvlanCutoff(linkMessage(nl.NewRtAttr(nl.IFLA_MACVLAN_MODE, nl.Uint32Attr(4)), nl.NewRtAttr(iflaMacvlanBCCutoff, nl.Uint32Attr(uint32(minus1)))))
	if !ok || got != -1 {
		t.Errorf("cutoff -1: got %d %v", got, ok)
	}
	if _, ok := macvlanCutoff(linkMessage(nl.NewRtAttr(nl.IFLA_MACVLAN_MODE, nl.Uint32Attr(4)))); ok {
		t.Error("found a cutoff in a message without one (a kernel before 6.4)")
	}
	if _, ok := macvlanCutoff([]byte{1, 2}); ok {
		t.Error("found a cutoff in a truncated message")
	}
}

// FuzzMacvlanCutoff: any bytes the kernel might send are parsed without a
// panic.
func FuzzMacvlanCutoff(f *testing.F) {
	f.Add(linkMessage(nl.NewRtAttr(iflaMacvlanBCCutoff, nl.Uint32Attr(7))))
	f.Add(linkMessage())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		macvlanCutoff(b)
	})
}
