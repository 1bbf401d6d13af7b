package aardvarkconf

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/safefile"
)

// A network may be named aardvark.pid (valid in Podman): its file must not
// be the pid file the DNS server writes beside it.
func TestNetworkNamedLikeThePidFile(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "aardvark-dns")}
	h := map[string]Header{PidFileName: {BindIPs: []netip.Addr{netip.MustParseAddr("10.89.0.1")}}}
	for _, id := range []string{"a", "b"} {
		e := Entry{ID: id, IPv4: []netip.Addr{netip.MustParseAddr("10.89.0.2")}, Names: []string{id}}
		if err := d.Add(map[string]Entry{PidFileName: e}, h); err != nil {
			t.Fatal(err)
		}
	}
	if d.file(PidFileName) == d.PidFile() {
		t.Fatalf("network %s is stored in the pid file %s", PidFileName, d.PidFile())
	}
	// The server writes its pid file; the network's entries survive.
	if err := os.WriteFile(d.PidFile(), []byte("4242"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := d.Read(PidFileName)
	if err != nil || len(f.Entries) != 2 {
		t.Fatalf("network %s after the pid file was written: %v %v", PidFileName, f, err)
	}
	if nets, _ := d.Networks(); len(nets) != 1 || nets[0] != PidFileName {
		t.Errorf("networks: %v", nets)
	}
	left, err := d.Remove("a", []string{PidFileName})
	if err != nil || !left {
		t.Fatalf("remove a: left=%v %v", left, err)
	}
	if b, _ := os.ReadFile(d.PidFile()); string(b) != "4242" {
		t.Errorf("pid file changed: %q", b)
	}
	if left, err := d.Remove("b", []string{PidFileName}); err != nil || left {
		t.Errorf("remove b: left=%v %v", left, err)
	}
	if _, err := os.Stat(d.PidFile()); err != nil {
		t.Errorf("the last removal took the pid file: %v", err)
	}
}

func TestFileNameRoundTrip(t *testing.T) {
	for _, n := range []string{"podman", "aardvark.pid", "a.b-c_d", "aardvark.pidx", "net%int"} {
		if got, ok := NetworkName(FileName(n)); !ok || got != n {
			t.Errorf("%s: file %s reads back as %q %v", n, FileName(n), got, ok)
		}
	}
	for _, f := range []string{PidFileName, ".tmp123", ".berth-dns.sock", ""} {
		if n, ok := NetworkName(f); ok {
			t.Errorf("%q taken for network %q", f, n)
		}
	}
}

// A network file that is a FIFO or a link to a device is reported, never
// waited on or read forever.
func TestNetworkFileThatIsNotRegular(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "aardvark-dns")}
	os.Mkdir(d.Path, 0o755)
	if err := syscall.Mkfifo(d.file("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", d.file("zero"))
	h := Header{BindIPs: []netip.Addr{netip.MustParseAddr("10.89.0.1")}}
	e := Entry{ID: "a", Names: []string{"a"}}
	for _, n := range []string{"fifo", "zero"} {
		done := make(chan error, 3)
		go func() {
			_, err := d.Read(n)
			done <- err
			done <- d.Add(map[string]Entry{n: e}, map[string]Header{n: h})
			_, err = d.Remove("a", []string{n})
			done <- err
		}()
		for _, op := range []string{"Read", "Add", "Remove"} {
			select {
			case err := <-done:
				if !errors.Is(err, safefile.ErrNotRegular) {
					t.Errorf("%s %s: %v, want %v", op, n, err, safefile.ErrNotRegular)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s %s hangs", op, n)
			}
		}
	}
}

// A FIFO or link planted at the pid file is replaced, not written through.
func TestWritePidReplaces(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	target := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(target, []byte("keep"), 0o644)
	for _, plant := range []func() error{
		func() error { return syscall.Mkfifo(d.PidFile(), 0o644) },
		func() error { return os.Symlink(target, d.PidFile()) },
	} {
		os.Remove(d.PidFile())
		if err := plant(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.WritePid(42) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WritePid hangs")
		}
		if b, err := safefile.Read(d.PidFile(), 64); err != nil || string(b) != "42" {
			t.Errorf("pid file: %q %v", b, err)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("written through the link: %q", b)
	}
}
