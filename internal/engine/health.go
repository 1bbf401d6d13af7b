package engine

// Health checks (--health-cmd and the image's HEALTHCHECK), as Podman
// 4.3 runs them: a command executed in the container every interval; its
// results make the container's health "starting", "healthy" or
// "unhealthy", recorded with the last five results in the container's
// record (one transaction per check, so a crash loses nothing recorded).
// The checks run in a helper process the monitor starts beside each run
// of the container (see HealthLoop); `berth healthcheck run` runs one.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/runspec"
)

// Health statuses, as Podman names them.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health check test kinds (the first element of Test).
const (
	HealthTestNone     = "NONE"
	HealthTestCmd      = "CMD"
	HealthTestCmdShell = "CMD-SHELL"
)

// Health-on-failure actions.
const (
	HealthActionNone    = "none"
	HealthActionKill    = "kill"
	HealthActionRestart = "restart"
	HealthActionStop    = "stop"
)

// Podman's limits of the health log.
const (
	maxHealthLogs      = 5
	maxHealthLogOutput = 500
)

// Healthcheck is a container's health check, with the keys and types of
// Podman's Config.Healthcheck (durations in nanoseconds).
type Healthcheck struct {
	Test        []string      `json:"Test"`
	StartPeriod time.Duration `json:"StartPeriod,omitempty"`
	Interval    time.Duration `json:"Interval,omitempty"`
	Timeout     time.Duration `json:"Timeout,omitempty"`
	Retries     int           `json:"Retries,omitempty"`
}

// Health is a container's health state, Podman's State.Health.
type Health struct {
	Status        string      `json:"Status"`
	FailingStreak int         `json:"FailingStreak"`
	Log           []HealthLog `json:"Log"`
}

// HealthLog is the result of one check.
type HealthLog struct {
	Start    string `json:"Start"`
	End      string `json:"End"`
	ExitCode int    `json:"ExitCode"`
	Output   string `json:"Output"`
}

// HealthOptions are the --health-* flags of run and create.
type HealthOptions struct {
	Cmd, Interval, Timeout, StartPeriod string
	Retries                             uint
	// None is --no-healthcheck.
	None bool
}

// DefaultHealthOptions are Podman's defaults.
var DefaultHealthOptions = HealthOptions{Interval: "30s", Timeout: "30s", StartPeriod: "0s", Retries: 3}

// MakeHealthcheck turns the flags into a health check (nil: none given,
// the image's applies), with Podman's messages.
func MakeHealthcheck(o HealthOptions) (*Healthcheck, error) {
	if o.Cmd == "" {
		if o.None {
			return &Healthcheck{Test: []string{HealthTestNone}}, nil
		}
		return nil, nil
	}
	if o.None {
		return nil, errors.New("cannot specify both --no-healthcheck and --health-cmd")
	}
	test, err := ParseHealthCmd(o.Cmd)
	if err != nil {
		return nil, err
	}
	hc := &Healthcheck{Test: test}
	interval := o.Interval
	if interval == "disable" {
		interval = "0"
	}
	if hc.Interval, err = time.ParseDuration(interval); err != nil {
		return nil, fmt.Errorf("invalid healthcheck-interval: %w", err)
	}
	if o.Retries < 1 {
		return nil, errors.New("healthcheck-retries must be greater than 0")
	}
	hc.Retries = int(o.Retries)
	if hc.Timeout, err = time.ParseDuration(o.Timeout); err != nil {
		return nil, fmt.Errorf("invalid healthcheck-timeout: %w", err)
	}
	if hc.Timeout < time.Second {
		return nil, errors.New("healthcheck-timeout must be at least 1 second")
	}
	if hc.StartPeriod, err = time.ParseDuration(o.StartPeriod); err != nil {
		return nil, fmt.Errorf("invalid healthcheck-start-period: %w", err)
	}
	if hc.StartPeriod < 0 {
		return nil, errors.New("healthcheck-start-period must be 0 seconds or greater")
	}
	return hc, nil
}

// ParseHealthCmd turns --health-cmd into a test as Podman does: a JSON
// array or a string; CMD and NONE split on spaces, CMD-SHELL kept, any
// other single command or string run by the shell, an array of several
// words run as CMD.
func ParseHealthCmd(in string) ([]string, error) {
	var arr []string
	isArr := json.Unmarshal([]byte(in), &arr) == nil
	if !isArr {
		arr = strings.SplitN(in, " ", 2)
	}
	if len(arr) == 0 {
		return nil, errors.New("must define a healthcheck command for all healthchecks")
	}
	switch first := strings.ToUpper(arr[0]); {
	case first == HealthTestCmd || first == HealthTestNone:
		arr = strings.Fields(in)
	case first != HealthTestCmdShell:
		if isArr && len(arr) > 1 {
			arr = append([]string{HealthTestCmd}, arr...)
		} else {
			arr = []string{HealthTestCmdShell, strings.Join(arr, " ")}
		}
	}
	if len(arr) > 0 && strings.ToUpper(arr[0]) == HealthTestNone {
		arr = []string{HealthTestNone}
	}
	return arr, nil
}

