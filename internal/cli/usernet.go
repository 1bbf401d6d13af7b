package cli

import (
	"os"
	"path/filepath"

	"github.com/berthnet/berth/internal/rootless"
)

// slirp is berth's slirp4netns.
func (w *world) slirp() rootless.Program { return rootless.SlirpBeside(w.self()) }

// pasta is berth's pasta.
func (w *world) pasta() rootless.Program { return rootless.PastaBeside(w.self()) }

// self is berth's executable.
func (w *world) self() string {
	exe := w.env.Executable
	if exe == "" {
		exe, _ = os.Executable()
	}
	return exe
}

// userMode names berth's user-mode network programs and the one the
// rootless netns's uplink runs (containers.conf
// default_rootless_network_cmd).
func (w *world) userMode() rootless.Uplink {
	return rootless.Uplink{
		Cmd: w.conf.Network.DefaultRootlessNetworkCmd, Pasta: w.pasta(), Slirp: w.slirp(),
		PastaOptions: w.conf.Network.PastaOptions,
	}
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
