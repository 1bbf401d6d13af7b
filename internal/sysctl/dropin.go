package sysctl

import (
	"os"
	"syscall"
)

// RuntimeDir is where netavark ≥ 1.16 keeps a created bridge's sysctls as
// a sysctl.d(5) file, so that a later run of systemd-sysctl re-applies them
// instead of resetting them.
const RuntimeDir = "/run/sysctl.d"

// DropInHost describes the host a front-end runs on, for RuntimeDropInDir.
type DropInHost struct {
	// Rootless: the network namespace is a user's, not the machine's.
	Rootless bool
	// SystemdBooted: systemd manages the machine (sd_booted(3)).
	SystemdBooted bool
	// InitNetns: berth's host namespace is the machine's own (PID 1's).
	InitNetns bool
}

// RuntimeDropInDir is the directory for bridges' sysctl.d files on h, ""
// when none should be written: systemd-sysctl applies them to the
// machine's own namespace, so they are written only when berth manages
// that namespace as root on a host booted with systemd (netavark's rule,
// plus the namespace check that keeps a berth run inside a test or other
// namespace from changing the machine's sysctls through systemd).
func RuntimeDropInDir(h DropInHost) string {
	if h.Rootless || !h.SystemdBooted || !h.InitNetns {
		return ""
	}
	return RuntimeDir
}

// ProbeDropInHost finds the DropInHost of this process for a rootful or
// rootless front-end whose host namespace is its own.
func ProbeDropInHost(rootless bool) DropInHost {
	_, err := os.Stat("/run/systemd/system")
	return DropInHost{Rootless: rootless, SystemdBooted: err == nil, InitNetns: sameNetns("/proc/self/ns/net", "/proc/1/ns/net")}
}

// sameNetns reports whether two namespace files are the same namespace;
// one that cannot be read (PID 1's, unprivileged) is not.
func sameNetns(a, b string) bool {
	var sa, sb syscall.Stat_t
	if syscall.Stat(a, &sa) != nil || syscall.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
