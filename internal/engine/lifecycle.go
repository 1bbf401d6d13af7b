package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/netns"
)

// MonitorStarted records a started container (called by the monitor).
func (e *Engine) MonitorStarted(id string, pid, monitorPid int) error {
	changed := false
	c, err := e.modify(id, func(c *Container) error {
		if c.State.Status == StateRunning && c.State.Pid == pid {
			return nil
		}
		changed = true
		c.State.Status, c.State.Pid, c.State.MonitorPid = StateRunning, pid, monitorPid
		c.State.Paused = false
		c.State.StartedAt = e.cfg.Now().UTC()
		c.State.FinishedAt = time.Time{}
		c.State.ExitCode = 0
		c.State.StartCount++
		healthStarting(c)
		return nil
	})
	if err == nil && changed {
		e.containerEvent(c, "start", nil)
	}
	return err
}

// MonitorRestarted records a container its restart policy started again
// (called by the monitor).
func (e *Engine) MonitorRestarted(id string, pid, monitorPid int) error {
	c, err := e.modify(id, func(c *Container) error {
		c.State.Status, c.State.Pid, c.State.MonitorPid = StateRunning, pid, monitorPid
		c.State.StartedAt = e.cfg.Now().UTC()
		c.State.Restarting = false
		c.State.StartCount++
		if !c.State.HealthRestart { // the health check's restarts are no policy's
			c.State.RestartCount++
		}
		c.State.HealthRestart = false
		healthStarting(c)
		return nil
	})
	if err == nil {
		e.containerEvent(c, "start", nil)
		e.containerEvent(c, "restart", nil)
	}
	return err
}

// MonitorExited records the exit and cleans up (called by the monitor);
// a --rm container is removed.
func (e *Engine) MonitorExited(id string, code int, at time.Time) {
	// The cleanup lock is taken before the exit shows: a start that sees
	// the exit waits (cleanupPrevious) until this cleanup is done, so it
	// never runs on the next run's runc container and namespace.
	unlock, lerr := e.lockCleanup(id)
	if lerr != nil {
		e.log.Warn("lock before recording the exit", "container", id, "error", lerr)
	}
	c, err := e.modify(id, func(c *Container) error {
		setExited(c, code, at)
		return nil
	})
	if err != nil {
		if unlock != nil {
			unlock()
		}
		e.log.Warn("record exit", "container", id, "error", err)
		return
	}
	e.containerEvent(c, "died", exitAttrs(code))
	if lerr == nil {
		err = e.cleanup(c)
		unlock()
	} else {
		err = lerr
	}
	if err != nil {
		e.log.Warn("clean up after exit", "container", id, "error", err)
	}
	if c.Config.Remove {
		if err := e.removeStopped(c, true); err != nil {
			e.log.Warn("remove after exit (--rm)", "container", id, "error", err)
		}
	}
}

func setExited(c *Container, code int, at time.Time) {
	c.State.Status = StateExited
	c.State.Paused = false
	c.State.ExitCode = code
	c.State.FinishedAt = at
	c.State.Pid = 0
	c.State.MonitorPid = 0
	c.State.Restarting = false
	c.State.HealthRestart = false
}

