package core_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/sysctl"
)

// privateMountsEnv marks a test process that inPrivateMounts started.
const privateMountsEnv = "BERTH_TEST_PRIVATE_MOUNTS"

// inPrivateMounts reports whether the test runs in a mount namespace of its
// own. When it does not, it runs the test again in a child process in a
// fresh mount namespace (unshare --mount --propagation private), reports
// the child's result, and returns false: the caller returns at once.
func inPrivateMounts(t *testing.T) bool {
	t.Helper()
	if os.Getenv(privateMountsEnv) == "1" {
		self, err1 := os.Readlink("/proc/self/ns/mnt")
		parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
		if err1 != nil || err2 != nil || self == parent {
			t.Fatalf("not in a mount namespace of its own (%s, parent %s: %v %v)", self, parent, err1, err2)
		}
		return true
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), privateMountsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a private mount namespace: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("child skipped:\n%s", out)
	}
	return false
}

// readOnlyProc mounts a read-only proc over /proc for the rest of the
// test, which must run in a mount namespace of its own (inPrivateMounts).
func readOnlyProc(t *testing.T) {
	t.Helper()
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Fatalf("mount read-only proc: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount("/proc", 0); err != nil {
			t.Errorf("unmount read-only proc: %v", err)
		}
	})
}

// With /proc read-only (setup inside a container), a sysctl that already
// holds its value is not written, so setup works; one that must change is
// an error that says the file system is read-only.
func TestPrivilegedReadOnlyProc(t *testing.T) {
	nettest.Privileged(t)
	if !inPrivateMounts(t) {
		return
	}
	tp := newTopo(t, nil, nil)
	if err := sysctl.Apply(tp.host.NetNS, []sysctl.Setting{{Key: "net.ipv4.ip_forward", Value: "1"}}); err != nil {
		t.Fatal(err)
	}
	n := bridgeNet("ro", "bro0", "198.19.50.0/24", "198.19.50.1")
	o := opts("ro1", "ro", n, "198.19.50.2")
	ctr := nettest.NewNS(t, nettest.RandName("ctr"))
	readOnlyProc(t)
	if _, err := tp.m.Setup(context.Background(), ctr.Path(), o); err != nil {
		t.Fatalf("setup with read-only /proc and sysctls already set: %v", err)
	}
	if err := tp.m.Teardown(context.Background(), ctr.Path(), o); err != nil {
		t.Fatalf("teardown: %v", err)
	}
	if err := unix.Mount("", "/proc", "", unix.MS_REMOUNT, ""); err != nil {
		t.Fatal(err)
	}
	if err := sysctl.Apply(tp.host.NetNS, []sysctl.Setting{{Key: "net.ipv4.ip_forward", Value: "0"}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", "/proc", "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	_, err := tp.m.Setup(context.Background(), ctr.Path(), o)
	var we *sysctl.WriteError
	if !errors.Is(err, syscall.EROFS) || !errors.As(err, &we) || we.Key != "net.ipv4.ip_forward" {
		t.Fatalf("setup needing ip_forward on read-only /proc: %v", err)
	}
}
