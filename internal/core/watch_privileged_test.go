package core_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/firewall/firewalld"
	fwipt "github.com/berthnet/berth/internal/firewall/iptables"
	"github.com/berthnet/berth/internal/nettest"
	"github.com/berthnet/berth/internal/network"
)

// TestMain lets this test binary be the firewall watcher a setup starts
// (core.Config.FirewallWatcher): `EXE firewall-watch --config DIR ...`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == core.WatchCommand {
		os.Exit(watchMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// watchMain is what berth's firewall-watch commands do, with the flags
// the setup passes.
func watchMain(args []string) int {
	fs := flag.NewFlagSet(core.WatchCommand, flag.ContinueOnError)
	dir := fs.String("config", "", "")
	driver := fs.String("firewall-driver", "", "")
	port := fs.Uint("dns-port", 53, "")
	stay := fs.Bool("stay", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fw, err := core.NewFirewall(*driver, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	m, err := core.New(core.Config{ConfigDir: *dir, Firewall: fw, DNSPort: uint16(*port), Logger: core.WatchLogger(os.Stderr)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = m.WatchFirewall(ctx, core.WatchOptions{Stay: *stay})
	if err != nil && !errors.Is(err, core.ErrWatcherRunning) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// watchedTopo is a topo whose firewalled setups start the firewall
// watcher (this test binary). A watcher still running at the end is
// killed.
func watchedTopo(t *testing.T, fw func(*nettest.NS) firewall.Driver) *topo {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tp := newTopo(t, fw, func(c *core.Config) { c.FirewallWatcher = exe })
	t.Cleanup(func() {
		for _, pid := range watchers(tp) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return tp
}

// watchers lists the watcher processes of tp's state directory.
func watchers(tp *topo) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 3 && args[1] == core.WatchCommand && args[3] == tp.cfgDir {
			if st, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat")); err == nil && !zombie(string(st)) {
				var pid int
				fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
				out = append(out, pid)
			}
		}
	}
	return out
}

// zombie reports whether a /proc/PID/stat line is an exited process's.
func zombie(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// waitWatcher waits until the watcher of tp runs and returns its PID.
func waitWatcher(t *testing.T, tp *topo) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pid := tp.m.WatcherPID(); pid != 0 {
			// Started: it subscribes before its first check, which
			// logs once it is done.
			if strings.Contains(watchLog(tp), "firewall watcher started") {
				return pid
			}
		}
	}
	t.Fatalf("no firewall watcher runs; log:\n%s", watchLog(tp))
	return 0
}

func watchLog(tp *topo) string {
	b, _ := os.ReadFile(filepath.Join(tp.cfgDir, "berth", core.WatchLogName))
	return string(b)
}

// answersWithin polls the published port from outside until it answers
// with want, for up to d.
func answersWithin(tp *topo, port, want string, d time.Duration) (string, error) {
	var got string
	var err error
	for deadline := time.Now().Add(d); ; {
		got, err = nettest.FetchWithin(tp.outside, "tcp4", "198.18.0.1:"+port, 100*time.Millisecond)
		if err == nil && got == want {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchedPorts sets up two containers on one network, each publishing a
// port (8090 "one", 8091 "two"), and waits for the watcher they start.
func watchedPorts(t *testing.T, tp *topo, subnet string) (n network.Network, o1, o2 *network.Options) {
	t.Helper()
	n = bridgeNet("watch", "brwatch0", subnet+".0/24", subnet+".1")
	var opts2 [2]*network.Options
	for i, c := range []struct{ id, ip, banner string }{{"w1", subnet + ".2", "one"}, {"w2", subnet + ".3", "two"}} {
		o := opts(c.id, "watch"+c.id, n, c.ip, network.PortMapping{ContainerPort: 80, HostPort: uint16(8090 + i), Protocol: "tcp", Range: 1})
		ctr, _ := tp.container(t, o)
		nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), c.banner)
		opts2[i] = o
	}
	waitWatcher(t, tp)
	for port, want := range map[string]string{"8090": "one", "8091": "two"} {
		if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:"+port); err != nil || got != want {
			t.Fatalf("before damage: port %s: %q %v", port, got, err)
		}
	}
	return n, opts2[0], opts2[1]
}

// damageAndHeal runs the damage commands in the host namespace, then
// expects both published ports to answer again within a second, and
// the watcher's log to tell what it found (wantLog) and that it restored.
func damageAndHeal(t *testing.T, tp *topo, cmds [][]string, wantLog ...string) {
	t.Helper()
	before := len(watchLog(tp))
	for _, c := range cmds {
		if out, err := nettest.Run(tp.host, 5*time.Second, c[0], c[1:]...); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	for port, want := range map[string]string{"8090": "one", "8091": "two"} {
		if got, err := answersWithin(tp, port, want, time.Second); err != nil || got != want {
			t.Errorf("port %s a second after %v: %q %v", port, cmds, got, err)
		}
	}
	// The log lines come right after the repair: wait for them briefly.
	// Several damage commands may be repaired in one pass or in several
	// (the watcher can act between them), so wait for every line.
	want := append(wantLog, "firewall rules restored", "rules of 1 network, 2 port forwards of 2 containers")
	missing := func(log string) []string {
		var m []string
		for _, w := range want {
			if !strings.Contains(log, w) {
				m = append(m, w)
			}
		}
		return m
	}
	var log string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if log = watchLog(tp)[before:]; len(missing(log)) == 0 {
			break
		}
	}
	t.Logf("log:\n%s", watchLog(tp))
	for _, w := range missing(log) {
		t.Errorf("the watcher's log after %v lacks %q:\n%s", cmds, w, log)
	}
}

// With the nftables driver, each kind of damage from outside is undone
// by the watcher within a second, with no berth command run.
func TestPrivilegedWatcherHealsNftables(t *testing.T) {
	damages := []struct {
		name string
		cmd  []string
		log  string
	}{
		{"delete-table", []string{"nft", "delete", "table", "inet", "berth"}, "table inet berth missing"},
		{"flush-ruleset", []string{"nft", "flush", "ruleset"}, "table inet berth missing"},
		{"flush-chain", []string{"nft", "flush", "chain", "inet", "berth", "hostports"}, "chain hostports flushed"},
		{"delete-element", []string{"nft", "delete", "element", "inet", "berth", "pf4any", "{ tcp . 8090 }"}, "map pf4any: 1 port forward missing"},
		{"flush-map", []string{"nft", "flush", "map", "inet", "berth", "pf4any"}, "map pf4any: 2 port forwards missing"},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			tp := watchedTopo(t, nil)
			watchedPorts(t, tp, "198.19.40")
			damageAndHeal(t, tp, [][]string{d.cmd}, d.log)
		})
	}
}

// With the iptables driver (iptables-nft, whose changes are nftables
// commits), `iptables -F` and `iptables -t nat -F` are undone.
func TestPrivilegedWatcherHealsIptables(t *testing.T) {
	tp := watchedTopo(t, iptDriver)
	watchedPorts(t, tp, "198.19.41")
	damageAndHeal(t, tp, [][]string{{"iptables", "-F"}, {"iptables", "-t", "nat", "-F"}}, "ipv4 nat chain NETAVARK-HOSTPORT-DNAT flushed")
}

// 100 flushes with short pauses, some while a repair is under way, leave
// the rules as they were: no rule or element twice, none missing.
func TestPrivilegedWatcherAfterManyFlushes(t *testing.T) {
	for _, c := range []struct {
		name   string
		fw     func(*nettest.NS) firewall.Driver
		list   []string
		damage [][]string
	}{
		{"nftables", nil, []string{"nft", "list", "table", "inet", "berth"},
			[][]string{{"nft", "flush", "ruleset"}, {"nft", "flush", "map", "inet", "berth", "pf4any"}}},
		{"iptables", iptDriver, []string{"iptables-save"},
			[][]string{{"iptables", "-F"}, {"iptables", "-t", "nat", "-F"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := watchedTopo(t, c.fw)
			watchedPorts(t, tp, "198.19.42")
			rules := func() string {
				out, _ := nettest.Run(tp.host, 5*time.Second, c.list[0], c.list[1:]...)
				var keep []string
				for _, l := range strings.Split(out, "\n") {
					if !strings.HasPrefix(l, "#") { // iptables-save's dated comments
						keep = append(keep, l)
					}
				}
				return strings.Join(keep, "\n")
			}
			whole := rules()
			for i := range 100 {
				d := c.damage[i%2]
				// A map flushed again right after the table went is no
				// error: the watcher may not have restored it yet.
				_, _ = nettest.Run(tp.host, 5*time.Second, d[0], d[1:]...)
				time.Sleep(time.Duration(i%5) * 20 * time.Millisecond)
			}
			var got string
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if got = rules(); got == whole {
					break
				}
			}
			if got != whole {
				t.Errorf("after 100 flushes the rules are\n%s\nwant\n%s", got, whole)
			}
			for port, want := range map[string]string{"8090": "one", "8091": "two"} {
				if got, err := nettest.Fetch(tp.outside, "tcp4", "198.18.0.1:"+port); err != nil || got != want {
					t.Errorf("port %s after 100 flushes: %q %v", port, got, err)
				}
			}
		})
	}
}

// What a teardown removes on purpose stays removed, and after the last
// container the watcher exits, restoring nothing.
func TestPrivilegedWatcherLeavesTeardownsAlone(t *testing.T) {
	tp := watchedTopo(t, nil)
	_, o1, o2 := watchedPorts(t, tp, "198.19.43")
	pid := tp.m.WatcherPID()
	ns := func(o *network.Options) string {
		rec, ok, err := tp.m.Lookup(o.ContainerID)
		if err != nil || !ok {
			t.Fatalf("no record of %s: %v", o.ContainerID, err)
		}
		return rec.NSPath
	}
	if err := tp.m.Teardown(context.Background(), ns(o1), o1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got, err := nettest.FetchWithin(tp.outside, "tcp4", "198.18.0.1:8090", 200*time.Millisecond); err == nil {
		t.Errorf("the port of a container torn down answers again: %q", got)
	}
	if tp.m.WatcherPID() != pid {
		t.Errorf("the watcher stopped with a container left")
	}
	if err := tp.m.Teardown(context.Background(), ns(o2), o2); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(watchers(tp)) > 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	if w := watchers(tp); len(w) > 0 {
		t.Errorf("watchers %v still run after the last teardown", w)
	}
	if out, err := nettest.Run(tp.host, 5*time.Second, "nft", "list", "table", "inet", "berth"); err == nil {
		t.Errorf("berth's table is back after the last teardown:\n%s", out)
	}
	log := watchLog(tp)
	if strings.Contains(log, "restored") || !strings.Contains(log, "firewall watcher exits") {
		t.Errorf("watcher log:\n%s", log)
	}
}

// Setups running at once leave one watcher.
func TestPrivilegedOneWatcherPerStateDirectory(t *testing.T) {
	tp := watchedTopo(t, nil)
	n := bridgeNet("watchc", "brwatchc0", "198.19.44.0/24", "198.19.44.1")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		o := opts(fmt.Sprintf("c%d", i), fmt.Sprintf("watchc%d", i), n, fmt.Sprintf("198.19.44.%d", i+2),
			network.PortMapping{ContainerPort: 80, HostPort: uint16(8100 + i), Protocol: "tcp", Range: 1})
		ns := nettest.NewNS(t, nettest.RandName("ctr"))
		t.Cleanup(func() { _ = tp.m.Teardown(context.Background(), ns.Path(), o) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tp.m.Setup(context.Background(), ns.Path(), o); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("setup: %v", err)
	}
	pid := waitWatcher(t, tp)
	// A watcher that lost the race for the lock gives up within 50 ms.
	time.Sleep(500 * time.Millisecond)
	if w := watchers(tp); len(w) != 1 || w[0] != pid {
		t.Errorf("watchers %v, want one (%d)", w, pid)
	}
}

// With iptables-legacy, whose changes the kernel does not announce, the
// watcher (here in this process) checks every second.
func TestPrivilegedWatcherPollsIptablesLegacy(t *testing.T) {
	for _, bin := range []string{"iptables-legacy-save", "iptables-legacy-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	var log nettest.LogBuffer
	tp := newTopo(t, func(host *nettest.NS) firewall.Driver {
		d, err := fwipt.New(fwipt.Options{NetNSPath: host.Path(), Save: "iptables-legacy-save", Restore: "iptables-legacy-restore",
			Save6: "ip6tables-legacy-save", Restore6: "ip6tables-legacy-restore"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, func(c *core.Config) { c.Logger = core.WatchLogger(&log) })
	n := bridgeNet("watchl", "brwatchl0", "198.19.45.0/24", "198.19.45.1")
	ctr, _ := tp.container(t, opts("l1", "watchl1", n, "198.19.45.2", network.PortMapping{ContainerPort: 80, HostPort: 8090, Protocol: "tcp", Range: 1}))
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "legacy")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tp.m.WatchFirewall(ctx, core.WatchOptions{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchFirewall: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), "period=1s") && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	if !strings.Contains(log.String(), "nftables_events=false") || !strings.Contains(log.String(), "period=1s") {
		t.Fatalf("the watcher does not poll:\n%s", log.String())
	}
	for _, c := range [][]string{{"iptables-legacy", "-F"}, {"iptables-legacy", "-t", "nat", "-F"}} {
		if out, err := nettest.Run(tp.host, 5*time.Second, c[0], c[1:]...); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	// A check every second, plus the check's own time.
	if got, err := answersWithin(tp, "8090", "legacy", 1500*time.Millisecond); err != nil {
		t.Errorf("port 8090 after the flush: %q %v\n%s", got, err, log.String())
	}
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(log.String(), "restored") && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	if !strings.Contains(log.String(), "ipv4: 1 port forward missing") || !strings.Contains(log.String(), "firewall rules restored") {
		t.Errorf("the watcher's log:\n%s", log.String())
	}
}

// With the firewalld driver, firewalld's reload drops the runtime
// forwards; the watcher, on firewalld's Reloaded signal, adds them back.
func TestPrivilegedWatcherFollowsFirewalldReloads(t *testing.T) {
	nettest.Privileged(t)
	var f *nettest.Firewalld
	tp := watchedTopo(t, func(host *nettest.NS) firewall.Driver {
		f = nettest.StartFirewalld(t, host)
		// The watcher (a child) finds firewalld's bus here.
		t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", f.Address)
		return firewalld.New(firewalld.Options{Address: f.Address})
	})
	n := bridgeNet("watchf", "brwatchf0", "198.19.46.0/24", "198.19.46.1")
	ctr, _ := tp.container(t, opts("f1", "watchf1", n, "198.19.46.2", network.PortMapping{ContainerPort: 80, HostPort: 8090, Protocol: "tcp", Range: 1}))
	nettest.ServeBanner(nettest.Listen(t, ctr, "tcp4", "0.0.0.0:80"), "firewalld")
	waitWatcher(t, tp)
	if got, err := answersWithin(tp, "8090", "firewalld", 5*time.Second); err != nil {
		t.Fatalf("before the reload: %q %v\n%s", got, err, f.Tail())
	}
	if !strings.Contains(watchLog(tp), "firewalld_reloads=true") {
		t.Fatalf("the watcher does not follow firewalld:\n%s", watchLog(tp))
	}
	before := len(watchLog(tp))
	f.Must(t, "--reload")
	if got, err := answersWithin(tp, "8090", "firewalld", time.Second); err != nil {
		t.Errorf("a second after firewalld's reload: %q %v\n%s", got, err, watchLog(tp))
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(watchLog(tp)[before:], "re-applied") && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if log := watchLog(tp)[before:]; !strings.Contains(log, "firewalld reloaded") || !strings.Contains(log, "firewall rules re-applied") {
		t.Errorf("the watcher's log after the reload:\n%s", log)
	}
}
