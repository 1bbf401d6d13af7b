package engine

// Healthchecks, as Podman 4.3 runs them: a check is the container's
// healthcheck command run in it (runc exec) with a timeout; its result
// goes into the container's health state (starting, healthy, unhealthy,
// a failing streak and the last five results). While the container runs,
// a process of its own (Config.HealthCommand, `berth healthcheck loop`)
// runs a check every interval; Podman uses a systemd timer for that.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/runspec"
)

// Health states (Podman's words).
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// healthLogs is how many results are kept; healthOutputMax how many
// bytes of a check's output (Podman's limits).
const (
	healthLogs      = 5
	healthOutputMax = 500
)

// Health is a container's healthcheck state.
type Health struct {
	Status        string      `json:"status"`
	FailingStreak int         `json:"failing_streak"`
	Log           []HealthLog `json:"log,omitempty"`
}

// HealthLog is one check's result.
type HealthLog struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output"`
}

// ErrNoHealthcheck: the container has no healthcheck.
var ErrNoHealthcheck = errors.New("has no defined healthcheck")

// RunHealthcheck runs ref's healthcheck once, records the result and
// returns the health state after it.
func (e *Engine) RunHealthcheck(ref string) (string, error) {
	c, err := e.Get(ref)
	if err != nil {
		return "", err
	}
	hc := c.Config.Healthcheck
	if hc == nil {
		return "", fmt.Errorf("container %s %w", c.Config.Name, ErrNoHealthcheck)
	}
	if !c.Running() {
		return "", fmt.Errorf("container %s is not running: %w", c.Config.Name, ErrRunning)
	}
	l := HealthLog{Start: time.Now()}
	l.ExitCode, l.Output = e.execCheck(c, hc.Argv(), hc.Timeout)
	l.End = time.Now()
	out, err := e.modify(c.Config.ID, func(r *Container) error {
		r.State.Health = nextHealth(r.State.Health, l, r.State.StartedAt, hc.StartPeriod, hc.Retries)
		return nil
	})
	if err != nil {
		return "", err
	}
	return out.State.Health.Status, nil
}

// nextHealth is the state after result l: a success makes it healthy; a
// failure in the start period (from startedAt) changes nothing, later ones
// count, and retries of them in a row make it unhealthy.
func nextHealth(h *Health, l HealthLog, startedAt time.Time, startPeriod time.Duration, retries int) *Health {
	n := Health{Status: HealthStarting}
	if h != nil {
		n = *h
		n.Log = append([]HealthLog(nil), h.Log...)
	}
	n.Log = append(n.Log, l)
	if len(n.Log) > healthLogs {
		n.Log = n.Log[len(n.Log)-healthLogs:]
	}
	switch {
	case l.ExitCode == 0:
		n.Status, n.FailingStreak = HealthHealthy, 0
	case l.Start.Sub(startedAt) < startPeriod:
	default:
		n.FailingStreak++
		if n.FailingStreak >= retries {
			n.Status = HealthUnhealthy
		}
	}
	return &n
}

// execCheck runs argv in the container, its output (both streams, at most
// healthOutputMax bytes) and exit code returned; past timeout the check is
// sent SIGTERM through runc (which passes it on), then killed, and fails.
func (e *Engine) execCheck(c *Container, argv []string, timeout time.Duration) (int, string) {
	procFile, err := e.execProcess(c, runspec.Process{Args: argv})
	if err != nil {
		return 1, err.Error()
	}
	defer os.Remove(procFile)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Runtime, "--root", e.RuncRoot(), "exec", "--process", procFile, c.Config.ID)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Second
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		return 1, fmt.Sprintf("healthcheck command exceeded timeout of %s", timeout)
	}
	code := 0
	if err != nil {
		code = 1
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
	}
	return code, out.String()
}

// limitedBuffer keeps the first healthOutputMax bytes written.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := healthOutputMax - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// startHealthchecks resets the health state of a container that just
// started and starts its healthcheck loop.
func (e *Engine) startHealthchecks(c *Container) error {
	hc := c.Config.Healthcheck
	if hc == nil {
		return nil
	}
	if _, err := e.modify(c.Config.ID, func(r *Container) error {
		r.State.Health = &Health{Status: HealthStarting}
		return nil
	}); errors.Is(err, ErrNoSuchContainer) {
		return nil // a --rm container that has exited and gone already
	} else if err != nil {
		return err
	}
	if hc.Interval <= 0 || e.cfg.HealthCommand == nil {
		return nil
	}
	cmd := e.cfg.HealthCommand(c.Config.ID)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the healthcheck loop: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// HealthLoop runs id's healthcheck every interval while the container
// runs, or waits to be restarted by its monitor: it serves the monitor of
// the start that started it and returns when the container is gone,
// stopped for good or started again through berth (whose start has a
// loop of its own). A loop waits for the one before it to end.
func (e *Engine) HealthLoop(ctx context.Context, id string) error {
	c, err := e.Get(id)
	if err != nil {
		return nil
	}
	monitor := c.State.MonitorPid
	ours := func() (*Container, bool) {
		c, err := e.Get(id)
		ok := err == nil && c.Config.Healthcheck != nil && c.Config.Healthcheck.Interval > 0 && c.State.MonitorPid == monitor
		return c, ok
	}
	if err := os.MkdirAll(filepath.Dir(e.lockPath(id)), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(e.lockPath(id)+".health", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		if _, ok := ours(); !ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	for {
		c, ok := ours()
		if !ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Config.Healthcheck.Interval):
		}
		if c, ok = ours(); !ok {
			return nil
		}
		if !c.Running() {
			if monitor > 0 && processAlive(monitor, id) {
				continue // the monitor may restart it
			}
			return nil
		}
		_, _ = e.RunHealthcheck(id)
	}
}
