package netavark_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/compat/netavark/withdhcp"
	"github.com/berthnet/berth/internal/dhcpproxy"
)

// TestHelperDHCPProxy is the child process of TestDHCPProxySocketActivation:
// it runs the front-end with the arguments after "--".
func TestHelperDHCPProxy(t *testing.T) {
	if os.Getenv("BERTH_TEST_HELPER") != "dhcp-proxy" {
		t.Skip("helper process")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(netavark.Run(context.Background(), args, withdhcp.Env(netavark.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})))
}

// The proxy serves the socket systemd passes (fd 3, LISTEN_PID/LISTEN_FDS),
// takes netavark's short flags (-a is --activity-timeout here) and exits
// when idle.
func TestDHCPProxySocketActivation(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "activated.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ul := ln.(*net.UnixListener)
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	defer f.Close()
	// LISTEN_PID must be the proxy's own pid: sh sets it to $$ and execs.
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0], "-test.run=^TestHelperDHCPProxy$", "--",
		"dhcp-proxy", "--dir", dir, "--uds", filepath.Join(dir, "unused"), "-a", "1", "-t", "3")
	cmd.Env = append(os.Environ(), "BERTH_TEST_HELPER=dhcp-proxy", "LISTEN_FDS=1", "RUST_LOG=info")
	cmd.ExtraFiles = []*os.File{f}
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	c, err := dhcpproxy.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Clean(ctx); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "out"))
		t.Fatalf("clean over the activated socket: %v\n%s", err, b)
	}
	c.Close()
	select {
	case err := <-done:
		b, _ := os.ReadFile(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatalf("proxy exited with %v:\n%s", err, b)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("exited after %v, before the 1 s activity timeout", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not exit after its activity timeout")
	}
	if _, err := os.Stat(filepath.Join(dir, "unused")); err == nil {
		t.Error("--uds directory was created although systemd passed the socket")
	}
	if _, err := os.Stat(filepath.Join(dir, dhcpproxy.LeaseFile)); err != nil {
		t.Errorf("lease file: %v", err)
	}
}

func TestDHCPProxyUsage(t *testing.T) {
	out, _, code := run(t, "", "dhcp-proxy", "--help")
	if code != 0 || !strings.Contains(out, "--activity-timeout") {
		t.Errorf("--help: code %d\n%s", code, out)
	}
	_, errb, code := run(t, "", "dhcp-proxy", "--bogus")
	if code != 2 || !strings.Contains(errb, "unknown flag: --bogus") {
		t.Errorf("bad flag: code %d %q", code, errb)
	}
}
