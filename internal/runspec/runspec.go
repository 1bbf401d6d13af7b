// Package runspec generates the OCI runtime spec (config.json) runc runs a
// container from, with Podman's defaults: the usual /proc, /dev, /sys
// mounts, 11 default capabilities, masked and read-only kernel paths, and
// bind mounts of the container's hosts, resolv.conf and hostname files. It
// is pure: the caller resolves the user from the image's passwd file with
// ResolveUser and writes the result.
package runspec

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities are Podman's default capabilities (containers.conf).
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_CHROOT",
}

// DefaultPath is the PATH given to a process whose environment has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Bind is a bind mount from the host into the container.
type Bind struct {
	Source, Destination string
	ReadOnly            bool
}

// Process describes the container's main process or an exec'd one.
type Process struct {
	Args     []string
	Env      []string
	Cwd      string
	UID, GID uint32
	Groups   []uint32
	Terminal bool
	// NoFile is the RLIMIT_NOFILE to set (0: inherit runc's).
	NoFile uint64
	// Security: capabilities, rlimits and no-new-privileges beyond the
	// defaults.
	Security ProcessSecurity
}

// Options is the input of Generate.
type Options struct {
	Process
	Rootfs   string
	Hostname string
	// NetNS is the network namespace to join; "" with HostNetwork false
	// gives runc a new empty one.
	NetNS       string
	HostNetwork bool
	// IPCNS and UTSNS join existing IPC and UTS namespaces (pod members
	// share the infra container's); with UTSNS the hostname is the owner's.
	IPCNS, UTSNS string
	// Binds are extra bind mounts (hosts, resolv.conf, hostname files).
	Binds []Bind
	// Mounts are the container's storage (volumes, bind mounts, tmpfs),
	// mounted after the binds, parents first.
	Mounts      []specs.Mount
	CgroupsPath string
	ReadOnly    bool
	// Rootless: runc runs as root of an unprivileged user namespace: no
	// cgroup path or device rules, and with the host's network /sys is
	// bound, not mounted (sysfs needs a network namespace of one's own).
	Rootless bool
	// NoTTYGroup drops gid=5 from /dev/pts (a namespace without group 5).
	NoTTYGroup bool
	// Extra: privileged mode, devices, sysctls, init and cgroup limits.
	Extra Extra
}

// ErrNoCommand: neither the command line nor the image gives one.
var ErrNoCommand = errors.New("no command or entrypoint provided, and no CMD or ENTRYPOINT from image")

// Generate builds the spec.
func Generate(o Options) (*specs.Spec, error) {
	if o.Rootfs == "" {
		return nil, errors.New("runspec: no root filesystem")
	}
	proc, err := BuildProcess(o.Process)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: o.Rootfs, Readonly: o.ReadOnly},
		Hostname: o.Hostname,
		Process:  proc,
		Mounts:   defaultMounts(),
		Linux:    defaultLinux(o),
	}
	if o.UTSNS != "" {
		s.Hostname = "" // runc cannot set it in a namespace it joins
	}
	if !o.HostNetwork {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: o.NetNS})
	}
	if o.Rootless {
		s.Linux.CgroupsPath = ""
		s.Linux.Resources = nil
	}
	s.Mounts = adjustMounts(s.Mounts, o)
	applyExtra(s, o.Extra)
	return s, nil
}

// defaultMounts are the kernel file systems every container gets.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}
}

// defaultLinux is the Linux part of the spec before the network
// namespace and rootless adjustments: cgroup path, no devices, the
// PID, IPC, UTS and mount namespaces, and the masked and read-only paths.
func defaultLinux(o Options) *specs.Linux {
	return &specs.Linux{
		CgroupsPath: o.CgroupsPath,
		Resources: &specs.LinuxResources{
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		},
		Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace, Path: o.IPCNS},
			{Type: specs.UTSNamespace, Path: o.UTSNS}, {Type: specs.MountNamespace},
		},
		MaskedPaths: []string{
			"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
			"/proc/scsi", "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block",
		},
		ReadonlyPaths: []string{
			"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
			"/proc/sys", "/proc/sysrq-trigger",
		},
	}
}

// adjustMounts binds /sys for a rootless container on the host's
// network, drops gid=5 from /dev/pts when asked, and adds the binds.
func adjustMounts(mounts []specs.Mount, o Options) []specs.Mount {
	for i, m := range mounts {
		switch {
		case m.Destination == "/sys" && o.Rootless && o.HostNetwork:
			mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
		case m.Destination == "/dev/pts" && o.NoTTYGroup:
			var opts []string
			for _, x := range m.Options {
				if x != "gid=5" {
					opts = append(opts, x)
				}
			}
			mounts[i].Options = opts
		}
	}
	for _, b := range o.Binds {
		opts := []string{"rbind", "rprivate"}
		if b.ReadOnly {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, specs.Mount{Destination: b.Destination, Type: "bind", Source: b.Source, Options: opts})
	}
	return append(mounts, o.Mounts...)
}

