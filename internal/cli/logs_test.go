package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/ctrlog"
)

func TestParseLogTime(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	cases := []struct {
		in    string
		since bool
		want  time.Time
	}{
		{"2026-01-02T03:04:05Z", true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"2026-01-02T03:04:05.5+01:00", true, time.Date(2026, 1, 2, 2, 4, 5, 5e8, time.UTC)},
		{"2026-01-02", true, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"2026-01-02T03:04:05", true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"1700000000", true, time.Unix(1700000000, 0)},
		{"1700000000.25", true, time.Unix(1700000000, 25e7)},
		{"10m", true, now.Add(-10 * time.Minute)},
		{"10m", false, now.Add(10 * time.Minute)},
	}
	for _, c := range cases {
		got, err := parseLogTime(c.in, now, c.since)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseLogTime(%q, %v) = %v, %v; want %v", c.in, c.since, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "10 minutes", "2026-13-01"} {
		if _, err := parseLogTime(bad, now, true); err == nil {
			t.Errorf("parseLogTime(%q) accepted", bad)
		}
	}
	if _, err := (logsFlags{since: "soon"}).window(now); err == nil {
		t.Error("--since soon accepted")
	}
}

func FuzzParseLogTime(f *testing.F) {
	for _, s := range []string{"2026-01-02T03:04:05Z", "2026-01-02", "1700000000.5", "-1e300", "10m", "NaN", "x"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		since, err1 := parseLogTime(s, now, true)
		until, err2 := parseLogTime(s, now, false)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%q: since error %v, until error %v", s, err1, err2)
		}
		// a time is the same for both; a duration goes back for --since
		// and forward for --until by the same amount
		if err1 == nil && !since.Equal(until) && since.Sub(now) != -until.Sub(now) {
			t.Fatalf("%q: since %v and until %v are not now -/+ one duration", s, since, until)
		}
	})
}

// TestLogPrinter prints a k8s-file log of two containers as berth logs
// does: prefixes with several containers, partial lines joined, the
// --since/--until window, --tail and each line to its stream.
func TestLogPrinter(t *testing.T) {
	dir := t.TempDir()
	log := "2026-01-02T03:04:05.000000001Z stdout F first\n" +
		"2026-01-02T03:04:06Z stderr P par\n" +
		"2026-01-02T03:04:06.5Z stderr F tial\n" +
		"garbage\n" +
		"2026-01-02T03:04:07Z stdout F third\n" +
		"2026-01-02T03:04:08Z stdout P still being writ"
	path := filepath.Join(dir, "ctr.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(prefix string, ts bool, win logWindow, tail int) (string, string) {
		var stdout, stderr bytes.Buffer
		p := &logPrinter{out: &logOut{stdout: &stdout, stderr: &stderr}, prefix: prefix, timestamps: ts, win: win, r: ctrlog.Open(path)}
		defer p.close()
		p.printTail(tail)
		return stdout.String(), stderr.String()
	}
	if o, e := run("", false, logWindow{}, -1); o != "first\nthird\n" || e != "partial\n" {
		t.Errorf("plain: stdout %q stderr %q", o, e)
	}
	if o, e := run("0123456789ab ", true, logWindow{}, -1); o != "0123456789ab 2026-01-02T03:04:05.000000001Z first\n0123456789ab 2026-01-02T03:04:07Z third\n" ||
		e != "0123456789ab 2026-01-02T03:04:06.5Z partial\n" {
		t.Errorf("prefixed: stdout %q stderr %q", o, e)
	}
	win := logWindow{since: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), until: time.Date(2026, 1, 2, 3, 4, 6, 5e8, time.UTC)}
	if o, e := run("", false, win, -1); o != "" || e != "partial\n" {
		t.Errorf("window: stdout %q stderr %q", o, e)
	}
	if o, e := run("web ", false, logWindow{}, 1); o != "web third\n" || e != "" {
		t.Errorf("tail 1: stdout %q stderr %q", o, e)
	}
}