// ParseHealthOnFailure checks a --health-on-failure action ("" is none).
func ParseHealthOnFailure(s string) (string, error) {
	switch s {
	case "":
		return HealthActionNone, nil
	case HealthActionNone, HealthActionKill, HealthActionRestart, HealthActionStop:
		return s, nil
	}
	return "", fmt.Errorf("invalid on-failure action %q for health check: supported actions are none,kill,restart,stop", s)
}

// ImageHealthcheck is an image's HEALTHCHECK with Docker's defaults for
// the durations and retries it leaves at zero.
func ImageHealthcheck(hc *Healthcheck) *Healthcheck {
	if hc == nil || len(hc.Test) == 0 {
		return nil
	}
	out := *hc
	out.Test = append([]string(nil), hc.Test...)
	if out.Interval == 0 {
		out.Interval = 30 * time.Second
	}
	if out.Timeout == 0 {
		out.Timeout = 30 * time.Second
	}
	if out.Retries == 0 {
		out.Retries = 3
	}
	return &out
}

// Defined reports whether hc is a check that runs (not NONE or empty).
func (hc *Healthcheck) Defined() bool {
	if hc == nil || len(hc.Test) == 0 {
		return false
	}
	_, err := hc.argv()
	return err == nil
}

// argv is the command a check executes.
func (hc *Healthcheck) argv() ([]string, error) {
	var argv []string
	switch hc.Test[0] {
	case "", HealthTestNone:
	case HealthTestCmd:
		argv = hc.Test[1:]
	case HealthTestCmdShell:
		argv = []string{"/bin/sh", "-c", strings.Join(hc.Test[1:], " ")}
	default:
		argv = hc.Test
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("no command")
	}
	return argv, nil
}

// Record applies one check's result to h by Podman's rules: success makes
// it healthy; a failure outside the start period adds to the failing
// streak, and makes it unhealthy at retries; the log keeps the last five.
func (h Health) Record(l HealthLog, retries int, inStartPeriod bool) Health {
	if l.ExitCode == 0 {
		h.Status, h.FailingStreak = HealthHealthy, 0
	} else {
		if h.Status == "" {
			h.Status = HealthHealthy
		}
		if !inStartPeriod {
			h.FailingStreak++
			if h.FailingStreak >= retries {
				h.Status = HealthUnhealthy
			}
		}
	}
	if len(l.Output) > maxHealthLogOutput {
		l.Output = l.Output[:maxHealthLogOutput]
	}
	h.Log = append(append([]HealthLog(nil), h.Log...), l)
	if len(h.Log) > maxHealthLogs {
		h.Log = h.Log[len(h.Log)-maxHealthLogs:]
	}
	return h
}

// HealthCheck runs the container's check once (`berth healthcheck run`)
// and reports whether it passed, with the health status it left.
func (e *Engine) HealthCheck(ref string) (bool, string, error) {
	c, err := e.Get(ref)
	if err != nil {
		return false, "", fmt.Errorf("unable to look up %s to perform a health check: %w", ref, err)
	}
	if !c.Running() {
		return false, "", fmt.Errorf("container %s is not running", c.Config.ID)
	}
	if !c.Config.Healthcheck.Defined() {
		return false, "", fmt.Errorf("container %s has no defined healthcheck", c.Config.ID)
	}
	return e.runHealthCheck(c)
}

