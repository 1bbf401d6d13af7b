package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/engine"
)

func TestParseCopyArg(t *testing.T) {
	for _, tc := range []struct {
		in, ctr, path string
	}{
		{"ctr:/etc/hosts", "ctr", "/etc/hosts"},
		{"ctr:rel", "ctr", "rel"},
		{"/abs:with:colons", "", "/abs:with:colons"},
		{"./ctr:x", "", "./ctr:x"},
		{"plain", "", "plain"},
		{"-", "", "-"},
		{"ctr:", "ctr", ""},
		{"", "", ""},
	} {
		got := parseCopyArg(tc.in)
		if got.Container != tc.ctr || got.Path != tc.path {
			t.Errorf("parseCopyArg(%q) = %+v", tc.in, got)
		}
	}
	for _, tc := range []struct{ src, dst, want string }{
		{"a", "b", "you must use just one container"},
		{"a:/x", "b:/y", "copying between containers is not supported"},
		{"a:", "/tmp", "you must specify paths"},
		{"a:-", "/tmp", "tar stream on the host side only"},
	} {
		if _, _, err := copyEnds(tc.src, tc.dst); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("copyEnds(%q, %q): %v, want %q", tc.src, tc.dst, err, tc.want)
		}
	}
	if s, d, err := copyEnds("ctr:/x", "-"); err != nil || s.Container != "ctr" || d.Path != "-" {
		t.Errorf("copyEnds to -: %+v %+v %v", s, d, err)
	}
}

func FuzzParseCopyArg(f *testing.F) {
	for _, s := range []string{"ctr:/x", "/a:b", "./c:d", "-", "", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := parseCopyArg(s)
		if e.Container == "" && e.Path != s {
			t.Fatalf("host path %q became %q", s, e.Path)
		}
		if e.Container != "" && e.Container+":"+e.Path != s {
			t.Fatalf("%q split into %q and %q", s, e.Container, e.Path)
		}
		if strings.HasPrefix(s, "/") && e.Container != "" {
			t.Fatalf("absolute path %q taken for a container", s)
		}
	})
}

func TestTopDescriptors(t *testing.T) {
	cols, err := parseTopDescriptors(nil)
	if err != nil || len(cols) != 8 {
		t.Fatalf("default: %d %v", len(cols), err)
	}
	var hdr []string
	for _, c := range cols {
		hdr = append(hdr, c.header)
	}
	if got := strings.Join(hdr, " "); got != "USER PID PPID %CPU ELAPSED TTY TIME COMMAND" {
		t.Errorf("default headers %q", got)
	}
	cols, err = parseTopDescriptors([]string{"pid,user", "args", " comm "})
	if err != nil || len(cols) != 4 || cols[1].header != "USER" || cols[3].header != "COMMAND" {
		t.Errorf("pid,user args comm: %v", err)
	}
	if _, err := parseTopDescriptors([]string{"pid,bogus"}); err == nil || err.Error() != "unknown descriptor: bogus" {
		t.Errorf("bogus: %v", err)
	}
	p := engine.Proc{Pid: 4242, PPid: 4000, NSPid: 1, UID: 33, GID: 33, Comm: "httpd", Args: []string{"httpd", "-f"},
		TTY: 136<<8 | 2, CPU: 500 * time.Millisecond, Elapsed: 10 * time.Second}
	names := topNames{users: parseIDNames("root:x:0:0::/:/bin/sh\nwww:x:33:33::/www:/bin/sh\n"), groups: parseIDNames("www:x:33:\n")}
	var b bytes.Buffer
	cols, _ = parseTopDescriptors([]string{"user,group,pid,hpid,pcpu,etime,time,tty,args"})
	if err := renderTop(Env{Stdout: &b}, cols, []engine.Proc{p, {Comm: "kworker", UID: 7}}, names); err != nil {
		t.Fatal(err)
	}
	want := "USER        GROUP       PID         HPID        %CPU        ELAPSED     TIME        TTY         COMMAND\n" +
		"www         www         1           4242        5.000       10s         500ms       pts/2       httpd -f\n" +
		"7           0           0           0           0.000       0s          0s          ?           [kworker]\n"
	if b.String() != want {
		t.Errorf("top:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTTYName(t *testing.T) {
	for nr, want := range map[uint64]string{0: "?", 136 << 8: "pts/0", 137<<8 | 1: "pts/257", 4<<8 | 1: "tty1", 5<<8 | 1: "?"} {
		if got := ttyName(nr); got != want {
			t.Errorf("ttyName(%#x) = %q, want %q", nr, got, want)
		}
	}
}

func FuzzParseIDNames(f *testing.F) {
	f.Add("root:x:0:0::/:/bin/sh\n#c\n::\nwww:x:33:33")
	f.Fuzz(func(t *testing.T, s string) {
		for id, name := range parseIDNames(s) {
			if name == "" || strings.Contains(name, ":") || strings.Contains(name, "\n") {
				t.Fatalf("id %d named %q", id, name)
			}
		}
	})
}

func TestStatsFormatting(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := engine.Stats{ID: "0123456789abcdef", Name: "web", CPUNanos: uint64(2 * time.Second), At: start.Add(10 * time.Second), Started: start,
		MemUsage: 446_500, MemLimit: 64 << 20, NetInput: 570, NetOutput: 308, PIDs: 2}
	r := newStatsRow(s, nil)
	if r.ID() != "0123456789ab" || r.CPUPerc() != "20.00%" || r.AVGCPU() != "20.00%" || r.MemUsage() != "446.5kB / 67.11MB" ||
		r.MemPerc() != "0.67%" || r.NetIO() != "570B / 308B" || r.BlockIO() != "-- / --" || r.PIDS() != "2" || r.UpTime.String() != "2s" {
		t.Errorf("row: %s %s %s %s %s %s %s %s", r.ID(), r.CPUPerc(), r.AVGCPU(), r.MemUsage(), r.MemPerc(), r.NetIO(), r.BlockIO(), r.PIDS())
	}
	next := s
	next.At, next.CPUNanos = s.At.Add(time.Second), s.CPUNanos+uint64(500*time.Millisecond)
	if r := newStatsRow(next, &s); r.CPUPerc() != "50.00%" {
		t.Errorf("CPU since the last sample: %s", r.CPUPerc())
	}
	if r := newStatsRow(engine.Stats{ID: "x"}, nil); r.CPUPerc() != "--" || r.MemUsage() != "-- / --" || r.PIDS() != "--" {
		t.Errorf("empty row: %s %s %s", r.CPUPerc(), r.MemUsage(), r.PIDS())
	}
	for f, want := range map[float64]string{0: "0B", 999: "999B", 1000: "1kB", 1049: "1.049kB", 1.5e9: "1.5GB"} {
		if got := humanSize4(f); got != want {
			t.Errorf("humanSize4(%v) = %q, want %q", f, got, want)
		}
	}
}

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string]string{"ctrl-p,ctrl-q": "\x10\x11", "a": "a", "ctrl-a,x": "\x01x", "ctrl-@": "\x00", "ctrl-_": "\x1f", "": ""} {
		got, err := parseDetachKeys(in)
		if err != nil || string(got) != want {
			t.Errorf("parseDetachKeys(%q) = %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-1", "ab", "ctrl-pp", ","} {
		if _, err := parseDetachKeys(bad); err == nil {
			t.Errorf("parseDetachKeys(%q) accepted", bad)
		}
	}
}

func FuzzParseDetachKeys(f *testing.F) {
	f.Add("ctrl-p,ctrl-q")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseDetachKeys(s)
		if err == nil && s != "" && len(got) != strings.Count(s, ",")+1 {
			t.Fatalf("%q gave %d keys", s, len(got))
		}
	})
}

