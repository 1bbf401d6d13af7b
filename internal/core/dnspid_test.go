package core

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A pid file naming a live process of this namespace that is not a DNS
// server of that directory (a PID reused after the server died) is not
// taken for the server, so it is never signalled.
func TestRunningPIDChecksTheProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "aardvark-dns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ours, _ := os.Readlink("/proc/self/ns/net")
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"sleep", "30"}, false},
		{[]string{"sh", "-c", "sleep 30", "x", "--config", dir + "-other"}, false},
		{[]string{"sh", "-c", "sleep 30", "x", "--config", dir}, true},
		{[]string{"sh", "-c", "sleep 30", "x", "--config=" + dir + "/"}, true},
	} {
		cmd := exec.Command(tc.args[0], tc.args[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pidFile := filepath.Join(dir, "aardvark.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, ok := runningPID(pidFile, ours)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if ok != tc.want {
			t.Errorf("%q: taken for the server = %v, want %v", tc.args, ok, tc.want)
		}
	}
}
