package engine

import (
	"fmt"
	"strings"
)

// Pause freezes a running container's processes (runc pause: the cgroup
// freezer); ps and inspect then show it as paused.
func (e *Engine) Pause(ref string) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if !c.Running() || c.State.Paused {
		return nil, fmt.Errorf("%q is not running, can't pause: %w", c.Config.ID, ErrRunning)
	}
	if e.cfg.Rootless {
		return nil, fmt.Errorf("pause needs the cgroup freezer, and rootless containers have no cgroup of their own (no cgroup delegation)")
	}
	if out, err := e.runc("pause", c.Config.ID); err != nil {
		return nil, fmt.Errorf("runc pause: %s: %w", strings.TrimSpace(out), err)
	}
	c, err = e.modify(c.Config.ID, func(r *Container) error {
		r.State.Paused = r.Running()
		return nil
	})
	if err == nil {
		e.containerEvent(c, "pause", nil)
	}
	return c, err
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(ref string) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if !c.State.Paused {
		return nil, fmt.Errorf("%q is not paused, can't unpause: %w", c.Config.ID, ErrRunning)
	}
	if err := e.resume(c); err != nil {
		return nil, err
	}
	e.containerEvent(c, "unpause", nil)
	return e.Get(c.Config.ID)
}

// resume runs runc resume and records the container as running again.
func (e *Engine) resume(c *Container) error {
	if out, err := e.runc("resume", c.Config.ID); err != nil && e.runcStatus(c.Config.ID) == "paused" {
		return fmt.Errorf("runc resume: %s: %w", strings.TrimSpace(out), err)
	}
	_, err := e.modify(c.Config.ID, func(r *Container) error {
		r.State.Paused = false
		return nil
	})
	return err
}
