package berthnet_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/network"
)

// An Attach killed after it allocated and before it recorded leaves
// addresses under the Host's key (container/interface): Detach and
// DetachAttempt free exactly those, never another owner's.
func TestDetachWithoutRecordFreesTheHostsAddresses(t *testing.T) {
	dir := t.TempDir()
	h, err := berthnet.New(berthnet.Config{StateDir: dir, Firewall: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n := network.Network{Name: "n", ID: strings.Repeat("d", 64), Driver: "bridge", NetworkInterface: "berth-n",
		Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.9.0/24")}}, IPAMOptions: map[string]string{"driver": "host-local"}}
	for _, owner := range []string{"c1/eth0", "c2/eth1", "c1", "podman-ctr"} {
		if _, err := h.AllocateNetavark(owner, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Detach(context.Background(), "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	// A request no Attach could have served (no such network definition
	// is valid) only frees the key's addresses.
	if err := h.DetachAttempt(context.Background(), berthnet.Network{Name: "bad name"}, berthnet.AttachOptions{ContainerID: "c2", Interface: "eth1"}); err != nil {
		t.Fatal(err)
	}
	a, err := ipam.New(filepath.Join(dir, "ipam.db"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := a.Dump()
	if err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, l := range ls {
		owners = append(owners, l.ContainerID)
	}
	if strings.Join(owners, ",") != "c1,podman-ctr" && strings.Join(owners, ",") != "podman-ctr,c1" {
		t.Errorf("owners left: %v (want c1 and podman-ctr)", owners)
	}
}
