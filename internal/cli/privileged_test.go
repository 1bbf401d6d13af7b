package cli

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/nettest"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// berthBinary builds cmd/berth once per test process (with aardvark-dns
// and pasta beside it, as in bin/).
func berthBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-cli-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "berth")
		out, err := exec.Command("go", "build", "-o", builtBin, "../../cmd/berth").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
			return
		}
		// berth's pasta (cmd/pasta) beside it, as in bin/.
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "pasta"), "../../cmd/pasta").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build pasta: %v: %s", err, out)
			return
		}
		buildErr = os.Symlink("berth", filepath.Join(dir, "aardvark-dns"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// ptopo is a private "host" namespace joined to an "outside" one by a veth
// (198.18.0.1 / 198.18.0.2), with berth run inside the host namespace on
// private directories.
type ptopo struct {
	host, outside *nettest.NS
	bin           string
	cfg, run      string
	conf          string
	// root and runRoot are the engine's directories (never the machine's).
	root, runRoot string
}

func newPTopo(t *testing.T) *ptopo {
	t.Helper()
	nettest.Privileged(t)
	p := &ptopo{bin: berthBinary(t)}
	p.host = nettest.NewNS(t, nettest.RandName("bh"))
	p.outside = nettest.NewNS(t, nettest.RandName("bo"))
	nettest.Connect(t, p.host, "eth0", netip.MustParsePrefix("198.18.0.1/24"), p.outside, "eth0", netip.MustParsePrefix("198.18.0.2/24"))
	d := t.TempDir()
	p.cfg, p.run, p.conf = filepath.Join(d, "nets"), filepath.Join(d, "run"), filepath.Join(d, "containers.conf")
	p.root, p.runRoot = filepath.Join(d, "root"), filepath.Join(d, "runroot")
	if err := os.WriteFile(p.conf, []byte("[network]\ndefault_subnet_pools = [{base = \"198.19.128.0/17\", size = 24}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever a test left attached is detached, so no rule or link
		// outlives it (the namespaces go with it anyway).
		_, _ = p.berth("system", "reset", "--force")
	})
	return p
}

// berth runs the berth binary inside the host namespace.
func (p *ptopo) berth(args ...string) (string, error) {
	full := append([]string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot}, args...)
	cmd := exec.Command("nsenter", full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *ptopo) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.berth(args...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// addrsOf returns the global addresses of a link in ns.
func addrsOf(t *testing.T, ns *nettest.NS, ifname string) []string {
	t.Helper()
	h := nettest.Handle(t, ns.NetNS)
	l, err := h.LinkByName(ifname)
	if err != nil {
		return nil
	}
	as, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		if a.IP.IsGlobalUnicast() {
			out = append(out, a.IPNet.String())
		}
	}
	return out
}

func macOf(t *testing.T, ns *nettest.NS, ifname string) string {
	t.Helper()
	h := nettest.Handle(t, ns.NetNS)
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("%s in %s: %v", ifname, ns.Name, err)
	}
	return l.Attrs().HardwareAddr.String()
}

func TestPrivilegedConnectDisconnect(t *testing.T) {
	p := newPTopo(t)
	p.must(t, "network", "create", "--subnet", "198.19.10.0/24", "--disable-dns", "n1")
	p.must(t, "network", "create", "--disable-dns", "n2") // from the 198.19.128/17 pool
	c1 := nettest.NewNS(t, "c1")
	c2 := nettest.NewNS(t, "c2")

	p.must(t, "network", "connect", "--netns", c1.Path(), "n1", "c1")
	p.must(t, "network", "connect", "--ip", "198.19.10.50", "--mac-address", "92:d0:c6:0a:29:33", "n1", "ns:"+c2.Path())
	if got := addrsOf(t, c1, "eth0"); len(got) != 1 || got[0] != "198.19.10.2/24" {
		t.Errorf("c1 eth0: %v", got)
	}
	if got := addrsOf(t, c2, "eth0"); len(got) != 1 || got[0] != "198.19.10.50/24" {
		t.Errorf("c2 eth0: %v", got)
	}
	if mac := macOf(t, c2, "eth0"); mac != "92:d0:c6:0a:29:33" {
		t.Errorf("c2 mac %s", mac)
	}
	// Containers on one network reach each other.
	nettest.ServeBanner(nettest.Listen(t, c2, "tcp4", "198.19.10.50:80"), "c2")
	if got, err := nettest.Fetch(c1, "tcp4", "198.19.10.50:80"); err != nil || got != "c2" {
		t.Errorf("c1 -> c2: %q %v", got, err)
	}
	// A second network is eth1.
	p.must(t, "network", "connect", "n2", "c1")
	if got := addrsOf(t, c1, "eth1"); len(got) != 1 || got[0] != "198.19.128.2/24" {
		t.Errorf("c1 eth1: %v", got)
	}

	// Mistakes are refused before anything changes.
	if out, err := p.berth("network", "connect", "n1", "c1"); err == nil || !strings.Contains(out, "is already connected to network \"n1\": network is already connected") {
		t.Errorf("second connect: %v %s", err, out)
	}
	out, err := p.berth("network", "connect", "--ip", "198.18.9.9", "n2", "c2")
	if err == nil || !strings.Contains(out, "requested static ip 198.18.9.9 not in any subnet on network n2") {
		t.Errorf("out-of-subnet --ip: %v %s", err, out)
	}
	if got := addrsOf(t, c2, "eth1"); got != nil {
		t.Errorf("rejected connect left eth1 in c2: %v", got)
	}
	a, _ := ipam.New(filepath.Join(p.run, "ipam.db"))
	leases, err := a.Dump()
	if err != nil || len(leases) != 3 {
		t.Errorf("leases after the rejected connect: %v %v", leases, err)
	}
	if out, err := p.berth("network", "connect", "n1", "nosuch"); err == nil || !strings.Contains(out, `no container with name or ID "nosuch" found`) {
		t.Errorf("unknown container: %v %s", err, out)
	}

	// rm refuses a network in use (exit 2).
	out, err = p.berth("network", "rm", "n1")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out, `"n1" has associated containers with it`) {
		t.Errorf("rm in use: %v %s", err, out)
	}

	// disconnect removes the interface and frees the address.
	p.must(t, "network", "disconnect", "n1", "c1")
	if got := addrsOf(t, c1, "eth0"); got != nil {
		t.Errorf("eth0 still in c1: %v", got)
	}
	if addrs, _ := a.Addresses(lookupID(t, p, "c1"), "n1"); len(addrs) != 0 {
		t.Errorf("c1 still holds %v on n1", addrs)
	}
	if out, err := p.berth("network", "disconnect", "n1", "c1"); err == nil || !strings.Contains(out, "container c1 is not connected to network n1") {
		t.Errorf("second disconnect: %v %s", err, out)
	}
	// rm -f detaches c2 first; c2, on no network now, is forgotten.
	if out := p.must(t, "network", "rm", "-f", "n1"); out != "n1\n" {
		t.Errorf("rm -f printed %q", out)
	}
	if got := addrsOf(t, c2, "eth0"); got != nil {
		t.Errorf("eth0 still in c2 after rm -f: %v", got)
	}
	if out, err := p.berth("network", "disconnect", "n2", "c2"); err == nil || !strings.Contains(out, "no container") {
		t.Errorf("c2 should be forgotten: %v %s", err, out)
	}
	if leases, _ := a.Dump(); len(leases) != 1 || leases[0].Network != "n2" {
		t.Errorf("leases left: %v", leases)
	}
}

