package reaper_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/reaper"
)

// TestMain lets this test binary act as the reaper child Start runs.
func TestMain(m *testing.M) {
	if ok, code := reaper.Main(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// Retire takes a bridge port down, off the bridge and to its retired name,
// freeing the old name; the child Start runs deletes it.
func TestPrivilegedRetireAndReap(t *testing.T) {
	nettest.Privileged(t)
	host := nettest.NewNS(t, nettest.RandName("rh"))
	ctr := nettest.NewNS(t, nettest.RandName("rc"))
	hh := nettest.Handle(t, host.NetNS)
	if err := hh.AddBridge(link.BridgeSpec{Name: "rbr0"}); err != nil {
		t.Fatal(err)
	}
	br, err := hh.Link("rbr0")
	if err != nil {
		t.Fatal(err)
	}
	hv, err := hh.AddVeth(link.VethSpec{Name: "rveth0", MasterIndex: br.Index, PeerName: "eth0", PeerNSFd: ctr.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	if err := reaper.Retire(hv); err != nil {
		t.Fatal(err)
	}
	if _, err := hh.Link("rveth0"); !errors.Is(err, link.ErrNotFound) {
		t.Errorf("old name after Retire: %v, want ErrNotFound", err)
	}
	got, err := hh.Link(reaper.RetiredName(hv.Index))
	if err != nil || got.Index != hv.Index || got.Up || got.MasterIndex != 0 {
		t.Errorf("retired link %+v %v, want down, off the bridge", got, err)
	}
	if busy, err := br.HasPorts(); err != nil || busy {
		t.Errorf("bridge keeps the retired port: %v %v", busy, err)
	}

	if err := reaper.Start(host.NetNS, hv.Index); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := hh.LinkByIndex(hv.Index)
		if errors.Is(err, link.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reaper left the retired link: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
