package rootless

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// FuzzIDMaps: no /etc/subuid text or /proc/PID/uid_map text makes the
// parsers panic. The user's ranges are the file's valid lines for that
// user, positive, in order; the newuidmap arguments built from them map
// exactly the IDs Mapped reports; an ID map written back parses to itself.
func FuzzIDMaps(f *testing.F) {
	for _, s := range []string{
		"alice:100000:65536\nbob:165536:65536\n",
		"# comment\n1000:200000:1000\nalice:300000:10\n\nalice:x:1\nalice:-5:10\nalice:1:0\nalice:1:2:3\n",
		"         0          0 4294967295\n",
		"         0       1000          1\n         1     100000      65536\n",
		"0 0 1\n1 2\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ranges := ParseSubIDs(text, "alice", 1000)
		total := 0
		for _, r := range ranges {
			if r.Start < 0 || r.Count <= 0 {
				t.Fatalf("range %+v accepted", r)
			}
			total += r.Count
		}
		if len(ranges) > 0 && total > 0 && total < 1<<40 {
			args := MapArgs(1000, ranges)
			if len(args) != 3*(len(ranges)+1) {
				t.Fatalf("map args %v for %d ranges", args, len(ranges))
			}
			// The triples of MapArgs are an ID map; it must agree with Mapped.
			var m [][3]int
			for i := 0; i+2 < len(args); i += 3 {
				var tr [3]int
				for j := range tr {
					tr[j], _ = strconv.Atoi(args[i+j])
				}
				m = append(m, tr)
			}
			for _, id := range []int{0, 1, total, total + 1} {
				if InMap(m, id) != Mapped(id, ranges) {
					t.Fatalf("id %d: map %v and Mapped disagree", id, m)
				}
			}
		}
		m, err := ParseIDMap(text)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, tr := range m {
			fmt.Fprintf(&b, "%d %d %d\n", tr[0], tr[1], tr[2])
		}
		again, err := ParseIDMap(b.String())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(m) {
			t.Fatalf("id map %v does not round-trip: %v, %v", m, again, err)
		}
	})
}
