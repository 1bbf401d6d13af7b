package engine

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	d := t.TempDir()
	e, err := New(EngineConfig{Root: filepath.Join(d, "root"), RunRoot: filepath.Join(d, "run"), Runtime: "/nonexistent/runc", Now: func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCreateRecords(t *testing.T) {
	e := newTestEngine(t)
	rootfs := t.TempDir()
	netm, _ := runopts.ParseNetworks([]string{"none"})
	c, warns, err := e.Create(CreateOptions{Name: "web", Rootfs: rootfs, Args: []string{"httpd"}, Net: netm,
		Ports: []network.PortMapping{{ContainerPort: 80, Protocol: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "Port mappings have been discarded") || len(c.Config.Ports) != 0 {
		t.Errorf("ports with --network none: %v %v", warns, c.Config.Ports)
	}
	if c.Config.Hostname != c.ShortID() || c.State.Status != StateCreated || c.Config.StopTimeout != 10 {
		t.Errorf("defaults: %+v", c)
	}
	if _, _, err := e.Create(CreateOptions{Name: "web", Rootfs: rootfs, Args: []string{"x"}, Net: netm}); !errors.Is(err, ErrNameInUse) {
		t.Errorf("duplicate name: %v", err)
	}
	// Random host ports are chosen at create, -P publishes exposed ports.
	ep, _ := runopts.ParseExpose("90-91/udp")
	netb, _ := runopts.ParseNetworks(nil)
	c2, _, err := e.Create(CreateOptions{Rootfs: rootfs, Args: []string{"x"}, Net: netb, PublishAll: true, Expose: []network.PortMapping{ep},
		Ports: []network.PortMapping{{ContainerPort: 80, Range: 1, Protocol: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Config.Ports) != 3 || c2.Config.Ports[0].HostPort == 0 || c2.Config.Ports[2].HostPort == 0 {
		t.Errorf("ports: %+v", c2.Config.Ports)
	}
	if strings.Join(c2.Config.ExposedPorts, ",") != "90/udp,91/udp" {
		t.Errorf("exposed: %v", c2.Config.ExposedPorts)
	}
	if c2.Config.Name == "" || !strings.Contains(c2.Config.Name, "_") {
		t.Errorf("random name %q", c2.Config.Name)
	}
	all, err := e.List()
	if err != nil || len(all) != 2 {
		t.Fatalf("list: %v %v", all, err)
	}
	if got, err := Lookup(all, c.Config.ID[:10]); err != nil || got.Config.Name != "web" {
		t.Errorf("lookup by prefix: %v %v", got, err)
	}
	if _, err := Lookup(all, "nosuch"); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("lookup missing: %v", err)
	}
	// Bad input is refused before anything is stored.
	if _, _, err := e.Create(CreateOptions{Rootfs: filepath.Join(rootfs, "nosuch"), Args: []string{"x"}, Net: netm}); err == nil || !strings.Contains(err.Error(), "--rootfs") {
		t.Errorf("missing rootfs: %v", err)
	}
	if _, _, err := e.Create(CreateOptions{Image: "busybox", Args: []string{"x"}, Net: netm}); !errors.Is(err, ErrNoImages) {
		t.Errorf("image without a store: %v", err)
	}
	if _, _, err := e.Create(CreateOptions{Rootfs: rootfs, Net: netm}); err == nil {
		t.Error("no command accepted")
	}
	if _, _, err := e.Create(CreateOptions{Rootfs: rootfs, Args: []string{"x"}, Net: netm, StopSignal: "SIGNOPE"}); err == nil || !strings.Contains(err.Error(), "--stop-signal") {
		t.Errorf("bad stop signal: %v", err)
	}
	if all, _ := e.List(); len(all) != 2 {
		t.Errorf("refused creates left records: %d", len(all))
	}
	// Removing a never-started container needs no runtime.
	if _, err := e.Remove("web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get("web"); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("after rm: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"KILL": syscall.SIGKILL, "sigterm": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP, "9": syscall.SIGKILL} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"NOPE", "0", "99", ""} {
		if _, err := ParseSignal(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestFreeName(t *testing.T) {
	taken := map[string]bool{}
	for i := 0; i < 200; i++ {
		n := freeName(func(s string) bool { return taken[s] })
		if taken[n] {
			t.Fatalf("name %s given twice", n)
		}
		taken[n] = true
	}
	// Every plain name taken: one with a number.
	n := freeName(func(s string) bool { return !strings.Contains(s, "_2") && strings.Count(s, "_") == 1 })
	if !strings.HasSuffix(n, "_2") {
		t.Errorf("all plain names taken: got %q", n)
	}
}

// A monitor goes on once its record names it, and gives up (so it holds
// no published port unrecorded) when the command that started it died
// first: its process parent is no longer that command.
func TestWaitAdopted(t *testing.T) {
	e := newTestEngine(t)
	netm, _ := runopts.ParseNetworks([]string{"none"})
	c, _, err := e.Create(CreateOptions{Name: "m", Rootfs: t.TempDir(), Args: []string{"x"}, Net: netm})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WaitAdopted(c.Config.ID, 4242, os.Getppid()+1); !errors.Is(err, ErrOrphanMonitor) {
		t.Errorf("unrecorded, starter gone: %v, want ErrOrphanMonitor", err)
	}
	if _, err := e.modify(c.Config.ID, func(r *Container) error { r.State.MonitorPid = 4242; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitAdopted(c.Config.ID, 4242, os.Getppid()+1); err != nil {
		t.Errorf("recorded: %v", err)
	}
}

// waitProcess wakes when the process it watches ends, and reports a
// process that is gone (or was never given) correctly.
func TestWaitProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx := context.Background()
	if waitProcess(ctx, cmd.Process.Pid, 10*time.Millisecond) {
		t.Fatal("a sleeping process reported ended")
	}
	done := make(chan bool)
	go func() { done <- waitProcess(ctx, cmd.Process.Pid, time.Minute) }()
	_ = cmd.Process.Kill()
	if !<-done {
		t.Fatal("the end of a killed process was not reported")
	}
	_ = cmd.Wait()
	if !waitProcess(ctx, cmd.Process.Pid, time.Minute) {
		t.Fatal("a reaped process is not reported ended")
	}
	if waitProcess(ctx, 0, time.Millisecond) {
		t.Fatal("no process reported ended")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	if waitProcess(cancelled, sleeper.Process.Pid, time.Minute) {
		t.Fatal("a cancelled wait reported the process ended")
	}
}

// The runtime is asked about a container (state, delete) only when its state
// directory exists.
func TestRuntimeAskedOnlyWhenKnown(t *testing.T) {
	d := t.TempDir()
	calls := filepath.Join(d, "calls")
	rt := filepath.Join(d, "runtime")
	script := "#!/bin/sh\necho \"$@\" >>" + calls + "\necho '{\"status\":\"running\"}'\n"
	if err := os.WriteFile(rt, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := New(EngineConfig{Root: filepath.Join(d, "root"), RunRoot: filepath.Join(d, "run"), Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	if st := e.runcStatus("gone"); st != "" {
		t.Fatalf("status of a container the runtime has no state for: %q", st)
	}
	if _, err := os.Stat(calls); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the runtime was asked about a container it has no state for")
	}
	if err := os.MkdirAll(filepath.Join(e.RuncRoot(), "known"), 0o700); err != nil {
		t.Fatal(err)
	}
	if st := e.runcStatus("known"); st != "running" {
		t.Fatalf("status %q, want the runtime's running", st)
	}
	if b, _ := os.ReadFile(calls); !strings.Contains(string(b), "state known") {
		t.Fatalf("runtime calls %q, want a state of known", b)
	}
	if err := e.runcDelete("gone"); err != nil {
		t.Fatal(err)
	}
	if err := e.runcDelete("known"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(calls)
	if strings.Contains(string(b), "delete --force gone") || !strings.Contains(string(b), "delete --force known") {
		t.Fatalf("runtime calls %q, want a delete of known only", b)
	}
}
