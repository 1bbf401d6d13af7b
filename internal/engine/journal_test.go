package engine

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// journalEngine is an engine with a network backend whose address store
// is a file of the test (no kernel object is made: intents without
// attachments need no teardown).
func journalEngine(t *testing.T) (*Engine, *ipam.Allocator, network.Network) {
	t.Helper()
	d := t.TempDir()
	st, err := netstore.New(netstore.Config{Dir: filepath.Join(d, "networks"), DefaultName: "podman"})
	if err != nil {
		t.Fatal(err)
	}
	n := network.Network{Name: "n1", ID: strings.Repeat("b", 64), Driver: "bridge", NetworkInterface: "berth-n1",
		Subnets: []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.7.0/24"), Gateway: netip.MustParseAddr("198.18.7.1")}}, IPAMOptions: map[string]string{"driver": "host-local"}}
	if err := st.Create(n); err != nil {
		t.Fatal(err)
	}
	e, err := New(EngineConfig{Root: filepath.Join(d, "root"), RunRoot: filepath.Join(d, "run"), Runtime: "/nonexistent/runc",
		Network: &NetworkConfig{Store: st, Host: berthnet.Config{StateDir: filepath.Join(d, "state"), Firewall: "none"}},
		Now:     func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ipam.New(filepath.Join(d, "state", "ipam.db"))
	if err != nil {
		t.Fatal(err)
	}
	return e, a, n
}

func mustAllocate(t *testing.T, a *ipam.Allocator, id string, n network.Network) netip.Addr {
	t.Helper()
	p, err := a.Allocate(id, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p[0].Addr()
}

func leaseOwners(t *testing.T, a *ipam.Allocator) map[string]bool {
	t.Helper()
	ls, err := a.Dump()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range ls {
		out[l.ContainerID] = true
	}
	return out
}

func TestRepairRollsBackInterruptedConnects(t *testing.T) {
	e, a, n := journalEngine(t)
	// A running container already on n, connected to a second network
	// when the command died after allocating (no record yet).
	other := strings.Repeat("1", 64)
	att := Attachment{Network: n, Opts: network.PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{mustAllocate(t, a, other, n)}}}
	ctr := &Container{Config: Config{ID: other, Name: "web", Net: runopts.NetMode{Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{Name: "n1"}}}},
		State: State{Status: StateRunning, Attachments: []Attachment{att}}}
	n2 := n
	n2.Name, n2.ID = "n2", strings.Repeat("c", 64)
	n2.Subnets = []network.Subnet{{Subnet: netip.MustParsePrefix("198.18.8.0/24")}}
	mustAllocate(t, a, other, n2)
	// A namespace being registered, killed after its record, its
	// allocation and its attachment record were written.
	reg := registeredNamespace(strings.Repeat("2", 64), "ns1", "/nonexistent/ns1", time.Unix(1, 0))
	regAtt := Attachment{Network: n, Opts: network.PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{mustAllocate(t, a, reg.Config.ID, n)}}}
	reg.State.Attachments = []Attachment{regAtt}
	// An address of a container berth does not know (Podman's).
	podman := strings.Repeat("9", 64)
	mustAllocate(t, a, podman, n)
	for _, c := range []*Container{ctr, reg} {
		if err := e.put(c, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []*intent{
		{Op: opConnect, ID: other, Network: "n2"},
		{Op: opConnect, ID: reg.Config.ID, Network: "n1", NetNS: "/nonexistent/ns1", NewRecord: true},
	} {
		if err := e.journal(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Repair(context.Background()); err != nil {
		t.Fatal(err)
	}
	owners := leaseOwners(t, a)
	if !owners[other] || !owners[podman] || owners[reg.Config.ID] {
		t.Errorf("address owners after repair: %v", owners)
	}
	if got, _ := a.Addresses(other, "n2"); len(got) != 0 {
		t.Errorf("the interrupted connect's address on n2 is still held: %v", got)
	}
	if got, _ := a.Addresses(other, "n1"); len(got) != 1 {
		t.Errorf("the container's address on n1 was released: %v", got)
	}
	all, _ := e.list()
	if len(all) != 1 || all[0].Config.ID != other || len(all[0].State.Attachments) != 1 {
		t.Errorf("records after repair: %+v", all)
	}
	if ins, _ := e.intents(); len(ins) != 0 {
		t.Errorf("intents left: %+v", ins)
	}
	// Idempotent: a second repair has nothing to do.
	if err := e.Repair(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !leaseOwners(t, a)[podman] {
		t.Error("a second repair released an address of a container berth does not know")
	}
}

func TestRepairCompletesInterruptedDisconnect(t *testing.T) {
	e, a, n := journalEngine(t)
	id := strings.Repeat("3", 64)
	att := Attachment{Network: n, Opts: network.PerNetworkOptions{InterfaceName: "eth0", StaticIPs: []netip.Addr{mustAllocate(t, a, id, n)}}}
	c := &Container{Config: Config{ID: id, Name: "db", Net: runopts.NetMode{Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{{Name: "n1"}}}},
		State: State{Status: StateRunning, Attachments: []Attachment{att}, Networks: map[string]network.StatusBlock{"n1": {}}}}
	if err := e.put(c, true); err != nil {
		t.Fatal(err)
	}
	// Killed after the teardown, before the release: settle completes.
	if err := e.journal(&intent{Op: opDisconnect, ID: id, Network: "n1"}); err != nil {
		t.Fatal(err)
	}
	e.repairIfFree()
	got, _ := e.record(id)
	if got == nil || len(got.State.Attachments) != 0 || len(got.Config.Net.Networks) != 0 || len(got.State.Networks) != 0 {
		t.Errorf("record after a completed disconnect: %+v", got)
	}
	if owners := leaseOwners(t, a); owners[id] {
		t.Errorf("address still held: %v", owners)
	}
}

func TestRepairRollsBackInterruptedStart(t *testing.T) {
	e, a, n := journalEngine(t)
	id := strings.Repeat("4", 64)
	nsPath := filepath.Join(t.TempDir(), "pin") // a plain file stands for the pin
	if err := os.WriteFile(nsPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mustAllocate(t, a, id, n)
	c := &Container{Config: Config{ID: id, Name: "app", Net: runopts.NetMode{Kind: runopts.ModeNone}}, State: State{Status: StateCreated, NetNS: nsPath, OwnNetNS: true}}
	if err := e.put(c, true); err != nil {
		t.Fatal(err)
	}
	if err := e.journal(&intent{Op: opAttach, ID: id, NetNS: nsPath, OwnNetNS: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Repair(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := e.record(id)
	if got == nil || got.State.NetNS != "" || got.State.OwnNetNS {
		t.Errorf("record after a rolled back start: %+v", got)
	}
	if _, err := os.Stat(nsPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace pin left: %v", err)
	}
	if leaseOwners(t, a)[id] {
		t.Error("address of the interrupted start still held")
	}
}

func TestRepairWaitsForALiveOwner(t *testing.T) {
	e, a, n := journalEngine(t)
	id := strings.Repeat("5", 64)
	mustAllocate(t, a, id, n)
	if err := e.put(&Container{Config: Config{ID: id, Name: "x"}, State: State{Status: StateCreated}}, true); err != nil {
		t.Fatal(err)
	}
	if err := e.journal(&intent{Op: opConnect, ID: id, Network: "n1"}); err != nil {
		t.Fatal(err)
	}
	// Another process holds the engine lock: its intent is in flight.
	f, err := holdLock(t, e)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e.repairIfFree()
	if !leaseOwners(t, a)[id] {
		t.Fatal("an intent whose owner holds the lock was settled")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.Repair(ctx); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("waiting for a held lock past the deadline: %v", err)
	}
	f.Close() // the owner died
	if err := e.Repair(context.Background()); err != nil {
		t.Fatal(err)
	}
	if leaseOwners(t, a)[id] {
		t.Error("address still held after the owner died")
	}
}

func TestConnectInterruptedWhileWaitingForTheLock(t *testing.T) {
	e, a, n := journalEngine(t)
	f, err := holdLock(t, e)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = e.Connect(ctx, "web", ConnectRequest{Network: n.Name, NetNS: t.TempDir()})
	if !errors.Is(err, ErrInterrupted) || time.Since(start) > 2*time.Second {
		t.Fatalf("connect blocked on the lock, then cancelled: %v after %v", err, time.Since(start))
	}
	if all, _ := e.list(); len(all) != 0 {
		t.Errorf("records left: %+v", all)
	}
	if ls, _ := a.Dump(); len(ls) != 0 {
		t.Errorf("addresses left: %+v", ls)
	}
}

// holdLock takes the engine lock as another process would.
func holdLock(t *testing.T, e *Engine) (*os.File, error) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(e.LockPath()), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(e.LockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return f, unix.Flock(int(f.Fd()), unix.LOCK_EX)
}
