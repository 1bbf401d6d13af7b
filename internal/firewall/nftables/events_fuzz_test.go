package nftables

import (
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// FuzzParseCommit: a NEWGEN announcement parses to a commit or an error,
// never to a commit that says announcements were lost.
func FuzzParseCommit(f *testing.F) {
	f.Add(newgen(f, func(ae *netlink.AttributeEncoder) {
		ae.Bytes(unix.NFTA_GEN_ID, []byte{1, 2, 3, 4})
		ae.Bytes(unix.NFTA_GEN_PROC_PID, []byte{0, 0, 0x10, 0x92})
		ae.String(unix.NFTA_GEN_PROC_NAME, "nft")
	}))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCommit(data)
		if err == nil && c.Lost {
			t.Errorf("a parsed commit says it lost announcements: %+v", c)
		}
	})
}
