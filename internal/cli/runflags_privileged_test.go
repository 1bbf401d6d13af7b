package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// capMask is the CapEff value of the given capabilities.
func capMask(names []string) string {
	var m uint64
	for _, n := range names {
		for i, c := range runopts.AllCapabilities {
			if c == n {
				m |= 1 << i
			}
		}
	}
	return fmt.Sprintf("%016x", m)
}

// selfCap is a Cap* line of this process's status.
func selfCap(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s", key)
	return ""
}

// out runs a --rm container on no network and returns its stdout.
func (p *etopo) out(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"run", "--rm", "--network", "none"}, args...)
	so, se, err := p.b3(full...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s%s", strings.Join(full, " "), err, so, se)
	}
	return strings.TrimSpace(so)
}

// TestPrivilegedRunCapabilities: CapEff inside follows --cap-add,
// --cap-drop and --privileged; --privileged also unmasks /proc/kcore and
// adds the host's devices; no-new-privileges shows as NoNewPrivs.
func TestPrivilegedRunCapabilities(t *testing.T) {
	p := newETopo(t)
	capEff := func(args ...string) string {
		return p.out(t, append(args, "--rootfs", p.rootfs, "sh", "-c", "grep CapEff /proc/self/status | cut -f2")...)
	}
	if got, want := capEff(), capMask(runspec.DefaultCapabilities); got != want {
		t.Errorf("default CapEff %s, want %s", got, want)
	}
	if got := capEff("--cap-drop", "all"); got != "0000000000000000" {
		t.Errorf("--cap-drop all: %s", got)
	}
	want := capMask(append([]string{"CAP_NET_ADMIN"}, runspec.DefaultCapabilities[1:]...))
	if got := capEff("--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN"); got != want {
		t.Errorf("--cap-add net_admin --cap-drop chown: %s, want %s", got, want)
	}
	if got, want := capEff("--privileged", "--cap-drop", "chown"), selfCap(t, "CapBnd"); got != want {
		t.Errorf("--privileged: %s, want the bounding set %s", got, want)
	}
	// A non-root user gets the added capabilities only.
	if got, want := capEff("--user", "www", "--cap-add", "net_raw"), capMask([]string{"CAP_NET_RAW"}); got != want {
		t.Errorf("--user www --cap-add net_raw: %s, want %s", got, want)
	}
	// exec sessions get the container's capabilities.
	p.mustB(t, "run", "-d", "--name", "nocaps", "--network", "none", "--cap-drop", "all", "--rootfs", p.rootfs, "sleep", "1000")
	if got := strings.TrimSpace(p.mustB(t, "exec", "nocaps", "sh", "-c", "grep CapEff /proc/self/status | cut -f2")); got != "0000000000000000" {
		t.Errorf("exec in a --cap-drop all container: CapEff %s", got)
	}
	check := "test -c /dev/kmsg && echo dev; head -c1 /proc/timer_list | wc -c; echo 1 2>/dev/null >/proc/sys/net/ipv4/ip_forward && echo rw; grep NoNewPrivs /proc/self/status | cut -f2"
	if got := p.out(t, "--rootfs", p.rootfs, "sh", "-c", check); got != "0\n0" {
		t.Errorf("default: %q, want no host devices, /proc/timer_list masked, /proc/sys read-only", got)
	}
	if got := p.out(t, "--privileged", "--security-opt", "no-new-privileges", "--rootfs", p.rootfs, "sh", "-c", check); got != "dev\n1\nrw\n1" {
		t.Errorf("--privileged: %q", got)
	}
}

