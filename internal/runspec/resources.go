package runspec

// The security, device, sysctl, init and cgroup-limit parts of the spec
// (--cap-add/--cap-drop, --privileged, --device, --sysctl, --init,
// --memory, --cpus, --pids-limit, ...).

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InitPath is where --init's binary is bound in the container (Podman's).
const InitPath = "/run/podman-init"

// ProcessSecurity are a process's capabilities, rlimits and
// no-new-privileges beyond the defaults.
type ProcessSecurity struct {
	// Capabilities replace DefaultCapabilities when non-nil (the result
	// of --cap-add/--cap-drop/--privileged).
	Capabilities []string
	// UserCaps are what a non-root user gets as its effective, permitted,
	// inheritable and ambient sets (the --cap-add ones, as Podman).
	UserCaps        []string
	NoNewPrivileges bool
	// Rlimits replace the default RLIMIT_NOFILE and are added to it.
	Rlimits []specs.POSIXRlimit
}

// DeviceNode is a host device made in the container, with the cgroup
// access (a subset of rwm) it is given.
type DeviceNode struct {
	specs.LinuxDevice
	Access string
}

// Extra are the container-wide options beyond the defaults.
type Extra struct {
	// Privileged: no masked or read-only paths, /sys writable, every
	// device allowed in the cgroup (Devices are the host's).
	Privileged bool
	Devices    []DeviceNode
	Sysctls    map[string]string
	// InitBinary is a host binary bound at InitPath and run as PID 1 in
	// front of the command.
	InitBinary string
	Resources  *specs.LinuxResources
	// ShmSize replaces /dev/shm's 64 MiB (bytes; 0: no limit).
	ShmSize *int64
	// Annotations are added to the spec's.
	Annotations map[string]string
}

// applyCapabilities sets the process's capability sets from sec.
func applyCapabilities(p *specs.Process, uid uint32, sec ProcessSecurity) {
	p.NoNewPrivileges = sec.NoNewPrivileges
	if sec.Capabilities == nil {
		return
	}
	caps := slices.Clone(sec.Capabilities)
	c := &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if uid != 0 {
		user := slices.Clone(sec.UserCaps)
		c.Effective, c.Permitted, c.Inheritable, c.Ambient = user, user, user, user
	}
	p.Capabilities = c
}

// applyRlimits replaces or adds the given rlimits.
func applyRlimits(p *specs.Process, rls []specs.POSIXRlimit) {
	for _, rl := range rls {
		i := slices.IndexFunc(p.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == rl.Type })
		if i >= 0 {
			p.Rlimits[i] = rl
		} else {
			p.Rlimits = append(p.Rlimits, rl)
		}
	}
}

// applyExtra applies x to a generated spec.
func applyExtra(s *specs.Spec, x Extra) {
	if x.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		for i, m := range s.Mounts {
			if m.Type == "sysfs" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
		if s.Linux.Resources != nil {
			s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		}
	}
	for _, d := range x.Devices {
		s.Linux.Devices = append(s.Linux.Devices, d.LinuxDevice)
		if s.Linux.Resources != nil && !x.Privileged {
			major, minor := d.Major, d.Minor
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
				Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: d.Access,
			})
		}
	}
	if len(x.Sysctls) > 0 {
		s.Linux.Sysctl = x.Sysctls
	}
	if x.InitBinary != "" {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: x.InitBinary, Options: []string{"bind", "private", "ro"}})
		s.Process.Args = append([]string{InitPath, "--"}, s.Process.Args...)
	}
	if x.ShmSize != nil {
		setShmSize(s.Mounts, *x.ShmSize)
	}
	for k, v := range x.Annotations {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
	if x.Resources != nil && s.Linux.Resources != nil {
		r := s.Linux.Resources
		r.Memory, r.CPU, r.Pids = x.Resources.Memory, x.Resources.CPU, x.Resources.Pids
	}
}

// setShmSize sets the size of the /dev/shm tmpfs (0: none, as Podman's
// --shm-size 0).
func setShmSize(mounts []specs.Mount, size int64) {
	for i, m := range mounts {
		if m.Destination != "/dev/shm" || m.Type != "tmpfs" {
			continue
		}
		opts := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") })
		if size > 0 {
			opts = append(opts, "size="+strconv.FormatInt(size, 10))
		}
		mounts[i].Options = opts
	}
}

// ResolveGroups resolves --group-add names or numbers against the
// container's /etc/group (nil when it has none).
func ResolveGroups(names []string, group []byte) ([]uint32, error) {
	var out []uint32
	for _, g := range names {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			out = append(out, uint32(n))
			continue
		}
		e, ok := lookupID(group, 0, g)
		if !ok {
			return nil, fmt.Errorf("looking up supplemental groups: Unable to find group %s: no matching entries in group file", g)
		}
		n, err := strconv.ParseUint(e[2], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group %s: bad gid %q in the container's /etc/group", g, e[2])
		}
		out = append(out, uint32(n))
	}
	return out, nil
}
