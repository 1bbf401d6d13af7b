// Package sdactivation takes the listening socket systemd passes a
// socket-activated service (sd_listen_fds(3): LISTEN_PID is this
// process, LISTEN_FDS >= 1, the first socket is fd 3).
package sdactivation

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// Listener returns the first socket systemd passed, or nil when the
// process was not socket-activated. getenv reads the environment.
func Listener(getenv func(string) string) (net.Listener, error) {
	if pid, _ := strconv.Atoi(getenv("LISTEN_PID")); pid != os.Getpid() {
		return nil, nil
	}
	if n, _ := strconv.Atoi(getenv("LISTEN_FDS")); n < 1 {
		return nil, nil
	}
	f := os.NewFile(3, "systemd-socket")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("use socket from systemd (fd 3): %w", err)
	}
	return ln, nil
}
