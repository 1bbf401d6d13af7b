package engine

// The process, security and resource options of a container (capabilities,
// privileged mode, limits, sysctls, ulimits, devices, --init): checked at
// create, turned into the spec at start.

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// initPaths are where --init's catatonit (or tini) is looked for.
var initPaths = []string{"/usr/libexec/podman/catatonit", "/usr/libexec/catatonit/catatonit"}

// checkRuntime validates the runtime options against the container's
// namespaces and the engine's mode, resolving the --init binary.
func (e *Engine) checkRuntime(cfg *Config) error {
	rt := &cfg.Runtime
	if e.cfg.Rootless && rt.Resources.Any() {
		return errors.New("resource limits (--memory, --memory-swap, --cpus, --cpu-shares, --pids-limit) need cgroup delegation, which rootless berth does not use: run as root for limits")
	}
	for k := range rt.Sysctls {
		if err := checkSysctl(cfg, k); err != nil {
			return err
		}
	}
	for _, d := range rt.Devices {
		if _, err := deviceNode(d); err != nil {
			return err
		}
	}
	if rt.Init {
		p, err := findInit(rt.InitPath)
		if err != nil {
			return err
		}
		rt.InitPath = p
	}
	return nil
}

// checkSysctl refuses a sysctl of a namespace the container does not own.
func checkSysctl(cfg *Config, key string) error {
	if runopts.SysctlNet(key) {
		switch cfg.Net.Kind {
		case runopts.ModeHost:
			return fmt.Errorf("sysctl %s=%s can't be set since Network Namespace set to host", key, cfg.Runtime.Sysctls[key])
		case runopts.ModeContainer, runopts.ModeNS:
			return fmt.Errorf("sysctl %s=%s can't be set since the Network Namespace is another container's, pod's or a given path's", key, cfg.Runtime.Sysctls[key])
		}
	}
	if runopts.SysctlIPC(key) && cfg.Pod != "" && !cfg.Infra {
		return fmt.Errorf("sysctl %s=%s can't be set since the IPC Namespace is shared with the pod", key, cfg.Runtime.Sysctls[key])
	}
	return nil
}

// findInit returns the --init binary: the given path, else catatonit.
func findInit(given string) (string, error) {
	cands := initPaths
	if given != "" {
		cands = []string{given}
	}
	var firstErr error
	for _, p := range cands {
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() {
			return p, nil
		}
		if err == nil {
			err = fmt.Errorf("%s: not a regular file", p)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if given == "" {
		if p, err := exec.LookPath("catatonit"); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("container-init binary not found on the host: %w", firstErr)
}

// deviceNode describes the host device d names.
func deviceNode(d runopts.Device) (runspec.DeviceNode, error) {
	var st unix.Stat_t
	if err := unix.Stat(d.Source, &st); err != nil {
		return runspec.DeviceNode{}, fmt.Errorf("stat %s: %w", d.Source, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return runspec.DeviceNode{}, fmt.Errorf("--device %s: not a device node", d.Source)
	}
	mode := fs.FileMode(st.Mode & 0o7777)
	uid, gid := st.Uid, st.Gid
	return runspec.DeviceNode{Access: d.Permissions, LinuxDevice: specs.LinuxDevice{
		Path: d.Destination, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}}, nil
}

// hostDevices are the host's device nodes under /dev (--privileged),
// without the pseudo-terminal, shared-memory and message-queue trees the
// container gets of its own.
func hostDevices() []runspec.DeviceNode {
	var out []runspec.DeviceNode
	_ = filepath.WalkDir("/dev", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if de.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev":
				return filepath.SkipDir
			}
			return nil
		}
		if de.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		if n, err := deviceNode(runopts.Device{Source: p, Destination: p, Permissions: "rwm"}); err == nil {
			out = append(out, n)
		}
		return nil
	})
	return out
}

// runtimeSpec turns the container's runtime options into the spec's
// process security, extra options and additional groups.
func (e *Engine) runtimeSpec(c *Container, group []byte) (runspec.ProcessSecurity, runspec.Extra, []uint32, error) {
	rt := c.Config.Runtime
	sec, err := processSecurity(rt)
	if err != nil {
		return sec, runspec.Extra{}, nil, err
	}
	x := runspec.Extra{Privileged: rt.Privileged, Sysctls: rt.Sysctls, Resources: resources(rt.Resources, swapAccounted()), ShmSize: rt.ShmSize, Annotations: rt.Annotations}
	if rt.Init {
		x.InitBinary = rt.InitPath
	}
	if rt.Privileged {
		x.Devices = hostDevices()
	}
	for _, d := range rt.Devices {
		n, err := deviceNode(d)
		if err != nil {
			return sec, x, nil, err
		}
		x.Devices = append(x.Devices, n)
	}
	groups, err := runspec.ResolveGroups(rt.GroupAdd, group)
	return sec, x, groups, err
}

// processSecurity is the capabilities, no-new-privileges and rlimits of
// the container's processes (exec'd ones too).
func processSecurity(rt runopts.Runtime) (runspec.ProcessSecurity, error) {
	sec := runspec.ProcessSecurity{NoNewPrivileges: rt.NoNewPrivileges}
	all := kernelCapabilities()
	switch {
	case rt.Privileged:
		// As Podman: the whole bounding set, --cap-drop ignored.
		sec.Capabilities = all
	case len(rt.CapAdd) > 0 || len(rt.CapDrop) > 0:
		caps, err := runopts.MergeCapabilities(runspec.DefaultCapabilities, all, rt.CapAdd, rt.CapDrop)
		if err != nil {
			return sec, err
		}
		// Capabilities berth does not have itself are left out.
		sec.Capabilities = []string{}
		for _, c := range caps {
			if contains(all, c) {
				sec.Capabilities = append(sec.Capabilities, c)
			}
		}
	}
	if sec.Capabilities != nil {
		user, _ := runopts.MergeCapabilities(nil, all, rt.CapAdd, nil)
		for _, c := range user {
			if contains(all, c) {
				sec.UserCaps = append(sec.UserCaps, c)
			}
		}
	}
	for _, u := range rt.Ulimits {
		if u.Name == "host" {
			continue
		}
		sec.Rlimits = append(sec.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: rlim(u.Soft), Hard: rlim(u.Hard)})
	}
	return sec, nil
}

