package usernet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// dialHost connects the guest to a host loopback listener through the
// gateway address, as an outbound connection the stack relays.
func (r *rig) dialHost(t *testing.T, l net.Listener) *gonet.TCPConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	c, err := gonet.DialContextTCP(ctx, r.guest, full(netip.AddrPortFrom(r.st.Config().Gateway(), port)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("guest dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// An upload goes to the host byte for byte, in order, however the host
// reads it (slowly first, so the relay's writes fill the socket and wait);
// the guest's half-close reaches the host as EOF and the host's answer
// still reaches the guest after it.
func TestUploadReachesHostIntact(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		small := make([]byte, 1000)
		for range 200 { // a slow reader: the host socket fills up
			n, err := c.Read(small)
			h.Write(small[:n])
			if err != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		io.Copy(h, c) // then the rest, to EOF (the guest's half-close)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		c.Write(sum[:]) // written after the guest closed its side
		got <- sum
	}()

	r := newRig(t, Config{})
	c := r.dialHost(t, l)
	data := make([]byte, 24<<20)
	rnd := rand.NewChaCha8([32]byte{1})
	rnd.Read(data)
	want := sha256.Sum256(data)
	if _, err := c.Write(data); err != nil {
		t.Fatalf("guest write: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("guest read after its half-close: %v", err)
	}
	select {
	case sum := <-got:
		if sum != want {
			t.Fatalf("the host received other bytes than the guest sent (sha256 %x, sent %x)", sum, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the host never saw the upload end")
	}
	if !bytes.Equal(answer, want[:]) {
		t.Fatalf("guest got %x after its half-close, want the host's answer %x", answer, want)
	}
}

// Closing the stack ends a relay whose write waits for a host that does
// not read.
func TestCloseEndsAStalledUpload(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c // never read
		}
	}()
	r := newRig(t, Config{})
	c := r.dialHost(t, l)
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	var hc net.Conn
	select {
	case hc = <-accepted:
		defer hc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the relay never connected to the host")
	}
	// Wait until the host socket is full: the relay is then waiting.
	time.Sleep(300 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		r.st.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Stack.Close hangs while a relay waits for the host")
	}
	// The host sees the connection end (EOF or a reset), not a timeout.
	hc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, hc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the host's connection stays open after the stack closed: %v", err)
	}
}
