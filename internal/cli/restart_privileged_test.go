package cli

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitInspect polls inspect with format until it prints want (30 s at
// most: a deadline for a hung test, not a timing being tested).
func (p *etopo) waitInspect(t *testing.T, ctr, format, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = p.inspect(t, ctr, format); got == want {
			return
		}
	}
	t.Fatalf("inspect %s %q: %q, want %q", ctr, format, got, want)
}

// TestPrivilegedRestartOnFailure: on-failure:2 restarts a failing
// container exactly twice, then it stays exited.
func TestPrivilegedRestartOnFailure(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "fail", "--restart", "on-failure:2", "--rootfs", p.rootfs, "sh", "-c", "echo ran; exit 3")
	// The monitor is gone once the policy gave up: nothing restarts it.
	p.waitInspect(t, "fail", "{{.State.Status}} {{.State.ConmonPid}} {{.State.Restarting}}", "exited 0 false")
	if got := p.inspect(t, "fail", "{{.RestartCount}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"); got != "2 3 on-failure 2" {
		t.Errorf("after the retries: %q", got)
	}
	if out := p.mustB(t, "logs", "fail"); out != "ran\nran\nran\n" {
		t.Errorf("logs of three runs: %q", out)
	}
	// A start through berth counts anew.
	p.mustB(t, "start", "fail")
	p.waitInspect(t, "fail", "{{.State.Status}} {{.State.ConmonPid}} {{.RestartCount}}", "exited 0 2")
	// on-failure leaves a clean exit alone.
	p.mustB(t, "run", "-d", "--name", "ok", "--restart", "on-failure", "--rootfs", p.rootfs, "true")
	p.waitInspect(t, "ok", "{{.State.Status}} {{.State.ConmonPid}} {{.RestartCount}}", "exited 0 0")
	p.mustB(t, "rm", "fail", "ok")
	p.assertClean(t)
}

// TestPrivilegedRestartAlways: an always container killed from outside
// comes back with its address and published port; stop and kill through
// berth do not restart it.
func TestPrivilegedRestartAlways(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "web", "--restart", "always", "-p", "8080:80", "--rootfs", p.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
		t.Fatalf("page: %q %v", got, err)
	}
	ip := p.inspect(t, "web", "{{.NetworkSettings.Networks.podman.IPAddress}}")
	pid, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.Pid}}"))
	mon := p.inspect(t, "web", "{{.State.ConmonPid}}")
	for round := 1; round <= 2; round++ {
		if err := exec.Command("kill", "-9", strconv.Itoa(pid)).Run(); err != nil {
			t.Fatal(err)
		}
		p.waitInspect(t, "web", "{{.State.Status}} {{.RestartCount}}", "running "+strconv.Itoa(round))
		npid, _ := strconv.Atoi(p.inspect(t, "web", "{{.State.Pid}}"))
		if npid == pid || npid == 0 {
			t.Fatalf("round %d: pid %d after %d", round, npid, pid)
		}
		pid = npid
		if got := p.inspect(t, "web", "{{.NetworkSettings.Networks.podman.IPAddress}} {{.State.ConmonPid}}"); got != ip+" "+mon {
			t.Errorf("round %d: address and monitor %q, want %q", round, got, ip+" "+mon)
		}
		if got, err := httpGet(p.outside, "198.18.0.1:8080"); err != nil || got != "hello from berth\n" {
			t.Errorf("round %d: page after the restart: %q %v", round, got, err)
		}
	}
	if out := p.mustB(t, "ps", "-a", "--format", "{{.Names}}"); out != "web\n" {
		t.Errorf("ps: %q", out)
	}
	// berth stop: no restart, the network goes.
	p.mustB(t, "stop", "-t", "1", "web")
	if got := p.inspect(t, "web", "{{.State.Status}} {{.State.ConmonPid}} {{.RestartCount}}"); got != "exited 0 2" {
		t.Errorf("after stop: %q", got)
	}
	if _, err := httpGetOnce(p.outside, "198.18.0.1:8080", time.Second); err == nil {
		t.Error("page served after stop")
	}
	// berth kill: no restart either; a start counts anew.
	p.mustB(t, "start", "web")
	p.waitInspect(t, "web", "{{.State.Status}} {{.RestartCount}}", "running 0")
	p.mustB(t, "kill", "web")
	p.waitInspect(t, "web", "{{.State.Status}} {{.State.ConmonPid}}", "exited 0")
	if got := p.inspect(t, "web", "{{.RestartCount}} {{.State.ExitCode}}"); got != "0 137" {
		t.Errorf("after kill: %q", got)
	}
	p.mustB(t, "rm", "web")
	p.assertClean(t)
}

