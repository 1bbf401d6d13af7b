package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/nettest"
)

// engWorld is the berth command with directories of its own, one network
// "reln" (198.19.0.0/24) and, when runc and busybox are there, a busybox
// root filesystem for containers.
type engWorld struct {
	*rig
	cfg, run, root, runRoot, conf string
	rootfs                        string
	// sleepArg marks the processes of this test's containers.
	sleepArg string
}

const engNet = "reln"

func (r *rig) engine() *engWorld {
	d := filepath.Join(r.dir, "berth")
	w := &engWorld{rig: r, cfg: filepath.Join(d, "nets"), run: filepath.Join(d, "run"), root: filepath.Join(d, "root"),
		runRoot: filepath.Join(d, "runroot"), conf: filepath.Join(d, "containers.conf"),
		sleepArg: strconv.Itoa(800000000 + rand.IntN(100000000))}
	if err := os.MkdirAll(d, 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(w.conf, []byte("[network]\ndefault_subnet_pools = [{base = \"198.19.128.0/17\", size = 24}]\n"), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		_, _ = w.berth("rm", "-a", "-f")
		_, _ = w.berth("system", "reset", "--force")
		for _, pid := range pidsWithArg(w.sleepArg) {
			killPid(pid)
		}
	})
	if out, err := w.berth("network", "create", "--subnet", "198.19.0.0/24", engNet); err != nil {
		r.t.Fatalf("network create: %v %s", err, out)
	}
	return w
}

