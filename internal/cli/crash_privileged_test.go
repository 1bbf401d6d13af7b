package cli

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/nettest"
)

// Kill -9 at a random instant of connect, disconnect, reload, run and rm: the
// next berth command (here `ps`, which only reads) must leave every
// address held by a recorded attachment, every recorded attachment with
// its address and interface, no veth or namespace pin without a record
// and no unfinished intent; connect, disconnect, rm and run with the same
// name must work afterwards.
//
// BERTH_CRASH_TRIALS sets the trials per command (default 30);
// BERTH_CRASH_BIN runs another berth binary (to measure an older one).

func crashTrials() int {
	if n, err := strconv.Atoi(os.Getenv("BERTH_CRASH_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 30
}

// crashTally counts what the checks found over the trials of one command.
type crashTally struct {
	trials, killed                         int
	leaked, halfRecords, orphans, followUp int
}

func (c *crashTally) String() string {
	return fmt.Sprintf("%d trials (%d killed mid-command): %d leaked addresses, %d half records, %d orphan kernel objects or intents, %d failed follow-ups",
		c.trials, c.killed, c.leaked, c.halfRecords, c.orphans, c.followUp)
}

func (c *crashTally) clean() bool { return c.leaked+c.halfRecords+c.orphans+c.followUp == 0 }

// killAt starts berth with args and kills it with SIGKILL after d
// (killed: it was still running).
func (p *etopo) killAt(d time.Duration, args ...string) (killed bool) {
	full := append([]string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot}, args...)
	cmd := exec.Command("nsenter", full...) // nsenter execs berth: the PID is berth's
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	killed, _ = nettest.KillAfter(cmd, d)
	return killed
}

// timed runs berth once and returns how long it took.
func (p *etopo) timed(t *testing.T, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	p.mustB(t, args...)
	return time.Since(start)
}

// records reads the engine's records and intents directly.
func (p *etopo) records(t *testing.T) (recs []engine.Container, intents int) {
	t.Helper()
	path := filepath.Join(p.root, "containers.db")
	if _, err := os.Stat(path); err != nil {
		return nil, 0
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("intents")); b != nil {
			intents = b.Stats().KeyN
		}
		b := tx.Bucket([]byte("containers"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var c engine.Container
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			recs = append(recs, c)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, intents
}

// checkConsistent counts what a killed command left wrong into tally,
// logging each finding.
func (p *etopo) checkConsistent(t *testing.T, what string, tally *crashTally) {
	t.Helper()
	// Live operations (a container's monitor cleaning up after the kill
	// stopped it) hold the engine lock; the records are whole between
	// them.
	lock := filepath.Join(p.runRoot, "locks", "engine")
	if f, err := os.OpenFile(lock, os.O_RDWR, 0); err == nil {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	recs, intents := p.records(t)
	if intents != 0 {
		tally.orphans++
		t.Logf("%s: %d intents left after the next command", what, intents)
	}
	held := map[string]string{} // id/network/ip -> ""
	a, _ := ipam.New(filepath.Join(p.run, "ipam.db"))
	leases, err := a.Dump()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		held[l.ContainerID+"/"+l.Network+"/"+l.IP.String()] = ""
	}
	attached := map[string]bool{}
	pins := map[string]bool{}
	veths := 0
	for _, c := range recs {
		if c.State.NetNS != "" {
			pins[c.State.NetNS] = true
		}
		for _, att := range c.State.Attachments {
			veths++
			for _, ip := range att.Opts.StaticIPs {
				k := c.Config.ID + "/" + att.Network.Name + "/" + ip.String()
				attached[k] = true
				if _, ok := held[k]; !ok {
					tally.halfRecords++
					t.Logf("%s: %s recorded on %s with %s, which ipam does not hold", what, c.Config.Name, att.Network.Name, ip)
				}
				out, _ := exec.Command("nsenter", "--net="+c.State.NetNS, "ip", "-o", "addr", "show", "dev", att.Opts.InterfaceName).CombinedOutput()
				if !strings.Contains(string(out), " "+ip.String()+"/") {
					tally.halfRecords++
					t.Logf("%s: %s recorded on %s as %s %s, the namespace has: %s", what, c.Config.Name, att.Network.Name, att.Opts.InterfaceName, ip, out)
				}
			}
		}
	}
	for k := range held {
		if !attached[k] {
			tally.leaked++
			t.Logf("%s: address %s held by no recorded attachment", what, k)
		}
	}
	var hostVeths []string
	for _, l := range nettest.Links(t, p.host) {
		if strings.HasPrefix(l, "veth") {
			hostVeths = append(hostVeths, l)
		}
	}
	if len(hostVeths) != veths {
		tally.orphans++
		t.Logf("%s: %d host veths %v for %d recorded attachments", what, len(hostVeths), hostVeths, veths)
	}
	ents, _ := os.ReadDir(filepath.Join(p.runRoot, "netns"))
	for _, e := range ents {
		if pin := filepath.Join(p.runRoot, "netns", e.Name()); !pins[pin] {
			tally.orphans++
			t.Logf("%s: namespace pin %s of no record", what, pin)
		}
	}
}

// followUp runs a command that must work after the repair.
func (p *etopo) followUp(t *testing.T, tally *crashTally, args ...string) {
	t.Helper()
	if out, err := p.b(args...); err != nil {
		tally.followUp++
		t.Logf("after a kill: berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// connectedTo reports whether the record of name has an attachment on
// network net.
func (p *etopo) connectedTo(t *testing.T, name, net string) bool {
	recs, _ := p.records(t)
	for _, c := range recs {
		if c.Config.Name == name {
			for _, a := range c.State.Attachments {
				if a.Network.Name == net {
					return true
				}
			}
		}
	}
	return false
}

func (p *etopo) exists(t *testing.T, name string) bool {
	recs, _ := p.records(t)
	for _, c := range recs {
		if c.Config.Name == name {
			return true
		}
	}
	return false
}

func TestPrivilegedKillNetworkCommands(t *testing.T) {
	p := newETopo(t)
	if b := os.Getenv("BERTH_CRASH_BIN"); b != "" {
		p.bin = b
	}
	p.mustB(t, "network", "create", "--subnet", "198.19.60.0/24", "--disable-dns", "k1")
	p.mustB(t, "network", "create", "--subnet", "198.19.61.0/24", "--disable-dns", "k2")
	p.mustB(t, "run", "-d", "--name", "web", "--network", "k1", "-p", "8080:80", "--rootfs", p.rootfs, "sleep", "1000")
	// A window a little longer than the commands take, so kills land
	// everywhere in them (and a few after).
	conn := p.timed(t, "network", "connect", "k2", "web")
	reload := p.timed(t, "network", "reload", "web")
	disc := p.timed(t, "network", "disconnect", "k2", "web")
	n := crashTrials()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	var tc, td, tl crashTally
	for i := 0; i < n; i++ {
		// connect from disconnected
		if p.connectedTo(t, "web", "k2") {
			p.mustB(t, "network", "disconnect", "k2", "web")
		}
		tc.trials++
		if p.killAt(time.Duration(rnd.Int64N(int64(conn)*5/4)), "network", "connect", "k2", "web") {
			tc.killed++
		}
		p.mustB(t, "ps", "-a")
		p.checkConsistent(t, fmt.Sprintf("connect %d", i), &tc)
		if p.connectedTo(t, "web", "k2") {
			p.followUp(t, &tc, "network", "disconnect", "k2", "web")
		}
		p.followUp(t, &tc, "network", "connect", "k2", "web")
		// disconnect from connected
		td.trials++
		if p.killAt(time.Duration(rnd.Int64N(int64(disc)*5/4)), "network", "disconnect", "k2", "web") {
			td.killed++
		}
		p.mustB(t, "ps", "-a")
		p.checkConsistent(t, fmt.Sprintf("disconnect %d", i), &td)
		// reload, connected to both networks
		if !p.connectedTo(t, "web", "k2") {
			p.followUp(t, &td, "network", "connect", "k2", "web")
		}
		tl.trials++
		if p.killAt(time.Duration(rnd.Int64N(int64(reload)*5/4)), "network", "reload", "web") {
			tl.killed++
		}
		p.mustB(t, "ps", "-a")
		p.checkConsistent(t, fmt.Sprintf("reload %d", i), &tl)
	}
	t.Logf("kill -9 during network connect: %s", &tc)
	t.Logf("kill -9 during network disconnect: %s", &td)
	t.Logf("kill -9 during network reload: %s", &tl)
	if !tc.clean() || !td.clean() || !tl.clean() {
		t.Errorf("connect: %s; disconnect: %s; reload: %s", &tc, &td, &tl)
	}
}

func TestPrivilegedKillRunRm(t *testing.T) {
	p := newETopo(t)
	if b := os.Getenv("BERTH_CRASH_BIN"); b != "" {
		p.bin = b
	}
	p.mustB(t, "network", "create", "--subnet", "198.19.62.0/24", "--disable-dns", "k3")
	run := []string{"run", "-d", "--name", "r", "--network", "k3", "-p", "8081:80", "--rootfs", p.rootfs, "sleep", "1000"}
	tRun := p.timed(t, run...)
	tRm := p.timed(t, "rm", "-f", "r")
	n := crashTrials()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	var tr, tm crashTally
	for i := 0; i < n; i++ {
		if p.exists(t, "r") {
			p.mustB(t, "rm", "-f", "r")
		}
		tr.trials++
		if p.killAt(time.Duration(rnd.Int64N(int64(tRun)*5/4)), run...) {
			tr.killed++
		}
		p.mustB(t, "ps", "-a")
		p.checkConsistent(t, fmt.Sprintf("run %d", i), &tr)
		if p.exists(t, "r") {
			p.followUp(t, &tr, "rm", "-f", "r")
		}
		p.followUp(t, &tr, run...) // the same name again
		tm.trials++
		if p.killAt(time.Duration(rnd.Int64N(int64(tRm)*5/4)), "rm", "-f", "r") {
			tm.killed++
		}
		p.mustB(t, "ps", "-a")
		p.checkConsistent(t, fmt.Sprintf("rm %d", i), &tm)
	}
	if p.exists(t, "r") {
		p.followUp(t, &tm, "rm", "-f", "r")
	}
	p.checkConsistent(t, "the end", &tm)
	t.Logf("kill -9 during run: %s", &tr)
	t.Logf("kill -9 during rm: %s", &tm)
	if !tr.clean() || !tm.clean() {
		t.Errorf("run: %s; rm: %s", &tr, &tm)
	}
}

// TestPrivilegedSignalWhileWaitingForTheLock: SIGTERM ends a command
// blocked on the engine lock within 2 s, with an error and nothing
// recorded.
func TestPrivilegedSignalWhileWaitingForTheLock(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "network", "create", "--subnet", "198.19.63.0/24", "--disable-dns", "k4")
	ns := nettest.NewNS(t, nettest.RandName("hcr"))
	lock := filepath.Join(p.runRoot, "locks", "engine")
	if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		full := []string{"--net=" + p.host.Path(), "--", p.bin, "--network-config-dir", p.cfg, "--network-run-dir", p.run, "--root", p.root, "--runroot", p.runRoot,
			"network", "connect", "--netns", ns.Path(), "k4", "blocked"}
		cmd := exec.Command("nsenter", full...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // blocked on the lock by now
		start := time.Now()
		_ = cmd.Process.Signal(sig)
		err := cmd.Wait()
		took := time.Since(start)
		if took > 2*time.Second || exitCode(err) <= 0 {
			t.Errorf("%v: exit %d after %v", sig, exitCode(err), took)
		}
		if !strings.Contains(out.String(), "interrupted") {
			t.Errorf("%v: message %q", sig, out.String())
		}
	}
	f.Close()
	if recs, intents := p.records(t); len(recs) != 0 || intents != 0 {
		t.Errorf("records left: %+v, %d intents", recs, intents)
	}
	a, _ := ipam.New(filepath.Join(p.run, "ipam.db"))
	if leases, _ := a.Dump(); len(leases) != 0 {
		t.Errorf("leases left: %v", leases)
	}
}
