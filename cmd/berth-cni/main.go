//go:debug containermaxprocs=0

// Command berth-cni is berth's CNI plugins in one small binary: it is
// installed under each plugin's name (berth-bridge, berth-ipam,
// berth-portmap; `make` makes the links in bin/) and acts as the plugin it
// is run as. A runtime starts a plugin process per network operation, so it
// links no gRPC and starts fast. `berth-cni PLUGIN` also works.
package main

import (
	"os"
	"path/filepath"

	"github.com/berthnet/berth/internal/compat/cni"
)

func main() {
	name := filepath.Base(os.Args[0])
	if name == "berth-cni" && len(os.Args) > 1 {
		name = os.Args[1]
	}
	os.Exit(cni.Main(name, cni.Env{}))
}
