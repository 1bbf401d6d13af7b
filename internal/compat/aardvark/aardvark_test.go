package aardvark

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/berthnet/berth/internal/aardvarkconf"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("loopback is not usable here: %v", err)
	}
	defer l.Close()
	return l.LocalAddr().(*net.UDPAddr).Port
}

// runServer runs the front-end in this process (foreground) on dir, its
// network listening on 127.0.0.1, and returns its exit code channel.
func runServer(t *testing.T, dir aardvarkconf.Dir, port int, env map[string]string) <-chan int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	code := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		code <- Run(ctx, []string{"--foreground", "--config", dir.Path, "-p", strconv.Itoa(port), "run"},
			Env{Stdout: &stderr, Stderr: &stderr, Getenv: func(k string) string { return env[k] }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, err := os.ReadFile(dir.PidFile()); err == nil && string(b) == strconv.Itoa(os.Getpid()) {
			return code
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lookup(t *testing.T, src string, port int, name string) (*mdns.Msg, error) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	c := &mdns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	r, _, err := c.Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
	return r, err
}

var gw = aardvarkconf.Header{BindIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}

func entry(i int) aardvarkconf.Entry {
	return aardvarkconf.Entry{ID: fmt.Sprintf("c%d", i), IPv4: []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 1 + byte(i/250), 2 + byte(i%250)})}, Names: []string{fmt.Sprintf("name%d", i)}}
}

// A name added and confirmed over the control socket resolves at once,
// every time; one removed is gone at once.
func TestConfirmedReloadServesNamesAtOnce(t *testing.T) {
	dir := aardvarkconf.Dir{Path: filepath.Join(t.TempDir(), "aardvark-dns")}
	port := freePort(t)
	asker := entry(0)
	if err := dir.Add(map[string]aardvarkconf.Entry{"n": asker}, map[string]aardvarkconf.Header{"n": gw}); err != nil {
		t.Fatal(err)
	}
	code := runServer(t, dir, port, nil)
	failures := 0
	for i := 1; i <= 300; i++ {
		e := entry(i)
		if err := dir.Add(map[string]aardvarkconf.Entry{"n": e}, map[string]aardvarkconf.Header{"n": gw}); err != nil {
			t.Fatal(err)
		}
		if err := dir.RequestReload(os.Getpid(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if r, err := lookup(t, "127.0.1.2", port, e.Names[0]); err != nil || len(r.Answer) != 1 {
			failures++
		}
		if _, err := dir.Remove(e.ID, []string{"n"}); err != nil {
			t.Fatal(err)
		}
		if err := dir.RequestReload(os.Getpid(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if r, err := lookup(t, "127.0.1.2", port, e.Names[0]+".dns.podman"); err != nil || r.Rcode != mdns.RcodeNameError {
			failures++
		}
	}
	if failures != 0 {
		t.Errorf("%d of 600 lookups right after a confirmed reload were wrong", failures)
	}
	// The last network goes: the server confirms, then exits and removes
	// its pid file and control socket.
	if _, err := dir.Remove(asker.ID, []string{"n"}); err != nil {
		t.Fatal(err)
	}
	if err := dir.RequestReload(os.Getpid(), 5*time.Second); err != nil {
		t.Errorf("reload that leaves no network: %v", err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not exit with the last network")
	}
	for _, p := range []string{dir.PidFile(), dir.ControlSocket()} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}

// netavark (and aardvark-dns users) signal SIGHUP: still a reload.
func TestSIGHUPStillReloads(t *testing.T) {
	dir := aardvarkconf.Dir{Path: filepath.Join(t.TempDir(), "aardvark-dns")}
	port := freePort(t)
	dir.Add(map[string]aardvarkconf.Entry{"n": entry(0)}, map[string]aardvarkconf.Header{"n": gw})
	runServer(t, dir, port, nil)
	dir.Add(map[string]aardvarkconf.Entry{"n": entry(1)}, map[string]aardvarkconf.Header{"n": gw})
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r, err := lookup(t, "127.0.1.2", port, "name1"); err == nil && len(r.Answer) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("name1 not served after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeHostSetting(t *testing.T) {
	dir := aardvarkconf.Dir{Path: filepath.Join(t.TempDir(), "aardvark-dns")}
	dir.Add(map[string]aardvarkconf.Entry{"n": entry(0)}, map[string]aardvarkconf.Header{"n": gw})
	for _, c := range []struct {
		env   string
		rcode int
	}{{"", mdns.RcodeRefused}, {"1", mdns.RcodeSuccess}, {"0", mdns.RcodeRefused}} {
		t.Run("env="+c.env, func(t *testing.T) {
			port := freePort(t)
			runServer(t, dir, port, map[string]string{ServeHostEnv: c.env})
			r, err := lookup(t, "127.0.0.1", port, "name0")
			if err != nil || r.Rcode != c.rcode {
				t.Errorf("the host asking with %s=%q: %v %v, want rcode %d", ServeHostEnv, c.env, r, err, c.rcode)
			}
		})
	}
	var stderr bytes.Buffer
	if code := Run(context.Background(), []string{"--foreground", "--config", dir.Path, "run"}, Env{Stdout: &stderr, Stderr: &stderr, Getenv: func(string) string { return "maybe" }}); code != 2 {
		t.Errorf("%s=maybe: exit %d, want 2 (%s)", ServeHostEnv, code, stderr.String())
	}
}
