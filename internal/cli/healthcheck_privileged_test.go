package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// healthLoops are the pids of `berth healthcheck loop ID` processes.
func healthLoops(id string) []string {
	var out []string
	ents, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range ents {
		b, err := os.ReadFile(f)
		if err == nil && strings.Contains(string(b), "healthcheck\x00loop\x00"+id) {
			out = append(out, filepath.Base(filepath.Dir(f)))
		}
	}
	return out
}

// TestPrivilegedHealthcheck: a container's healthcheck runs every
// interval by itself: starting, unhealthy after the retries fail, healthy
// once the check passes; healthcheck run's output and exit codes; one
// loop process, gone with the container.
func TestPrivilegedHealthcheck(t *testing.T) {
	p := newETopo(t)
	id := strings.TrimSpace(p.mustB(t, "run", "-d", "--name", "hc", "--network", "none",
		"--health-cmd", "test -e /tmp/ok && echo fine", "--health-interval", "1s", "--health-retries", "2",
		"--rootfs", p.rootfs, "sleep", "1000"))
	if got := p.inspect(t, "hc", "{{.State.Health.Status}}"); got != "starting" && got != "unhealthy" {
		t.Errorf("just started: %q", got)
	}
	p.waitInspect(t, "hc", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "unhealthy 2")
	out, err := p.b("healthcheck", "run", "hc")
	if exitCode(err) != 1 || strings.TrimSpace(out) != "unhealthy" {
		t.Errorf("healthcheck run of an unhealthy container: %v %q", err, out)
	}
	p.mustB(t, "exec", "hc", "touch", "/tmp/ok")
	p.waitInspect(t, "hc", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "healthy 0")
	if out := p.mustB(t, "healthcheck", "run", "hc"); out != "" {
		t.Errorf("healthcheck run of a healthy container printed %q", out)
	}
	if got := p.inspect(t, "hc", "{{(index .State.Health.Log 4).Output}}"); got != "fine" {
		t.Errorf("last output %q", got)
	}
	if loops := healthLoops(id); len(loops) != 1 {
		t.Fatalf("healthcheck loops: %v, want one", loops)
	}
	// stop and start: the old loop ends, the new start's runs the checks
	old := healthLoops(id)
	p.mustB(t, "stop", "-t", "0", "hc")
	p.mustB(t, "start", "hc")
	p.waitInspect(t, "hc", "{{.State.Health.Status}}", "healthy")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if loops := healthLoops(id); len(loops) == 1 && loops[0] != old[0] {
			break
		}
	}
	if loops := healthLoops(id); len(loops) != 1 || loops[0] == old[0] {
		t.Errorf("healthcheck loops after stop and start: %v (before: %v), want one new one", loops, old)
	}
	p.mustB(t, "rm", "-f", "hc")
	for deadline := time.Now().Add(10 * time.Second); len(healthLoops(id)) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if loops := healthLoops(id); len(loops) != 0 {
		t.Errorf("healthcheck loop left after rm: %v", loops)
	}
	p.mustB(t, "run", "-d", "--name", "plain", "--network", "none", "--rootfs", p.rootfs, "sleep", "1000")
	if _, errOut, err := p.b3("healthcheck", "run", "plain"); exitCode(err) != 125 || !strings.Contains(errOut, "has no defined healthcheck") {
		t.Errorf("healthcheck run without a healthcheck: %v %q", err, errOut)
	}
}
