package reliability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/nettest"
)

// hostAddr is the "host" end of the veth to the "outside" client.
const (
	hostAddr    = "198.18.0.1"
	outsideAddr = "198.18.0.2"
)

// rig is a "host" namespace, where the programs run and berth keeps its
// bridge and firewall, joined to an "outside" client namespace by a veth.
type rig struct {
	t       *testing.T
	bins    bins
	host    *nettest.NS
	outside *nettest.NS
	dir     string // berth's directories live under it
}

func newRig(t *testing.T) *rig {
	t.Helper()
	nettest.Privileged(t)
	if !onPath("nsenter") || !onPath("nft") {
		t.Skip("needs nsenter (util-linux) and nft (nftables)")
	}
	r := &rig{t: t, bins: programs(t), dir: t.TempDir()}
	t.Cleanup(func() { settleDir(t, r.dir) }) // runs before the directory goes
	r.host = nettest.NewNS(t, nettest.RandName("relh"))
	r.outside = nettest.NewNS(t, nettest.RandName("relo"))
	nettest.Connect(t, r.host, "uplink0", netip.MustParsePrefix(hostAddr+"/24"), r.outside, "eth0", netip.MustParsePrefix(outsideAddr+"/24"))
	return r
}

// container makes a namespace for one container; it goes with the test.
func (r *rig) container(name string) *nettest.NS {
	return nettest.NewNS(r.t, name)
}

// sandbox makes a namespace for one container that the test removes when
// the container is done, as a runtime removes a sandbox's namespace after
// its teardown (or DEL): what berth left inside it goes with it, what it
// left in the host stays. gone removes it (again: no-op); the test's end
// does too.
func (r *rig) sandbox(name string) (ns *nettest.NS, gone func()) {
	r.t.Helper()
	path := filepath.Join(r.t.TempDir(), name)
	n, err := netns.NewPinned(path)
	if err != nil {
		r.t.Fatalf("create namespace %s: %v", name, err)
	}
	done := false
	gone = func() {
		if !done {
			done = true
			n.Close()
			_ = netns.Unpin(path)
		}
	}
	r.t.Cleanup(gone)
	return &nettest.NS{NetNS: n, Name: name}, gone
}

// proc is one program run inside the host namespace.
type proc struct {
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     chan struct{}
	state    *os.ProcessState
}

// start starts a program in the host namespace with stdin and extra
// environment, in a process group of its own (so what it leaves running in
// its group can be waited for after a kill).
func (r *rig) start(stdin string, env []string, name string, args ...string) (*proc, error) {
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command("nsenter", append([]string{"--net=" + r.host.Path(), "--", name}, args...)...)
	p.cmd.Stdin = strings.NewReader(stdin)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// wait waits for the program and returns its error (with its output).
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s: timed out after %v", p.name(), timeout)
	}
	if !p.state.Success() {
		return fmt.Errorf("%s: %v: %s%s", p.name(), p.state, p.out.String(), p.err.String())
	}
	return nil
}

// name is the program's base name and its last argument (the verb or the
// namespace), enough to tell calls apart in a message.
func (p *proc) name() string {
	a := p.cmd.Args
	return filepath.Base(a[3]) + " " + filepath.Base(a[len(a)-1])
}

// killAfter sends SIGKILL to the program (not its children) after d and
// reports whether the kill landed while it still ran. It then waits up to
// 5 s for the rest of its process group (helpers it started and did not
// detach) to end, as a runtime's next call comes after the failed one.
func (p *proc) killAfter(d time.Duration) (landed bool) {
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		landed = true
	}
	pgid := p.cmd.Process.Pid
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if syscall.Kill(-pgid, 0) != nil {
			break
		}
	}
	return landed
}

// run runs a program in the host namespace and waits for it.
func (r *rig) run(stdin string, env []string, name string, args ...string) (string, error) {
	p, err := r.start(stdin, env, name, args...)
	if err != nil {
		return "", err
	}
	err = p.wait(60 * time.Second)
	return p.out.String() + p.err.String(), err
}

// hostLinks returns the host's links by kind: "veth", "bridge", "retired"
// (links teardown renamed for the reaper) and "other" (not lo or the uplink).
func (r *rig) hostLinks() map[string][]string {
	return linksIn(r.t, r.host.NetNS)
}

