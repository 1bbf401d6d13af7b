package monitor

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogFormat(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	m := &monitor{cfg: Config{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }}, logFile: f}
	m.writeLog("stdout", []byte("one\ntwo\npart"))
	m.writeLog("stderr", []byte("err\n"))
	b, _ := os.ReadFile(f.Name())
	want := "2026-01-02T03:04:05.000000006Z stdout F one\n" +
		"2026-01-02T03:04:05.000000006Z stdout F two\n" +
		"2026-01-02T03:04:05.000000006Z stdout P part\n" +
		"2026-01-02T03:04:05.000000006Z stderr F err\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
}

func TestFramesAndLongSocketPaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "attach")
	l, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := &monitor{}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		m.mu.Lock()
		m.clients = append(m.clients, c)
		m.mu.Unlock()
		m.broadcast(StreamStdout, []byte("hello"))
		m.broadcast(StreamExit, []byte("3"))
		c.Close()
	}()
	c, err := DialUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got bytes.Buffer
	for {
		s, data, err := ReadFrame(c)
		if err != nil {
			break
		}
		got.WriteString(string(rune('0'+s)) + ":" + string(data) + ";")
	}
	if got.String() != "1:hello;3:3;" {
		t.Errorf("frames %q", got.String())
	}
	var _ net.Conn = c
}

func TestRuncFailureCodes(t *testing.T) {
	err := runcFailure("create", os.ErrInvalid, `runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH`)
	var ce *codeError
	if !asCode(err, &ce) || ce.code != 127 || !strings.Contains(err.Error(), `exec: "nosuch": executable file not found`) {
		t.Errorf("%v", err)
	}
	err = runcFailure("create", os.ErrInvalid, `runc create failed: unable to start container process: exec: "/www": permission denied`)
	if !asCode(err, &ce) || ce.code != 126 {
		t.Errorf("%v", err)
	}
}

func asCode(err error, ce **codeError) bool {
	c, ok := err.(*codeError)
	*ce = c
	return ok
}

func TestExitFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "exit")
	if _, err := ReadExit(p); !os.IsNotExist(err) {
		t.Errorf("missing exit file: %v", err)
	}
	if err := WriteFileAtomic(p, []byte(`{"exit_code":137,"finished_at":"2026-01-02T03:04:05Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if e, err := ReadExit(p); err != nil || e.Code != 137 {
		t.Errorf("%+v %v", e, err)
	}
}

func TestNextBackoff(t *testing.T) {
	d := NextBackoff(0, 0)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	for i, w := range want {
		if d != w {
			t.Fatalf("restart %d: %v, want %v", i, d, w)
		}
		d = NextBackoff(d, time.Second)
	}
	for i := 0; i < 20; i++ {
		d = NextBackoff(d, time.Second)
	}
	if d != BackoffMax {
		t.Errorf("capped at %v, want %v", d, BackoffMax)
	}
	if d = NextBackoff(d, BackoffReset); d != BackoffMin {
		t.Errorf("after a long run: %v", d)
	}
}