func TestDetachReader(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"hello\x10\x11after", "hello"},
		{"a\x10b\x10\x11", "a\x10b"},
		{"no keys", "no keys"},
		{"\x10", ""}, // held back as a possible start of the sequence
	} {
		detached := false
		d := &detachReader{r: strings.NewReader(tc.in), seq: []byte{0x10, 0x11}, onDetach: func() { detached = true }}
		b, err := io.ReadAll(d)
		wantDetach := strings.Contains(tc.in, "\x10\x11")
		if wantDetach != detached || (wantDetach && !errors.Is(err, errDetached)) {
			t.Errorf("%q: detached %v err %v", tc.in, detached, err)
		}
		if string(b) != tc.out {
			t.Errorf("%q passed %q, want %q", tc.in, b, tc.out)
		}
	}
}

func TestParseConditions(t *testing.T) {
	if exit, st, err := parseConditions(nil); err != nil || !exit || len(st) != 0 {
		t.Errorf("default: %v %v %v", exit, st, err)
	}
	if exit, st, err := parseConditions([]string{"running", "exited"}); err != nil || !exit || !st["running"] {
		t.Errorf("running,exited: %v %v %v", exit, st, err)
	}
	if _, _, err := parseConditions([]string{"bogus"}); err == nil || err.Error() != "unknown container state: bogus: invalid argument" {
		t.Errorf("bogus: %v", err)
	}
}

// TestRootlessRefusals: a rootless engine refuses macvlan and ipvlan
// networks at create (no file is written).
func TestRootlessRefusals(t *testing.T) {
	tw := newTestWorld(t, "empty")
	tw.env.Rootless = true
	rt := t.TempDir()
	get := tw.env.Getenv
	tw.env.Getenv = func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return rt
		}
		return get(k)
	}
	for _, d := range []string{"macvlan", "ipvlan"} {
		var o, e bytes.Buffer
		env := tw.env
		env.Stdout, env.Stderr = &o, &e
		if rc := Run(context.Background(), []string{"network", "create", "-d", d, "-o", "parent=lo", "--subnet", "198.19.73.0/24", "mv"}, env); rc != 125 || !strings.Contains(e.String(), d+" networks need root") {
			t.Errorf("rootless %s: rc %d %s", d, rc, e.String())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tw.env.Home, ".local/share/containers/storage/networks/*.json")); len(left) != 0 {
		t.Errorf("files written: %v", left)
	}
	if err := rootlessDriverError(false, "macvlan"); err != nil {
		t.Errorf("rootful macvlan refused: %v", err)
	}
}

func TestWithoutLines(t *testing.T) {
	in := "PID   COMMAND\n    1 sleep 1000\n    7 ps -o pid,args\n"
	if got := withoutLines(in, "-o pid,args"); got != "PID   COMMAND\n    1 sleep 1000\n" {
		t.Errorf("got %q", got)
	}
	if got := withoutLines("a\nb", ""); got != "a\nb" {
		t.Errorf("no filter: %q", got)
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{"250ms": 250 * time.Millisecond, "100": 100 * time.Millisecond, "2s": 2 * time.Second} {
		if got, err := parseInterval(in); err != nil || got != want {
			t.Errorf("parseInterval(%q) = %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1s", "0"} {
		if _, err := parseInterval(bad); err == nil {
			t.Errorf("parseInterval(%q) accepted", bad)
		}
	}
}
