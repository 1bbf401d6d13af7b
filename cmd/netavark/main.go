//go:debug containermaxprocs=0

// Command netavark is berth's netavark-compatible backend as a small
// binary of its own: Podman runs it for every container start and stop, so
// it links only what setup, teardown, update, create and firewall-reload
// need and starts fast. Networks whose addresses come from DHCP, and the
// dhcp-proxy command, need the gRPC client and server: for those it
// re-executes the berth binary beside it (`berth netavark ...`) with the
// same arguments and input.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/shortlived"
)

func main() {
	berthnet.RunReaper() // a child deleting a link teardown retired
	shortlived.Tune()
	ctx, stop := shortlived.Interruptible("netavark", 2*time.Second)
	exe, _ := os.Executable()
	code := netavark.Run(ctx, os.Args[1:], netavark.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv:          os.Getenv,
		Delegate:        delegate,
		FirewallWatcher: exe,
	})
	stop()
	os.Exit(code)
}

// delegate replaces this process with `berth netavark ARGS...` from the
// same directory; input (when the command read any) becomes its standard
// input through a memfd. It returns only on failure.
func delegate(input []byte) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	berth := filepath.Join(filepath.Dir(exe), "berth")
	if input != nil {
		fd, err := unix.MemfdCreate("netavark-input", 0)
		if err != nil {
			return 0, fmt.Errorf("memfd: %w", err)
		}
		if _, err := unix.Write(fd, input); err != nil {
			return 0, fmt.Errorf("memfd: %w", err)
		}
		if _, err := unix.Seek(fd, 0, 0); err != nil {
			return 0, fmt.Errorf("memfd: %w", err)
		}
		if err := unix.Dup2(fd, 0); err != nil {
			return 0, fmt.Errorf("stdin: %w", err)
		}
		unix.Close(fd)
	}
	args := append([]string{"berth", "netavark"}, os.Args[1:]...)
	err = unix.Exec(berth, args, os.Environ())
	return 0, fmt.Errorf("exec %s: %w", berth, err)
}
