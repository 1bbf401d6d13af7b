package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rollback"
	"github.com/berthnet/berth/internal/runopts"
)

// StartOptions tune Start.
type StartOptions struct {
	// Attach, when set, is called once runc created the container and
	// before it starts; the monitor waits for the first attach client, so
	// Attach should connect to AttachSocket.
	Attach func() error
	// Networks, when set, replace the configured network requests for
	// this start only (restart asks for the previous addresses).
	Networks []runopts.NetworkRequest
}

// Start sets the container up (namespace, networks, files, spec) and hands
// it to a new monitor; it returns once the container runs.
func (e *Engine) Start(ref string, so StartOptions) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	id := c.Config.ID
	if c.Config.Pod != "" && !c.Config.Infra && c.Config.Net.Kind == runopts.ModeContainer {
		// A pod member needs its infra container up.
		if _, err := e.Start(c.Config.Net.Target, StartOptions{}); err != nil {
			return nil, fmt.Errorf("start the pod's infra container: %w", err)
		}
	}
	unlock, err := e.lock(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if c, err = e.reconcile(id); err != nil {
		return nil, err
	}
	if c.Running() {
		return c, nil
	}
	if err := e.cleanupPrevious(id); err != nil {
		return nil, err
	}
	if so.Networks != nil {
		c.Config.Net.Networks = so.Networks
	}
	if err := e.start(c, so); err != nil {
		msg := err.Error()
		_, _ = e.modify(id, func(c *Container) error {
			c.State.Error = msg
			c.State.NetNS, c.State.OwnNetNS, c.State.Networks, c.State.Mounted = "", false, nil, ""
			return nil
		})
		return nil, err
	}
	rc, err := e.reconcile(id)
	if errors.Is(err, ErrNoSuchContainer) && c.Config.Remove {
		// A --rm container so quick that its monitor has already
		// recorded the exit and removed it: it did start.
		return c, nil
	}
	return rc, err
}

// cleanupPrevious releases the leftovers of the previous run (the old
// monitor may still be at it).
func (e *Engine) cleanupPrevious(id string) error {
	unlock, err := e.lockCleanup(id)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := e.reconcile(id)
	if err != nil {
		return err
	}
	e.stopOrphanMonitor(c, true)
	return e.cleanup(c)
}

// start runs the steps of Start; when one fails, what the earlier ones
// built is undone.
func (e *Engine) start(c *Container, so StartOptions) (err error) {
	var rb rollback.Stack
	defer rb.OnError(&err)
	id := c.Config.ID
	if err := os.MkdirAll(e.RunDir(id), 0o700); err != nil {
		return err
	}
	os.Remove(e.ExitFile(id))
	rootfs, err := e.mountRootfs(c, &rb)
	if err != nil {
		return err
	}
	// Published ports are bound before anything else changes, so a busy
	// port fails cleanly. A user-mode network (slirp4netns, pasta, and every
	// network of a rootless engine) holds its ports itself.
	var ports []*os.File
	if !e.userModePorts(c) {
		if ports, err = bindPorts(c.Config.Ports); err != nil {
			return err
		}
		defer closeAll(ports) // the monitor keeps its own copies
	}
	st, err := e.setUpNetwork(c, rootfs, &rb)
	if err != nil {
		return err
	}
	if err := e.writeBundle(c, rootfs, st); err != nil {
		return err
	}
	return e.startMonitor(c, so, ports, &rb)
}

// mountRootfs mounts the image's root filesystem (or uses --rootfs).
func (e *Engine) mountRootfs(c *Container, rb *rollback.Stack) (string, error) {
	if c.Config.Rootfs != "" {
		return c.Config.Rootfs, nil
	}
	if e.cfg.Images == nil {
		return "", ErrNoImages
	}
	id := c.Config.ID
	rootfs, err := e.cfg.Images.Mount(c.Config.ImageID, id)
	if err != nil {
		return "", fmt.Errorf("mount root filesystem: %w", err)
	}
	rb.Defer(func() { _ = e.cfg.Images.Unmount(id) })
	return rootfs, nil
}

