package cli

import (
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// A DHCP network allocates nothing: inspect takes the lease from the
// setup's status block.
func TestLeasedAddrs(t *testing.T) {
	gw := netip.MustParseAddr("198.18.1.1")
	sb := network.StatusBlock{Interfaces: map[string]network.Interface{"eth0": {
		MACAddress: "42:68:22:61:86:e9",
		Subnets: []network.NetAddress{
			{IPNet: netip.MustParsePrefix("198.18.1.108/24"), Gateway: &gw},
			{IPNet: netip.MustParsePrefix("fd00::8/64")},
		},
	}}}
	var ep inspectEndpoint
	leasedAddrs(&ep, sb)
	if ep.IPAddress != "198.18.1.108" || ep.IPPrefixLen != 24 || ep.Gateway != "198.18.1.1" || ep.MacAddress != "42:68:22:61:86:e9" {
		t.Errorf("IPv4 lease: %+v", ep)
	}
	if ep.GlobalIPv6Address != "fd00::8" || ep.GlobalIPv6PrefixLen != 64 || ep.IPv6Gateway != "" {
		t.Errorf("IPv6 lease: %+v", ep)
	}
	ep = inspectEndpoint{}
	leasedAddrs(&ep, network.StatusBlock{})
	if ep.IPAddress != "" || ep.MacAddress != "" {
		t.Errorf("no status block: %+v", ep)
	}
}

// system reset empties a --root or --runroot that is a mount point (a tmpfs
// over /run/berth) instead of failing with EBUSY.
func TestPrivilegedRemoveTreeMountPoint(t *testing.T) {
	nettest.Privileged(t)
	dir := filepath.Join(t.TempDir(), "runroot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(dir); err != nil {
		t.Fatalf("removeTree: %v", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Errorf("left in the mount point: %v %v", ents, err)
	}
	// A plain directory goes entirely.
	plain := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(plain, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(plain); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(plain); !os.IsNotExist(err) {
		t.Errorf("plain directory still there: %v", err)
	}
}
