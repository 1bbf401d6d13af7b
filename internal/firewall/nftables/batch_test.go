package nftables

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// wide publishes 10,000 ports, 10000-19999/tcp on every address, to both
// of its addresses: 20,000 map elements.
var wide = firewall.PortForward{NetworkID: "net-a", ContainerID: "c9",
	IPv4: netip.MustParseAddr("198.19.1.9"), IPv6: netip.MustParseAddr("fd00:19:1::9"),
	Mappings: []network.PortMapping{{HostPort: 10000, ContainerPort: 10000, Range: 10000, Protocol: "tcp"}}}

// checkBatchSizes fails if a batch went past the kernel's limits: the
// fake refuses it, as the kernel would ("message too long").
func checkBatchSizes(t *testing.T, k *fakeKernel) {
	t.Helper()
	for i, b := range k.batches {
		for _, l := range b {
			if strings.Contains(l, "message too long") || strings.Contains(l, "malformed attributes") {
				t.Errorf("batch %d: %s", i, l)
			}
		}
	}
}

func TestTenThousandPortsAreBatched(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	if err := d.Setup([]firewall.NetworkRules{bridgeA}, []firewall.PortForward{wide}); err != nil {
		t.Fatalf("setup of 10,000 ports: %v", err)
	}
	checkBatchSizes(t, k)
	if n := len(k.batches); n < 20 {
		t.Errorf("setup sent %d batches for 20,000 elements, want one per %d elements", n, elemsPerBatch)
	}
	for _, m := range []string{"pf4any", "pf6any"} {
		if n := len(k.set(m)); n != 10000 {
			t.Errorf("map %s holds %d elements, want 10000", m, n)
		}
	}
	if max := slices.Max(k.sizes); max > fakeSndbuf/2 {
		t.Errorf("largest batch %d bytes: too close to the send buffer's %d", max, fakeSndbuf)
	}
	if err := d.HasForwards([]firewall.PortForward{wide}); err != nil {
		t.Errorf("HasForwards: %v", err)
	}
	sent := len(k.batches)
	if err := d.Teardown([]firewall.PortForward{wide}, []firewall.NetworkRules{bridgeA}); err != nil {
		t.Fatalf("teardown of 10,000 ports: %v", err)
	}
	checkBatchSizes(t, k)
	if n := len(k.batches) - sent; n < 20 {
		t.Errorf("teardown sent %d batches", n)
	}
	if k.state.table {
		t.Error("the table is still there after the last network went")
	}
}

// When a later batch of a setup fails, the elements of the earlier ones
// are deleted again: the setup leaves nothing, and the holder of the port
// keeps it.
func TestFailedLaterBatchUndoesTheEarlierOnes(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	nets := []firewall.NetworkRules{bridgeA}
	holder := firewall.PortForward{NetworkID: "net-a", ContainerID: "c1", IPv4: netip.MustParseAddr("198.19.1.2"),
		Mappings: []network.PortMapping{{HostPort: 19999, ContainerPort: 80, Protocol: "tcp", Range: 1}}}
	if err := d.Setup(nets, []firewall.PortForward{holder}); err != nil {
		t.Fatal(err)
	}
	v4only := wide
	v4only.IPv6 = netip.Addr{}
	err := d.Setup(nets, []firewall.PortForward{v4only})
	if !errors.Is(err, firewall.ErrPortInUse) || !strings.Contains(err.Error(), "host port 19999/tcp is already published to 198.19.1.2:80") {
		t.Fatalf("setup over a taken port: %v", err)
	}
	checkBatchSizes(t, k)
	if got := k.set("pf4any"); !slices.Equal(got, []string{"tcp . 19999 : 198.19.1.2 . 80"}) {
		t.Errorf("pf4any after the failed setup holds %d elements, want only the holder's", len(got))
	}
}

func TestBatchesKeepMessageAndBatchLimits(t *testing.T) {
	o := newObjects()
	els := o.forwardElements(wide)
	parts := batches(o.portMaps(), els)
	total := 0
	for i, b := range parts {
		n := 0
		for _, p := range b {
			if len(p.els) > elemsPerMsg {
				t.Errorf("batch %d: a message of %d elements", i, len(p.els))
			}
			n += len(p.els)
		}
		if n > elemsPerBatch {
			t.Errorf("batch %d: %d elements", i, n)
		}
		total += n
	}
	if total != 20000 {
		t.Errorf("batches hold %d elements, want 20000", total)
	}
	if len(batches(o.portMaps(), nil)) != 0 {
		t.Error("batches of nothing")
	}
}

// Repair restores 10,000 ports of a container whose maps were flushed, in
// batches the kernel takes.
func TestRepairOfTenThousandPortsIsBatched(t *testing.T) {
	k := newFakeKernel(t)
	d := k.driver()
	nets := []firewall.NetworkRules{bridgeA}
	ports := []firewall.PortForward{wide}
	if err := d.Setup(nets, ports); err != nil {
		t.Fatal(err)
	}
	k.state.elems["pf4any"], k.state.elems["pf6any"] = nil, nil // nft flush map ...
	if got, err := d.Damage(nets, ports); err != nil || !slices.Equal(got, []string{"map pf4any: 10000 port forwards missing", "map pf6any: 10000 port forwards missing"}) {
		t.Fatalf("Damage after the flush = %q, %v", got, err)
	}
	if err := d.Repair(nets, ports); err != nil {
		t.Fatalf("repair: %v", err)
	}
	checkBatchSizes(t, k)
	for _, m := range []string{"pf4any", "pf6any"} {
		if n := len(k.set(m)); n != 10000 {
			t.Errorf("map %s holds %d elements after repair, want 10000", m, n)
		}
	}
	if got, err := d.Damage(nets, ports); err != nil || len(got) > 0 {
		t.Errorf("Damage after repair = %q, %v", got, err)
	}
}
