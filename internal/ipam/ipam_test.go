package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/network"
)

func testNet(name, subnet, gw string) network.Network {
	s := network.Subnet{Subnet: netip.MustParsePrefix(subnet)}
	if gw != "" {
		s.Gateway = netip.MustParseAddr(gw)
	}
	return network.Network{Name: name, ID: strings.Repeat("a", 64), Driver: "bridge", NetworkInterface: "br0", Subnets: []network.Subnet{s}, IPAMOptions: map[string]string{"driver": "host-local"}}
}

func newAlloc(t *testing.T) *Allocator {
	t.Helper()
	a, err := New(filepath.Join(t.TempDir(), "ipam.db"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRoundRobinSkipsGatewayAndBroadcast(t *testing.T) {
	a := newAlloc(t)
	n := testNet("n", "198.19.0.0/29", "198.19.0.1")
	var got []string
	for i := 0; i < 5; i++ {
		p, err := a.Allocate(fmt.Sprintf("c%d", i), n, nil)
		if err != nil {
			t.Fatalf("allocate %d: %v", i, err)
		}
		got = append(got, p[0].String())
	}
	want := "198.19.0.2/29 198.19.0.3/29 198.19.0.4/29 198.19.0.5/29 198.19.0.6/29"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if _, err := a.Allocate("c5", n, nil); !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "failed to find free IP in range: 198.19.0.1 - 198.19.0.6") {
		t.Errorf("full subnet: %v", err)
	}
	// Release .3: the next one continues after lastIP (.6), wraps, finds .3.
	if err := a.Release("c1", "n"); err != nil {
		t.Fatal(err)
	}
	p, err := a.Allocate("c6", n, nil)
	if err != nil || p[0].Addr().String() != "198.19.0.3" {
		t.Errorf("after release: %v %v", p, err)
	}
	if err := a.Check(); err != nil {
		t.Error(err)
	}
}

func TestRoundRobinDoesNotReuseAtOnce(t *testing.T) {
	a := newAlloc(t)
	n := testNet("n", "198.19.0.0/24", "198.19.0.1")
	p1, _ := a.Allocate("c1", n, nil)
	if err := a.Release("c1", "n"); err != nil {
		t.Fatal(err)
	}
	p2, _ := a.Allocate("c2", n, nil)
	if p1[0] == p2[0] || p2[0].Addr().String() != "198.19.0.3" {
		t.Errorf("want round robin (.2 then .3), got %v then %v", p1, p2)
	}
}

func TestLeaseRangeAndStatic(t *testing.T) {
	a := newAlloc(t)
	n := testNet("n", "198.19.55.0/24", "198.19.55.3")
	n.Subnets[0].LeaseRange = &network.LeaseRange{StartIP: netip.MustParseAddr("198.19.55.129"), EndIP: netip.MustParseAddr("198.19.55.255")}
	p, err := a.Allocate("db", n, nil)
	if err != nil || p[0].String() != "198.19.55.129/24" {
		t.Fatalf("first in range: %v %v", p, err)
	}
	p, err = a.Allocate("web", n, []netip.Addr{netip.MustParseAddr("198.19.55.200")})
	if err != nil || p[0].String() != "198.19.55.200/24" {
		t.Fatalf("static: %v %v", p, err)
	}
	// A static address does not move lastIP.
	p, err = a.Allocate("c3", n, nil)
	if err != nil || p[0].String() != "198.19.55.130/24" {
		t.Fatalf("after static: %v %v", p, err)
	}
	_, err = a.Allocate("c4", n, []netip.Addr{netip.MustParseAddr("198.19.55.200")})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "requested ip address 198.19.55.200 is already allocated to container ID web") {
		t.Errorf("taken static: %v", err)
	}
	if _, err := a.Allocate("db", n, nil); !errors.Is(err, ErrInUse) {
		t.Errorf("second allocation for one container: %v", err)
	}
	got, err := a.Addresses("web", "n")
	if err != nil || len(got) != 1 || got[0].String() != "198.19.55.200" {
		t.Errorf("addresses: %v %v", got, err)
	}
}

func TestValidateBeforeSaving(t *testing.T) {
	a := newAlloc(t)
	n := testNet("n", "198.19.1.0/24", "198.19.1.1")
	cases := map[string]string{
		"198.18.9.5":   "requested static ip 198.18.9.5 not in any subnet on network n (198.19.1.0/24)",
		"198.19.1.1":   "is the gateway of network n",
		"198.19.1.0":   "is the network address of subnet 198.19.1.0/24; want an address from 198.19.1.1 to 198.19.1.254",
		"198.19.1.255": "is the broadcast address of subnet 198.19.1.0/24; want an address from 198.19.1.1 to 198.19.1.254",
	}
	for ip, want := range cases {
		_, err := a.Allocate("c", n, []netip.Addr{netip.MustParseAddr(ip)})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", ip, err, want)
		}
	}
	if err := Validate(n, []netip.Addr{netip.MustParseAddr("198.19.1.5"), netip.MustParseAddr("198.19.1.6")}); err == nil {
		t.Error("two static addresses in one subnet accepted")
	}
	// Nothing was saved by the rejected requests.
	if _, err := os.Stat(a.Path()); !errors.Is(err, os.ErrNotExist) {
		leases, _ := a.Dump()
		if len(leases) != 0 {
			t.Errorf("rejected requests left leases: %v", leases)
		}
	}
}