// BuildProcess builds the process part of a spec (also runc exec's
// --process file).
func BuildProcess(p Process) (*specs.Process, error) {
	if len(p.Args) == 0 {
		return nil, ErrNoCommand
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !strings.HasPrefix(cwd, "/") {
		return nil, fmt.Errorf("working directory %q: must be an absolute path", cwd)
	}
	env := append([]string{}, p.Env...)
	if !hasEnv(env, "PATH") {
		env = append([]string{"PATH=" + DefaultPath}, env...)
	}
	if p.Terminal && !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	caps := append([]string{}, DefaultCapabilities...)
	bounding := caps
	effective, permitted := caps, caps
	if p.UID != 0 {
		// A non-root user keeps the bounding set only (as Podman does).
		effective, permitted = nil, nil
	}
	var rlimits []specs.POSIXRlimit
	if p.NoFile > 0 {
		rlimits = append(rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: p.NoFile, Soft: p.NoFile})
	}
	proc := &specs.Process{
		Terminal: p.Terminal,
		Args:     p.Args,
		Env:      env,
		Cwd:      cwd,
		User:     specs.User{UID: p.UID, GID: p.GID, AdditionalGids: p.Groups},
		Capabilities: &specs.LinuxCapabilities{
			Bounding: bounding, Effective: effective, Permitted: permitted,
		},
		Rlimits:         rlimits,
		NoNewPrivileges: false,
	}
	applyCapabilities(proc, p.UID, p.Security)
	applyRlimits(proc, p.Security.Rlimits)
	return proc, nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

// MergeEnv returns base with the KEY=VALUE entries of over replacing or
// extending it, in order.
func MergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, e := range over {
		k, _, _ := strings.Cut(e, "=")
		replaced := false
		for i, o := range out {
			if ok, _, _ := strings.Cut(o, "="); ok == k {
				out[i] = e
				replaced = true
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

// Command returns the process arguments from --entrypoint (nil: none
// given; see ParseEntrypoint) and the command line over the image's
// Entrypoint and Cmd, as Podman combines them: an explicit entrypoint
// replaces the image's and drops the image's Cmd; a command line replaces
// the image's Cmd.
func Command(imageEntrypoint, imageCmd, entrypoint, args []string) []string {
	ep := imageEntrypoint
	cmd := imageCmd
	if entrypoint != nil {
		ep = entrypoint
		cmd = nil
	}
	if len(args) > 0 {
		cmd = args
	}
	return append(append([]string{}, ep...), cmd...)
}

// ParseEntrypoint reads --entrypoint as Podman does: a JSON array of
// strings is the entrypoint's words (podman-compose passes it so), any
// other text is one word, and "" (or [""], or []) is no entrypoint at all.
// The result is never nil.
func ParseEntrypoint(s string) []string {
	var words []string
	if err := json.Unmarshal([]byte(s), &words); err != nil || words == nil {
		words = []string{s}
	}
	if len(words) == 1 && words[0] == "" {
		return []string{}
	}
	return words
}

// ResolveUser resolves USER[:GROUP] (names or numbers) against the
// container's /etc/passwd and /etc/group (either may be nil). "" is root.
func ResolveUser(user string, passwd, group []byte) (uint32, uint32, error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	var uid, gid int
	found := false
	if n, err := strconv.ParseUint(u, 10, 32); err == nil {
		uid = int(n)
		if e, ok := lookupID(passwd, 2, u); ok {
			gid, _ = strconv.Atoi(e[3])
		}
		found = true
	} else if e, ok := lookupID(passwd, 0, u); ok {
		uid, _ = strconv.Atoi(e[2])
		gid, _ = strconv.Atoi(e[3])
		found = true
	}
	if !found {
		return 0, 0, fmt.Errorf("user %q: no such user in the container's /etc/passwd", u)
	}
	if hasGroup {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			gid = int(n)
		} else if e, ok := lookupID(group, 0, g); ok {
			gid, _ = strconv.Atoi(e[2])
		} else {
			return 0, 0, fmt.Errorf("group %q: no such group in the container's /etc/group", g)
		}
	}
	return uint32(uid), uint32(gid), nil
}

// lookupID finds the colon-separated line whose field col equals v.
func lookupID(data []byte, col int, v string) ([]string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 4 && f[col] == v {
			return f, true
		}
	}
	return nil, false
}
