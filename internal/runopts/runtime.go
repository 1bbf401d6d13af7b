package runopts

// The process, security and resource options of run and create (capabilities,
// --security-opt, limits, sysctls, ulimits, devices), parsed as Podman 4
// parses them.

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Runtime are the options of a container's process and cgroup beyond
// networking, as recorded in its configuration.
type Runtime struct {
	// CapAdd and CapDrop are normalized names (CAP_X, or ALL).
	CapAdd  []string `json:"cap_add,omitempty"`
	CapDrop []string `json:"cap_drop,omitempty"`
	// Privileged gives every capability and host device and drops the
	// masked and read-only paths.
	Privileged      bool `json:"privileged,omitempty"`
	NoNewPrivileges bool `json:"no_new_privileges,omitempty"`
	// LabelDisable records --security-opt label=disable (no SELinux here).
	LabelDisable bool `json:"label_disable,omitempty"`

	Resources Resources `json:"resources,omitzero"`

	Sysctls  map[string]string `json:"sysctls,omitempty"`
	Ulimits  []Ulimit          `json:"ulimits,omitempty"`
	GroupAdd []string          `json:"group_add,omitempty"`
	Devices  []Device          `json:"devices,omitempty"`
	// Init runs InitPath as PID 1 in front of the command.
	Init     bool   `json:"init,omitempty"`
	InitPath string `json:"init_path,omitempty"`
	// ShmSize is the size of /dev/shm in bytes (--shm-size; nil: 64 MiB,
	// 0: no limit).
	ShmSize *int64 `json:"shm_size,omitempty"`
	// Annotations go into the OCI spec (--annotation).
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Resources are the cgroup limits (0: none).
type Resources struct {
	// Memory and MemorySwap are bytes; MemorySwap is memory plus swap, -1
	// unlimited, 0 not given (then twice Memory where the kernel accounts
	// swap, as Podman).
	Memory     int64 `json:"memory,omitempty"`
	MemorySwap int64 `json:"memory_swap,omitempty"`
	// MemoryReservation is the soft limit in bytes (--memory-reservation).
	MemoryReservation int64 `json:"memory_reservation,omitempty"`
	// CPUQuota per CPUPeriod microseconds (--cpus).
	CPUQuota  int64  `json:"cpu_quota,omitempty"`
	CPUPeriod uint64 `json:"cpu_period,omitempty"`
	CPUShares uint64 `json:"cpu_shares,omitempty"`
	// PidsLimit: 0 none set, -1 unlimited.
	PidsLimit int64 `json:"pids_limit,omitempty"`
}

// Any reports whether any limit is set.
func (r Resources) Any() bool { return r != Resources{} }

// Ulimit is one --ulimit: an RLIMIT_ type (lower case, without RLIMIT_)
// with its limits; -1 is unlimited.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// Device is one --device: a host device node, its path in the container
// and the cgroup permissions (a subset of rwm).
type Device struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Permissions string `json:"permissions"`
}

