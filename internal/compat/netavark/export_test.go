package netavark

import (
	"io"

	"github.com/berthnet/berth/internal/network"
)

// Internals for the tests of package netavark_test.
var (
	Wording      = wording
	OSErrorText  = osError
	FirewallLine = firewallLine
)

// DropInvalidAliases runs dropInvalidAliases on o with the logger RUST_LOG
// rustLog gives, writing to w.
func DropInvalidAliases(o *network.Options, w io.Writer, rustLog string) {
	dropInvalidAliases(o, logger(Env{Stderr: w, Getenv: func(string) string { return rustLog }}))
}