// needContainers skips unless containers can run (runc, busybox-static)
// and makes the root filesystem.
func (w *engWorld) needContainers() {
	t := w.t
	if _, err := os.Stat("/usr/sbin/runc"); err != nil {
		t.Skip("needs runc (apt-get install runc)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs busybox-static (/bin/busybox)")
	}
	w.rootfs = filepath.Join(w.dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(w.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.rootfs, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(w.rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *engWorld) argv(args ...string) []string {
	return append([]string{"--network-config-dir", w.cfg, "--network-run-dir", w.run, "--root", w.root, "--runroot", w.runRoot}, args...)
}

func (w *engWorld) env() []string { return []string{"CONTAINERS_CONF=" + w.conf} }

// berth runs the berth command in the host namespace.
func (w *engWorld) berth(args ...string) (string, error) {
	return w.rig.run("", w.env(), w.bins.berth, w.argv(args...)...)
}

// startBerth starts the berth command without waiting.
func (w *engWorld) startBerth(args ...string) (*proc, error) {
	return w.start("", w.env(), w.bins.berth, w.argv(args...)...)
}

// runArgs is `berth run -d` of container name on the network, publishing
// host port 18080.
func (w *engWorld) runArgs(name string) []string {
	return []string{"run", "-d", "--name", name, "--network", engNet, "-p", "18080:80", "--rootfs", w.rootfs, "sleep", w.sleepArg}
}

// audit is what one look at the engine's records, leases and the kernel
// finds wrong.
type audit struct {
	leaks, dups, half, orphans []string
}

func (a audit) all() []string {
	return append(append(append(append([]string(nil), a.leaks...), a.dups...), a.half...), a.orphans...)
}

// audit checks the invariants: every lease belongs to a record; no address
// is leased or configured twice; every attachment a record holds has its
// leases and its address in the namespace; nothing in the kernel or the
// run root belongs to no record (veths, retired links, map elements,
// namespace pins, container processes).
func (w *engWorld) audit() audit {
	t := w.t
	t.Helper()
	var a audit
	// Records: engine containers as `berth ps -a` lists them (short IDs)
	// and every record with attachments (registered namespaces too).
	out, err := w.berth("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}")
	if err != nil {
		t.Fatalf("ps -a: %v %s", err, out)
	}
	live := map[string]bool{} // short IDs
	names := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			live[shortOf(f[0])], names[f[1]] = true, true
		}
	}
	e, err := engine.New(engine.EngineConfig{Root: w.root, RunRoot: w.runRoot})
	if err != nil {
		t.Fatal(err)
	}
	attached, err := e.Attached()
	if err != nil {
		t.Fatalf("records: %v", err)
	}
	leases := w.leases()
	leased := map[string]int{} // "id ip" -> count
	byIP := map[string][]string{}
	for _, l := range leases {
		byIP[l.IP.String()] = append(byIP[l.IP.String()], shortOf(l.ContainerID))
		leased[shortOf(l.ContainerID)+" "+l.IP.String()]++
	}
	for _, c := range attached {
		live[c.ShortID()], names[c.Config.Name] = true, true
	}
	for _, l := range leases {
		if !live[shortOf(l.ContainerID)] {
			a.leaks = append(a.leaks, fmt.Sprintf("lease %s of %s (no record)", l.IP, shortOf(l.ContainerID)))
		}
	}
	for ip, owners := range byIP {
		if len(owners) > 1 {
			a.dups = append(a.dups, fmt.Sprintf("%s leased to %v", ip, owners))
		}
	}
	configured := map[string]string{}
	veths := 0
	for _, c := range attached {
		have := map[string]bool{}
		if c.State.NetNS != "" {
			as, err := addrsIn(c.State.NetNS)
			if err != nil {
				a.half = append(a.half, fmt.Sprintf("%s: namespace %s: %v", c.Config.Name, c.State.NetNS, err))
			}
			for _, ip := range as {
				have[ip.String()] = true
				if o, dup := configured[ip.String()]; dup {
					a.dups = append(a.dups, fmt.Sprintf("%s configured in %s and %s", ip, o, c.Config.Name))
				}
				configured[ip.String()] = c.Config.Name
			}
		}
		for _, at := range c.State.Attachments {
			veths++
			if len(at.Opts.StaticIPs) == 0 {
				a.half = append(a.half, fmt.Sprintf("%s on %s without an address", c.Config.Name, at.Network.Name))
			}
			for _, ip := range at.Opts.StaticIPs {
				if leased[c.ShortID()+" "+ip.String()] == 0 {
					a.half = append(a.half, fmt.Sprintf("%s on %s: %s not leased", c.Config.Name, at.Network.Name, ip))
				}
				if !have[ip.String()] {
					a.half = append(a.half, fmt.Sprintf("%s on %s: %s not in its namespace", c.Config.Name, at.Network.Name, ip))
				}
			}
		}
	}
	a.orphans = append(a.orphans, w.kernelOrphans(veths, live, names)...)
	return a
}

// kernelOrphans lists host links, map elements, namespace pins and
// container processes no record accounts for.
func (w *engWorld) kernelOrphans(veths int, live, names map[string]bool) []string {
	var out []string
	ls := w.settledLinks(veths)
	if v := len(ls["veth"]); v > veths {
		out = append(out, fmt.Sprintf("%d host veths for %d attachments (%s)", v, veths, strings.Join(ls["veth"], " ")))
	}
	for _, k := range []string{"retired", "other"} {
		for _, l := range ls[k] {
			out = append(out, k+" link "+l)
		}
	}
	for _, el := range w.nft().elements {
		if !live[el] {
			out = append(out, "nft element "+el)
		}
	}
	pins, _ := os.ReadDir(filepath.Join(w.runRoot, "netns"))
	for _, p := range pins {
		n := p.Name()
		if !names[n] && !live[strings.TrimPrefix(n, "berth-")] {
			out = append(out, "netns pin "+n)
		}
	}
	e, err := engine.New(engine.EngineConfig{Root: w.root, RunRoot: w.runRoot})
	if err != nil {
		w.t.Fatal(err)
	}
	cs, err := e.Attached()
	if err != nil {
		w.t.Fatal(err)
	}
	pids := map[int]bool{}
	for _, c := range cs {
		pids[c.State.Pid] = true
	}
	if ps, err := w.berth("ps", "-q", "--no-trunc"); err == nil {
		for _, id := range strings.Fields(ps) {
			if out, err := w.berth("inspect", "--format", "{{.State.Pid}}", id); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(out))
				pids[pid] = true
			}
		}
	}
	for _, pid := range pidsWithArg(w.sleepArg) {
		if !pids[pid] && !pids[parentOf(pid)] {
			out = append(out, fmt.Sprintf("process %d", pid))
		}
	}
	return out
}

// parentOf returns a process's parent PID (0 when unknown).
func parentOf(pid int) int {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(st)
	i := strings.LastIndex(s, ")")
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

func (w *engWorld) leases() []ipam.Lease {
	alloc, err := ipam.New(filepath.Join(w.run, "ipam.db"))
	if err != nil {
		w.t.Fatal(err)
	}
	ls, err := alloc.Dump()
	if err != nil && !os.IsNotExist(err) {
		w.t.Fatalf("leases: %v", err)
	}
	return ls
}

// registered makes a namespace for `berth network connect --netns`.
func (w *engWorld) registered(name string) *nettest.NS {
	return w.container(name)
}

// settle gives the monitor of a container started with run -d time to
// record what it does; used before auditing.
func settle() { time.Sleep(50 * time.Millisecond) }
