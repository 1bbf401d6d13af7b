package iptables

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// privileged skips the test unless it runs as root with
// BERTH_PRIVILEGED_TESTS=1.
func privileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv("BERTH_PRIVILEGED_TESTS") != "1" {
		t.Skip("skipping: needs root and BERTH_PRIVILEGED_TESTS=1 (creates network namespaces and runs iptables-restore in them)")
	}
}

// newTestNS creates a fresh network namespace berthipt-<random> and
// deletes it when the test ends, whether it passed or not. It returns the
// namespace's path.
func newTestNS(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "berthipt-" + hex.EncodeToString(b)
	// Registered first, so a half-made namespace goes too.
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			if _, serr := os.Stat(filepath.Join("/run/netns", name)); serr == nil {
				t.Errorf("delete netns %s: %v: %s", name, err, out)
			}
		}
	})
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("add netns %s: %v: %s", name, err, out)
	}
	return filepath.Join("/run/netns", name)
}

// backend is a set of iptables binaries.
type backend struct {
	name                           string
	save, restore, save6, restore6 string
}

var backends = []backend{
	{"nft", "iptables-nft-save", "iptables-nft-restore", "ip6tables-nft-save", "ip6tables-nft-restore"},
	{"legacy", "iptables-legacy-save", "iptables-legacy-restore", "ip6tables-legacy-save", "ip6tables-legacy-restore"},
}

// kernelEnv runs a driver on backend b inside a fresh namespace; every
// command, including the ones reading the state, goes through nsenter into
// that namespace.
func kernelEnv(t *testing.T, b backend) env {
	for _, bin := range []string{b.save, b.restore, b.save6, b.restore6, "nsenter", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping %s backend: %v", b.name, err)
		}
	}
	ns := newTestNS(t)
	var restores atomic.Int64
	d, err := New(Options{
		Save: b.save, Restore: b.restore, Save6: b.save6, Restore6: b.restore6,
		NetNSPath: ns,
		Run: func(name string, args []string, stdin []byte) ([]byte, error) {
			if stdin != nil {
				restores.Add(1)
			}
			return Exec(name, args, stdin)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return env{
		d: d,
		state: func(t *testing.T, f family) string {
			t.Helper()
			bin := b.save
			if f == ipv6 {
				bin = b.save6
			}
			out, err := Exec("nsenter", []string{"--net=" + ns, bin}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := parseSave(out)
			if err != nil {
				t.Fatal(err)
			}
			return rs.render(tableFilter, tableNAT)
		},
		restores: func() int { return int(restores.Load()) },
	}
}

// TestPrivilegedIptables runs every scenario against the real iptables of
// both backends, each in a fresh network namespace, so the rules berth
// writes must come back from iptables-save exactly as netavark's did.
func TestPrivilegedIptables(t *testing.T) {
	privileged(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Run("BridgePorts", func(t *testing.T) { scenarioBridgePorts(t, kernelEnv(t, b)) })
			t.Run("ThreeNetworks", func(t *testing.T) { scenarioThreeNetworks(t, kernelEnv(t, b)) })
			t.Run("StrictDNS", func(t *testing.T) { scenarioStrictDNS(t, kernelEnv(t, b)) })
			t.Run("PortConflict", func(t *testing.T) { scenarioPortConflict(t, kernelEnv(t, b)) })
			t.Run("Rollback", func(t *testing.T) {
				e := kernelEnv(t, b)
				scenarioRollback(t, e, func() { e.d.opts.Restore6 = "false" })
				e.d.opts.Restore6 = b.restore6
				must(t, "reset", e.d.Reset())
				e.checkEmpty(t, ipv4)
				e.checkEmpty(t, ipv6)
			})
		})
	}
}
