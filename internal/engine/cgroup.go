package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Cgroup is where a process's cgroup files are: one directory per
// controller on cgroup v1 (V2 false), one directory on v2.
type Cgroup struct {
	V2 bool
	// Dirs maps a v1 controller (memory, cpuacct, pids, blkio, freezer)
	// to its directory; "" is the unified (v2) directory.
	Dirs map[string]string
}

// Dir is the directory of controller ("" or any controller on v2).
func (c Cgroup) Dir(controller string) string {
	if c.V2 {
		return c.Dirs[""]
	}
	return c.Dirs[controller]
}

// parseProcCgroup parses /proc/PID/cgroup: controller to path ("" for the
// unified hierarchy).
func parseProcCgroup(data string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(data, "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[strings.TrimPrefix(c, "name=")] = parts[2]
		}
	}
	return out
}

// cgroupMount is one cgroup file system mount: its root in the hierarchy
// and where it is mounted.
type cgroupMount struct{ root, point string }

// parseCgroupMounts parses /proc/self/mountinfo for cgroup file systems:
// controller to mount ("" for cgroup2).
func parseCgroupMounts(data string) map[string]cgroupMount {
	out := map[string]cgroupMount{}
	for _, l := range strings.Split(data, "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		m := cgroupMount{root: unescapeMount(f[3]), point: filepath.Clean(unescapeMount(f[4]))}
		if !filepath.IsAbs(m.root) || !filepath.IsAbs(m.point) {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out[""] = m
		case "cgroup":
			for _, o := range strings.Split(g[2], ",") {
				switch o {
				case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec":
				default:
					out[strings.TrimPrefix(o, "name=")] = m
				}
			}
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupDirs joins a process's cgroup paths with the mounts.
func cgroupDirs(paths map[string]string, mounts map[string]cgroupMount) Cgroup {
	cg := Cgroup{Dirs: map[string]string{}}
	for ctl, p := range paths {
		m, ok := mounts[ctl]
		if !ok {
			continue
		}
		rel, err := filepath.Rel(m.root, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		cg.Dirs[ctl] = filepath.Join(m.point, rel)
	}
	_, hasMemory := cg.Dirs["memory"]
	if _, ok := cg.Dirs[""]; ok && !hasMemory {
		cg.V2 = true
	}
	return cg
}

// CgroupOf returns the cgroup directories of process pid.
func CgroupOf(pid int) (Cgroup, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return Cgroup{}, err
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Cgroup{}, err
	}
	return cgroupDirs(parseProcCgroup(string(b)), parseCgroupMounts(string(mi))), nil
}

// containerCgroup returns the cgroup of the container's init when it is
// the container's own (its path names the container, as the spec's
// /berth/ID does); a rootless container has none and shares its user's.
func containerCgroup(c *Container) (Cgroup, bool) {
	cg, err := CgroupOf(c.State.Pid)
	if err != nil {
		return Cgroup{}, false
	}
	for ctl, d := range cg.Dirs {
		if !strings.Contains(d, c.Config.ID) {
			delete(cg.Dirs, ctl)
		}
	}
	return cg, len(cg.Dirs) > 0
}