// TestPrivilegedRestartStopWhileRestarting: stop calls off a restart the
// monitor waits for (a container failing at once, backing off).
func TestPrivilegedRestartStopWhileRestarting(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "crash", "--restart", "always", "-p", "8080:80", "--rootfs", p.rootfs, "false")
	p.waitInspect(t, "crash", "{{ge .RestartCount 3}}", "true")
	p.mustB(t, "stop", "crash")
	if got := p.inspect(t, "crash", "{{.State.Status}} {{.State.ConmonPid}} {{.State.Restarting}}"); got != "exited 0 false" {
		t.Errorf("after stop: %q", got)
	}
	if out, err := p.b("run", "--rm", "--restart", "always", "--rootfs", p.rootfs, "true"); exitCode(err) != 125 || !strings.Contains(out, "the --rm option conflicts with --restart") {
		t.Errorf("--rm --restart always: %v %s", err, out)
	}
	p.mustB(t, "rm", "crash")
	// At boot: start --all --filter restart-policy=always brings back
	// the always containers only.
	p.mustB(t, "create", "--name", "plain", "--rootfs", p.rootfs, "sleep", "1000")
	p.mustB(t, "create", "--name", "svc", "--restart", "always", "--rootfs", p.rootfs, "sleep", "1000")
	svc := p.inspect(t, "svc", "{{.Id}}")
	if out := p.mustB(t, "start", "--all", "--filter", "restart-policy=always"); out != svc+"\n" {
		t.Errorf("start --all --filter restart-policy=always: %q", out)
	}
	if out := p.mustB(t, "ps", "--format", "{{.Names}}"); out != "svc\n" {
		t.Errorf("running after start --all: %q", out)
	}
	p.mustB(t, "rm", "-f", "plain", "svc")
	p.assertClean(t)
}

// TestPrivilegedHealthcheck: a check turns the container healthy, a
// removed check file unhealthy, and --health-on-failure=restart restarts
// it in place; healthcheck run's exit codes and messages are Podman's.
func TestPrivilegedHealthcheck(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "hc", "--health-cmd", "test -e /tmp/ok && echo fine", "--health-interval", "1s",
		"--health-retries", "2", "--health-on-failure", "restart", "--stop-timeout", "1",
		"--rootfs", p.rootfs, "sh", "-c", "touch /tmp/ok; exec sleep 1000")
	p.waitInspect(t, "hc", "{{.State.Health.Status}}", "healthy")
	// Status has the health, State (as in Podman) not.
	if out := p.mustB(t, "ps", "--format", "{{.State}}|{{.Status}}"); !strings.HasPrefix(out, "Up ") || !strings.HasSuffix(out, " ago (healthy)\n") || strings.Count(out, "healthy") != 1 {
		t.Errorf("ps status: %q", out)
	}
	if out, err := p.b("healthcheck", "run", "hc"); err != nil || out != "" {
		t.Errorf("healthcheck run when healthy: %v %q", err, out)
	}
	if got := p.inspect(t, "hc", "{{$l := index .State.Health.Log 0}}{{$l.ExitCode}} {{$l.Output}} {{.Config.HealthcheckOnFailureAction}} {{json .Config.Healthcheck.Test}}"); got != `0 fine restart ["CMD-SHELL","test -e /tmp/ok && echo fine"]` {
		t.Errorf("inspect: %q", got)
	}
	pid := p.inspect(t, "hc", "{{.State.Pid}}")
	p.mustB(t, "exec", "hc", "rm", "/tmp/ok")
	out, so, err := p.b3("healthcheck", "run", "hc")
	if exitCode(err) != 1 || out != "unhealthy\n" {
		t.Errorf("healthcheck run after rm: %v %q %q", err, out, so)
	}
	// The checks make it unhealthy, the action restarts it (its command
	// creates the file again): healthy once more, in a new process.
	p.waitInspect(t, "hc", "{{ne .State.Pid "+pid+"}} {{.State.Health.Status}} {{.State.Running}}", "true healthy true")
	if got := p.inspect(t, "hc", "{{.RestartCount}} {{.State.Health.FailingStreak}}"); got != "0 0" {
		t.Errorf("after the health restart: %q", got)
	}
	// Errors: 125 with Podman's messages.
	p.mustB(t, "run", "-d", "--name", "plain", "--rootfs", p.rootfs, "sleep", "1000")
	for args, want := range map[string]string{
		"plain":  "has no defined healthcheck",
		"nosuch": `unable to look up nosuch to perform a health check: no container with name or ID "nosuch" found: no such container`,
	} {
		if out, err := p.b("healthcheck", "run", args); exitCode(err) != 125 || !strings.Contains(out, want) {
			t.Errorf("healthcheck run %s: %v %q", args, err, out)
		}
	}
	p.mustB(t, "stop", "hc")
	if out, err := p.b("healthcheck", "run", "hc"); exitCode(err) != 125 || !strings.Contains(out, "is not running") {
		t.Errorf("healthcheck run when stopped: %v %q", err, out)
	}
	if got := p.inspect(t, "hc", "{{.State.Status}} {{.State.ConmonPid}}"); got != "exited 0" {
		t.Errorf("after stop: %q", got)
	}
	p.mustB(t, "rm", "-f", "hc", "plain")
	p.assertClean(t)
}

