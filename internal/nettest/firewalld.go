package nettest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// busConfig is a private bus for one test: root owns and reaches any name.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Firewalld is a firewalld of one test: its own bus, its own
// configuration directory, running in the network namespace Host.
type Firewalld struct {
	Host *NS
	// Address is the bus's D-Bus address (for DBUS_SYSTEM_BUS_ADDRESS).
	Address string
	// Log is the file firewalld logs to.
	Log string
}

// StartFirewalld starts a dbus-daemon and a firewalld for the test in
// host and stops both (by PID) in t.Cleanup. It skips the test when a
// program it needs is missing.
func StartFirewalld(t testing.TB, host *NS) *Firewalld {
	t.Helper()
	for _, bin := range []string{"dbus-daemon", "firewalld", "firewall-cmd", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	dir := t.TempDir()
	f := &Firewalld{Host: host, Address: "unix:path=" + filepath.Join(dir, "bus"), Log: filepath.Join(dir, "firewalld.log")}
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, f.Address), 0o600); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--nofork", "--config-file="+conf)
	StartProcess(t, bus, nil)
	WaitFor(t, "the bus socket", func() bool { _, err := os.Stat(filepath.Join(dir, "bus")); return err == nil })

	sysconf := filepath.Join(dir, "etc")
	if err := os.Mkdir(sysconf, 0o700); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(f.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	// nsenter enters the namespace and executes firewalld: the PID is
	// firewalld's.
	daemon := exec.Command("nsenter", "--net="+host.Path(), "--", "firewalld", "--nofork", "--nopid",
		"--log-target", "console", "--system-config", sysconf)
	daemon.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+f.Address)
	StartProcess(t, daemon, logf)
	WaitFor(t, "firewalld", func() bool { _, err := f.Cmd("--state"); return err == nil })
	return f
}

// StartProcess starts cmd (its output to out, when given) and kills it
// and waits for it in t.Cleanup.
func StartProcess(t testing.TB, cmd *exec.Cmd, out *os.File) {
	t.Helper()
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// WaitFor polls ok every 200 ms for up to 30 s and fails the test when it
// never holds.
func WaitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("%s did not come up", what)
}

// Cmd runs firewall-cmd against the test's firewalld.
func (f *Firewalld) Cmd(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + f.Host.Path(), "--", "firewall-cmd"}, args...)...)
	c.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+f.Address)
	out, err := c.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Must is Cmd that fails the test on error.
func (f *Firewalld) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := f.Cmd(args...)
	if err != nil {
		t.Fatalf("firewall-cmd %s: %v %s\n%s", strings.Join(args, " "), err, out, f.Tail())
	}
	return out
}

// Tail returns the end of firewalld's log.
func (f *Firewalld) Tail() string {
	b, _ := os.ReadFile(f.Log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "firewalld log:\n" + string(b)
}
