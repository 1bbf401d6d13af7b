package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Proc is what top shows of one process, read from /proc.
type Proc struct {
	Pid, PPid     int // on the host
	NSPid, NSPPid int // in the container's pid namespace (0: outside it)
	UID, GID      int // effective
	RUID, RGID    int
	Nice          int
	State         string
	Comm          string
	Args          []string
	TTY           uint64 // tty_nr
	CPU           time.Duration
	Elapsed       time.Duration
	VSZ           uint64 // KiB
}

// ClockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times.
const ClockTicks = 100

// procStat is what parseProcStat takes from /proc/PID/stat.
type procStat struct {
	comm, state          string
	ppid, nice           int
	ttyNr                uint64
	utime, stime, starts uint64 // ticks
	vsize                uint64 // bytes
}

// parseProcStat parses /proc/PID/stat (the command may hold spaces and
// parentheses: it ends at the last ')').
func parseProcStat(s string) (procStat, error) {
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i {
		return procStat{}, errors.New("malformed stat")
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 21 {
		return procStat{}, errors.New("short stat")
	}
	var st procStat
	st.comm, st.state = s[i+1:j], f[0]
	var errs [7]error
	st.ppid, errs[0] = strconv.Atoi(f[1])
	st.ttyNr, errs[1] = strconv.ParseUint(f[4], 10, 64)
	st.utime, errs[2] = strconv.ParseUint(f[11], 10, 64)
	st.stime, errs[3] = strconv.ParseUint(f[12], 10, 64)
	st.nice, errs[4] = strconv.Atoi(f[16])
	st.starts, errs[5] = strconv.ParseUint(f[19], 10, 64)
	st.vsize, errs[6] = strconv.ParseUint(f[20], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, fmt.Errorf("malformed stat: %w", err)
	}
	return st, nil
}

// procStatus is what parseProcStatus takes from /proc/PID/status.
type procStatus struct {
	ruid, euid, rgid, egid int
	nspid                  []int
}

// parseProcStatus parses the Uid, Gid and NSpid lines of /proc/PID/status.
func parseProcStatus(s string) procStatus {
	var st procStatus
	ints := func(v string) []int {
		var out []int
		for _, f := range strings.Fields(v) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil
			}
			out = append(out, n)
		}
		return out
	}
	for _, l := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n := ints(v)
		switch {
		case k == "Uid" && len(n) >= 2:
			st.ruid, st.euid = n[0], n[1]
		case k == "Gid" && len(n) >= 2:
			st.rgid, st.egid = n[0], n[1]
		case k == "NSpid":
			st.nspid = n
		}
	}
	return st
}

// readProc reads one process; uptime is the system's.
func readProc(pid int, uptime time.Duration) (Proc, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Proc{}, err
	}
	st, err := parseProcStat(string(b))
	if err != nil {
		return Proc{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	sb, err := os.ReadFile(dir + "/status")
	if err != nil {
		return Proc{}, err
	}
	ss := parseProcStatus(string(sb))
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	p := Proc{
		Pid: pid, PPid: st.ppid, UID: ss.euid, GID: ss.egid, RUID: ss.ruid, RGID: ss.rgid,
		Nice: st.nice, State: st.state, Comm: st.comm, TTY: st.ttyNr, VSZ: st.vsize / 1024,
		CPU:     time.Duration(st.utime+st.stime) * time.Second / ClockTicks,
		Elapsed: uptime - time.Duration(st.starts)*time.Second/ClockTicks,
		Args:    strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"),
	}
	if len(cmdline) == 0 {
		p.Args = nil
	}
	if n := len(ss.nspid); n > 0 {
		p.NSPid = ss.nspid[n-1]
	}
	return p, nil
}

// uptime is the system's uptime.
func uptime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("/proc/uptime: empty")
	}
	s, err := strconv.ParseFloat(f[0], 64)
	return time.Duration(s * float64(time.Second)), err
}

// Top returns the container's processes, its init first: the members of
// its cgroup, else the processes in its init's pid namespace.
func (e *Engine) Top(ref string) (*Container, []Proc, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	if !c.Running() || c.State.Pid == 0 {
		return c, nil, fmt.Errorf("top can only be used on running containers: %w", ErrRunning)
	}
	pids, err := containerPids(c)
	if err != nil {
		return c, nil, err
	}
	up, err := uptime()
	if err != nil {
		return c, nil, err
	}
	var out []Proc
	nspid := map[int]int{}
	for _, pid := range pids {
		p, err := readProc(pid, up)
		if err != nil {
			continue // exited meanwhile
		}
		nspid[pid] = p.NSPid
		out = append(out, p)
	}
	for i := range out {
		out[i].NSPPid = nspid[out[i].PPid]
	}
	return c, out, nil
}

// containerPids lists the processes of the container: its cgroup's
// members, else (rootless) those in its init's pid namespace.
func containerPids(c *Container) ([]int, error) {
	pid := c.State.Pid
	if cg, ok := containerCgroup(c); ok {
		for _, ctl := range []string{"pids", "memory", "cpuacct", "freezer", ""} {
			if d := cg.Dir(ctl); d != "" && d != "/" {
				if pids, err := readPids(filepath.Join(d, "cgroup.procs")); err == nil && slices.Contains(pids, pid) {
					return pids, nil
				}
			}
		}
	}
	return pidNamespaceMembers(pid)
}

// readPids reads a cgroup.procs file, sorted.
func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// pidNamespaceMembers lists the processes in pid's pid namespace.
func pidNamespaceMembers(pid int) ([]int, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, d := range ents {
		n, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + d.Name() + "/ns/pid"); err == nil && l == ns {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}
