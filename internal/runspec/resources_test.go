package runspec

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestGenerateCapabilities(t *testing.T) {
	caps := []string{"CAP_CHOWN", "CAP_NET_ADMIN"}
	s, err := Generate(Options{Rootfs: "/r", Process: Process{Args: []string{"x"}, Security: ProcessSecurity{
		Capabilities: caps, UserCaps: []string{"CAP_NET_ADMIN"}, NoNewPrivileges: true,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Process.Capabilities
	if !slices.Equal(c.Bounding, caps) || !slices.Equal(c.Effective, caps) || !slices.Equal(c.Permitted, caps) || len(c.Ambient) != 0 || !s.Process.NoNewPrivileges {
		t.Errorf("root: %+v nnp %v", c, s.Process.NoNewPrivileges)
	}
	// A non-root user keeps the bounding set and gets the added ones.
	p, _ := BuildProcess(Process{Args: []string{"x"}, UID: 33, Security: ProcessSecurity{Capabilities: caps, UserCaps: []string{"CAP_NET_ADMIN"}}})
	c = p.Capabilities
	if !slices.Equal(c.Bounding, caps) || !slices.Equal(c.Effective, []string{"CAP_NET_ADMIN"}) || !slices.Equal(c.Ambient, []string{"CAP_NET_ADMIN"}) || !slices.Equal(c.Inheritable, []string{"CAP_NET_ADMIN"}) {
		t.Errorf("user: %+v", c)
	}
	// --cap-drop all: empty sets, not the defaults.
	p, _ = BuildProcess(Process{Args: []string{"x"}, Security: ProcessSecurity{Capabilities: []string{}}})
	if len(p.Capabilities.Bounding) != 0 || len(p.Capabilities.Effective) != 0 {
		t.Errorf("drop all: %+v", p.Capabilities)
	}
}

func TestGenerateRlimits(t *testing.T) {
	p, _ := BuildProcess(Process{Args: []string{"x"}, NoFile: 1000, Security: ProcessSecurity{Rlimits: []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}, {Type: "RLIMIT_NPROC", Soft: 5, Hard: 5},
	}}})
	if len(p.Rlimits) != 2 || p.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}) || p.Rlimits[1].Type != "RLIMIT_NPROC" {
		t.Errorf("%+v", p.Rlimits)
	}
}

func TestGenerateExtra(t *testing.T) {
	mem, shares, pids := int64(64<<20), uint64(512), int64(50)
	mode := specs.LinuxDevice{Path: "/dev/foo", Type: "c", Major: 1, Minor: 3}
	s, err := Generate(Options{Rootfs: "/r", CgroupsPath: "/berth/x", Process: Process{Args: []string{"sh"}}, Extra: Extra{
		Devices:    []DeviceNode{{LinuxDevice: mode, Access: "rw"}},
		Sysctls:    map[string]string{"net.ipv4.ip_forward": "1"},
		InitBinary: "/usr/libexec/podman/catatonit",
		Resources:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}, CPU: &specs.LinuxCPU{Shares: &shares}, Pids: &specs.LinuxPids{Limit: &pids}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != mem || *r.CPU.Shares != 512 || *r.Pids.Limit != 50 {
		t.Errorf("resources %+v", r)
	}
	if len(r.Devices) != 2 || r.Devices[0].Allow || !r.Devices[1].Allow || *r.Devices[1].Major != 1 || r.Devices[1].Access != "rw" {
		t.Errorf("device rules %+v", r.Devices)
	}
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/foo" {
		t.Errorf("devices %+v", s.Linux.Devices)
	}
	if s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" {
		t.Errorf("sysctl %v", s.Linux.Sysctl)
	}
	if strings.Join(s.Process.Args, " ") != InitPath+" -- sh" {
		t.Errorf("args %v", s.Process.Args)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != InitPath || last.Source != "/usr/libexec/podman/catatonit" || !slices.Contains(last.Options, "ro") {
		t.Errorf("init mount %+v", last)
	}
	if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Error("masked paths gone without --privileged")
	}
}

func TestGeneratePrivileged(t *testing.T) {
	s, err := Generate(Options{Rootfs: "/r", CgroupsPath: "/berth/x", Process: Process{Args: []string{"sh"}}, Extra: Extra{
		Privileged: true, Devices: []DeviceNode{{LinuxDevice: specs.LinuxDevice{Path: "/dev/loop0", Type: "b", Major: 7}, Access: "rwm"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, m := range s.Mounts {
		if m.Type == "sysfs" && slices.Contains(m.Options, "ro") {
			t.Errorf("sysfs read-only: %v", m.Options)
		}
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" || d[0].Major != nil {
		t.Errorf("device rules %+v", d)
	}
	if len(s.Linux.Devices) != 1 {
		t.Errorf("devices %+v", s.Linux.Devices)
	}
	// Rootless: no cgroup part at all.
	s, _ = Generate(Options{Rootfs: "/r", Rootless: true, Process: Process{Args: []string{"sh"}}, Extra: Extra{Privileged: true}})
	if s.Linux.Resources != nil {
		t.Errorf("rootless resources %+v", s.Linux.Resources)
	}
}

func TestResolveGroups(t *testing.T) {
	group := []byte("root:x:0:\nwheel:x:10:\nwww:x:33:\n")
	got, err := ResolveGroups([]string{"wheel", "44", "www"}, group)
	if err != nil || !slices.Equal(got, []uint32{10, 44, 33}) {
		t.Errorf("%v %v", got, err)
	}
	if _, err := ResolveGroups([]string{"nosuch"}, group); err == nil || !strings.Contains(err.Error(), "Unable to find group nosuch") {
		t.Errorf("nosuch: %v", err)
	}
}

func TestGenerateShmSize(t *testing.T) {
	shm := func(size *int64) []string {
		s, err := Generate(Options{Rootfs: "/r", Process: Process{Args: []string{"sh"}}, Extra: Extra{ShmSize: size}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Mounts {
			if m.Destination == "/dev/shm" {
				return m.Options
			}
		}
		t.Fatal("no /dev/shm mount")
		return nil
	}
	if o := shm(nil); !slices.Contains(o, "size=65536k") {
		t.Errorf("default /dev/shm: %v", o)
	}
	big, zero := int64(256<<20), int64(0)
	if o := shm(&big); !slices.Contains(o, "size=268435456") || slices.Contains(o, "size=65536k") || !slices.Contains(o, "mode=1777") {
		t.Errorf("--shm-size 256m: %v", o)
	}
	for _, o := range shm(&zero) {
		if strings.HasPrefix(o, "size=") {
			t.Errorf("--shm-size 0 keeps %s", o)
		}
	}
}

func TestGenerateAnnotations(t *testing.T) {
	s, err := Generate(Options{Rootfs: "/r", Process: Process{Args: []string{"sh"}}, Extra: Extra{Annotations: map[string]string{"org.example/k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Annotations["org.example/k"] != "v" {
		t.Errorf("annotations %v", s.Annotations)
	}
}
