package engine

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Stats is one sample of a container's resource use, as podman stats
// reports it.
type Stats struct {
	ID, Name string
	// CPUNanos is the CPU time used so far, At when the sample was
	// taken, Started the container's start.
	CPUNanos   uint64
	At         time.Time
	Started    time.Time
	MemUsage   uint64
	MemLimit   uint64
	NetInput   uint64
	NetOutput  uint64
	BlockInput uint64
	BlockOut   uint64
	PIDs       uint64
}

// unlimited is above any real memory limit (cgroup v1 shows "no limit"
// as a page-rounded max int64).
const unlimited = 1 << 62

// Stats samples a running container: its cgroup's CPU, memory, block I/O
// and process counts, and its network namespace's interface counters.
func (e *Engine) Stats(ref string) (Stats, error) {
	c, err := e.Get(ref)
	if err != nil {
		return Stats{}, err
	}
	s := Stats{ID: c.Config.ID, Name: c.Config.Name, At: e.cfg.Now(), Started: c.State.StartedAt}
	if !c.Running() || c.State.Pid == 0 {
		return s, nil
	}
	pid := c.State.Pid
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev"); err == nil {
		s.NetInput, s.NetOutput = parseNetDev(string(b))
	}
	cg, ok := containerCgroup(c)
	if !ok {
		return s, nil // rootless: no cgroup of its own; or gone meanwhile
	}
	if cg.V2 {
		readCgroupV2(cg.Dir(""), &s)
	} else {
		readCgroupV1(cg, &s)
	}
	if s.MemLimit == 0 || s.MemLimit >= unlimited {
		s.MemLimit = hostMemory()
	}
	return s, nil
}

func readUint(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// readKeyed reads a "key value" file (memory.stat, cpu.stat).
func readKeyed(path string) map[string]uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return parseKeyed(string(b))
}

func parseKeyed(s string) map[string]uint64 {
	out := map[string]uint64{}
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				out[f[0]] = n
			}
		}
	}
	return out
}

func readCgroupV1(cg Cgroup, s *Stats) {
	if d := cg.Dir("memory"); d != "" {
		usage := readUint(filepath.Join(d, "memory.usage_in_bytes"))
		inactive := readKeyed(filepath.Join(d, "memory.stat"))["total_inactive_file"]
		if inactive < usage {
			usage -= inactive
		}
		s.MemUsage = usage
		s.MemLimit = readUint(filepath.Join(d, "memory.limit_in_bytes"))
	}
	if d := cg.Dir("cpuacct"); d != "" {
		s.CPUNanos = readUint(filepath.Join(d, "cpuacct.usage"))
	}
	if d := cg.Dir("pids"); d != "" {
		s.PIDs = readUint(filepath.Join(d, "pids.current"))
	}
	if d := cg.Dir("blkio"); d != "" {
		b, _ := os.ReadFile(filepath.Join(d, "blkio.throttle.io_service_bytes"))
		s.BlockInput, s.BlockOut = parseBlkioV1(string(b))
	}
}

func readCgroupV2(d string, s *Stats) {
	usage := readUint(filepath.Join(d, "memory.current"))
	if inactive := readKeyed(filepath.Join(d, "memory.stat"))["inactive_file"]; inactive < usage {
		usage -= inactive
	}
	s.MemUsage = usage
	if b, err := os.ReadFile(filepath.Join(d, "memory.max")); err == nil && strings.TrimSpace(string(b)) != "max" {
		s.MemLimit, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	s.CPUNanos = readKeyed(filepath.Join(d, "cpu.stat"))["usage_usec"] * 1000
	s.PIDs = readUint(filepath.Join(d, "pids.current"))
	b, _ := os.ReadFile(filepath.Join(d, "io.stat"))
	s.BlockInput, s.BlockOut = parseIOStatV2(string(b))
}

// parseBlkioV1 sums the Read and Write lines of
// blkio.throttle.io_service_bytes ("MAJ:MIN Read N").
func parseBlkioV1(s string) (read, write uint64) {
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

// parseIOStatV2 sums rbytes and wbytes of io.stat
// ("MAJ:MIN rbytes=N wbytes=N ...").
func parseIOStatV2(s string) (read, write uint64) {
	for _, l := range strings.Split(s, "\n") {
		for _, kv := range strings.Fields(l) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				write += n
			}
		}
	}
	return read, write
}

// parseNetDev sums the received and sent bytes of /proc/PID/net/dev over
// every interface but lo.
func parseNetDev(s string) (rx, tx uint64) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 == nil && err2 == nil {
			rx, tx = rx+r, tx+t
		}
	}
	return rx, tx
}

// hostMemory is the host's memory in bytes (MemTotal).
func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}
