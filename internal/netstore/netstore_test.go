package netstore

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/safefile"
)

var now = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(Config{Dir: filepath.Join(t.TempDir(), "nets"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func net1(name, id string) network.Network {
	return network.Network{Name: name, ID: id, Driver: "bridge", NetworkInterface: "br-" + name, Created: "2026-11-27T13:48:21.698208228Z",
		Subnets:    []network.Subnet{{Subnet: netip.MustParsePrefix("198.19.1.0/24"), Gateway: netip.MustParseAddr("198.19.1.1")}},
		DNSEnabled: true, IPAMOptions: map[string]string{"driver": "host-local"}}
}

func TestDefaultNetworkUntilExported(t *testing.T) {
	s := newStore(t)
	all, err := s.List()
	if err != nil || len(all) != 1 {
		t.Fatalf("%v %v", all, err)
	}
	d := all[0]
	if d.Name != "podman" || d.ID != DefaultNetworkID || d.NetworkInterface != "podman0" || d.DNSEnabled ||
		d.Subnets[0].Subnet.String() != "10.88.0.0/16" || d.Subnets[0].Gateway.String() != "10.88.0.1" || d.Created != "2026-11-27T15:00:00Z" {
		t.Errorf("default network: %+v", d)
	}
	if err := s.Remove("podman"); !errors.Is(err, ErrDefault) {
		t.Errorf("remove default: %v", err)
	}
	d.DNSEnabled = true
	d.Created = "2026-01-01T00:00:00Z"
	if err := s.Update(d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("podman")
	if err != nil || !got.DNSEnabled || got.Created != "2026-01-01T00:00:00Z" {
		t.Errorf("exported default should win: %+v %v", got, err)
	}
	if all, _ := s.List(); len(all) != 1 {
		t.Errorf("default listed twice: %v", all)
	}
}

func TestFindByNameAndIDPrefix(t *testing.T) {
	s := newStore(t)
	a := net1("a", "2d72e35b081d216309b90c4f92926b808ddab144ecc7f76a29e036b1ea358a17")
	b := net1("b", "2d7300000000000000000000000000000000000000000000000000000000000b")
	for _, n := range []network.Network{a, b} {
		if err := s.Create(n); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Get("2d72e"); err != nil || n.Name != "a" {
		t.Errorf("prefix: %v %v", n.Name, err)
	}
	if _, err := s.Get("2d7"); !errors.Is(err, ErrAmbiguous) || err.Error() != "more than one result for network ID 2d7" {
		t.Errorf("ambiguous: %v", err)
	}
	if _, err := s.Get("zzz"); !errors.Is(err, ErrNotFound) || err.Error() != "unable to find network with name or ID zzz: network not found" {
		t.Errorf("not found: %v", err)
	}
	if err := s.Create(a); !errors.Is(err, ErrExists) {
		t.Errorf("create twice: %v", err)
	}
	if err := s.Create(net1("bad name", a.ID)); !errors.Is(err, network.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove twice: %v", err)
	}
}

// TestLoadSkipsBadFiles: what Podman skips, berth skips; a minimal file
// loads with Podman's in-memory normalisation.
func TestLoadSkipsBadFiles(t *testing.T) {
	s := newStore(t)
	os.MkdirAll(s.Dir(), 0o755)
	files := map[string]string{
		"mismatch.json": `{"name":"other","id":"` + strings.Repeat("a", 64) + `","driver":"bridge"}`,
		"badid.json":    `{"name":"badid","id":"1234","driver":"bridge"}`,
		"nothex.json":   `{"name":"nothex","id":"` + strings.Repeat("z", 64) + `","driver":"bridge"}`,
		"badgw.json":    `{"name":"badgw","id":"` + strings.Repeat("b", 64) + `","driver":"bridge","subnets":[{"subnet":"10.78.0.0/24","gateway":"10.79.0.1"}]}`,
		"badrange.json": `{"name":"badrange","id":"` + strings.Repeat("c", 64) + `","driver":"bridge","subnets":[{"subnet":"10.78.0.0/24","lease_range":{"start_ip":"10.77.0.1"}}]}`,
		"empty.json":    ``,
		"broken.json":   `{"name":`,
		"bad name.json": `{"name":"bad name","id":"` + strings.Repeat("d", 64) + `","driver":"bridge"}`,
		"notes.txt":     `ignored`,
		"minimal.json":  `{"name":"minimal","id":"` + strings.Repeat("e", 64) + `","driver":"bridge","network_interface":"podman7","subnets":[{"subnet":"10.89.8.5/24"},{"subnet":"fd00:1::/64"}]}`,
		"internal.json": `{"name":"internal","id":"` + strings.Repeat("f", 64) + `","driver":"bridge","internal":true,"subnets":[{"subnet":"10.89.9.0/24"}]}`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(s.Dir(), name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range all {
		names = append(names, n.Name)
	}
	if strings.Join(names, " ") != "internal minimal podman" {
		t.Fatalf("loaded %v", names)
	}
	m, _ := s.Get("minimal")
	if m.Created != ZeroCreated || m.Subnets[0].Subnet.String() != "10.89.8.0/24" || m.Subnets[0].Gateway.String() != "10.89.8.1" || !m.IPv6Enabled {
		t.Errorf("minimal normalised: %+v", m)
	}
	if in, _ := s.Get("internal"); in.Subnets[0].Gateway.IsValid() {
		t.Errorf("internal network without DNS got a gateway: %+v", in.Subnets[0])
	}
	// Loading changed no file.
	b, _ := os.ReadFile(filepath.Join(s.Dir(), "minimal.json"))
	if string(b) != files["minimal.json"] {
		t.Error("loading rewrote a file")
	}
}

// TestMarshalIsPodmansFormat: files Podman wrote come back byte for byte.
func TestMarshalIsPodmansFormat(t *testing.T) {
	paths, _ := filepath.Glob("../cli/testdata/podman/golden/create_*.golden")
	n := 0
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		_, file, ok := strings.Cut(string(b), "-- file ")
		if !ok {
			continue
		}
		name, content, _ := strings.Cut(file, " --\n")
		dir := t.TempDir()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		nw, err := LoadFile(path)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		out, _ := Marshal(nw)
		if string(out) != content {
			t.Errorf("%s: berth writes\n%s\npodman wrote\n%s", p, out, content)
		}
		n++
	}
	if n < 15 {
		t.Errorf("only %d Podman-written files checked", n)
	}
}

// TestConcurrentWritersUnderLock: creates that choose under the lock never
// lose each other's files.
func TestConcurrentWritersUnderLock(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			unlock, err := s.Lock()
			if err != nil {
				t.Error(err)
				return
			}
			defer unlock()
			all, _ := s.List()
			name := "n" + strings.Repeat("x", len(all))
			if err := s.Create(net1(name, strings.Repeat("a", 63)+string(rune('a'+i%6)))); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if all, _ := s.List(); len(all) != 21 {
		t.Errorf("%d networks, want 21", len(all))
	}
	if tmp, _ := filepath.Glob(filepath.Join(s.Dir(), ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// Files that are no network definition are skipped without blocking or
// reading without bound: a FIFO (opening it for reading would wait for a
// writer forever), a link to /dev/zero (endless), an oversized file.
func TestHostileFilesAreSkipped(t *testing.T) {
	s := newStore(t)
	if err := os.MkdirAll(s.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	good := `{"name":"good","id":"` + strings.Repeat("e", 64) + `","driver":"bridge","subnets":[{"subnet":"10.89.8.0/24"}]}`
	if err := os.WriteFile(filepath.Join(s.Dir(), "good.json"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(s.Dir(), "fifo.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(s.Dir(), "zero.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "dir.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := `{"name":"big","id":"` + strings.Repeat("f", 64) + `","driver":"bridge","labels":{"pad":"` + strings.Repeat("x", MaxFileSize) + `"}}`
	if err := os.WriteFile(filepath.Join(s.Dir(), "big.json"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan []network.Network, 1)
	go func() {
		all, err := s.List()
		if err != nil {
			t.Error(err)
		}
		done <- all
	}()
	select {
	case all := <-done:
		var names []string
		for _, n := range all {
			names = append(names, n.Name)
		}
		if strings.Join(names, " ") != "good podman" {
			t.Errorf("loaded %v, want good and the default", names)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("List blocked on a hostile file")
	}
	for name, want := range map[string]error{"fifo.json": safefile.ErrNotRegular, "zero.json": safefile.ErrNotRegular, "big.json": safefile.ErrTooLarge} {
		_, err := LoadFile(filepath.Join(s.Dir(), name))
		if !errors.Is(err, want) || !strings.Contains(err.Error(), name) {
			t.Errorf("LoadFile(%s) = %v, want %v naming the file", name, err, want)
		}
	}
	if _, err := LoadFile(filepath.Join(s.Dir(), "fifo.json")); err == nil || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("a FIFO's error does not say what it is: %v", err)
	}
}
