package monitor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRuntime is a runc stand-in: create starts a process (a child of
// the test, as the monitor's subreaper) that waits for start and then
// exits with the next code of the bundle's codes file (or at once when
// the bundle is gone).
const fakeRuntime = `#!/bin/sh
shift 2
cmd=$1
b=$FAKE_BUNDLE
case $cmd in
create)
	n=$(cat "$b/runs" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$b/runs"
	code=$(sed -n "${n}p" "$b/codes")
	(while [ ! -e "$b/go" ]; do [ -d "$b" ] || exit 1; sleep 0.01; done; rm -f "$b/go"; echo "run $n"; exit $code) &
	echo $! > "$5"
	;;
start) touch "$b/go" ;;
esac
exit 0
`

type nopCloser struct{ bytes.Buffer }

func (*nopCloser) Close() error { return nil }

// runFake runs a monitor on the fake runtime whose runs exit with codes;
// restart decides after each exit, keep whether a pending restart stands.
func runFake(t *testing.T, codes string, restart func(code int) bool, keep func() bool) (restarted int, exited int, log string, exitFile Exit) {
	t.Helper()
	dir := t.TempDir()
	rt := filepath.Join(dir, "runc")
	if err := os.WriteFile(rt, []byte(fakeRuntime), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "codes"), []byte(codes), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_BUNDLE", dir)
	var mu sync.Mutex
	var supervised, unsupervised int
	exited = -100
	err := Run(Config{
		ID: "fake", Runtime: rt, RuntimeRoot: dir, Bundle: dir, Dir: dir,
		LogPath: filepath.Join(dir, "log"), ExitFile: filepath.Join(dir, "exit"), AttachSocket: filepath.Join(dir, "attach"),
		Sync:           &nopCloser{},
		Restart:        func(code int, _ time.Time) bool { return restart(code) },
		KeepRestarting: keep,
		OnRestarted:    func(int) error { mu.Lock(); restarted++; mu.Unlock(); return nil },
		OnExited:       func(code int, _ time.Time) { exited = code },
		Supervise: func(int) func() {
			mu.Lock()
			supervised++
			mu.Unlock()
			return func() { mu.Lock(); unsupervised++; mu.Unlock() }
		},
	})
	if supervised != restarted+1 || unsupervised != supervised {
		t.Errorf("supervised %d runs, stopped %d; want %d", supervised, unsupervised, restarted+1)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	ex, err := ReadExit(filepath.Join(dir, "exit"))
	if err != nil {
		t.Errorf("exit file: %v", err)
	}
	return restarted, exited, string(b), ex
}

// The monitor runs the container again while Restart says so (each run
// supervised), and records only the last exit.
func TestMonitorRestarts(t *testing.T) {
	restarted, exited, log, ex := runFake(t, "1\n2\n0\n", func(code int) bool { return code != 0 }, nil)
	if restarted != 2 || exited != 0 || ex.Code != 0 {
		t.Errorf("restarted %d times, exit %d (file %d); want 2, 0", restarted, exited, ex.Code)
	}
	for _, run := range []string{"run 1", "run 2", "run 3"} {
		if !strings.Contains(log, run) {
			t.Errorf("log lacks %q:\n%s", run, log)
		}
	}
}

// A restart called off during the backoff records the exit instead.
func TestMonitorRestartCalledOff(t *testing.T) {
	restarted, exited, log, ex := runFake(t, "3\n0\n", func(int) bool { return true }, func() bool { return false })
	if restarted != 0 || exited != 3 || ex.Code != 3 {
		t.Errorf("restarted %d times, exit %d; want 0, 3", restarted, exited)
	}
	if strings.Contains(log, "run 2") {
		t.Errorf("ran again:\n%s", log)
	}
}
