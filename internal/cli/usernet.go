package cli

import (
	"os"
	"path/filepath"

	"github.com/berthnet/berth/internal/rootless"
)

// slirp is berth's user-mode network program.
func (w *world) slirp() rootless.Slirp {
	exe := w.env.Executable
	if exe == "" {
		exe, _ = os.Executable()
	}
	return rootless.SlirpBeside(exe)
}

// rootlessNetNS is the user's rootless network namespace (bridge networks
// of a rootless engine live there).
func (w *world) rootlessNetNS() rootless.NetNS {
	return rootless.NetNS{Dir: filepath.Join(w.runRoot, "rootless-netns")}
}

// rootlessBridges reports whether bridge networks live in the rootless
// network namespace (berth runs inside its user namespace).
func (w *world) rootlessBridges() bool {
	return w.env.Rootless && rootless.Inside()
}