// lookupID returns a registered container's ID.
func lookupID(t *testing.T, p *ptopo, name string) string {
	t.Helper()
	c, err := engine.Lookup(attachedRecords(t, p.root, p.runRoot), name)
	if err != nil {
		return ""
	}
	return c.Config.ID
}

// TestPrivilegedReloadAfterFlush: a flushed ruleset cuts the container's
// NAT to the outside; network reload restores it with the same address and
// MAC.
func TestPrivilegedReloadAfterFlush(t *testing.T) {
	p := newPTopo(t)
	p.must(t, "network", "create", "--subnet", "198.19.20.0/24", "--disable-dns", "rl")
	c := nettest.NewNS(t, "rc")
	p.must(t, "network", "connect", "--netns", c.Path(), "rl", "web")
	nettest.ServeBanner(nettest.Listen(t, p.outside, "tcp4", "198.18.0.2:80"), "outside")
	if got, err := nettest.Fetch(c, "tcp4", "198.18.0.2:80"); err != nil || got != "outside" {
		t.Fatalf("egress before flush: %q %v", got, err)
	}
	mac, addr := macOf(t, c, "eth0"), addrsOf(t, c, "eth0")
	// The firewall watcher the connect started would mend the flush by
	// itself (watch_privileged_test.go tests that): this tests reload.
	stopWatcher(t, p.run)
	if _, err := nettest.Run(p.host, 5*time.Second, "nft", "flush", "ruleset"); err != nil {
		t.Fatal(err)
	}
	if _, err := nettest.FetchWithin(c, "tcp4", "198.18.0.2:80", time.Second); err == nil {
		t.Fatal("egress still works after the ruleset was flushed (no NAT expected)")
	}
	if out, err := p.berth("network", "reload"); err == nil || !strings.Contains(out, "you must provide at least one name or id") {
		t.Errorf("reload without names: %v %s", err, out)
	}
	out := p.must(t, "network", "reload", "web")
	if id := lookupID(t, p, "web"); strings.TrimSpace(out) != id {
		t.Errorf("reload printed %q, want the ID %s", out, id)
	}
	if got, err := nettest.Fetch(c, "tcp4", "198.18.0.2:80"); err != nil || got != "outside" {
		t.Fatalf("egress after reload: %q %v", got, err)
	}
	if m, a := macOf(t, c, "eth0"), addrsOf(t, c, "eth0"); m != mac || strings.Join(a, ",") != strings.Join(addr, ",") {
		t.Errorf("reload changed the interface: %s %v -> %s %v", mac, addr, m, a)
	}
	if out := p.must(t, "network", "reload", "--all"); strings.Count(out, "\n") != 1 {
		t.Errorf("reload --all: %q", out)
	}
}