// setUpNetwork gives the container its network namespace and attaches it
// to its networks. A namespace of its own is created under the engine
// lock with an attach intent journaled (see journal.go), so a start
// interrupted at any point leaves no pin, link or address behind.
func (e *Engine) setUpNetwork(c *Container, rootfs string, rb *rollback.Stack) (st State, err error) {
	if !ownsNetNS(c.Config.Net.Kind) {
		if st, err = e.networkNamespace(c, rb); err != nil {
			return st, err
		}
		st.Mounted = rootfs
		return st, e.recordNetNS(c.Config.ID, st)
	}
	ctx := e.ctx()
	unlock, err := e.lockEngine(ctx)
	defer unlock()
	if err != nil {
		return st, err
	}
	in := &intent{Op: opAttach, ID: c.Config.ID, NetNS: e.NetNSPath(c.Config.ID), OwnNetNS: true, Since: e.cfg.Now().UTC()}
	if err := e.journal(in); err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			if rerr := e.settle(context.WithoutCancel(ctx), in, false); rerr != nil {
				err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
			}
		}
	}()
	if st, err = e.networkNamespace(c, rb); err != nil {
		return st, err
	}
	st.Mounted = rootfs
	if err := e.recordNetNS(c.Config.ID, st); err != nil {
		return st, err
	}
	if st.Networks, err = e.attachNetworks(c, st.NetNS, in, rb); err != nil {
		return st, err
	}
	// Modes without attachments end here (attach drops its intent with
	// the attachments' record).
	return st, e.tx(func(tx *bolt.Tx) error { return dropIntent(tx, in) })
}

// recordNetNS records the namespace and root filesystem of a start.
func (e *Engine) recordNetNS(id string, st State) error {
	_, err := e.modify(id, func(r *Container) error {
		r.State.NetNS, r.State.OwnNetNS, r.State.Mounted, r.State.Error = st.NetNS, st.OwnNetNS, st.Mounted, ""
		// A start through berth: the restart policy counts anew.
		r.State.StoppedByUser, r.State.Restarting, r.State.RestartCount = false, false, 0
		return nil
	})
	return err
}

// ownsNetNS reports whether a network mode gives the container a
// namespace of its own.
func ownsNetNS(kind string) bool {
	return kind == runopts.ModeBridge || kind == runopts.ModeNone || userMode(kind)
}

// userMode reports whether a network mode is a user-mode network of the
// container's own (slirp4netns, pasta).
func userMode(kind string) bool {
	return kind == runopts.ModeSlirp || kind == runopts.ModePasta
}

// networkNamespace creates (and pins) the container's own namespace or
// finds the one it joins.
func (e *Engine) networkNamespace(c *Container, rb *rollback.Stack) (State, error) {
	var st State
	switch c.Config.Net.Kind {
	case runopts.ModeBridge, runopts.ModeNone, runopts.ModeSlirp, runopts.ModePasta:
		p := e.NetNSPath(c.Config.ID)
		_ = netns.Unpin(p)
		ns, err := netns.NewPinned(p)
		if err != nil {
			return st, fmt.Errorf("create network namespace: %w", err)
		}
		rb.Defer(func() { _ = netns.Unpin(p) })
		err = link.LoopbackUpIn(ns)
		ns.Close()
		if err != nil {
			return st, err
		}
		st.NetNS, st.OwnNetNS = p, true
	case runopts.ModeNS:
		st.NetNS = c.Config.Net.Target
	case runopts.ModeContainer:
		owner, err := e.reconcile(c.Config.Net.Target)
		if err != nil {
			return st, fmt.Errorf("--network container: %w", err)
		}
		if !owner.Running() {
			return st, fmt.Errorf("joining the network namespace of container %s: the container is not running", owner.Config.Name)
		}
		st.NetNS = owner.State.NetNS
		if st.NetNS == "" {
			st.NetNS = fmt.Sprintf("/proc/%d/ns/net", owner.State.Pid)
		}
	}
	return st, nil
}

