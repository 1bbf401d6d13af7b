package pasta_test

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/usernet"
)

// Behaviour of berth's pasta beyond what Debian's 2023 pasta can be
// compared on: interface-bound forwards, "auto" forwarding, the API
// socket, local mode and the command form.

func berthOnly(t *testing.T) (*side, impl) {
	t.Helper()
	nettest.Privileged(t)
	bin := berthPasta(t, sharedDir(t))
	if bin == "" {
		t.Skip("cmd/pasta does not exist in this tree")
	}
	return newSide(t, false, ""), impl{name: "berth", bin: bin}
}

// eventually retries f for up to 5 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for range 50 {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func TestBerthPastaInterfaceBoundForward(t *testing.T) {
	s, im := berthOnly(t)
	servePorts(t, s.n, "N", 80)
	res := s.start(t, im, "--config-net", "-t", "%"+ifName+"/8080:80", "--no-map-gw", "--quiet")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.out)
	}
	if got, peer, err := fetch(s.r, "", hAddr+":8080", 3*time.Second); err != nil || got != "N:80" || peer != rGateway {
		t.Fatalf("from R through %s: %q from %q, %v", ifName, got, peer, err)
	}
	// Bound to eth0: the host's loopback does not lead to it.
	if got, _, err := fetch(s.h, "", "127.0.0.1:8080", time.Second); err == nil {
		t.Fatalf("a forward bound to %s answered on the host's loopback: %q", ifName, got)
	}
}

func TestBerthPastaAutoForward(t *testing.T) {
	s, im := berthOnly(t)
	// No -t: pasta's default is auto (as -t auto), -T likewise.
	res := s.start(t, im, "--config-net", "-u", "none", "-U", "none", "--no-map-gw", "--quiet")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.out)
	}
	l := nettest.Listen(t, s.n, "tcp", ":8555")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("auto"))
			c.Close()
		}
	}()
	eventually(t, "a port bound in N is forwarded from H", func() error {
		_, err := nettest.Run(s.r, 2*time.Second, "bash", "-c", "exec 3<>/dev/tcp/"+hAddr+"/8555")
		return err
	})
	l.Close()
	eventually(t, "a port no longer bound in N is released in H", func() error {
		out, err := nettest.Run(s.h, 2*time.Second, "ss", "-Hltn", "sport = :8555")
		if err == nil && strings.TrimSpace(out) != "" {
			return errorString("still listening: " + out)
		}
		return err
	})
	// -T auto: a host service appears on N's loopback.
	hl := nettest.Listen(t, s.h, "tcp", "127.0.0.1:9400")
	defer hl.Close()
	eventually(t, "a port bound in H is forwarded from N's loopback", func() error {
		_, err := nettest.Run(s.n, 2*time.Second, "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9400")
		return err
	})
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestBerthPastaAPISocket(t *testing.T) {
	s, im := berthOnly(t)
	servePorts(t, s.n, "N", 81)
	sock := filepath.Join(s.shared, "api.sock")
	res := s.start(t, im, "--config-net", "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw", "--quiet", "--berth-api-socket", sock)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.out)
	}
	id, err := usernet.AddHostfwd(sock, usernet.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr(hAddr), HostPort: 8181, GuestPort: 81})
	if err != nil {
		t.Fatal(err)
	}
	if got, peer, err := fetch(s.r, "", hAddr+":8181", 3*time.Second); err != nil || got != "N:81" || peer != rGateway {
		t.Fatalf("forward added through the API: %q from %q, %v", got, peer, err)
	}
	if err := usernet.RemoveHostfwd(sock, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fetch(s.r, "", hAddr+":8181", time.Second); err == nil {
		t.Fatal("a removed forward still answers")
	}
}

func TestBerthPastaLocalMode(t *testing.T) {
	nettest.Privileged(t)
	bin := berthPasta(t, sharedDir(t))
	if bin == "" {
		t.Skip("cmd/pasta does not exist in this tree")
	}
	// A host with only lo: no interface to copy.
	h := nettest.NewNS(t, nettest.RandName("pastal"))
	n := nettest.NewNS(t, nettest.RandName("pastaln"))
	pid := filepath.Join(t.TempDir(), "pid")
	out, err := nettest.Run(h, 10*time.Second, bin, "--config-net", "--quiet", "--pid", pid, "--netns", n.Path())
	if err != nil {
		t.Fatalf("local mode: %v\n%s", err, out)
	}
	t.Cleanup(func() { stopPIDFile(t, pid) })
	addrs := run(t, n, "ip", "-br", "addr", "show", "tap0")
	if !strings.Contains(addrs, "169.254.2.1/16") {
		t.Fatalf("local mode address: %s", addrs)
	}
	// The gateway stands for H's loopback (pasta's default --map-gw).
	hl := nettest.Listen(t, h, "tcp", "127.0.0.1:9500")
	go func() {
		c, err := hl.Accept()
		if err == nil {
			_, _ = c.Write([]byte("host"))
			c.Close()
		}
	}()
	if _, err := nettest.Run(n, 3*time.Second, "bash", "-c", "exec 3<>/dev/tcp/169.254.2.2/9500"); err != nil {
		t.Fatalf("N to H's loopback through the local gateway: %v", err)
	}
}

func TestBerthPastaCommand(t *testing.T) {
	s, im := berthOnly(t)
	servePorts(t, s.r, "R", 7000)
	script := "ip -br addr show " + ifName + " | grep -q " + hAddr + "/24 && exec 3<>/dev/tcp/" + rServer + "/7000 && exit 7"
	out, err := nettest.Run(s.h, 15*time.Second, im.bin, "--config-net", "--quiet", "--", "bash", "-c", script)
	var ee *exec.ExitError
	if !asExit(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("the command's exit status is pasta's: %v\n%s", err, out)
	}
}

// stopPIDFile stops the daemon whose PID the file holds.
func stopPIDFile(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		stopPID(t, pid)
	}
}

func asExit(err error, ee **exec.ExitError) bool { return errors.As(err, ee) }
