package dns

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/berthnet/berth/internal/safefile"
)

// within fails the test if f does not return in time: a reader that
// blocks on a FIFO or reads a device forever is the bug.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

func TestLoadSkipsFilesThatAreNotRegular(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good"), []byte("10.89.0.1\nc1 10.89.0.2  web\n"), 0o644)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "zero"))
	big := "10.89.9.1\n" + strings.Repeat("c9 10.89.9.2  big\n", safefile.DefaultLimit/16)
	os.WriteFile(filepath.Join(dir, "huge"), []byte(big), 0o644)
	var snap *Snapshot
	within(t, 5*time.Second, "Load", func() {
		var err error
		if snap, err = Load(dir); err != nil {
			t.Error(err)
		}
	})
	if snap == nil {
		return
	}
	var notRegular, tooLarge int
	for _, err := range snap.Errors {
		switch {
		case errors.Is(err, safefile.ErrNotRegular):
			notRegular++
		case errors.Is(err, safefile.ErrTooLarge):
			tooLarge++
		}
	}
	if notRegular != 2 || tooLarge != 1 || len(snap.Errors) != 3 {
		t.Errorf("want the FIFO and /dev/zero refused as not regular and the huge file as too large, got %v", snap.Errors)
	}
	sc := snap.ScopeFor(netip.MustParseAddr("10.89.0.2"), netip.MustParseAddr("10.89.0.1"))
	if ips, _ := sc.Lookup("web", false); len(ips) != 1 {
		t.Errorf("the good network is not served: %v", ips)
	}
}

func TestResolvConfThatIsNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "resolv.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero"} {
		r := &ResolvConf{Path: p}
		within(t, 5*time.Second, "Servers of "+p, func() {
			if got := r.Servers(); len(got) != 0 {
				t.Errorf("%s: servers %v", p, got)
			}
		})
	}
}

// A network named aardvark.pid is stored as aardvark.pid%net: the server
// serves it, and the pid file beside it is not a network.
func TestNetworkNamedLikeThePidFile(t *testing.T) {
	f := start(t, map[string]string{
		"aardvark.pid%net": "127.0.0.1\nc1 127.0.1.1  web\nc2 127.0.1.2  db\n",
		"aardvark.pid":     "12345\n",
	}, nil)
	if errs := f.srv.Snapshot().Errors; len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
	if n := f.srv.Snapshot().Networks; len(n) != 1 || n[0].Name != "aardvark.pid" {
		t.Errorf("networks: %+v", n)
	}
	if got := addrs(f.query(t, "127.0.1.2", "127.0.0.1", "udp", "web", mdns.TypeA)); len(got) != 1 || got[0] != "127.0.1.1" {
		t.Errorf("web on network aardvark.pid: %v", got)
	}
}