// TestPrivilegedParallelConnects runs 50 `berth network connect` processes
// at once, each with its own namespace, on one network: every one gets its
// own address. system reset then leaves nothing behind.
func TestPrivilegedParallelConnects(t *testing.T) {
	p := newPTopo(t)
	p.must(t, "network", "create", "--subnet", "198.19.30.0/24", "--disable-dns", "par")
	const n = 50
	nss := make([]*nettest.NS, n)
	for i := range nss {
		nss[i] = nettest.NewNS(t, fmt.Sprintf("p%02d", i))
	}
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range nss {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if out, err := p.berth("network", "connect", "--netns", nss[i].Path(), "par", fmt.Sprintf("c%02d", i)); err != nil {
				errs[i] = fmt.Sprintf("c%02d: %v: %s", i, err, out)
			}
		}(i)
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	seen := map[string]int{}
	for i, ns := range nss {
		a := addrsOf(t, ns, "eth0")
		if len(a) != 1 {
			t.Errorf("c%02d: addresses %v", i, a)
			continue
		}
		if j, dup := seen[a[0]]; dup {
			t.Errorf("%s given to c%02d and c%02d", a[0], j, i)
		}
		seen[a[0]] = i
	}
	if len(seen) != n {
		t.Errorf("%d unique addresses, want %d", len(seen), n)
	}
	alloc, _ := ipam.New(filepath.Join(p.run, "ipam.db"))
	if err := alloc.Check(); err != nil {
		t.Error(err)
	}
	// reset: every interface, record and network goes.
	p.must(t, "system", "reset", "--force")
	for i, ns := range nss {
		if a := addrsOf(t, ns, "eth0"); a != nil {
			t.Errorf("c%02d still has eth0 after reset", i)
		}
	}
	if l := nettest.Links(t, p.host); strings.Contains(strings.Join(l, " "), "podman") || strings.Contains(strings.Join(l, " "), "veth") {
		t.Errorf("host links after reset: %v", l)
	}
	if out := p.must(t, "network", "ls", "-q"); out != "podman\n" {
		t.Errorf("networks after reset: %q", out)
	}
	if leases, _ := alloc.Dump(); len(leases) != 0 {
		t.Errorf("leases after reset: %v", leases)
	}
}
