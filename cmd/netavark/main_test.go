package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/nettest"
)

const setupInput = `{"container_id":"5e7a1c0ffee5e7a1c0ffee5e7a1c0ffee5e7a1c0ffee5e7a1c0ffee5e7a1c0ffe","container_name":"sig",` +
	`"networks":{"sig":{"interface_name":"eth0","static_ips":["198.19.20.2"]}},` +
	`"network_info":{"sig":{"name":"sig","id":"5151515151515151515151515151515151515151515151515151515151515151","driver":"bridge","network_interface":"brsig0",` +
	`"subnets":[{"subnet":"198.19.20.0/24","gateway":"198.19.20.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"host-local"}}}}`

// A setup blocked on the state lock (another process holds it) ends
// promptly on SIGTERM, with 143 and a message, and changes nothing.
func TestPrivilegedSIGTERMEndsABlockedSetup(t *testing.T) {
	nettest.Privileged(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "netavark")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(cfg, "berth"), 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg, "berth", "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ctr := nettest.NewNS(t, nettest.RandName("ctr"))
	// unshare execs the program: the PID is netavark's, in a namespace of
	// its own even if it went on.
	cmd := exec.Command("unshare", "--net", bin, "--config", cfg, "--rootless=false", "--firewall-driver", "none", "setup", ctr.Path())
	cmd.Stdin = strings.NewReader(setupInput)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 143 {
			t.Errorf("exit: %v, want code 143", err)
		}
		if !strings.Contains(stderr.String(), "terminated") {
			t.Errorf("stderr %q does not say why it ended", stderr.String())
		}
		t.Logf("ended %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("setup still running 5 s after SIGTERM")
	}
	if links := nettest.Links(t, ctr); !slices.Equal(links, []string{"lo"}) {
		t.Errorf("the container namespace has %v", links)
	}
}
