package engine

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berthnet/berth/internal/network"
)

// unprivilegedPortStartFile is the sysctl below which binding a port
// needs CAP_NET_BIND_SERVICE in the namespace's owner.
const unprivilegedPortStartFile = "/proc/sys/net/ipv4/ip_unprivileged_port_start"

// ErrPrivilegedPort is a rootless published port the user may not bind.
var ErrPrivilegedPort = errors.New("permission denied")

// checkUnprivilegedPorts refuses host ports below start (the
// net.ipv4.ip_unprivileged_port_start of the namespace they would be
// bound in), with Podman's message.
func checkUnprivilegedPorts(ports []network.PortMapping, start int) error {
	for _, pm := range ports {
		if pm.HostPort != 0 && int(pm.HostPort) < start {
			return fmt.Errorf("rootlessport cannot expose privileged port %d, you can add 'net.ipv4.ip_unprivileged_port_start=%d' to /etc/sysctl.conf (currently %d), or choose a larger port number (>= %d): %w",
				pm.HostPort, pm.HostPort, start, start, ErrPrivilegedPort)
		}
	}
	return nil
}

// rootlessPortCheck runs checkUnprivilegedPorts against this process's
// network namespace, where a rootless engine's published ports are
// bound (by the user-mode network's host side).
func rootlessPortCheck(ports []network.PortMapping) error {
	if len(ports) == 0 {
		return nil
	}
	b, err := os.ReadFile(unprivilegedPortStartFile)
	if err != nil {
		return nil // an old kernel: 1024, and the bind reports it
	}
	start, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	return checkUnprivilegedPorts(ports, start)
}