// rlim maps -1 to RLIM_INFINITY.
func rlim(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64
	}
	return uint64(v)
}

// ulimitHost reports whether --ulimit host was given: the container
// keeps berth's own limits.
func ulimitHost(rt runopts.Runtime) bool {
	for _, u := range rt.Ulimits {
		if u.Name == "host" {
			return true
		}
	}
	return false
}

// kernelCapabilities are the capabilities berth can give: those of its
// own bounding set (as Podman's "all").
func kernelCapabilities() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return runopts.AllCapabilities
	}
	return boundingSet(string(b))
}

// boundingSet lists the capabilities of the CapBnd line of a
// /proc/PID/status (all known ones when it has none).
func boundingSet(status string) []string {
	for _, line := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(line, "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			break
		}
		var out []string
		for i, c := range runopts.AllCapabilities {
			if mask&(1<<i) != 0 {
				out = append(out, c)
			}
		}
		return out
	}
	return runopts.AllCapabilities
}

// swapAccounted reports whether the kernel limits swap in cgroups.
func swapAccounted() bool {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		return true
	}
	m, _ := filepath.Glob("/sys/fs/cgroup/*/memory.swap.max")
	return len(m) > 0
}

// resources is the spec's cgroup limits, nil when none is set. With
// --memory and no --memory-swap, swap is limited to as much as memory
// where the kernel accounts swap.
func resources(r runopts.Resources, swap bool) *specs.LinuxResources {
	if !r.Any() {
		return nil
	}
	out := &specs.LinuxResources{}
	if r.MemoryReservation != 0 {
		v := r.MemoryReservation
		out.Memory = &specs.LinuxMemory{Reservation: &v}
	}
	if r.Memory != 0 {
		m := r.Memory
		if out.Memory == nil {
			out.Memory = &specs.LinuxMemory{}
		}
		out.Memory.Limit = &m
		if r.MemorySwap != 0 {
			s := r.MemorySwap
			out.Memory.Swap = &s
		} else if swap {
			s := 2 * m
			out.Memory.Swap = &s
		}
	}
	if r.CPUQuota != 0 || r.CPUShares != 0 {
		out.CPU = &specs.LinuxCPU{}
		if r.CPUQuota != 0 {
			q, p := r.CPUQuota, r.CPUPeriod
			out.CPU.Quota, out.CPU.Period = &q, &p
		}
		if r.CPUShares != 0 {
			s := r.CPUShares
			out.CPU.Shares = &s
		}
	}
	if r.PidsLimit != 0 {
		l := r.PidsLimit
		out.Pids = &specs.LinuxPids{Limit: &l}
	}
	return out
}