// reconcile brings the stored state in line with the exit file, the
// monitor and runc.
func (e *Engine) reconcile(id string) (*Container, error) {
	all, err := e.list()
	if err != nil {
		return nil, err
	}
	c, err := Lookup(all, id)
	if err != nil {
		return nil, err
	}
	id = c.Config.ID
	if c.State.Restarting {
		return e.reconcileRestarting(c)
	}
	if c.State.Status != StateRunning && c.State.Status != StateStopped {
		return c, nil
	}
	if ex, err := monitor.ReadExit(e.ExitFile(id)); err == nil {
		return e.modify(id, func(c *Container) error {
			if c.State.Status == StateRunning || c.State.Status == StateStopped {
				setExited(c, ex.Code, ex.At)
			}
			return nil
		})
	}
	if c.State.MonitorPid != 0 && processAlive(c.State.MonitorPid, id) {
		return c, nil
	}
	// The monitor is gone without an exit record: ask runc.
	if status := e.runcStatus(id); status == "running" || status == "paused" || status == "created" {
		return c, nil
	}
	c, err = e.modify(id, func(c *Container) error {
		if c.State.Status == StateRunning || c.State.Status == StateStopped {
			setExited(c, -1, e.cfg.Now().UTC())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if unlock, err := e.lockCleanup(id); err == nil {
		if err := e.cleanup(c); err != nil {
			e.log.Warn("clean up after a lost monitor", "container", id, "error", err)
		}
		unlock()
	}
	return e.reconcile(id)
}

// processAlive reports whether pid runs and its command line names id.
func processAlive(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// A zombie monitor is gone.
		if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
			return false
		}
	}
	return strings.Contains(string(b), id)
}

// cleanup releases what a stopped container holds: runc's state, its
// networks, its namespace pin and root filesystem mount. It is
// idempotent. runc forgets the container while the networks are torn
// down (neither needs the other).
func (e *Engine) cleanup(c *Container) error {
	id := c.Config.ID
	runcDone := make(chan error, 1)
	go func() { runcDone <- e.runcDelete(id) }()
	var errs []error
	if c.State.NetNS != "" && publishes(c.Config.Net.Kind) {
		if err := e.detach(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := <-runcDone; err != nil {
		errs = append(errs, err)
	}
	if c.State.OwnNetNS && c.State.NetNS != "" {
		if err := netns.Unpin(c.State.NetNS); err != nil {
			errs = append(errs, err)
		}
	}
	if c.State.Mounted != "" && c.Config.Rootfs == "" && e.cfg.Images != nil {
		if err := e.cfg.Images.Unmount(id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c.State.NetNS == "" && c.State.Mounted == "" && len(c.State.Networks) == 0 {
		return nil
	}
	nc, err := e.modify(id, func(r *Container) error {
		r.State.NetNS, r.State.OwnNetNS, r.State.Networks, r.State.Mounted = "", false, nil, ""
		return nil
	})
	if err == nil {
		*c = *nc
	}
	return err
}

// stopOrphanMonitor kills the monitor of a start whose command died
// before the container ran: the record is not running, yet the monitor
// it names lives (holding the published ports, perhaps running runc).
// Unless startLocked (the caller holds the start lock), it does nothing
// while another command holds the container's start lock: that start is
// under way.
func (e *Engine) stopOrphanMonitor(c *Container, startLocked bool) {
	pid, id := c.State.MonitorPid, c.Config.ID
	if pid == 0 || c.Running() || c.State.Status == StateStopped || !processAlive(pid, id) {
		return
	}
	if !startLocked {
		now, cancel := context.WithCancel(context.Background())
		cancel()
		f, err := flockCtx(now, e.lockPath(id))
		if err != nil {
			return
		}
		defer f.Close()
	}
	e.log.Warn("stopping the monitor of an interrupted start", "container", c.Config.Name, "pid", pid)
	_ = unix.Kill(-pid, unix.SIGKILL) // its session: runc too
	_ = unix.Kill(pid, unix.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); processAlive(pid, id) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop sends the stop signal, then SIGKILL after timeout, and waits until
// the container exited and was cleaned up.
func (e *Engine) Stop(ref string, timeout *uint) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if c.State.Restarting {
		if c, err = e.cancelRestart(c); err != nil || !c.Running() {
			return c, err
		}
	}
	if !c.Running() {
		return c, nil
	}
	if c.State.Paused {
		return nil, fmt.Errorf("can only stop created or running containers. %s is in state paused: %w", c.Config.ID, ErrRunning)
	}
	if err := e.markStoppedByUser(c.Config.ID); err != nil {
		return nil, err
	}
	t := c.Config.StopTimeout
	if timeout != nil {
		t = *timeout
	}
	sig := "SIGTERM"
	if c.Config.StopSignal != "" {
		sig = c.Config.StopSignal
	}
	id := c.Config.ID
	mon := c.State.MonitorPid
	if t > 0 {
		if err := e.signal(id, sig); err != nil {
			return nil, err
		}
		if c, err := e.waitExit(id, time.Duration(t)*time.Second); err == nil {
			return e.stopped(c, mon)
		}
		e.log.Warn(fmt.Sprintf("StopSignal %s failed to stop container %s in %d seconds, resorting to SIGKILL", sig, c.Config.Name, t))
	}
	if err := e.signal(id, "KILL"); err != nil {
		return nil, err
	}
	c, err = e.waitExit(id, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return e.stopped(c, mon)
}

// stopped waits for the cleanup of a container stop ended and records
// the stop.
func (e *Engine) stopped(c *Container, mon int) (*Container, error) {
	err := e.waitCleanup(c, mon)
	if err == nil {
		e.containerEvent(c, "stop", nil)
	}
	return c, err
}

// Kill sends a signal to the container's init.
func (e *Engine) Kill(ref, sig string) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if !c.Running() {
		return nil, fmt.Errorf("can only kill running containers. %s is in state %s: %w", c.Config.ID, c.State.Status, ErrRunning)
	}
	signum, err := ParseSignal(sig)
	if err != nil {
		return nil, err
	}
	if killStops(c, sig) {
		if err := e.markStoppedByUser(c.Config.ID); err != nil {
			return nil, err
		}
	}
	if err := e.signal(c.Config.ID, sig); err != nil {
		return c, err
	}
	e.containerEvent(c, "kill", map[string]string{"signal": strconv.Itoa(int(signum))})
	return c, nil
}

// Wait blocks until the container is not running and returns its record.
func (e *Engine) Wait(ref string) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	return e.waitExit(c.Config.ID, 0)
}

// WaitRemoved waits until the container's record is gone (a --rm
// container removed by its monitor), at most timeout.
func (e *Engine) WaitRemoved(id string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		all, err := e.list()
		if err != nil {
			return
		}
		if _, err := Lookup(all, id); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit polls until the container is not running (timeout 0: forever):
// every 20 ms while its process lives (woken early by its end), then in
// short steps while its monitor records the exit.
func (e *Engine) waitExit(id string, timeout time.Duration) (*Container, error) {
	deadline := time.Now().Add(timeout)
	step := time.Millisecond
	for {
		c, err := e.reconcile(id)
		if err != nil {
			return nil, err
		}
		if !c.Running() && c.State.Status != StateStopped {
			return c, nil
		}
		if timeout > 0 && time.Now().After(deadline) {
			return c, fmt.Errorf("container %s did not exit within %v", c.Config.Name, timeout)
		}
		if err := e.ctx().Err(); err != nil {
			return c, fmt.Errorf("%w while waiting for container %s to exit: %w", ErrInterrupted, c.Config.Name, context.Cause(e.ctx()))
		}
		if !waitProcess(e.ctx(), c.State.Pid, 20*time.Millisecond) {
			continue
		}
		time.Sleep(step) // ended: its monitor records the exit
		step = min(2*step, 20*time.Millisecond)
	}
}

// waitCleanup waits for the monitor to finish its exit work, then makes
// sure everything is released.
func (e *Engine) waitCleanup(c *Container, monitorPid int) error {
	deadline := time.Now().Add(10 * time.Second)
	for monitorPid != 0 && processAlive(monitorPid, c.Config.ID) && time.Now().Before(deadline) {
		waitProcess(context.Background(), monitorPid, min(time.Until(deadline), time.Second))
	}
	cur, err := e.reconcile(c.Config.ID)
	if errors.Is(err, ErrNoSuchContainer) {
		return nil // --rm removed it
	}
	if err != nil {
		return err
	}
	unlock, err := e.lockCleanup(cur.Config.ID)
	if err != nil {
		return err
	}
	defer unlock()
	return e.cleanup(cur)
}

// Remove removes a container; force kills a running one first. A pod's
// infra container goes only with its pod.
func (e *Engine) Remove(ref string, force bool) (*Container, error) {
	return e.RemoveWith(ref, force, false)
}

// RemoveWith is Remove; volumes also removes the container's anonymous
// volumes (rm -v).
func (e *Engine) RemoveWith(ref string, force, volumes bool) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if c.Config.Infra {
		if _, err := e.GetPod(c.Config.Pod); err == nil {
			return nil, fmt.Errorf("container %s is the infra container of pod %s and cannot be removed without removing the pod: %w", c.Config.ID, c.Config.Pod, ErrRunning)
		}
	}
	return c, e.removeContainer(c, force, true, volumes)
}

// removeContainer removes c (allowInfra: also a pod's infra container;
// volumes: its anonymous volumes too).
func (e *Engine) removeContainer(c *Container, force, allowInfra, volumes bool) error {
	var err error
	if c.Config.Infra && !allowInfra {
		return fmt.Errorf("container %s is a pod's infra container", c.Config.ID)
	}
	if c.Running() || c.State.Restarting {
		if !force {
			return fmt.Errorf("cannot remove container %s as it is running - running or paused containers cannot be removed without force: %w", c.Config.ID, ErrRunning)
		}
		if c.State.Paused {
			_ = e.signal(c.Config.ID, "KILL")
			if err := e.resume(c); err != nil {
				return err
			}
		}
		var zero uint
		if c, err = e.Stop(c.Config.ID, &zero); err != nil {
			return err
		}
	}
	return e.removeStopped(c, volumes)
}

// removeStopped removes a stopped container; volumes (or --rm): its
// anonymous volumes too.
func (e *Engine) removeStopped(c *Container, volumes bool) error {
	id := c.Config.ID
	unlock, err := e.lockCleanup(id)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := e.reconcile(id)
	if errors.Is(err, ErrNoSuchContainer) {
		return nil
	}
	if err != nil {
		return err
	}
	e.stopOrphanMonitor(cur, false)
	if err := e.cleanup(cur); err != nil {
		return err
	}
	if c.Config.Rootfs == "" && e.cfg.Images != nil {
		if err := e.cfg.Images.RemoveRootfs(id); err != nil {
			return fmt.Errorf("remove root filesystem: %w", err)
		}
	}
	if err := e.delete(id); err != nil {
		return err
	}
	e.containerEvent(c, "remove", nil)
	if volumes || c.Config.Remove {
		if err := e.removeAnonymousVolumes(c); err != nil {
			e.log.Warn("remove anonymous volumes", "container", id, "error", err)
		}
	}
	if c.Config.Pod != "" && !c.Config.Infra {
		e.podMembersChanged(c.Config.Pod)
	}
	// The lock files go too (their holders use the open descriptors).
	_ = os.Remove(e.lockPath(id))
	_ = os.Remove(e.lockPath(id) + ".cleanup")
	return errors.Join(os.RemoveAll(e.RunDir(id)), os.RemoveAll(e.DataDir(id)))
}