func linksIn(t *testing.T, ns *netns.NetNS) map[string][]string {
	t.Helper()
	h, err := link.NewHandle(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	defer h.Close()
	// A dump the kernel interrupts (links come and go meanwhile: the
	// reaper) is taken again.
	ls, err := h.LinkList()
	for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 20; try++ {
		time.Sleep(5 * time.Millisecond)
		ls, err = h.LinkList()
	}
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	out := map[string][]string{}
	for _, l := range ls {
		name := l.Attrs().Name
		switch {
		case name == "lo" || name == "uplink0":
		case strings.HasPrefix(name, "brtgone"):
			out["retired"] = append(out["retired"], name)
		case l.Type() == "veth":
			out["veth"] = append(out["veth"], name)
		case l.Type() == "bridge":
			out["bridge"] = append(out["bridge"], name)
		default:
			out["other"] = append(out["other"], name+"("+l.Type()+")")
		}
	}
	return out
}

// settledLinks is hostLinks once retired links are gone (the reaper
// deletes them within moments) and at most maxVeths veths are left (the
// kernel removes the veths of a deleted namespace a moment after), or
// after 3 s with whatever is left.
func (r *rig) settledLinks(maxVeths int) map[string][]string {
	deadline := time.Now().Add(3 * time.Second)
	for {
		ls := r.hostLinks()
		if len(ls["retired"]) == 0 && len(ls["veth"]) <= maxVeths || time.Now().After(deadline) {
			return ls
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addrsIn returns the global addresses in the namespace at path.
func addrsIn(path string) ([]netip.Addr, error) {
	ns, err := netns.Open(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := link.NewHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ps, err := h.Addrs()
	for try := 0; errors.Is(err, netlink.ErrDumpInterrupted) && try < 20; try++ {
		time.Sleep(5 * time.Millisecond)
		ps, err = h.Addrs()
	}
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, p := range ps {
		if a := p.Addr(); a.IsGlobalUnicast() {
			out = append(out, a)
		}
	}
	return out, nil
}

// nftState is what the host's ruleset holds: map elements by their comment
// (berth tags each with the container's short ID), the number of rules and
// of tables.
type nftState struct {
	elements []string
	rules    int
	tables   int
	lines    int
}

func (r *rig) nft() nftState {
	r.t.Helper()
	var st nftState
	text, err := nettest.Run(r.host, 10*time.Second, "nft", "list", "ruleset")
	if err != nil {
		r.t.Fatalf("nft list ruleset: %v %s", err, text)
	}
	st.lines = strings.Count(text, "\n")
	out, err := nettest.Run(r.host, 10*time.Second, "nft", "-j", "list", "ruleset")
	if err != nil {
		r.t.Fatalf("nft -j list ruleset: %v %s", err, out)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		r.t.Fatalf("nft json: %v", err)
	}
	for _, o := range doc.Nftables {
		if _, ok := o["rule"]; ok {
			st.rules++
		}
		if _, ok := o["table"]; ok {
			st.tables++
		}
		for _, k := range []string{"map", "set"} {
			if raw, ok := o[k]; ok {
				st.elements = append(st.elements, elementComments(raw)...)
			}
		}
	}
	sort.Strings(st.elements)
	return st
}

// elementComments returns the comments of a map's or set's elements (a
// map element is [key, value]); an element without one counts as "-",
// plain set members (bridge names) not at all.
func elementComments(raw json.RawMessage) []string {
	var m struct {
		Elem []json.RawMessage `json:"elem"`
	}
	_ = json.Unmarshal(raw, &m)
	var out []string
	for _, e := range m.Elem {
		var s string
		if json.Unmarshal(e, &s) == nil {
			continue
		}
		var pair []json.RawMessage
		if json.Unmarshal(e, &pair) == nil && len(pair) > 0 {
			e = pair[0]
		}
		var w struct {
			Elem struct {
				Comment string `json:"comment"`
			} `json:"elem"`
		}
		_ = json.Unmarshal(e, &w)
		if w.Elem.Comment == "" {
			out = append(out, "-")
			continue
		}
		out = append(out, w.Elem.Comment)
	}
	return out
}

// stateIDs returns the container IDs berth's state database (netavark and
// CNI front-ends) holds: keys of "containers" and container keys under
// "members". It returns nil when there is no database.
func stateIDs(t *testing.T, path string) []string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	db, err := bolt.Open(path, 0o644, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	seen := map[string]bool{}
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("containers")); b != nil {
			_ = b.ForEach(func(k, _ []byte) error { seen[string(k)] = true; return nil })
		}
		if b := tx.Bucket([]byte("members")); b != nil {
			_ = b.ForEachBucket(func(net []byte) error {
				return b.Bucket(net).ForEach(func(k, _ []byte) error { seen[string(k)] = true; return nil })
			})
		}
		return nil
	})
	var out []string
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// countFiles counts regular files under dir (0 when it does not exist).
func countFiles(dir string) int {
	n := 0
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// procStats returns a process's resident set in KiB and its open fds.
func procStats(pid int) (rssKiB, fds int, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			rssKiB, _ = strconv.Atoi(f[1])
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return rssKiB, len(ents), err
}

// pidFile reads a PID file; 0 when there is none.
func pidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(st)
	if i := strings.LastIndex(s, ")"); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

// killPid ends a process the test started (directly or through the
// programs under test), by PID.
func killPid(pid int) {
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// pidsWithArg returns the processes whose command line contains arg.
func pidsWithArg(arg string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cl, []byte(arg)) && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// fetch connects from the outside namespace to a published port and
// returns what the server there sends.
func (r *rig) fetch(port int) (string, error) {
	return nettest.FetchWithin(r.outside, "tcp4", fmt.Sprintf("%s:%d", hostAddr, port), time.Second)
}

// serveBanner runs a banner server on port 80 in ns until the test ends.
func serveBanner(t *testing.T, ns *nettest.NS, banner string) {
	nettest.ServeBanner(nettest.Listen(t, ns, "tcp4", "0.0.0.0:80"), banner)
}

// settleDir waits for the processes still working in dir (a killed
// command's container monitor and its runc, which run in sessions of their
// own and finish after the kill) to exit, so that dir can be removed. It
// kills, by PID, those still there after 20 s, and detaches mounts left
// under dir (runc bind-mounts its own binary there for an instant).
func settleDir(t *testing.T, dir string) {
	for deadline := time.Now().Add(20 * time.Second); len(pidsWithArg(dir)) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range pidsWithArg(dir) {
		t.Logf("killing process %d, still running in the test's directory", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			t.Logf("detaching mount %s left in the test's directory", f[4])
			_ = syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
}
