package ctrlog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Line{
		"2026-01-02T03:04:05.000000006Z stdout F hello world\n": {Time: "2026-01-02T03:04:05.000000006Z", Stream: "stdout", Text: "hello world\n"},
		"2026-01-02T03:04:05Z stderr P part":                    {Time: "2026-01-02T03:04:05Z", Stream: "stderr", Text: "part"},
		"2026-01-02T03:04:05Z stdout F":                         {Time: "2026-01-02T03:04:05Z", Stream: "stdout", Text: "\n"},
	} {
		got, ok := Parse(in)
		if !ok || got != want {
			t.Errorf("%q: %+v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "x", "t bogus F x"} {
		if _, ok := Parse(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestTailAndFollow(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ctr.log")
	r := Open(p) // not there yet
	defer r.Close()
	if err := r.Read(func(Line) error { t.Fatal("line from a missing file"); return nil }); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	write("t1 stdout F a\nt2 stderr F b\nt3 stdout F c\nt4 stdout P d")
	var got []string
	collect := func(l Line) error { got = append(got, l.Stream+":"+l.Text); return nil }
	if err := r.Tail(2, collect); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "stderr:b\n|stdout:c\n" {
		t.Fatalf("tail: %q", got)
	}
	got = nil
	runs := 0
	go func() { time.Sleep(30 * time.Millisecond); write("\nt4 stdout F ef\nt5 stdout F g\n") }()
	err := r.Follow(context.Background(), 10*time.Millisecond, func() bool { runs++; return runs < 10 }, collect)
	if err != nil || strings.Join(got, "|") != "stdout:def\n|stdout:g\n" {
		t.Fatalf("follow: %q %v", got, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("2026-01-02T03:04:05Z stdout F hello")
	f.Fuzz(func(t *testing.T, s string) {
		if l, ok := Parse(s); ok && l.Stream != "stdout" && l.Stream != "stderr" {
			t.Fatalf("stream %q", l.Stream)
		}
	})
}
