// Package nettest holds helpers for berth's privileged tests: a gate that
// skips them unless they may run, fresh network namespaces that are removed
// when the test ends (also on failure), veth links between them, and ways to
// run code and commands inside them. Nothing here touches the namespace the
// test process runs in.
package nettest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
)

// Privileged skips the test unless it runs as root with
// BERTH_PRIVILEGED_TESTS=1.
func Privileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("privileged test: needs root (run the suite as README.md says)")
	}
	if os.Getenv("BERTH_PRIVILEGED_TESTS") != "1" {
		t.Skip("privileged test: set BERTH_PRIVILEGED_TESTS=1 to run kernel tests (they create network namespaces)")
	}
}

// RandName returns prefix plus 6 random hex digits.
func RandName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NS is a network namespace created for one test.
type NS struct {
	*netns.NetNS
	Name string
}

// NewNS creates a fresh network namespace pinned under the test's temp
// directory, with lo up; it is removed in t.Cleanup.
func NewNS(t testing.TB, name string) *NS {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	ns, err := netns.NewPinned(path)
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.Unpin(path); err != nil {
			t.Errorf("remove namespace %s: %v", name, err)
		}
	})
	if err := Handle(t, ns).LoopbackUp(); err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	return &NS{NetNS: ns, Name: name}
}

// Handle returns a netlink handle bound to ns, closed in t.Cleanup.
func Handle(t testing.TB, ns *netns.NetNS) *link.Handle {
	t.Helper()
	h, err := link.NewHandle(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// Connect joins two namespaces with a veth pair, names each end and gives
// it an address (with prefix), and sets both up.
func Connect(t testing.TB, a *NS, aName string, aAddr netip.Prefix, b *NS, bName string, bAddr netip.Prefix) {
	t.Helper()
	ha, hb := Handle(t, a.NetNS), Handle(t, b.NetNS)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = aName
	if err := ha.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: bName, PeerNamespace: netlink.NsFd(b.Fd())}); err != nil {
		t.Fatalf("create veth %s/%s: %v", aName, bName, err)
	}
	for _, x := range []struct {
		h    *link.Handle
		name string
		addr netip.Prefix
	}{{ha, aName, aAddr}, {hb, bName, bAddr}} {
		l, err := x.h.LinkByName(x.name)
		if err != nil {
			t.Fatalf("find %s: %v", x.name, err)
		}
		if x.addr.IsValid() {
			if err := x.h.AddAddr(l, x.addr); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.h.Up(l); err != nil {
			t.Fatal(err)
		}
	}
}

// Run runs a command inside ns (through nsenter) and returns its combined
// output.
func Run(ns *NS, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns.Path(), "--", name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Listen opens a listener inside ns.
func Listen(t testing.TB, ns *NS, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s %s in %s: %v", network, addr, ns.Name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// ListenPacket opens a packet socket inside ns.
func ListenPacket(t testing.TB, ns *NS, network, addr string) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	err := ns.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s %s in %s: %v", network, addr, ns.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Dial connects from inside ns.
func Dial(ns *NS, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// ServeBanner accepts connections on l and writes banner to each, then
// closes it; it reports each peer address on the returned channel.
func ServeBanner(l net.Listener, banner string) <-chan string {
	peers := make(chan string, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case peers <- c.RemoteAddr().String():
			default:
			}
			_, _ = c.Write([]byte(banner))
			c.Close()
		}
	}()
	return peers
}

// Fetch connects from ns to addr and returns what the server sends.
func Fetch(ns *NS, network, addr string) (string, error) {
	return FetchWithin(ns, network, addr, 3*time.Second)
}

// FetchWithin is Fetch with a connect timeout, for checks that expect the
// connection to fail.
func FetchWithin(ns *NS, network, addr string, timeout time.Duration) (string, error) {
	c, err := Dial(ns, network, addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("no data from %s", addr)
	}
	return b.String(), nil
}

// Links lists the link names in ns.
func Links(t testing.TB, ns *NS) []string {
	t.Helper()
	h := Handle(t, ns.NetNS)
	ls, err := h.LinkList()
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Attrs().Name)
	}
	return out
}

// KillAfter starts cmd and, unless it ends first, kills it with SIGKILL
// after d; it waits for the process and reports whether it was killed. An
// error is a failure to start it.
func KillAfter(cmd *exec.Cmd, d time.Duration) (killed bool, err error) {
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return false, nil
	case <-time.After(d):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	return true, nil
}