// AllCapabilities are the Linux capabilities by number (CAP_CHOWN is 0).
var AllCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// NormalizeCapabilities upper-cases names and adds the CAP_ prefix (ALL
// stays ALL); an unknown name is an error, as Podman's.
func NormalizeCapabilities(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		c := strings.ToUpper(n)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if c != "ALL" && !slices.Contains(AllCapabilities, c) {
			return nil, fmt.Errorf("%q: unknown capability", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// MergeCapabilities applies normalized adds and drops to base as Podman
// does: ALL in drops leaves the adds only, ALL in adds starts from all
// (every capability the kernel has); a capability both added and dropped
// is an error. The result is sorted.
func MergeCapabilities(base, all, adds, drops []string) ([]string, error) {
	if len(adds) == 0 && len(drops) == 0 {
		return base, nil
	}
	if slices.Contains(drops, "ALL") {
		if slices.Contains(adds, "ALL") {
			return nil, errors.New("adding all caps and removing all caps not allowed")
		}
		out := slices.Clone(adds)
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	if slices.Contains(adds, "ALL") {
		base, adds = all, nil
	}
	for _, d := range drops {
		if slices.Contains(adds, d) {
			return nil, fmt.Errorf("capability %q cannot be dropped and added", d)
		}
	}
	var out []string
	for _, c := range base {
		if !slices.Contains(drops, c) {
			out = append(out, c)
		}
	}
	for _, c := range adds {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ParseSecurityOpt applies one --security-opt value. berth supports
// no-new-privileges[=true|false], label=disable and seccomp=unconfined and
// apparmor=unconfined (what berth's containers are anyway); any other
// value (a seccomp profile, mask, ...) is refused by name.
func ParseSecurityOpt(s string, r *Runtime) error {
	k, v, hasValue := strings.Cut(s, "=")
	if !hasValue {
		k, v, hasValue = strings.Cut(s, ":") // the old KEY:VALUE form
	}
	switch {
	case k == "no-new-privileges" && !hasValue:
		r.NoNewPrivileges = true
	case k == "no-new-privileges":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("invalid --security-opt 2: %q", s)
		}
		r.NoNewPrivileges = b
	case k == "label" && v == "disable":
		r.LabelDisable = true
	case (k == "seccomp" || k == "apparmor") && v == "unconfined":
		// berth applies no seccomp filter and no AppArmor profile: its
		// containers are unconfined by both already.
	case k == "label" || k == "seccomp" || k == "apparmor" || k == "mask" || k == "unmask" || k == "proc-opts" || k == "systempaths":
		return fmt.Errorf("--security-opt %q: berth does not support this security option yet", s)
	default:
		return fmt.Errorf("invalid --security-opt 2: %q", s)
	}
	return nil
}

// ParseMemoryReservation parses --memory-reservation (a size as
// --memory's) into r, checked against r.Memory as Podman checks it.
func ParseMemoryReservation(s string, r *Resources) error {
	if s == "" {
		return nil
	}
	v, err := ParseSize(s)
	if err != nil {
		return fmt.Errorf("invalid value for memory-reservation: %w", err)
	}
	if r.Memory > 0 && v > r.Memory {
		return errors.New("minimum memory limit cannot be less than memory reservation limit, see usage")
	}
	r.MemoryReservation = v
	return nil
}

// ParseAnnotations parses --annotation KEY=VALUE values (nil without
// any), with Podman's error.
func ParseAnnotations(values []string) (map[string]string, error) {
	var m map[string]string
	for _, a := range values {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--annotation %q: annotations must be formatted KEY=VALUE", a)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
}

// ParseShmSize parses --shm-size, a size as --memory's (0: no limit).
func ParseShmSize(s string) (*int64, error) {
	if s == "" {
		return nil, nil
	}
	v, err := ParseSize(s)
	if err != nil {
		return nil, fmt.Errorf("unable to translate --shm-size: %w", err)
	}
	return &v, nil
}

// ParseSize parses a size as Podman's --memory: a number with an
// optional unit b, k, m, g, t, p (powers of 1024, an optional i and b
// after it: 64m, 1.5GiB, 512kb).
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size: '%s'", s)
	}
	mult := map[string]int64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[strings.ToLower(m[2])]
	if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("invalid size: '%s'", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || f*float64(mult) >= 1<<63 {
		return 0, fmt.Errorf("invalid size: '%s'", s)
	}
	return int64(f * float64(mult)), nil
}

// sizeRE is a size with its unit (go-units' RAMInBytes syntax).
var sizeRE = regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)

// minMemory is the smallest memory limit Podman accepts.
const minMemory = 6 << 20

// ParseResources checks the limit flags (memory and memory-swap as
// given, "" when not) into Resources, with Podman's errors.
func ParseResources(memory, memorySwap string, cpus float64, cpuShares uint64, pidsLimit int64) (Resources, error) {
	var r Resources
	var err error
	if memory != "" {
		if r.Memory, err = ParseSize(memory); err != nil {
			return r, fmt.Errorf("invalid value for memory: %w", err)
		}
		if r.Memory < minMemory {
			return r, errors.New("minimum memory limit allowed is 6MB")
		}
	}
	if memorySwap != "" {
		if memorySwap == "-1" {
			r.MemorySwap = -1
		} else if r.MemorySwap, err = ParseSize(memorySwap); err != nil {
			return r, fmt.Errorf("invalid value for memory-swap: %w", err)
		}
		if r.Memory == 0 {
			return r, errors.New("you should always set a memory limit when using a memoryswap limit, see usage")
		}
		if r.MemorySwap != -1 && r.MemorySwap < r.Memory {
			return r, errors.New("minimum memoryswap limit should be larger than memory limit, see usage")
		}
	}
	if cpus < 0 {
		return r, fmt.Errorf("--cpus %v: must be 0 or more", cpus)
	}
	if cpus > 0 {
		r.CPUPeriod = 100000
		r.CPUQuota = int64(cpus * 100000)
		if r.CPUQuota < 1000 {
			return r, errors.New("CPU cfs quota cannot be less than 1ms (i.e. 1000)")
		}
	}
	r.CPUShares = cpuShares
	switch {
	case pidsLimit < -1:
		return r, fmt.Errorf("--pids-limit %d: must be -1 (unlimited) or more", pidsLimit)
	case pidsLimit == 0:
	default:
		r.PidsLimit = pidsLimit
	}
	return r, nil
}

// namespacedSysctls are the kernel.* sysctls of the IPC namespace.
var namespacedSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// ParseSysctl parses --sysctl KEY=VALUE; only namespaced sysctls are
// allowed: net.*, fs.mqueue.* and the IPC kernel.* ones.
func ParseSysctl(s string) (key, value string, err error) {
	arr := strings.Split(s, "=")
	if len(arr) < 2 {
		return "", "", fmt.Errorf("%s is invalid, sysctl values must be in the form of KEY=VALUE", s)
	}
	key, value, _ = strings.Cut(s, "=")
	if strings.TrimSpace(key) != key || strings.TrimSpace(value) != value {
		return "", "", fmt.Errorf("'%s' is invalid, extra spaces found", s)
	}
	if key == "" || !SysctlNet(key) && !SysctlIPC(key) {
		return "", "", fmt.Errorf("sysctl '%s' is not allowed", key)
	}
	if strings.Contains(key, "..") || strings.ContainsAny(key, "/\x00 \t\n") || strings.ContainsRune(value, 0) {
		return "", "", fmt.Errorf("sysctl '%s' is not allowed", key)
	}
	return key, value, nil
}

// SysctlNet reports whether key belongs to the network namespace.
func SysctlNet(key string) bool { return strings.HasPrefix(key, "net.") && len(key) > 4 }

// SysctlIPC reports whether key belongs to the IPC namespace.
func SysctlIPC(key string) bool {
	return slices.Contains(namespacedSysctls, key) || strings.HasPrefix(key, "fs.mqueue.") && len(key) > 10
}

// ulimitNames are the --ulimit types.
var ulimitNames = []string{
	"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// ParseUlimit parses --ulimit TYPE=SOFT[:HARD] (-1 unlimited; HARD
// defaults to SOFT). "host" is handled by the caller.
func ParseUlimit(s string) (Ulimit, error) {
	u, err := parseUlimit(s)
	if err != nil {
		return u, fmt.Errorf("ulimit option %q requires name=SOFT:HARD, failed to be parsed: %w", s, err)
	}
	return u, nil
}

func parseUlimit(s string) (Ulimit, error) {
	name, vals, ok := strings.Cut(s, "=")
	if !ok {
		return Ulimit{}, fmt.Errorf("invalid ulimit argument: %s", s)
	}
	if !slices.Contains(ulimitNames, name) {
		return Ulimit{}, fmt.Errorf("invalid ulimit type: %s", name)
	}
	parts := strings.Split(vals, ":")
	if len(parts) > 2 {
		return Ulimit{}, fmt.Errorf("too many limit value arguments - %s, can only have up to two, `soft[:hard]`", vals)
	}
	soft, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return Ulimit{}, err
	}
	hard := soft
	if len(parts) == 2 {
		if hard, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
			return Ulimit{}, err
		}
	}
	if soft < -1 || hard < -1 {
		return Ulimit{}, fmt.Errorf("ulimit values must be -1 (unlimited) or more")
	}
	if hard != -1 && (soft == -1 || soft > hard) {
		return Ulimit{}, fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", soft, hard)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// ParseDevice parses --device SRC[:DST][:PERMISSIONS] (permissions a
// subset of rwm, default rwm) as Podman does.
func ParseDevice(s string) (Device, error) {
	d := Device{Permissions: "rwm"}
	split := strings.Split(s, ":")
	switch len(split) {
	case 3:
		if !validDeviceMode(split[2]) {
			return d, fmt.Errorf("invalid device mode: %s", split[2])
		}
		d.Permissions = split[2]
		fallthrough
	case 2:
		if validDeviceMode(split[1]) && len(split) == 2 {
			d.Permissions = split[1]
		} else {
			if !strings.HasPrefix(split[1], "/") {
				return d, fmt.Errorf("invalid device mode: %s", split[1])
			}
			d.Destination = split[1]
		}
		fallthrough
	case 1:
		if !strings.HasPrefix(split[0], "/") {
			return d, fmt.Errorf("invalid device %q: the host path must be absolute", s)
		}
		d.Source = split[0]
	default:
		return d, fmt.Errorf("invalid device specification: %s", s)
	}
	if d.Destination == "" {
		d.Destination = d.Source
	}
	return d, nil
}

func validDeviceMode(m string) bool {
	if m == "" || len(m) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range m {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}
