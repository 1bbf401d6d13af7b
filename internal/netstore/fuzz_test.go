package netstore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthnet/berth/internal/network"
)

// fuzzFileName is the name a network file of data must have to be read:
// the network's own name when it is a valid one.
func fuzzFileName(data []byte) string {
	var v struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(data, &v) == nil && network.ValidName(v.Name) && len(v.Name) < 200 {
		return v.Name + ".json"
	}
	return "fuzz.json"
}

// FuzzLoadFile: no network file makes LoadFile panic; what it accepts
// has the promised shape (name of its file, 64-hex ID, masked subnets,
// gateways and lease ranges inside them), and written back with Marshal
// it loads to the same network.
func FuzzLoadFile(f *testing.F) {
	seeds, _ := filepath.Glob("../cli/testdata/podman/fixtures/*.json")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"name":"podman","id":"2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9","driver":"bridge","network_interface":"podman0","created":"2024-05-01T10:00:00.000000000Z","subnets":[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"host-local"}}`))
	f.Add([]byte(`{"name":"int","id":"1111111111111111111111111111111111111111111111111111111111111111","driver":"bridge","subnets":[{"subnet":"10.1.2.3/24"},{"subnet":"fd00::5/64","lease_range":{"start_ip":"fd00::10","end_ip":"fd00::20"}}],"internal":true,"dns_enabled":false}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, fuzzFileName(data))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := LoadFile(p)
		if err != nil {
			return
		}
		checkLoaded(t, p, n)
		out, err := Marshal(n)
		if err != nil {
			t.Fatalf("loaded network does not marshal: %v", err)
		}
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		n2, err := LoadFile(p)
		if err != nil {
			t.Fatalf("written network does not load: %v\n%s", err, out)
		}
		if out2, _ := Marshal(n2); !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

func checkLoaded(t *testing.T, p string, n network.Network) {
	if n.Name+".json" != filepath.Base(p) || !network.ValidName(n.Name) {
		t.Fatalf("name %q accepted from file %s", n.Name, p)
	}
	if _, err := hex.DecodeString(n.ID); err != nil || len(n.ID) != 64 {
		t.Fatalf("ID %q accepted", n.ID)
	}
	for _, s := range n.Subnets {
		if !s.Subnet.IsValid() || s.Subnet != s.Subnet.Masked() {
			t.Fatalf("subnet %v not normalised", s.Subnet)
		}
		if s.Gateway.IsValid() && !s.Subnet.Contains(s.Gateway) {
			t.Fatalf("gateway %s outside %s", s.Gateway, s.Subnet)
		}
		if lr := s.LeaseRange; lr != nil {
			for _, a := range []netip.Addr{lr.StartIP, lr.EndIP} {
				if a.IsValid() && !s.Subnet.Contains(a) {
					t.Fatalf("lease range address %s outside %s", a, s.Subnet)
				}
			}
		}
	}
}
