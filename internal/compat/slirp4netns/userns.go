package slirp4netns

import (
	"errors"
	"net"

	"github.com/berthnet/berth/internal/usernet"
)

// openTAPInUserns opens the TAP inside a namespace owned by another user
// namespace (--userns-path).
func openTAPInUserns(userns, netnsPath, tap string, configure bool, cfg usernet.Config, mac net.HardwareAddr) (int, error) {
	return -1, errors.New("--userns-path: not supported yet; run slirp4netns inside the user namespace (as Podman does)")
}