func TestDualStackAndNonIPAM(t *testing.T) {
	a := newAlloc(t)
	n := testNet("d", "198.19.2.0/24", "198.19.2.1")
	n.Subnets = append(n.Subnets, network.Subnet{Subnet: netip.MustParsePrefix("fd00:19::/64"), Gateway: netip.MustParseAddr("fd00:19::1")})
	p, err := a.Allocate("c", n, []netip.Addr{netip.MustParseAddr("fd00:19::99")})
	if err != nil || len(p) != 2 || p[0].String() != "198.19.2.2/24" || p[1].String() != "fd00:19::99/64" {
		t.Fatalf("dual stack: %v %v", p, err)
	}
	p, err = a.Allocate("c2", n, nil)
	if err != nil || p[1].String() != "fd00:19::2/64" {
		t.Fatalf("v6 dynamic: %v %v", p, err)
	}
	none := testNet("x", "198.19.3.0/24", "")
	none.IPAMOptions["driver"] = "none"
	if p, err := a.Allocate("c", none, nil); err != nil || p != nil {
		t.Errorf("ipam none: %v %v", p, err)
	}
	if err := a.RemoveNetwork("d"); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.Dump(); len(l) != 0 {
		t.Errorf("after RemoveNetwork: %v", l)
	}
}

func TestReleaseAll(t *testing.T) {
	a := newAlloc(t)
	for _, name := range []string{"n1", "n2"} {
		if _, err := a.Allocate("c", testNet(name, "198.19.4.0/24", "198.19.4.1"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ReleaseAll("c"); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.Dump(); len(l) != 0 {
		t.Errorf("leases left: %v", l)
	}
}

// TestHelperAllocate is not a test: the concurrency and crash tests run the
// test binary again with BERTH_IPAM_HELPER set, as separate processes.
func TestHelperAllocate(t *testing.T) {
	mode := os.Getenv("BERTH_IPAM_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	a, err := New(os.Getenv("BERTH_IPAM_DB"))
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	n := testNet("n", "198.19.0.0/16", "198.19.0.1")
	switch mode {
	case "one":
		p, err := a.Allocate(os.Getenv("BERTH_IPAM_CTR"), n, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(p[0].Addr())
	case "loop":
		for i := 0; ; i++ {
			id := os.Getenv("BERTH_IPAM_CTR") + strconv.Itoa(i)
			if _, err := a.Allocate(id, n, nil); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			if i%2 == 0 {
				if err := a.Release(id, "n"); err != nil {
					os.Exit(1)
				}
			}
		}
	}
	os.Exit(0)
}

func helper(t *testing.T, db, mode, ctr string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAllocate$")
	cmd.Env = append(os.Environ(), "BERTH_IPAM_HELPER="+mode, "BERTH_IPAM_DB="+db, "BERTH_IPAM_CTR="+ctr)
	return cmd
}

// TestConcurrentProcessesGetUniqueAddresses runs 50 allocating processes at
// once on one database.
func TestConcurrentProcessesGetUniqueAddresses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ipam.db")
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctr := fmt.Sprintf("ctr%02d", i)
			out, err := helper(t, db, "one", ctr).Output()
			if err != nil {
				t.Errorf("%s: %v: %s", ctr, err, out)
				return
			}
			ip := strings.TrimSpace(string(out))
			mu.Lock()
			defer mu.Unlock()
			if other, dup := seen[ip]; dup {
				t.Errorf("%s given to %s and %s", ip, other, ctr)
			}
			seen[ip] = ctr
		}(i)
	}
	wg.Wait()
	if len(seen) != 50 {
		t.Errorf("%d unique addresses, want 50", len(seen))
	}
	a, _ := New(db)
	if err := a.Check(); err != nil {
		t.Error(err)
	}
	if l, _ := a.Dump(); len(l) != 50 {
		t.Errorf("%d leases stored, want 50", len(l))
	}
}

// TestKillDuringAllocationLeavesConsistentStore kills an allocating process
// with SIGKILL at random points, several times, and checks the database
// after each kill: it opens, both views agree, and allocation goes on.
func TestKillDuringAllocationLeavesConsistentStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ipam.db")
	a, _ := New(db)
	for round := 0; round < 5; round++ {
		cmd := helper(t, db, "loop", fmt.Sprintf("r%d-", round))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+37*round) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if err := a.Check(); err != nil {
			t.Fatalf("round %d: inconsistent after kill -9: %v", round, err)
		}
		leases, err := a.Dump()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[netip.Addr]bool{}
		for _, l := range leases {
			if seen[l.IP] {
				t.Fatalf("round %d: %s held twice", round, l.IP)
			}
			seen[l.IP] = true
		}
		if _, err := a.Allocate(fmt.Sprintf("after%d", round), testNet("n", "198.19.0.0/16", "198.19.0.1"), nil); err != nil {
			t.Fatalf("round %d: allocate after kill: %v", round, err)
		}
		t.Logf("round %d: %d leases after kill", round, len(leases))
	}
}

// TestReadEmptyFile: a database file another process has just created (and
// not yet initialised) reads as empty. bbolt would otherwise initialise it
// through a read-only descriptor and fail with EBADF.
func TestReadEmptyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ipam.db")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	if ls, err := a.Dump(); err != nil || len(ls) != 0 {
		t.Fatalf("Dump of an empty file: %v %v", ls, err)
	}
	if addrs, err := a.Addresses("c", "n"); err != nil || len(addrs) != 0 {
		t.Fatalf("Addresses of an empty file: %v %v", addrs, err)
	}
}
