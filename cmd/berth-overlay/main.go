// Command berth-overlay is berth's multi-host overlay: a CNI 1.1 plugin
// (CNI_COMMAND ADD, DEL, CHECK, STATUS, GC, VERSION) and, as
// `berth-overlay agent`, the per-host daemon that keeps the host's subnet
// lease in etcd and its VXLAN routes in sync. See README.md, "Overlay".
package main

import (
	"os"
	"runtime"

	"github.com/berthnet/berth/internal/overlay"
)

func init() {
	// CNI plugins work on the thread they start on; keep main there.
	runtime.LockOSThread()
}

func main() {
	os.Exit(overlay.Main(os.Args, os.Stdout, os.Stderr))
}
