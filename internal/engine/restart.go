package engine

// Restart policies (--restart): the monitor asks the engine after each
// exit whether to start the container again; a stop or kill through berth
// marks the container stopped by the user, which no policy overrides.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Restart policy names, as Podman spells them.
const (
	RestartNo            = "no"
	RestartOnFailure     = "on-failure"
	RestartAlways        = "always"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy is a container's --restart setting. Name "" is no policy
// given (Podman shows it so); MaxRetries 0 is unlimited (on-failure only).
type RestartPolicy struct {
	Name       string `json:"name,omitempty"`
	MaxRetries uint   `json:"max_retries,omitempty"`
}

// ErrInvalidArg is Podman's "invalid argument".
var ErrInvalidArg = errors.New("invalid argument")

// ParseRestartPolicy parses --restart=no|on-failure[:N]|always|unless-stopped
// with Podman's messages.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	parts := strings.Split(s, ":")
	var p RestartPolicy
	switch len(parts) {
	case 1:
	case 2:
		if strings.ToLower(parts[0]) != RestartOnFailure {
			return p, errors.New("restart policy retries can only be specified with on-failure restart policy")
		}
		n, err := strconv.Atoi(parts[1])
		if err != nil {
			return p, fmt.Errorf("parsing restart policy retry count: %w", err)
		}
		if n < 0 {
			return p, errors.New("must specify restart policy retry count as a number greater than 0")
		}
		p.MaxRetries = uint(n)
	default:
		return p, errors.New("invalid restart policy: may specify retries at most once")
	}
	p.Name = parts[0]
	switch p.Name {
	case "", RestartNo, RestartOnFailure, RestartAlways, RestartUnlessStopped:
		return p, nil
	}
	return RestartPolicy{}, fmt.Errorf("running container create option: %q is not a valid restart policy: %w", p.Name, ErrInvalidArg)
}

// CheckRestartWithRemove refuses --rm with a restart policy as Podman 4.3
// does (raw is the --restart value: Podman lets a bare on-failure
// through; such a container is removed at its exit, never restarted).
func CheckRestartWithRemove(raw string, p RestartPolicy, remove bool) error {
	if !remove || p.Name == "" || p.Name == RestartNo || raw == RestartOnFailure {
		return nil
	}
	return errors.New(`the --rm option conflicts with --restart, when the restartPolicy is not "" and "no"`)
}

// Restarts reports whether the policy starts the container again after
// it exited with code, having been restarted restarts times since the
// last start by the user.
func (p RestartPolicy) Restarts(code int, restarts uint) bool {
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
		return true
	case RestartOnFailure:
		return code != 0 && (p.MaxRetries == 0 || restarts < p.MaxRetries)
	}
	return false
}

// MonitorRestart is the monitor's question after an exit (code, at): it
// returns true when the container's policy restarts it, after recording
// the exit with the container marked restarting (its network, root
// filesystem and monitor stay). False leaves the record alone; the
// monitor then records the exit as usual.
func (e *Engine) MonitorRestart(id string, code int, at time.Time) bool {
	restart := false
	c, err := e.modify(id, func(c *Container) error {
		st := &c.State
		restart = !c.Config.Remove && !st.StoppedByUser && st.Status == StateRunning &&
			(st.HealthRestart || c.Config.RestartPolicy.Restarts(code, st.RestartCount))
		if !restart {
			return nil
		}
		st.Status, st.ExitCode, st.FinishedAt, st.Pid = StateExited, code, at, 0
		st.Restarting = true
		return nil
	})
	if err != nil {
		e.log.Warn("record exit before restart", "container", id, "error", err)
		return false
	}
	if restart {
		e.containerEvent(c, "died", exitAttrs(code))
	}
	return restart
}

// MonitorKeepRestarting reports whether a restart the monitor waits for
// still stands: no stop through berth, and the record still names this
// monitor.
func (e *Engine) MonitorKeepRestarting(id string, monitorPid int) bool {
	c, err := e.record(id)
	return err == nil && c.State.Restarting && !c.State.StoppedByUser && c.State.MonitorPid == monitorPid
}

// reconcileRestarting checks the monitor of a container waiting to be
// restarted: when it died, the recorded exit stands and what the
// container held is released.
func (e *Engine) reconcileRestarting(c *Container) (*Container, error) {
	id, mon := c.Config.ID, c.State.MonitorPid
	if mon != 0 && processAlive(mon, id) {
		return c, nil
	}
	c, err := e.modify(id, func(r *Container) error {
		if r.State.Restarting && r.State.MonitorPid == mon {
			r.State.Restarting, r.State.HealthRestart, r.State.MonitorPid = false, false, 0
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if c.State.Restarting {
		return c, nil // a monitor of its own took over meanwhile
	}
	if unlock, err := e.lockCleanup(id); err == nil {
		if err := e.cleanup(c); err != nil {
			e.log.Warn("clean up after a monitor lost while restarting", "container", id, "error", err)
		}
		unlock()
	}
	return c, nil
}

// MonitorRestartLock serialises a monitor's restart with berth start.
func (e *Engine) MonitorRestartLock(id string) (func(), error) { return e.lock(id) }

// markStoppedByUser records that berth stops the container, so that its
// restart policy does not start it again.
func (e *Engine) markStoppedByUser(id string) error {
	_, err := e.modify(id, func(c *Container) error {
		c.State.StoppedByUser = true
		return nil
	})
	return err
}

// killStops reports whether berth kill with sig counts as a stop by the
// user: SIGKILL, SIGTERM or the container's stop signal (a SIGHUP to
// reload a server does not turn its restart policy off).
func killStops(c *Container, sig string) bool {
	n, err := ParseSignal(sig)
	if err != nil {
		return false
	}
	stop := c.Config.StopSignal
	if stop == "" {
		stop = "SIGTERM"
	}
	s, err := ParseSignal(stop)
	return n == 9 || n == 15 || err == nil && n == s
}

// cancelRestart calls off the restart the monitor of c waits for: it
// marks c stopped by the user and waits out a restart under way (the
// monitor restarts under the start lock, which the caller must not hold).
// It returns c running when that restart came first (the caller stops
// it), else exited once the monitor recorded the exit.
func (e *Engine) cancelRestart(c *Container) (*Container, error) {
	id := c.Config.ID
	if err := e.markStoppedByUser(id); err != nil {
		return nil, err
	}
	unlock, err := e.lock(id)
	if err != nil {
		return nil, err
	}
	unlock()
	cur, err := e.reconcile(id)
	if err != nil || cur.Running() {
		return cur, err
	}
	if err := e.waitCleanup(cur, c.State.MonitorPid); err != nil {
		return nil, err
	}
	return e.reconcile(id)
}
