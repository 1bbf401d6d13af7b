package reliability

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/nettest"
)

// killStats are the figures of one command's kill trials.
type killStats struct {
	trials, landed              int
	leaks, dups, half, orphans  int
	nextFailures, laterFailures int
	examples                    []string
}

// trial is one run of a command killed after a delay: it returns whether
// the kill landed mid-operation, the command's own run time when it was
// not killed, the audit after the next call, and the errors of the next
// call and of the later operations.
type trial func(i int, delay time.Duration) (landed bool, ran time.Duration, a audit, nextErr, laterErr error)

// kill is one command's trials and the audit after all of them.
type kill struct {
	trial trial
	final func() audit
}

// killTrials calibrates the command's run time (the median of five runs
// that are not killed), then kills it n times at uniformly random instants
// within that time.
func killTrials(t *testing.T, command string, k kill) {
	run := k.trial
	t.Helper()
	var st killStats
	n := scale(10, 100)
	var span time.Duration
	// A finding is counted once, in the trial that first shows it (a
	// leaked lease stays leaked in every later audit).
	seen := map[string]bool{}
	count := func(what []string) int {
		n := 0
		for _, s := range what {
			if !seen[s] {
				seen[s] = true
				n++
				if len(st.examples) < 8 {
					st.examples = append(st.examples, fmt.Sprintf("trial %d: %s", st.trials, s))
				}
			}
		}
		return n
	}
	record := func(landed bool, a audit, nextErr, laterErr error) {
		st.trials++
		if landed {
			st.landed++
		}
		st.leaks += count(a.leaks)
		st.dups += count(a.dups)
		st.half += count(a.half)
		st.orphans += count(a.orphans)
		if nextErr != nil {
			st.nextFailures++
			count([]string{fmt.Sprintf("next call (%d): %s", st.trials, firstLine(nextErr.Error()))})
		}
		if laterErr != nil {
			st.laterFailures++
			count([]string{fmt.Sprintf("later operation (%d): %s", st.trials, firstLine(laterErr.Error()))})
		}
	}
	// Calibration: five runs that are not killed, after one to warm up
	// (the first setup starts the DNS server, the first ADD creates the
	// bridge). Their findings count; they are not trials.
	const calibration = 6
	var runs []time.Duration
	for i := 0; i < calibration; i++ {
		_, ran, a, nextErr, laterErr := run(i, time.Minute)
		if i > 0 {
			runs = append(runs, ran)
		}
		record(false, a, nextErr, laterErr)
	}
	st.trials = 0
	sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
	span = runs[len(runs)/2]
	for i := calibration; i < n+calibration; i++ {
		landed, _, a, nextErr, laterErr := run(i, time.Duration(rand.Int64N(int64(span)+1)))
		record(landed, a, nextErr, laterErr)
	}
	// What is still wrong at the end: findings no later call repaired.
	left := k.final().all()
	figures(t, "kill "+command, "trials=%d landed=%d span_ms=%d leaks=%d duplicates=%d half_records=%d orphans=%d next_call_failures=%d later_op_failures=%d left_at_end=%d",
		st.trials, st.landed, span.Milliseconds(), st.leaks, st.dups, st.half, st.orphans, st.nextFailures, st.laterFailures, len(left))
	if len(left) > 0 {
		t.Errorf("left at the end: %s", strings.Join(left, "; "))
	}
	if st.leaks+st.dups+st.half+st.orphans+st.nextFailures+st.laterFailures > 0 {
		t.Errorf("after kill -9 of %s: %s", command, strings.Join(st.examples, "; "))
	}
}

