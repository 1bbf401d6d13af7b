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
