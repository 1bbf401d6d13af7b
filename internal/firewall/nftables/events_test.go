package nftables

import (
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// newgen builds a NEWGEN announcement's data.
func newgen(t testing.TB, attrs func(ae *netlink.AttributeEncoder)) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	attrs(ae)
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, b...)
}

func TestParseCommit(t *testing.T) {
	// The kernel writes its integers big-endian.
	data := newgen(t, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NFTA_GEN_ID, []byte{1, 2, 3, 4})
		ae.Bytes(unix.NFTA_GEN_PROC_PID, []byte{0, 0, 0x10, 0x92})
		ae.String(unix.NFTA_GEN_PROC_NAME, "nft")
	})
	c, err := parseCommit(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Commit{Gen: 0x01020304, PID: 4242, Proc: "nft"}); c != want {
		t.Errorf("parseCommit = %+v, want %+v", c, want)
	}
	// Without the process (older kernels): the generation alone.
	c, err = parseCommit(newgen(t, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NFTA_GEN_ID, []byte{0, 0, 0, 7}) }))
	if err != nil || c != (Commit{Gen: 7}) {
		t.Errorf("parseCommit without process = %+v, %v", c, err)
	}
	for name, bad := range map[string][]byte{
		"short":         {0, 0},
		"no generation": newgen(t, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NFTA_GEN_PROC_PID, []byte{0, 0, 0, 1}) }),
		"truncated":     append(newgen(t, func(ae *netlink.AttributeEncoder) { ae.Bytes(unix.NFTA_GEN_ID, []byte{0, 0, 0, 7}) }), 8, 0),
	} {
		if _, err := parseCommit(bad); err == nil {
			t.Errorf("parseCommit(%s) succeeded", name)
		}
	}
}