// runHealthCheck executes the check in the running container c, records
// the result and, when it leaves c unhealthy, takes the on-failure
// action.
func (e *Engine) runHealthCheck(c *Container) (bool, string, error) {
	hc := c.Config.Healthcheck
	argv, err := hc.argv()
	if err != nil {
		return false, "", fmt.Errorf("container %s has no defined healthcheck", c.Config.ID)
	}
	start := e.cfg.Now()
	code, out, err := e.execCheck(c, argv, hc.Timeout)
	end := e.cfg.Now()
	if err != nil {
		out = strings.TrimSpace(out + "\n" + err.Error())
	}
	inStart := hc.StartPeriod > 0 && start.Before(c.State.StartedAt.Add(hc.StartPeriod))
	l := HealthLog{Start: start.Format(time.RFC3339Nano), End: end.Format(time.RFC3339Nano), ExitCode: code, Output: out}
	var status, was string
	rec, err := e.modify(c.Config.ID, func(r *Container) error {
		if r.State.Pid != c.State.Pid {
			return errors.New("the container exited during the health check")
		}
		was = r.State.Health.Status
		r.State.Health = r.State.Health.Record(l, hc.Retries, inStart)
		status = r.State.Health.Status
		return nil
	})
	if err != nil {
		return false, "", fmt.Errorf("record health check of %s: %w", c.Config.Name, err)
	}
	if status != was {
		e.containerEvent(rec, "health_status", map[string]string{"health_status": status})
	}
	if code != 0 && status == HealthUnhealthy {
		if err := e.healthAction(c); err != nil {
			return false, status, err
		}
	}
	return code == 0, status, nil
}

// execCheck runs argv in c through runc exec with its output captured,
// killing it after timeout (exit code -1, as Podman records a timeout);
// a command that cannot run is a failure with exit code 1.
func (e *Engine) execCheck(c *Container, argv []string, timeout time.Duration) (int, string, error) {
	procFile, err := e.execProcess(c, runspec.Process{Args: argv})
	if err != nil {
		return 1, "", err
	}
	defer os.Remove(procFile)
	pidFile := strings.TrimSuffix(procFile, ".json") + ".pid"
	defer os.Remove(pidFile)
	var out bytes.Buffer
	w := &limitWriter{w: &out, n: 64 << 10}
	cmd := exec.Command(e.cfg.Runtime, "--root", e.RuncRoot(), "exec", "--process", procFile, "--pid-file", pidFile, c.Config.ID)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return 1, "", err
	}
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() {
			timedOut.Store(true)
			if b, err := os.ReadFile(pidFile); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			_ = cmd.Process.Kill()
		})
		defer t.Stop()
	}
	werr := cmd.Wait()
	output := strings.TrimRight(out.String(), "\n")
	if timedOut.Load() {
		return -1, output, fmt.Errorf("healthcheck command exceeded timeout of %s", timeout)
	}
	code, err := execResult(werr, output)
	if err != nil {
		return 1, output, err
	}
	return code, output, nil
}

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// healthAction takes c's --health-on-failure action: kill (the restart
// policy then applies), stop (as berth stop: no restart), restart (in
// place by the monitor, whatever the policy).
func (e *Engine) healthAction(c *Container) error {
	id := c.Config.ID
	switch c.Config.HealthOnFailure {
	case HealthActionKill:
		return e.signal(id, "KILL")
	case HealthActionStop:
		if err := e.markStoppedByUser(id); err != nil {
			return err
		}
		return e.stopSignals(c)
	case HealthActionRestart:
		if _, err := e.modify(id, func(r *Container) error { r.State.HealthRestart = true; return nil }); err != nil {
			return err
		}
		return e.stopSignals(c)
	}
	return nil
}

// stopSignals sends c's stop signal and, if its process still runs after
// the stop timeout, SIGKILL (without waiting for the cleanup: the caller
// may be the health checker beside the monitor).
func (e *Engine) stopSignals(c *Container) error {
	sig := c.Config.StopSignal
	if sig == "" {
		sig = "SIGTERM"
	}
	if err := e.signal(c.Config.ID, sig); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Duration(c.Config.StopTimeout) * time.Second)
	for time.Now().Before(deadline) {
		if unix.Kill(c.State.Pid, 0) != nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e.signal(c.Config.ID, "KILL")
}

// HealthLoop runs c's health checks every interval while the run of
// process pid lasts and its monitor (the caller's parent, monitorPid)
// lives; it is the helper process the monitor starts beside each run.
func (e *Engine) HealthLoop(ctx context.Context, id string, pid, monitorPid int) error {
	c, err := e.record(id)
	if err != nil {
		return err
	}
	hc := c.Config.Healthcheck
	if !hc.Defined() || hc.Interval <= 0 {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(hc.Interval):
		}
		if os.Getppid() != monitorPid {
			return nil
		}
		c, err := e.record(id)
		if err != nil || !c.Running() || c.State.Pid != pid {
			return nil
		}
		if _, _, err := e.runHealthCheck(c); err != nil {
			e.log.Warn("health check", "container", c.Config.Name, "error", err)
		}
	}
}

// healthStarting marks the health of a container with a check as
// starting (at each start and restart; the failing streak and log stay,
// as in Podman).
func healthStarting(c *Container) {
	if c.Config.Healthcheck.Defined() {
		c.State.Health.Status = HealthStarting
	}
}
