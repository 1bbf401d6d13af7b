package core

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berthnet/berth/internal/aardvarkconf"
	"github.com/berthnet/berth/internal/firewall/none"
	"github.com/berthnet/berth/internal/network"
)

// SetDNSNames changes only the names of the container's own entries, on
// the networks that have one; no DNS server runs, so none is signalled.
func TestSetDNSNames(t *testing.T) {
	cfg := t.TempDir()
	m, err := New(Config{ConfigDir: cfg, Firewall: none.Driver{}})
	if err != nil {
		t.Fatal(err)
	}
	dir := aardvarkconf.Dir{Path: filepath.Join(cfg, "aardvark-dns")}
	h := aardvarkconf.Header{BindIPs: []netip.Addr{netip.MustParseAddr("198.19.61.1")}}
	infra := aardvarkconf.Entry{ID: "aaaa", IPv4: []netip.Addr{netip.MustParseAddr("198.19.61.2")}, Names: []string{"x-infra", "mpod", "aaaa0000"}}
	other := aardvarkconf.Entry{ID: "bbbb", IPv4: []netip.Addr{netip.MustParseAddr("198.19.61.3")}, Names: []string{"web2"}}
	if err := dir.Add(map[string]aardvarkconf.Entry{"pmn": infra}, map[string]aardvarkconf.Header{"pmn": h}); err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(map[string]aardvarkconf.Entry{"pmn": other}, map[string]aardvarkconf.Header{"pmn": h}); err != nil {
		t.Fatal(err)
	}
	want := []string{"x-infra", "mpod", "web", "aaaa0000"}
	if err := m.SetDNSNames("aaaa", map[string][]string{"pmn": want, "absent": {"x"}}); err != nil {
		t.Fatal(err)
	}
	f, err := dir.Read("pmn")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 2 {
		t.Fatalf("entries: %+v", f.Entries)
	}
	for _, e := range f.Entries {
		switch e.ID {
		case "aaaa":
			if !reflect.DeepEqual(e.Names, want) || !reflect.DeepEqual(e.IPv4, infra.IPv4) {
				t.Errorf("infra entry: %+v", e)
			}
		case "bbbb":
			if !reflect.DeepEqual(e.Names, other.Names) {
				t.Errorf("other entry changed: %+v", e)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir.Path, "absent")); !os.IsNotExist(err) {
		t.Errorf("a network without an entry got a file: %v", err)
	}
}

// Calls that know only a network's name find an internal network's
// entries in its "%int" file, and an ordinary network's in its own; the
// file name of a network comes from its internal flag.
func TestDNSFileOfInternalNetwork(t *testing.T) {
	cfg := t.TempDir()
	m, err := New(Config{ConfigDir: cfg, Firewall: none.Driver{}})
	if err != nil {
		t.Fatal(err)
	}
	dir := aardvarkconf.Dir{Path: filepath.Join(cfg, "aardvark-dns")}
	h := aardvarkconf.Header{BindIPs: []netip.Addr{netip.MustParseAddr("198.19.67.1")}}
	e := aardvarkconf.Entry{ID: "cccc", IPv4: []netip.Addr{netip.MustParseAddr("198.19.67.2")}, Names: []string{"inner"}}
	if err := dir.Add(map[string]aardvarkconf.Entry{"in%int": e, "out": e}, map[string]aardvarkconf.Header{"in%int": h, "out": h}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"in", "out"} {
		if f, err := m.DNSEntries(name); err != nil || len(f.Entries) != 1 {
			t.Errorf("DNSEntries(%s): %v %v", name, f, err)
		}
	}
	if err := m.RemoveDNSEntries("in", "cccc"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir.Path, "in%int")); !os.IsNotExist(err) {
		t.Errorf("the internal network's last entry was not removed: %v", err)
	}
	if got := dnsFile(network.Network{Name: "in", Internal: true}); got != "in%int" {
		t.Errorf("dnsFile of an internal network: %q", got)
	}
	if got := dnsFile(network.Network{Name: "out"}); got != "out" {
		t.Errorf("dnsFile of an ordinary network: %q", got)
	}
}
