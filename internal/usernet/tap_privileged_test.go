package usernet

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/link/tun"

	"github.com/berthnet/berth/internal/nettest"
)

// These tests put the guest in a fresh network namespace behind a real
// TAP; the stack runs in this process, whose namespace plays the host
// (reached through the gateway address, as in stack_test.go).

const transferSize = 8 << 20

// tapRig is a guest namespace whose TAP a stack in this process serves.
type tapRig struct {
	ctr *nettest.NS
	ep  any
	fd  int
}

// newTapRig opens the TAP with openTAPHere, or with plain (gVisor's
// OpenTAP: no virtio headers) when plain is set, and starts a stack on it.
func newTapRig(t *testing.T, cfg Config, plain bool) *tapRig {
	t.Helper()
	nettest.Privileged(t)
	ctr := nettest.NewNS(t, nettest.RandName("busvc"))
	if err := ctr.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if plain {
		err = ctr.DoDiscard(func() error {
			var err error
			if fd, err = tun.OpenTAP("tap0"); err != nil {
				return err
			}
			if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM); err != nil {
				return err
			}
			return configureTAP("tap0", cfg, nil)
		})
	} else {
		fd, err = OpenTAP(ctr.NetNS, "tap0", true, cfg, nil)
	}
	if err != nil {
		t.Fatalf("open TAP: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ep, _, err := NewTAPEndpoint(fd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(cfg, ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &tapRig{ctr: ctr, ep: ep, fd: fd}
}

// pattern returns n pseudo-random bytes from seed.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// exchange connects from the guest to addr on the host's loopback and
// sends transferSize bytes each way at once; it fails unless both sides
// got exactly what the other sent.
func (r *tapRig) exchange(t *testing.T, network, listen, dial string) {
	t.Helper()
	l, err := net.Listen(network, listen)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	up, down := pattern(1, transferSize), pattern(2, transferSize)
	srv := make(chan error, 1)
	go func() { srv <- serveExchange(l, down, sha256.Sum256(up)) }()
	port := l.Addr().(*net.TCPAddr).Port
	var c net.Conn
	deadline := time.Now().Add(15 * time.Second)
	for {
		// IPv6 needs the guest to have configured itself from the
		// stack's router advertisement first.
		c, err = nettest.Dial(r.ctr, network, net.JoinHostPort(dial, fmt.Sprint(port)), 2*time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("guest dial %s: %v", dial, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	start := time.Now()
	wr := make(chan error, 1)
	go func() {
		_, err := c.Write(up)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		wr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatalf("guest read: %v after %d bytes", err, n)
	}
	if err := <-wr; err != nil {
		t.Fatalf("guest write: %v", err)
	}
	if err := <-srv; err != nil {
		t.Fatal(err)
	}
	if n != transferSize || [32]byte(h.Sum(nil)) != sha256.Sum256(down) {
		t.Fatalf("guest got %d bytes that differ from the %d the host sent", n, transferSize)
	}
	t.Logf("%s: %d MiB each way in %v", network, transferSize>>20, time.Since(start).Round(time.Millisecond))
}

// serveExchange accepts one connection, sends down and checks that what
// comes in has the digest want.
func serveExchange(l net.Listener, down []byte, want [32]byte) error {
	c, err := l.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	wr := make(chan error, 1)
	go func() {
		_, err := c.Write(down)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		wr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if werr := <-wr; err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("host side: %w", err)
	}
	if n != transferSize || [32]byte(h.Sum(nil)) != want {
		return errors.New("host got bytes that differ from what the guest sent")
	}
	return nil
}

// TestTAPSegmentationOffload: with a 1500-byte MTU the guest's kernel
// hands the stack TCP super-segments and takes super-segments from it,
// over IPv4 and IPv6, and the data arrives intact both ways.
func TestTAPSegmentationOffload(t *testing.T) {
	r := newTapRig(t, Config{MTU: 1500, IPv6: true}, false)
	vnet, err := hasVnetHdr(r.fd)
	if err != nil || !vnet {
		t.Fatalf("TAP without IFF_VNET_HDR (%v)", err)
	}
	for _, f := range []struct {
		name string
		cmd  uint32
	}{{"tx-checksumming", unix.ETHTOOL_GTXCSUM}, {"tcp-segmentation-offload", unix.ETHTOOL_GTSO}} {
		on, err := ethtoolFlag(r.ctr, "tap0", f.cmd)
		if err != nil || !on {
			t.Errorf("tap0 %s: on=%v (%v), want on", f.name, on, err)
		}
	}
	ep, ok := r.ep.(*vnetEndpoint)
	if !ok {
		t.Fatalf("endpoint is %T, want *vnetEndpoint", r.ep)
	}
	for _, c := range []struct{ network, listen, dial string }{
		{"tcp4", "127.0.0.1:0", "10.0.2.2"},
		{"tcp6", "[::1]:0", "fd00::2"},
	} {
		in, out := ep.superIn.Load(), ep.superOut.Load()
		r.exchange(t, c.network, c.listen, c.dial)
		in, out = ep.superIn.Load()-in, ep.superOut.Load()-out
		t.Logf("%s: %d super-segments from the guest, %d to it", c.network, in, out)
		if in == 0 || out == 0 {
			t.Errorf("%s: %d super-segments from the guest and %d to it, want some each way", c.network, in, out)
		}
	}
}

// TestTAPLargeMTU: at the default MTU the frames are already as large as
// a super-segment; the data still arrives intact both ways.
func TestTAPLargeMTU(t *testing.T) {
	r := newTapRig(t, Config{}, false)
	r.exchange(t, "tcp4", "127.0.0.1:0", "10.0.2.2")
}

// TestTAPWithoutVnetHdr: a TAP descriptor opened without virtio headers
// (e.g. by another program) is served by gVisor's plain endpoint.
func TestTAPWithoutVnetHdr(t *testing.T) {
	r := newTapRig(t, Config{MTU: 1500}, true)
	if _, ok := r.ep.(*vnetEndpoint); ok {
		t.Fatal("plain TAP got the virtio-header endpoint")
	}
	if on, err := ethtoolFlag(r.ctr, "tap0", unix.ETHTOOL_GTSO); err != nil || on {
		t.Errorf("plain tap0 tcp-segmentation-offload: on=%v (%v), want off", on, err)
	}
	r.exchange(t, "tcp4", "127.0.0.1:0", "10.0.2.2")
}

// ethtoolFlag reads one of the legacy on/off ethtool settings (cmd, e.g.
// ETHTOOL_GTSO) of the interface dev in ns, as `ethtool -k` shows them.
func ethtoolFlag(ns *nettest.NS, dev string, cmd uint32) (bool, error) {
	var on bool
	err := ns.Do(func() error {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		// struct ethtool_value in memory the Go runtime never moves:
		// the ioctl gets its address as an integer.
		val, err := unix.Mmap(-1, 0, 8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			return err
		}
		defer unix.Munmap(val)
		binary.NativeEndian.PutUint32(val, cmd)
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data uintptr
			_    [16]byte
		}
		copy(ifr.name[:], dev)
		ifr.data = uintptr(unsafe.Pointer(&val[0]))
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
			return fmt.Errorf("SIOCETHTOOL %#x: %w", cmd, errno)
		}
		on = binary.NativeEndian.Uint32(val[4:]) != 0
		return nil
	})
	return on, err
}
