package slirp4netns

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/usernet"
)

// TestClient drives the API server through the client berth's engine uses.
func TestClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fw := &fakeForwarder{failOn: 9999}
	go serveAPI(ln, fw, slog.New(slog.NewTextHandler(io.Discard, nil)))

	id, err := usernet.AddHostfwd(sock, usernet.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, GuestAddr: netip.MustParseAddr("10.0.2.100"), GuestPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := usernet.AddHostfwd(sock, usernet.Forward{Proto: "udp", HostPort: 5353, GuestPort: 53})
	if err != nil || id2 == id {
		t.Fatalf("second forward: %d %v", id2, err)
	}
	fs := fw.Forwards()
	if len(fs) != 2 || fs[0].HostAddr.String() != "127.0.0.1" || fs[0].GuestPort != 80 || fs[1].Proto != "udp" || fs[1].HostAddr.String() != "0.0.0.0" {
		t.Errorf("forwards: %+v", fs)
	}
	if _, err := usernet.AddHostfwd(sock, usernet.Forward{Proto: "tcp", HostPort: 9999, GuestPort: 80}); err == nil || !strings.Contains(err.Error(), "slirp_add_hostfwd failed") || !strings.Contains(err.Error(), "9999") {
		t.Errorf("failing forward: %v", err)
	}
	if err := usernet.RemoveHostfwd(sock, id); err != nil {
		t.Fatal(err)
	}
	if err := usernet.RemoveHostfwd(sock, id); err == nil || !strings.Contains(err.Error(), "bad arguments.id") {
		t.Errorf("second remove: %v", err)
	}
	if len(fw.Forwards()) != 1 {
		t.Errorf("after remove: %+v", fw.Forwards())
	}
	if _, err := usernet.AddHostfwd(filepath.Join(t.TempDir(), "none.sock"), usernet.Forward{Proto: "tcp", HostPort: 1, GuestPort: 1}); err == nil || !strings.Contains(err.Error(), "api socket") {
		t.Errorf("no server: %v", err)
	}
}