// TestPrivilegedRunLimits: --ulimit, --sysctl, --memory and --pids-limit
// reach the container; the limits are in its cgroup.
func TestPrivilegedRunLimits(t *testing.T) {
	p := newETopo(t)
	if got := p.out(t, "--ulimit", "nofile=123:456", "--rootfs", p.rootfs, "sh", "-c", "ulimit -n; ulimit -Hn"); got != "123\n456" {
		t.Errorf("--ulimit nofile: %q", got)
	}
	if got := p.out(t, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=123456789", "--rootfs", p.rootfs,
		"cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmax"); got != "1\n123456789" {
		t.Errorf("--sysctl: %q", got)
	}
	if got := p.out(t, "--shm-size", "96m", "--rootfs", p.rootfs, "sh", "-c", "df -k /dev/shm | tail -1"); len(strings.Fields(got)) < 2 || strings.Fields(got)[1] != "98304" {
		t.Errorf("--shm-size 96m: df says %q, want 98304 1K-blocks", got)
	}
	p.mustB(t, "run", "-d", "--name", "lim", "--network", "none", "--memory", "64m", "--pids-limit", "99", "--cpus", "0.5",
		"--memory-reservation", "32m", "--rootfs", p.rootfs, "sleep", "1000")
	pid := p.inspect(t, "lim", "{{.State.Pid}}")
	if got, want := p.inspect(t, "lim", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.MemoryReservation}}"),
		strconv.Itoa(64<<20)+" 99 500000000 "+strconv.Itoa(32<<20); got != want {
		t.Errorf("inspect HostConfig Memory, PidsLimit, NanoCpus, MemoryReservation: %q, want %q", got, want)
	}
	cg, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"memory": "memory.limit_in_bytes", "pids": "pids.max", "cpu": "cpu.cfs_quota_us"}
	softFile := "memory.soft_limit_in_bytes" // the reservation; cgroup v2: memory.low
	wants := map[string]string{"memory": strconv.Itoa(64 << 20), "pids": "99", "cpu": "50000"}
	found := 0
	_, err = os.Stat("/sys/fs/cgroup/cgroup.controllers")
	cgroup2 := err == nil
	for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" && cgroup2 { // cgroup v2
			dir := filepath.Join("/sys/fs/cgroup", f[2])
			for file, want := range map[string]string{"memory.max": wants["memory"], "pids.max": "99", "cpu.max": "50000 100000", "memory.low": strconv.Itoa(32 << 20)} {
				if got := readTrim(t, filepath.Join(dir, file)); got != want {
					t.Errorf("%s: %s, want %s", file, got, want)
				}
				found++
			}
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			if file, ok := files[ctl]; ok && strings.Contains(f[2], "berth") {
				if got := readTrim(t, filepath.Join("/sys/fs/cgroup", f[1], f[2], file)); got != wants[ctl] {
					t.Errorf("%s: %s, want %s", file, got, wants[ctl])
				}
				if ctl == "memory" {
					if got := readTrim(t, filepath.Join("/sys/fs/cgroup", f[1], f[2], softFile)); got != strconv.Itoa(32<<20) {
						t.Errorf("%s: %s, want %d", softFile, got, 32<<20)
					}
				}
				memsw := filepath.Join("/sys/fs/cgroup", f[1], f[2], "memory.memsw.limit_in_bytes")
				if _, err := os.Stat(memsw); ctl == "memory" && err == nil {
					if got := readTrim(t, memsw); got != strconv.Itoa(128<<20) {
						t.Errorf("memory.memsw.limit_in_bytes %s, want twice the memory", got)
					}
				}
				found++
			}
		}
	}
	if found < 3 {
		t.Errorf("limits not found in the cgroups:\n%s", cg)
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestPrivilegedRunProcessFlags: --env-file, --group-add, --device,
// --init, --cidfile and --replace from inside and outside the container.
func TestPrivilegedRunProcessFlags(t *testing.T) {
	p := newETopo(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# settings\nFROMFILE=yes it is\nBOTH=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := p.out(t, "--env-file", envFile, "-e", "BOTH=flag", "--rootfs", p.rootfs, "sh", "-c", `echo "$FROMFILE/$BOTH"`); got != "yes it is/flag" {
		t.Errorf("--env-file: %q", got)
	}
	if got := p.out(t, "--env-host", "--rootfs", p.rootfs, "sh", "-c", "echo $CONTAINERS_CONF"); got != p.conf {
		t.Errorf("--env-host: CONTAINERS_CONF %q, want %q", got, p.conf)
	}
	if got := p.out(t, "--group-add", "44", "--group-add", "www", "--rootfs", p.rootfs, "id", "-G"); got != "0 33 44" && got != "0 44 33" {
		t.Errorf("--group-add: %q", got)
	}
	if got := p.out(t, "--device", "/dev/null:/dev/mynull:rw", "--rootfs", p.rootfs, "sh", "-c", "echo x > /dev/mynull && test -c /dev/mynull && echo ok"); got != "ok" {
		t.Errorf("--device: %q", got)
	}
	if _, err := os.Stat("/usr/libexec/podman/catatonit"); err == nil {
		if got := p.out(t, "--init", "--rootfs", p.rootfs, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"); !strings.HasPrefix(got, "/run/podman-init -- sh") {
			t.Errorf("--init: PID 1 is %q", got)
		}
	}
	cid := filepath.Join(dir, "cid")
	p.mustB(t, "run", "-d", "--name", "r", "--network", "none", "--cidfile", cid, "--rootfs", p.rootfs, "sleep", "1000")
	first := readTrim(t, cid)
	if id := p.inspect(t, "r", "{{.Id}}"); id != first {
		t.Errorf("cidfile %s, container %s", first, id)
	}
	if out, err := p.b("run", "-d", "--name", "r", "--network", "none", "--rootfs", p.rootfs, "true"); err == nil {
		t.Errorf("name reused without --replace: %s", out)
	}
	if got := p.out(t, "--replace", "--name", "r", "--rootfs", p.rootfs, "echo", "replaced"); got != "replaced" {
		t.Errorf("--replace: %q", got)
	}
	if out, _ := p.b("ps", "-a", "-q", "--no-trunc"); strings.Contains(out, first) {
		t.Errorf("replaced container still there: %s", out)
	}
}

// TestPrivilegedRootlessRuntimeFlags: rootless berth refuses resource
// limits (no cgroup delegation) and applies capabilities and ulimits in
// its user namespace.
func TestPrivilegedRootlessRuntimeFlags(t *testing.T) {
	r := newRTopo(t)
	if out, err := r.berth("run", "--rm", "--network", "none", "--memory", "64m", "--rootfs", r.rootfs, "true"); err == nil || !strings.Contains(out, "need cgroup delegation") {
		t.Errorf("rootless --memory: %v %s", err, out)
	}
	out := r.must(t, "run", "--rm", "--network", "none", "--cap-drop", "all", "--ulimit", "nofile=100:200", "--rootfs", r.rootfs,
		"sh", "-c", "grep CapEff /proc/self/status | cut -f2; ulimit -n; ulimit -Hn")
	if strings.TrimSpace(out) != "0000000000000000\n100\n200" {
		t.Errorf("rootless --cap-drop all --ulimit: %q", out)
	}
}