// killRun starts a command, sends it SIGKILL after delay and returns
// whether the kill landed while it ran and how long it ran. A run the kill
// did not catch must have succeeded.
func killRun(t *testing.T, what string, delay time.Duration, start func() (*proc, error)) (bool, time.Duration) {
	t.Helper()
	begin := time.Now()
	p, err := start()
	if err != nil {
		t.Fatal(err)
	}
	landed := p.killAfter(delay)
	ran := time.Since(begin)
	if !landed && !p.state.Success() {
		t.Errorf("%s failed: %s%s", what, p.out.String(), p.err.String())
	}
	return landed, ran
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// TestPrivilegedKillNetavark kills `netavark setup` and `netavark
// teardown` at random instants, with another container published the whole
// time. The next call is Podman's: teardown, then the container's
// namespace goes (what berth left inside it goes with it). Then nothing of
// the killed container may be left (host link, map element, state record,
// DNS entry), and a new container's setup and published port, and the
// other's, must work.
func TestPrivilegedKillNetavark(t *testing.T) {
	for _, verb := range []string{"setup", "teardown"} {
		t.Run(verb, func(t *testing.T) {
			r := newRig(t)
			w := r.netavark()
			n := newNavNet("relkill", "brelk0", "198.19", true)
			anchor := r.newNavCtr(n, 0, 30000)
			if err := w.call("setup", n, anchor); err != nil {
				t.Fatal(err)
			}
			serveBanner(t, anchor.ns, anchor.name)
			t.Cleanup(func() { _ = w.call("teardown", n, anchor) })
			killTrials(t, "netavark "+verb, kill{final: func() audit { return classify(w.residue(n, anchor)) }, trial: func(i int, delay time.Duration) (bool, time.Duration, audit, error, error) {
				ns, gone := r.sandbox(nettest.RandName("relc"))
				c := navCtrIn(t, n, i+1, 30001, ns)
				if verb == "teardown" {
					if err := w.call("setup", n, c); err != nil {
						return false, 0, audit{}, nil, fmt.Errorf("setup before the kill: %w", err)
					}
				}
				landed, ran := killRun(t, "netavark "+verb, delay, func() (*proc, error) { return w.startVerb(verb, n, c) })
				nextErr := w.call("teardown", n, c)
				gone()
				a := classify(w.residue(n, anchor))
				pns, pgone := r.sandbox(nettest.RandName("relp"))
				defer pgone()
				return landed, ran, a, nextErr, w.laterOps(n, anchor, navCtrIn(t, n, 900+i%90, 30001, pns))
			}})
		})
	}
}

// classify sorts netavark residue into leaks (records and DNS entries of a
// container that is gone) and orphans (kernel objects).
func classify(residue []string) audit {
	var a audit
	for _, s := range residue {
		if strings.HasPrefix(s, "state record") || strings.HasPrefix(s, "dns entry") {
			a.leaks = append(a.leaks, s)
		} else {
			a.orphans = append(a.orphans, s)
		}
	}
	return a
}

// laterOps: a new container is set up with the same host port and answers
// from outside, the anchor still answers, and the probe's teardown works.
func (w *navWorld) laterOps(n navNet, anchor, probe navCtr) error {
	if err := w.call("setup", n, probe); err != nil {
		return err
	}
	l := nettest.Listen(w.t, probe.ns, "tcp4", "0.0.0.0:80")
	nettest.ServeBanner(l, probe.name)
	defer l.Close()
	err := w.reachable(probe)
	if err != nil {
		w.t.Logf("probe %s (%s) unreachable: %v\n%s", probe.name, probe.ip, err, w.diagnose(probe))
	}
	if err2 := w.reachable(anchor); err == nil && err2 != nil {
		err = fmt.Errorf("anchor: %w", err2)
	}
	if err2 := w.call("teardown", n, probe); err == nil {
		err = err2
	}
	return err
}

// TestPrivilegedKillCLI kills `berth network connect`, `network
// disconnect`, `run -d` and `rm -f` at random instants, with a registered
// namespace connected the whole time. The next call is what a user does
// next: the same command again (connect, disconnect, rm -f) or rm -f after
// a killed run. Then: every lease belongs to a record, no address twice,
// every attachment has its lease and its address, nothing in the kernel
// or the run root without a record, and the same container can be
// connected or run again.
func TestPrivilegedKillCLI(t *testing.T) {
	for _, command := range []string{"network connect", "network disconnect", "run -d", "rm -f"} {
		t.Run(strings.ReplaceAll(command, " ", "-"), func(t *testing.T) {
			r := newRig(t)
			w := r.engine()
			if strings.HasPrefix(command, "r") {
				w.needContainers()
			}
			anchor := w.registered(nettest.RandName("relanc"))
			if out, err := w.berth("network", "connect", "--netns", anchor.Path(), engNet, "anchor"); err != nil {
				t.Fatalf("connect anchor: %v %s", err, out)
			}
			killTrials(t, "berth "+command, kill{final: w.audit, trial: func(i int, delay time.Duration) (bool, time.Duration, audit, error, error) {
				return w.killOne(command, i, delay)
			}})
		})
	}
}

// killOne is one trial of a CLI command.
func (w *engWorld) killOne(command string, i int, delay time.Duration) (bool, time.Duration, audit, error, error) {
	name := fmt.Sprintf("k%d", i)
	var ns *nettest.NS
	var args, next, later, undo []string
	switch command {
	case "network connect", "network disconnect":
		ns = w.registered(nettest.RandName("relk"))
		connect := []string{"network", "connect", "--netns", ns.Path(), engNet, name}
		disconnect := []string{"network", "disconnect", engNet, name}
		args, next, later, undo = connect, connect, connect, disconnect
		if command == "network disconnect" {
			if out, err := w.berth(connect...); err != nil {
				return false, 0, audit{}, nil, fmt.Errorf("connect before the kill: %v %s", err, out)
			}
			args, next = disconnect, disconnect
		}
	case "run -d", "rm -f":
		rm := []string{"rm", "-f", name}
		args, next, later, undo = w.runArgs(name), rm, w.runArgs(name), rm
		if command == "rm -f" {
			if out, err := w.berth(w.runArgs(name)...); err != nil {
				return false, 0, audit{}, nil, fmt.Errorf("run before the kill: %v %s", err, out)
			}
			args = rm
		}
	}
	landed, ran := killRun(w.t, "berth "+command, delay, func() (*proc, error) { return w.startBerth(args...) })
	var nextErr error
	if out, err := w.berth(next...); err != nil && !benign(out) {
		nextErr = fmt.Errorf("%s: %v: %s", brief(next), err, out)
	}
	settle()
	a := w.audit()
	// Later operations: the container can be connected or run again and
	// removed, and then nothing of it is left.
	var laterErr error
	if command == "network connect" || command == "run -d" {
		// The next call left it connected or removed; make it absent first.
		if command == "network connect" {
			if out, err := w.berth(undo...); err != nil && !benign(out) {
				laterErr = fmt.Errorf("disconnect: %v: %s", err, out)
			}
		}
	}
	if laterErr == nil {
		if out, err := w.berth(later...); err != nil {
			laterErr = fmt.Errorf("%s: %v: %s", brief(later), err, out)
		} else if out, err := w.berth(undo...); err != nil {
			laterErr = fmt.Errorf("%s: %v: %s", brief(undo), err, out)
		}
	}
	settle()
	after := w.audit()
	a = merge(a, after)
	return landed, ran, a, nextErr, laterErr
}

// brief names a berth command by its first words (no paths).
func brief(args []string) string {
	if len(args) > 2 {
		args = args[:2]
	}
	return "berth " + strings.Join(args, " ")
}

// benign: the next call found nothing to do (already connected, not
// connected, no such container), which is an honest answer after a kill.
func benign(out string) bool {
	for _, s := range []string{"already connected", "is not connected", "no container with name or ID", "no such container"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// merge joins two audits, counting a finding seen in both once.
func merge(a, b audit) audit {
	join := func(x, y []string) []string {
		seen := map[string]bool{}
		var out []string
		for _, s := range append(append([]string(nil), x...), y...) {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
		sort.Strings(out)
		return out
	}
	return audit{leaks: join(a.leaks, b.leaks), dups: join(a.dups, b.dups), half: join(a.half, b.half), orphans: join(a.orphans, b.orphans)}
}

// TestPrivilegedKillCNI kills berth-bridge's ADD and DEL at random
// instants, with another container added the whole time. The next call is
// a runtime's: DEL, then the sandbox's namespace goes. Then: no lease,
// host link, map element or record of the killed container, no address
// twice, and ADD and DEL of a new container work.
func TestPrivilegedKillCNI(t *testing.T) {
	for _, verb := range []string{"ADD", "DEL"} {
		t.Run(verb, func(t *testing.T) {
			r := newRig(t)
			w := r.cni()
			anchorID := cniID("anchor")
			anchor := r.container(nettest.RandName("relca"))
			if err := w.call("ADD", anchorID, anchor, 28080); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = w.call("DEL", anchorID, anchor, 28080) })
			live := map[string]*nettest.NS{anchorID: anchor}
			killTrials(t, "cni "+verb, kill{final: func() audit { return w.audit(live) }, trial: func(i int, delay time.Duration) (bool, time.Duration, audit, error, error) {
				id := cniID(fmt.Sprint("k", i, t.Name()))
				ns, gone := r.sandbox(nettest.RandName("relk"))
				if verb == "DEL" {
					if err := w.call("ADD", id, ns, 28081); err != nil {
						return false, 0, audit{}, nil, fmt.Errorf("ADD before the kill: %w", err)
					}
				}
				landed, ran := killRun(t, verb, delay, func() (*proc, error) { return w.startVerb(verb, id, ns, 28081) })
				nextErr := w.call("DEL", id, ns, 28081)
				gone()
				a := w.audit(live)
				probe := cniID(fmt.Sprint("p", i, t.Name()))
				pns, pgone := r.sandbox(nettest.RandName("relp"))
				defer pgone()
				laterErr := w.call("ADD", probe, pns, 28082)
				if laterErr == nil {
					laterErr = w.call("DEL", probe, pns, 28082)
				}
				return landed, ran, a, nextErr, laterErr
			}})
		})
	}
}

func cniID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// diagnose describes what a published port depends on: the host's
// neighbours and port map, the container's interface and routes.
func (w *navWorld) diagnose(c navCtr) string {
	var b strings.Builder
	for _, x := range []struct {
		ns   *nettest.NS
		args []string
	}{
		{w.host, []string{"ip", "neigh"}},
		{w.host, []string{"ip", "-br", "link"}},
		{w.host, []string{"bridge", "fdb", "show", "dynamic"}},
		{w.host, []string{"nft", "list", "map", "inet", "berth", "pf4any"}},
		{c.ns, []string{"ip", "addr"}},
		{c.ns, []string{"ip", "neigh"}},
		{c.ns, []string{"ss", "-tln"}},
	} {
		out, err := nettest.Run(x.ns, 5*time.Second, x.args[0], x.args[1:]...)
		fmt.Fprintf(&b, "--- %s: %v\n%s", strings.Join(x.args, " "), err, out)
	}
	return b.String()
}
