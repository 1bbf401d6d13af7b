// Package rootless runs berth for an unprivileged user the way rootless
// Podman does: a user namespace that maps the user to root and the user's
// subordinate IDs (/etc/subuid, /etc/subgid, through newuidmap and
// newgidmap) to the IDs after it, with a private mount namespace, both kept
// alive by a pause process that every later berth command joins (nsenter).
// Inside, berth is root of that namespace: it creates network namespaces,
// runs runc and its monitor, and keeps its state under the user's
// directories.
package rootless

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// IDRange is a range of subordinate IDs: Count IDs from Start.
type IDRange struct {
	Start, Count int
}

// ParseSubIDs returns the ranges of a /etc/subuid or /etc/subgid file that
// belong to the user, named by name or by numeric ID, in file order.
// Malformed lines are skipped, as shadow-utils does.
func ParseSubIDs(content, name string, id int) []IDRange {
	var out []IDRange
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 {
			continue
		}
		if f[0] != name && f[0] != strconv.Itoa(id) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || start < 0 || count <= 0 {
			continue
		}
		out = append(out, IDRange{Start: start, Count: count})
	}
	return out
}

// MapArgs returns the arguments of newuidmap/newgidmap after the PID: the
// user's own ID as 0, then the subordinate ranges from 1 on.
func MapArgs(own int, ranges []IDRange) []string {
	args := []string{"0", strconv.Itoa(own), "1"}
	next := 1
	for _, r := range ranges {
		args = append(args, strconv.Itoa(next), strconv.Itoa(r.Start), strconv.Itoa(r.Count))
		next += r.Count
	}
	return args
}

// Mapped reports whether id (inside the namespace) is covered by the
// mapping that MapArgs builds from ranges.
func Mapped(id int, ranges []IDRange) bool {
	if id == 0 {
		return true
	}
	total := 0
	for _, r := range ranges {
		total += r.Count
	}
	return id >= 1 && id <= total
}

// ParseIDMap parses /proc/PID/uid_map or gid_map into (inside, outside,
// count) triples.
func ParseIDMap(content string) ([][3]int, error) {
	var out [][3]int
	for _, line := range strings.Split(strings.TrimSpace(content), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("id map line %q: want 3 fields", line)
		}
		var t [3]int
		for i := range f {
			v, err := strconv.Atoi(f[i])
			if err != nil {
				return nil, fmt.Errorf("id map line %q: %w", line, err)
			}
			t[i] = v
		}
		out = append(out, t)
	}
	return out, nil
}

// InMap reports whether id (inside) is covered by the map.
func InMap(m [][3]int, id int) bool {
	for _, t := range m {
		if id >= t[0] && id < t[0]+t[2] {
			return true
		}
	}
	return false
}
