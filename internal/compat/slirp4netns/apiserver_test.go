package slirp4netns

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/usernet"
)

// startAPI serves s on a fresh socket and returns its path.
func startAPI(t *testing.T, s *apiServer) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go s.serve(ln)
	return sock
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// idle opens n connections that send nothing; they close when the test ends.
func idle(t *testing.T, sock string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// addWithin runs add_hostfwd and fails the test unless it is answered
// within d; it returns the error of the call.
func addWithin(t *testing.T, sock string, d time.Duration, port uint16) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := usernet.AddHostfwd(sock, usernet.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 80})
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("answered in %v", time.Since(start).Round(time.Millisecond))
		return err
	case <-time.After(d):
		t.Fatalf("add_hostfwd not answered within %v", d)
		return nil
	}
}

// TestIdleClientsDoNotStallTheAPI: with 200 clients connected and silent,
// the 201st gets its add_hostfwd answered at once.
func TestIdleClientsDoNotStallTheAPI(t *testing.T) {
	fw := &fakeForwarder{}
	sock := startAPI(t, newAPIServer(fw, quietLog()))
	idle(t, sock, 200)
	if err := addWithin(t, sock, 2*time.Second, 8080); err != nil {
		t.Fatal(err)
	}
	if len(fw.Forwards()) != 1 {
		t.Errorf("forwards: %+v", fw.Forwards())
	}
}

// TestAPIConnectionCap: beyond the cap, a client is told so at once
// instead of waiting.
func TestAPIConnectionCap(t *testing.T) {
	s := newAPIServer(&fakeForwarder{}, quietLog())
	s.slots = make(chan struct{}, 3)
	sock := startAPI(t, s)
	idle(t, sock, 3)
	for deadline := time.Now().Add(2 * time.Second); len(s.slots) < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 idle connections accepted", len(s.slots))
		}
	}
	err := addWithin(t, sock, 2*time.Second, 8080)
	if err == nil || !strings.Contains(err.Error(), "too many connections (at most 3 at once)") {
		t.Fatalf("client beyond the cap: %v", err)
	}
}

// TestAPIIdleClientIsDropped: a client that sends nothing is disconnected
// after the read timeout, freeing its slot.
func TestAPIIdleClientIsDropped(t *testing.T) {
	s := newAPIServer(&fakeForwarder{}, quietLog())
	s.ioTimeout = 100 * time.Millisecond
	sock := startAPI(t, s)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	b, _ := io.ReadAll(c)
	if time.Since(start) > 2*time.Second {
		t.Fatalf("idle client kept for %v", time.Since(start))
	}
	if !strings.Contains(string(b), "cannot parse JSON") && len(b) != 0 {
		t.Errorf("answer to an idle client: %q", b)
	}
	for deadline := time.Now().Add(2 * time.Second); len(s.slots) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the idle client's slot was not freed")
		}
	}
}

// TestAPIRequestSizeLimit: a request of maxRequest bytes or more is
// refused as slirp4netns does, without waiting for its end.
func TestAPIRequestSizeLimit(t *testing.T) {
	sock := startAPI(t, newAPIServer(&fakeForwarder{}, quietLog()))
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"execute":"list_hostfwd","x":"` + strings.Repeat("a", 2*maxRequest))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c)
	if string(b) != `{"error":{"desc":"bad request: too large message"}}` {
		t.Errorf("answer to a large request: %q", b)
	}
}