// TestPrivilegedHealthActions: --health-on-failure=kill leaves the rest
// to the restart policy, stop keeps the container down; a check running
// past --health-timeout is killed and recorded with exit code -1.
func TestPrivilegedHealthActions(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "k", "--restart", "always", "--health-cmd", "false", "--health-interval", "1s",
		"--health-retries", "1", "--health-on-failure", "kill", "--rootfs", p.rootfs, "sleep", "1000")
	p.waitInspect(t, "k", "{{ge .RestartCount 1}} {{.State.Running}}", "true true")
	p.mustB(t, "run", "-d", "--name", "s", "--restart", "always", "--health-cmd", "false", "--health-interval", "1s",
		"--health-retries", "1", "--health-on-failure", "stop", "--stop-timeout", "1", "--rootfs", p.rootfs, "sleep", "1000")
	p.waitInspect(t, "s", "{{.State.Status}} {{.State.ConmonPid}}", "exited 0")
	if got := p.inspect(t, "s", "{{.RestartCount}} {{.State.Health.Status}}"); got != "0 unhealthy" {
		t.Errorf("after the stop action: %q", got)
	}
	p.mustB(t, "run", "-d", "--name", "slow", "--health-cmd", "sleep 30", "--health-timeout", "1s", "--health-interval", "disable",
		"--rootfs", p.rootfs, "sleep", "1000")
	if out, err := p.b("healthcheck", "run", "slow"); exitCode(err) != 1 || out != "unhealthy\n" {
		t.Errorf("healthcheck run past the timeout: %v %q", err, out)
	}
	if got := p.inspect(t, "slow", "{{$l := index .State.Health.Log 0}}{{$l.ExitCode}} {{.State.Health.FailingStreak}}"); got != "-1 1" {
		t.Errorf("check past the timeout: %q", got)
	}
	if out := p.mustB(t, "exec", "slow", "ps"); strings.Contains(out, "sleep 30") {
		t.Errorf("the check still runs after its timeout:\n%s", out)
	}
	p.mustB(t, "rm", "-f", "k", "s", "slow")
	p.assertClean(t)
}

// TestPrivilegedRestartMonitorLost: a monitor killed while it waits to
// restart its container leaves an exited container that rm removes
// without -f, nothing held.
func TestPrivilegedRestartMonitorLost(t *testing.T) {
	p := newETopo(t)
	p.mustB(t, "run", "-d", "--name", "crash", "--restart", "always", "-p", "8080:80", "--rootfs", p.rootfs, "false")
	p.waitInspect(t, "crash", "{{ge .RestartCount 3}}", "true")
	p.waitInspect(t, "crash", "{{.State.Restarting}}", "true")
	mon, _ := strconv.Atoi(p.inspect(t, "crash", "{{.State.ConmonPid}}"))
	if err := exec.Command("kill", "-9", strconv.Itoa(mon)).Run(); err != nil {
		t.Fatal(err)
	}
	p.waitInspect(t, "crash", "{{.State.Status}} {{.State.Restarting}} {{.State.ConmonPid}}", "exited false 0")
	p.mustB(t, "rm", "crash")
	p.assertClean(t, mon)
}

// TestPrivilegedRootlessRestart: rootless, an always container (pasta,
// whose published port pasta holds) killed from outside comes back
// serving the same port.
func TestPrivilegedRootlessRestart(t *testing.T) {
	r := newRTopo(t)
	r.must(t, "run", "-d", "--name", "web", "--restart", "always", "-p", "8080:80", "--rootfs", r.rootfs, "httpd", "-f", "-p", "80", "-h", "/www")
	if got, err := httpGet(r.outside, "198.18.0.1:8080"); err != nil || !strings.Contains(got, "hello from berth") {
		t.Fatalf("page: %q %v", got, err)
	}
	pid := strings.TrimSpace(r.must(t, "inspect", "-f", "{{.State.Pid}}", "web"))
	if err := exec.Command("kill", "-9", pid).Run(); err != nil {
		t.Fatal(err)
	}
	var st string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st = strings.TrimSpace(r.must(t, "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "web")); st == "running 1" {
			break
		}
	}
	if st != "running 1" {
		t.Fatalf("after kill -9: %q", st)
	}
	if got, err := httpGet(r.outside, "198.18.0.1:8080"); err != nil || !strings.Contains(got, "hello from berth") {
		t.Errorf("page after the restart: %q %v", got, err)
	}
	r.must(t, "stop", "web")
	if st := strings.TrimSpace(r.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ConmonPid}}", "web")); st != "exited 0" {
		t.Errorf("after stop: %q", st)
	}
	r.must(t, "rm", "web")
}