// attachNetworks attaches the namespace to the container's networks (the
// modes that have any) and records their status.
func (e *Engine) attachNetworks(c *Container, nsPath string, in *intent, rb *rollback.Stack) (map[string]network.StatusBlock, error) {
	if !publishes(c.Config.Net.Kind) {
		return nil, nil
	}
	cur := *c
	cur.State.NetNS = nsPath
	res, err := e.attach(&cur, nsPath, in)
	if err != nil {
		return nil, err
	}
	rb.Defer(func() { _ = e.detach(&cur) })
	if _, err := e.modify(c.Config.ID, func(r *Container) error { r.State.Networks = res; return nil }); err != nil {
		return nil, err
	}
	return res, nil
}

// writeBundle writes the /etc files and the OCI spec into the run
// directory.
func (e *Engine) writeBundle(c *Container, rootfs string, st State) error {
	binds, err := e.writeEtc(c, st)
	if err != nil {
		return err
	}
	spec, err := e.spec(c, rootfs, st, binds)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return monitor.WriteFileAtomic(filepath.Join(e.RunDir(c.Config.ID), "config.json"), b, 0o600)
}

// startMonitor starts the container's monitor with the bound ports and
// waits until it reports the container started.
func (e *Engine) startMonitor(c *Container, so StartOptions, ports []*os.File, rb *rollback.Stack) error {
	if e.cfg.MonitorCommand == nil {
		return errors.New("engine: no monitor command")
	}
	id := c.Config.ID
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer syncR.Close()
	cmd := e.cfg.MonitorCommand(id)
	cmd.ExtraFiles = append([]*os.File{syncW}, ports...)
	cmd.Env = append(os.Environ(), "BERTH_MONITOR_PORTS="+strconv.Itoa(len(ports)), "BERTH_MONITOR_PARENT="+strconv.Itoa(os.Getpid()))
	if so.Attach != nil {
		cmd.Env = append(cmd.Env, "BERTH_MONITOR_WAIT_ATTACH=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := os.MkdirAll(e.DataDir(id), 0o700); err != nil {
		syncW.Close()
		return err
	}
	mlog, err := os.OpenFile(filepath.Join(e.RunDir(id), "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		syncW.Close()
		return err
	}
	cmd.Stdout, cmd.Stderr = mlog, mlog
	err = cmd.Start()
	mlog.Close()
	syncW.Close()
	if err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	// Recorded at once: if this command dies before the container runs,
	// the next start or rm finds the monitor (which holds the published
	// ports) and stops it.
	_, _ = e.modify(id, func(r *Container) error { r.State.MonitorPid = cmd.Process.Pid; return nil })
	rb.Defer(func() {
		_ = cmd.Process.Kill()
		_, _ = e.runc("delete", "--force", id)
	})
	return waitStarted(json.NewDecoder(syncR), so)
}

// ErrOrphanMonitor: the command that started a container's monitor died
// before it recorded the monitor.
var ErrOrphanMonitor = errors.New("the command that started this monitor died before recording it")

// WaitAdopted waits until the container's record names this monitor
// (pid): startMonitor records it right after starting it. A monitor whose
// starter (process parent) died first gets ErrOrphanMonitor and must exit
// without starting anything, so that no unrecorded monitor holds the
// published ports; the next command settles the rest. After 10 s with the
// starter alive (its record write failed) the monitor goes on, as before.
func (e *Engine) WaitAdopted(id string, pid, parent int) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if c, err := e.record(id); err == nil && c.State.MonitorPid == pid {
			return nil
		}
		if os.Getppid() != parent {
			return ErrOrphanMonitor
		}
	}
	return nil
}

// waitStarted reads the monitor's reports until the container started,
// letting the caller attach in between.
func waitStarted(dec *json.Decoder, so StartOptions) error {
	if _, err := monitor.ReadSync(dec, "created"); err != nil {
		return err
	}
	if so.Attach != nil {
		if err := so.Attach(); err != nil {
			return fmt.Errorf("attach: %w", err)
		}
	}
	_, err := monitor.ReadSync(dec, "started")
	return err
}

// publishes reports whether a network mode attaches the container to
// networks (and so can publish ports).
func publishes(kind string) bool {
	return kind == runopts.ModeBridge || userMode(kind)
}

// userModePorts reports whether c's published ports are held by a
// user-mode network rather than by its monitor.
func (e *Engine) userModePorts(c *Container) bool {
	return e.cfg.Rootless || userMode(c.Config.Net.Kind)
}
