package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/hostsfile"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/resolvconf"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// CreateOptions are the options of `berth create` and `run`.
type CreateOptions struct {
	Name string
	// Image is resolved through the ImageSource; Rootfs is a directory
	// used as the root filesystem instead.
	Image, Rootfs string
	// Entrypoint overrides the image's when set ("" clears it).
	Entrypoint  *string
	Args        []string
	Env         []string
	WorkingDir  string
	User        string
	Hostname    string
	Terminal    bool
	Stdin       bool
	Remove      bool
	StopSignal  string
	StopTimeout *uint
	Labels      map[string]string
	ReadOnly    bool

	Net        runopts.NetMode
	Ports      []network.PortMapping
	PublishAll bool
	Expose     []network.PortMapping // exposed ports (no host port)
	DNS        runopts.DNS
	AddHosts   []runopts.ExtraHost
	NoHosts    bool
	// Pod puts the container into a pod: it joins the infra container's
	// network, IPC and UTS namespaces.
	Pod string

	// infraOf makes the container the infra container of a pod.
	infraOf string
}

// Create records a new container. Nothing runs yet; random host ports are
// chosen now, as Podman does.
func (e *Engine) Create(o CreateOptions) (c *Container, warnings []string, err error) {
	id := randomID()
	cfg := Config{
		ID: id, Name: o.Name, Created: e.cfg.Now().UTC(),
		Env: o.Env, WorkingDir: o.WorkingDir, User: o.User,
		Terminal: o.Terminal, Stdin: o.Stdin, Remove: o.Remove,
		StopSignal: o.StopSignal, StopTimeout: 10, Labels: o.Labels, ReadOnly: o.ReadOnly,
		Net: o.Net, DNS: o.DNS, AddHosts: o.AddHosts, NoHosts: o.NoHosts,
	}
	if o.StopTimeout != nil {
		cfg.StopTimeout = *o.StopTimeout
	}
	if cfg.Name == "" {
		all, err := e.list()
		if err != nil {
			return nil, nil, err
		}
		cfg.Name = freeName(func(n string) bool {
			for _, c := range all {
				if c.Config.Name == n {
					return true
				}
			}
			return false
		})
	}
	var exposed []network.PortMapping
	switch {
	case o.Rootfs != "" && o.Image != "":
		return nil, nil, errors.New("give either an image or --rootfs, not both")
	case o.Rootfs != "":
		abs, err := filepath.Abs(o.Rootfs)
		if err != nil {
			return nil, nil, err
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("--rootfs %s: not a directory", o.Rootfs)
		}
		cfg.Rootfs = abs
		cfg.Args = runspec.Command(nil, nil, o.Entrypoint, o.Args)
		if o.Entrypoint != nil && *o.Entrypoint != "" {
			cfg.Entrypoint = []string{*o.Entrypoint}
		}
		cfg.Cmd = o.Args
	default:
		if e.cfg.Images == nil {
			return nil, nil, fmt.Errorf("image %s: %w (berth run --rootfs DIR runs a directory)", o.Image, ErrNoImages)
		}
		img, err := e.cfg.Images.Resolve(o.Image)
		if err != nil {
			return nil, nil, err
		}
		cfg.Image, cfg.ImageID = o.Image, img.ID
		cfg.Args = runspec.Command(img.Entrypoint, img.Cmd, o.Entrypoint, o.Args)
		cfg.Entrypoint, cfg.Cmd = img.Entrypoint, img.Cmd
		if o.Entrypoint != nil {
			cfg.Entrypoint, cfg.Cmd = nil, nil
			if *o.Entrypoint != "" {
				cfg.Entrypoint = []string{*o.Entrypoint}
			}
		}
		if len(o.Args) > 0 {
			cfg.Cmd = o.Args
		}
		cfg.Env = runspec.MergeEnv(img.Env, o.Env)
		if cfg.WorkingDir == "" {
			cfg.WorkingDir = img.WorkingDir
		}
		if cfg.User == "" {
			cfg.User = img.User
		}
		if cfg.StopSignal == "" {
			cfg.StopSignal = img.StopSignal
		}
		for _, p := range img.ExposedPorts {
			ep, err := runopts.ParseExpose(p)
			if err != nil {
				return nil, nil, fmt.Errorf("image %s: exposed port: %w", o.Image, err)
			}
			exposed = append(exposed, ep)
		}
	}
	if len(cfg.Args) == 0 {
		return nil, nil, runspec.ErrNoCommand
	}
	if cfg.StopSignal != "" {
		if _, err := ParseSignal(cfg.StopSignal); err != nil {
			return nil, nil, fmt.Errorf("--stop-signal: %w", err)
		}
	}
	exposed = append(exposed, o.Expose...)
	// Ranges are listed port by port, as Podman does.
	for _, ep := range network.ExpandPorts(exposed...) {
		if p := runopts.FormatExpose(ep); !contains(cfg.ExposedPorts, p) {
			cfg.ExposedPorts = append(cfg.ExposedPorts, p)
		}
	}
	ports := append([]network.PortMapping{}, o.Ports...)
	if o.PublishAll {
		ports = append(ports, runopts.PublishAll(exposed, ports)...)
	}
	if len(ports) > 0 && !publishes(cfg.Net.Kind) {
		warnings = append(warnings, "Port mappings have been discarded as one of the Host, Container, Pod, and None network modes are in use")
		ports = nil
	}
	if ports, err = choosePorts(ports); err != nil {
		return nil, nil, err
	}
	cfg.Ports = ports
	if o.infraOf != "" {
		cfg.Pod, cfg.Infra = o.infraOf, true
	}
	if o.Pod != "" {
		p, err := e.GetPod(o.Pod)
		if err != nil {
			return nil, nil, err
		}
		if len(cfg.Ports) > 0 {
			return nil, nil, errors.New("invalid config provided: published or exposed ports must be defined when the pod is created: network cannot be configured when it is shared with a pod")
		}
		cfg.Pod = p.ID
		cfg.Net = runopts.NetMode{Kind: runopts.ModeContainer, Target: p.InfraID}
		if o.Hostname == "" {
			o.Hostname = p.Hostname
		}
	}
	if cfg.Net.Kind == runopts.ModeContainer {
		all, err := e.list()
		if err != nil {
			return nil, nil, err
		}
		t, err := Lookup(all, cfg.Net.Target)
		if err != nil {
			return nil, nil, fmt.Errorf("--network container:%s: %w", cfg.Net.Target, err)
		}
		cfg.Net.Target = t.Config.ID
		if len(cfg.AddHosts) > 0 {
			return nil, nil, errors.New("cannot set extra host entries when the container is joined to another containers network namespace")
		}
	}
	if cfg.NoHosts && len(cfg.AddHosts) > 0 {
		return nil, nil, errors.New("--no-hosts and --add-host cannot be set together")
	}
	cfg.Hostname = o.Hostname
	if cfg.Hostname == "" {
		cfg.Hostname = network.ShortID(id)
		if cfg.Net.Kind == runopts.ModeHost {
			if h, err := os.Hostname(); err == nil {
				cfg.Hostname = h
			}
		}
	}
	c = &Container{Config: cfg, State: State{Status: StateCreated}}
	if err := e.validateNetworks(c); err != nil {
		return nil, nil, err
	}
	if err := e.put(c, true); err != nil {
		return nil, nil, err
	}
	if cfg.ImageID != "" {
		// The container's layer exists from create on, so the image store
		// knows the image is in use (rmi refuses it).
		_, err := e.cfg.Images.Mount(cfg.ImageID, id)
		if err == nil {
			err = e.cfg.Images.Unmount(id)
		}
		if err != nil {
			_ = e.cfg.Images.RemoveRootfs(id)
			_ = e.delete(id)
			return nil, nil, fmt.Errorf("create the root filesystem: %w", err)
		}
	}
	if cfg.Pod != "" && !cfg.Infra {
		e.podMembersChanged(cfg.Pod)
	}
	return c, warnings, nil
}

// StartOptions tune Start.
type StartOptions struct {
	// Attach, when set, is called once runc created the container and
	// before it starts; the monitor waits for the first attach client, so
	// Attach should connect to AttachSocket.
	Attach func() error
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
	// Leftovers of the previous run go first (the old monitor may still
	// be at it).
	unlockC, err := e.lockCleanup(id)
	if err != nil {
		return nil, err
	}
	if c, err = e.reconcile(id); err == nil {
		err = e.cleanup(c)
	}
	unlockC()
	if err != nil {
		return nil, err
	}
	var rb []func()
	rollback := func() {
		for i := len(rb) - 1; i >= 0; i-- {
			rb[i]()
		}
	}
	fail := func(err error) (*Container, error) {
		rollback()
		msg := err.Error()
		_, _ = e.modify(id, func(c *Container) error {
			c.State.Error = msg
			c.State.NetNS, c.State.OwnNetNS, c.State.Networks, c.State.Mounted = "", false, nil, ""
			return nil
		})
		return nil, err
	}
	runDir := e.RunDir(id)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fail(err)
	}
	os.Remove(e.ExitFile(id))

	// Root filesystem.
	rootfs := c.Config.Rootfs
	if rootfs == "" {
		if e.cfg.Images == nil {
			return fail(ErrNoImages)
		}
		if rootfs, err = e.cfg.Images.Mount(c.Config.ImageID, id); err != nil {
			return fail(fmt.Errorf("mount root filesystem: %w", err))
		}
		rb = append(rb, func() { _ = e.cfg.Images.Unmount(id) })
	}
	// Published ports are bound before anything else changes, so a busy
	// port fails cleanly. A user-mode network (slirp4netns, and every
	// network of a rootless engine) holds its ports itself.
	var ports []*os.File
	if !e.userModePorts(c) {
		if ports, err = bindPorts(c.Config.Ports); err != nil {
			return fail(err)
		}
		rb = append(rb, func() { closeAll(ports) })
	}

	// Network namespace.
	st := State{Mounted: rootfs}
	switch c.Config.Net.Kind {
	case runopts.ModeBridge, runopts.ModeNone, runopts.ModeSlirp:
		p := e.NetNSPath(id)
		_ = netns.Unpin(p)
		ns, err := netns.NewPinned(p)
		if err != nil {
			return fail(fmt.Errorf("create network namespace: %w", err))
		}
		rb = append(rb, func() { _ = netns.Unpin(p) })
		err = loUp(ns)
		ns.Close()
		if err != nil {
			return fail(err)
		}
		st.NetNS, st.OwnNetNS = p, true
	case runopts.ModeNS:
		st.NetNS = c.Config.Net.Target
	case runopts.ModeContainer:
		owner, err := e.reconcile(c.Config.Net.Target)
		if err != nil {
			return fail(fmt.Errorf("--network container: %w", err))
		}
		if !owner.Running() {
			return fail(fmt.Errorf("joining the network namespace of container %s: the container is not running", owner.Config.Name))
		}
		st.NetNS = owner.State.NetNS
		if st.NetNS == "" {
			st.NetNS = fmt.Sprintf("/proc/%d/ns/net", owner.State.Pid)
		}
	}
	if _, err := e.modify(id, func(r *Container) error {
		r.State.NetNS, r.State.OwnNetNS, r.State.Mounted, r.State.Error = st.NetNS, st.OwnNetNS, st.Mounted, ""
		return nil
	}); err != nil {
		return fail(err)
	}
	if publishes(c.Config.Net.Kind) {
		cur := *c
		cur.State.NetNS = st.NetNS
		res, err := e.attach(&cur, st.NetNS)
		if err != nil {
			return fail(err)
		}
		rb = append(rb, func() { _ = e.detach(&cur) })
		st.Networks = res
		if _, err := e.modify(id, func(r *Container) error { r.State.Networks = res; return nil }); err != nil {
			return fail(err)
		}
	}

	// /etc files and the spec.
	binds, err := e.writeEtc(c, st)
	if err != nil {
		return fail(err)
	}
	spec, err := e.spec(c, rootfs, st, binds)
	if err != nil {
		return fail(err)
	}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fail(err)
	}
	if err := monitor.WriteFileAtomic(filepath.Join(runDir, "config.json"), b, 0o600); err != nil {
		return fail(err)
	}

	// The monitor.
	if e.cfg.MonitorCommand == nil {
		return fail(errors.New("engine: no monitor command"))
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer syncR.Close()
	cmd := e.cfg.MonitorCommand(id)
	cmd.ExtraFiles = append([]*os.File{syncW}, ports...)
	cmd.Env = append(os.Environ(), "BERTH_MONITOR_PORTS="+strconv.Itoa(len(ports)))
	if so.Attach != nil {
		cmd.Env = append(cmd.Env, "BERTH_MONITOR_WAIT_ATTACH=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := os.MkdirAll(e.DataDir(id), 0o700); err != nil {
		return fail(err)
	}
	mlog, err := os.OpenFile(filepath.Join(runDir, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = mlog, mlog
	err = cmd.Start()
	mlog.Close()
	syncW.Close()
	if err != nil {
		return fail(fmt.Errorf("start monitor: %w", err))
	}
	go func() { _ = cmd.Wait() }()
	// The ports now live in the monitor too; ours close, its stay open.
	closeAll(ports)
	rb = append(rb, func() {
		_ = cmd.Process.Kill()
		_, _ = e.runc("delete", "--force", id)
	})
	dec := json.NewDecoder(syncR)
	if _, err := monitor.ReadSync(dec, "created"); err != nil {
		return fail(err)
	}
	if so.Attach != nil {
		if err := so.Attach(); err != nil {
			return fail(fmt.Errorf("attach: %w", err))
		}
	}
	if _, err := monitor.ReadSync(dec, "started"); err != nil {
		return fail(err)
	}
	rc, err := e.reconcile(id)
	if errors.Is(err, ErrNoSuchContainer) && c.Config.Remove {
		// A --rm container so quick that its monitor has already
		// recorded the exit and removed it: it did start.
		return c, nil
	}
	return rc, err
}

// MonitorStarted records a started container (called by the monitor).
func (e *Engine) MonitorStarted(id string, pid, monitorPid int) error {
	_, err := e.modify(id, func(c *Container) error {
		if c.State.Status == StateRunning && c.State.Pid == pid {
			return nil
		}
		c.State.Status, c.State.Pid, c.State.MonitorPid = StateRunning, pid, monitorPid
		c.State.StartedAt = e.cfg.Now().UTC()
		c.State.FinishedAt = time.Time{}
		c.State.ExitCode = 0
		c.State.StartCount++
		return nil
	})
	return err
}

// MonitorExited records the exit and cleans up (called by the monitor);
// a --rm container is removed.
func (e *Engine) MonitorExited(id string, code int, at time.Time) {
	c, err := e.modify(id, func(c *Container) error {
		setExited(c, code, at)
		return nil
	})
	if err != nil {
		e.log.Warn("record exit", "container", id, "error", err)
		return
	}
	unlock, err := e.lockCleanup(id)
	if err == nil {
		err = e.cleanup(c)
		unlock()
	}
	if err != nil {
		e.log.Warn("clean up after exit", "container", id, "error", err)
	}
	if c.Config.Remove {
		if err := e.removeStopped(c); err != nil {
			e.log.Warn("remove after exit (--rm)", "container", id, "error", err)
		}
	}
}

func setExited(c *Container, code int, at time.Time) {
	c.State.Status = StateExited
	c.State.ExitCode = code
	c.State.FinishedAt = at
	c.State.Pid = 0
	c.State.MonitorPid = 0
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
// idempotent.
func (e *Engine) cleanup(c *Container) error {
	id := c.Config.ID
	var errs []error
	if e.runcStatus(id) != "" {
		if out, err := e.runc("delete", "--force", id); err != nil && !strings.Contains(out, "does not exist") {
			errs = append(errs, fmt.Errorf("runc delete: %s: %w", strings.TrimSpace(out), err))
		}
	}
	if c.State.NetNS != "" && publishes(c.Config.Net.Kind) {
		if err := e.detach(c); err != nil {
			errs = append(errs, err)
		}
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

// Stop sends the stop signal, then SIGKILL after timeout, and waits until
// the container exited and was cleaned up.
func (e *Engine) Stop(ref string, timeout *uint) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if !c.Running() {
		return c, nil
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
			return c, e.waitCleanup(c, mon)
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
	return c, e.waitCleanup(c, mon)
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
	if _, err := ParseSignal(sig); err != nil {
		return nil, err
	}
	return c, e.signal(c.Config.ID, sig)
}

func (e *Engine) signal(id, sig string) error {
	s, err := ParseSignal(sig)
	if err != nil {
		return err
	}
	if out, err := e.runc("kill", id, strconv.Itoa(int(s))); err != nil {
		if strings.Contains(out, "not running") || strings.Contains(out, "does not exist") || strings.Contains(out, "process already finished") {
			return nil
		}
		return fmt.Errorf("runc kill: %s: %w", strings.TrimSpace(out), err)
	}
	return nil
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

// waitExit polls until the container is not running (timeout 0: forever).
func (e *Engine) waitExit(id string, timeout time.Duration) (*Container, error) {
	deadline := time.Now().Add(timeout)
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
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCleanup waits for the monitor to finish its exit work, then makes
// sure everything is released.
func (e *Engine) waitCleanup(c *Container, monitorPid int) error {
	deadline := time.Now().Add(10 * time.Second)
	for monitorPid != 0 && processAlive(monitorPid, c.Config.ID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
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
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if c.Config.Infra {
		if _, err := e.GetPod(c.Config.Pod); err == nil {
			return nil, fmt.Errorf("container %s is the infra container of pod %s and cannot be removed without removing the pod: %w", c.Config.ID, c.Config.Pod, ErrRunning)
		}
	}
	return c, e.removeContainer(c, force, true)
}

// removeContainer removes c (allowInfra: also a pod's infra container).
func (e *Engine) removeContainer(c *Container, force, allowInfra bool) error {
	var err error
	if c.Config.Infra && !allowInfra {
		return fmt.Errorf("container %s is a pod's infra container", c.Config.ID)
	}
	if c.Running() {
		if !force {
			return fmt.Errorf("cannot remove container %s as it is running - running or paused containers cannot be removed without force: %w", c.Config.ID, ErrRunning)
		}
		var zero uint
		if c, err = e.Stop(c.Config.ID, &zero); err != nil {
			return err
		}
	}
	return e.removeStopped(c)
}

func (e *Engine) removeStopped(c *Container) error {
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
	if c.Config.Pod != "" && !c.Config.Infra {
		e.podMembersChanged(c.Config.Pod)
	}
	// The lock files go too (their holders use the open descriptors).
	_ = os.Remove(e.lockPath(id))
	_ = os.Remove(e.lockPath(id) + ".cleanup")
	return errors.Join(os.RemoveAll(e.RunDir(id)), os.RemoveAll(e.DataDir(id)))
}

// Exec runs a command in a running container through runc exec with the
// caller's stdio and returns its exit code (126/127 when it cannot run).
func (e *Engine) Exec(ref string, p runspec.Process, detach bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c, err := e.Get(ref)
	if err != nil {
		return 125, err
	}
	if !c.Running() {
		return 125, fmt.Errorf("can only create exec sessions on running containers: %w", ErrRunning)
	}
	if p.Cwd == "" {
		p.Cwd = c.Config.WorkingDir
	}
	p.Env = runspec.MergeEnv(c.Config.Env, p.Env)
	if p.UID == 0 && p.GID == 0 && c.Config.User != "" {
		root := c.State.Mounted
		passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
		group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
		if p.UID, p.GID, err = runspec.ResolveUser(c.Config.User, passwd, group); err != nil {
			return 125, err
		}
	}
	p.NoFile = noFile()
	proc, err := runspec.BuildProcess(p)
	if err != nil {
		return 125, err
	}
	b, _ := json.Marshal(proc)
	f, err := os.CreateTemp(e.RunDir(c.Config.ID), "exec-*.json")
	if err != nil {
		return 125, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return 125, err
	}
	f.Close()
	args := []string{"--root", e.RuncRoot(), "exec", "--process", f.Name()}
	if p.Terminal {
		args = append(args, "--tty")
	}
	if detach {
		args = append(args, "--detach")
	}
	cmd := exec.Command(e.cfg.Runtime, append(args, c.Config.ID)...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	errTail := &tailWriter{w: stderr}
	cmd.Stderr = errTail
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		tail := string(errTail.tail)
		if i := strings.Index(tail, "unable to start container process: "); i >= 0 {
			msg := strings.Trim(strings.TrimSpace(tail[i+len("unable to start container process: "):]), "\"")
			msg = "runc: exec failed: " + strings.ReplaceAll(msg, `\"`, `"`)
			switch {
			case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
				return 127, fmt.Errorf("%s: OCI runtime attempted to invoke a command that was not found", msg)
			case strings.Contains(msg, "permission denied"):
				return 126, fmt.Errorf("%s: OCI permission denied", msg)
			}
			return 126, errors.New(msg)
		}
		return code, nil
	}
	if err != nil {
		return 125, fmt.Errorf("runc exec: %w", err)
	}
	return 0, nil
}

// tailWriter forwards writes and keeps the last 4 KiB (runc's error).
type tailWriter struct {
	w    io.Writer
	tail []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if len(t.tail) > 4096 {
		t.tail = t.tail[len(t.tail)-4096:]
	}
	// runc's own error lines are not the container's output.
	if strings.Contains(string(p), "unable to start container process") {
		return len(p), nil
	}
	return t.w.Write(p)
}

// writeEtc writes hosts, resolv.conf and hostname into the run directory
// and returns their bind mounts.
func (e *Engine) writeEtc(c *Container, st State) ([]runspec.Bind, error) {
	return e.writeEtcFiles(c, st, false)
}

// writeEtcFiles writes the files; inPlace rewrites the existing files of a
// running container without changing their inodes (they are bind mounts).
func (e *Engine) writeEtcFiles(c *Container, st State, inPlace bool) ([]runspec.Bind, error) {
	dir := e.RunDir(c.Config.ID)
	var binds []runspec.Bind
	write := func(name, dest string, data []byte) error {
		p := filepath.Join(dir, name)
		if inPlace {
			if _, err := os.Stat(p); err != nil {
				return nil // not mounted in this container
			}
			return os.WriteFile(p, data, 0o644)
		}
		if err := monitor.WriteFileAtomic(p, data, 0o644); err != nil {
			return err
		}
		binds = append(binds, runspec.Bind{Source: p, Destination: dest})
		return nil
	}
	if err := write("hostname", "/etc/hostname", []byte(c.Config.Hostname+"\n")); err != nil {
		return nil, err
	}
	kind := c.Config.Net.Kind
	var owner *Container
	if kind == runopts.ModeContainer {
		o, err := e.reconcile(c.Config.Net.Target)
		if err != nil {
			return nil, err
		}
		owner = o
	}
	// Gateways of the bridge networks: host.containers.internal and
	// host-gateway.
	var gw4 string
	var ctrEntries []hostsfile.Entry
	var netServers []netip.Addr
	var netSearch []string
	ipv6 := false
	for _, name := range networkOrder(c, st) {
		sb := st.Networks[name]
		netServers = append(netServers, sb.DNSServerIPs...)
		for _, s := range sb.DNSSearchDomains {
			if !contains(netSearch, s) {
				netSearch = append(netSearch, s)
			}
		}
		for _, ifc := range sortedIfaces(sb) {
			for _, sn := range ifc.Subnets {
				a := sn.IPNet.Addr()
				if a.Is6() {
					ipv6 = true
				}
				if gw4 == "" && sn.Gateway.IsValid() && sn.Gateway.Is4() {
					gw4 = sn.Gateway.String()
				}
				ctrEntries = append(ctrEntries, hostsfile.Entry{IP: a.String(), Names: []string{c.Config.Hostname, c.Config.Name}})
			}
		}
	}
	if kind == runopts.ModeSlirp {
		// slirp4netns's fixed layout: the container at .100, the host
		// (gateway) at .2, the DNS forwarder at .3.
		o, _ := runopts.ParseSlirpOptions(c.Config.Net.Target)
		cidr := o.CIDR
		if !cidr.IsValid() {
			cidr = netip.MustParsePrefix("10.0.2.0/24")
		}
		nth := func(n byte) netip.Addr {
			a := cidr.Masked().Addr().As4()
			a[3] += n
			return netip.AddrFrom4(a)
		}
		ctrEntries = []hostsfile.Entry{{IP: nth(100).String(), Names: []string{c.Config.Hostname, c.Config.Name}}}
		gw4 = nth(2).String()
		netServers = []netip.Addr{nth(3)}
	}
	if !c.Config.NoHosts {
		var base []byte
		switch {
		case owner != nil:
			base, _ = os.ReadFile(filepath.Join(e.RunDir(owner.Config.ID), "hosts"))
			ctrEntries = []hostsfile.Entry{{IP: "127.0.0.1", Names: []string{c.Config.Hostname, c.Config.Name}}}
			gw4 = ""
		default:
			base, _ = os.ReadFile(e.cfg.HostsFile)
		}
		if kind == runopts.ModeNone {
			ctrEntries = []hostsfile.Entry{{IP: "127.0.0.1", Names: []string{c.Config.Hostname, c.Config.Name}}}
		}
		var extra []hostsfile.Entry
		for _, h := range c.Config.AddHosts {
			ip := h.IP
			if ip == runopts.HostGateway {
				if gw4 == "" {
					return nil, fmt.Errorf("--add-host %s:host-gateway: the container has no bridge network gateway to use as the host's address", strings.Join(h.Names, ";"))
				}
				ip = gw4
			}
			extra = append(extra, hostsfile.Entry{IP: ip, Names: h.Names})
		}
		if kind == runopts.ModeHost {
			ctrEntries = nil
		}
		data := hostsfile.Build(hostsfile.Params{Extra: extra, Base: base, HostContainersInternal: gw4, Container: ctrEntries})
		if err := write("hosts", "/etc/hosts", data); err != nil {
			return nil, err
		}
	}
	if c.Config.DNS.None || kind == runopts.ModeNone {
		return binds, nil
	}
	var data []byte
	if owner != nil {
		data, _ = os.ReadFile(filepath.Join(e.RunDir(owner.Config.ID), "resolv.conf"))
	} else {
		host, _ := os.ReadFile(e.cfg.ResolvConf)
		data = resolvconf.Build(resolvconf.Params{
			Host:           resolvconf.Parse(host),
			PrivateNetNS:   kind != runopts.ModeHost,
			IPv6:           ipv6,
			NetworkServers: netServers,
			NetworkSearch:  netSearch,
			Servers:        c.Config.DNS.Servers,
			Search:         c.Config.DNS.Search,
			Options:        c.Config.DNS.Options,
		}).Bytes()
	}
	if err := write("resolv.conf", "/etc/resolv.conf", data); err != nil {
		return nil, err
	}
	return binds, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// networkOrder returns the status blocks' network names in the order the
// container asked for them (then any others, by name).
func networkOrder(c *Container, st State) []string {
	var out []string
	for _, r := range c.Config.Net.Networks {
		for name := range st.Networks {
			if name == r.Name && !contains(out, name) {
				out = append(out, name)
			}
		}
	}
	var rest []string
	for name := range st.Networks {
		if !contains(out, name) {
			rest = append(rest, name)
		}
	}
	sortStrings(rest)
	return append(out, rest...)
}

func sortedIfaces(sb network.StatusBlock) []network.Interface {
	var names []string
	for n := range sb.Interfaces {
		names = append(names, n)
	}
	sortStrings(names)
	var out []network.Interface
	for _, n := range names {
		out = append(out, sb.Interfaces[n])
	}
	return out
}

func (e *Engine) spec(c *Container, rootfs string, st State, binds []runspec.Bind) (any, error) {
	passwd, _ := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(rootfs, "etc/group"))
	uid, gid, err := runspec.ResolveUser(c.Config.User, passwd, group)
	if err != nil {
		return nil, err
	}
	env := runspec.MergeEnv([]string{"container=berth", "HOSTNAME=" + c.Config.Hostname}, c.Config.Env)
	var ipcNS, utsNS string
	if c.Config.Pod != "" && !c.Config.Infra && c.Config.Net.Kind == runopts.ModeContainer {
		infra, err := e.reconcile(c.Config.Net.Target)
		if err != nil {
			return nil, err
		}
		if !infra.Running() {
			return nil, fmt.Errorf("the infra container of the pod is not running")
		}
		ipcNS = fmt.Sprintf("/proc/%d/ns/ipc", infra.State.Pid)
		utsNS = fmt.Sprintf("/proc/%d/ns/uts", infra.State.Pid)
	}
	return runspec.Generate(runspec.Options{
		IPCNS: ipcNS, UTSNS: utsNS,
		Process: runspec.Process{
			Args: c.Config.Args, Env: env, Cwd: c.Config.WorkingDir,
			UID: uid, GID: gid, Terminal: c.Config.Terminal, NoFile: noFile(),
		},
		Rootfs:      rootfs,
		Hostname:    c.Config.Hostname,
		NetNS:       st.NetNS,
		HostNetwork: c.Config.Net.Kind == runopts.ModeHost,
		Binds:       binds,
		CgroupsPath: "/berth/" + c.Config.ID,
		ReadOnly:    c.Config.ReadOnly,
		Rootless:    e.cfg.Rootless,
		NoTTYGroup:  e.cfg.Rootless && !gidMapped(5),
	})
}

// publishes reports whether a network mode attaches the container through
// the Networker (and so can publish ports).
func publishes(kind string) bool {
	return kind == runopts.ModeBridge || kind == runopts.ModeSlirp
}

// userModePorts reports whether c's published ports are held by a
// user-mode network rather than by its monitor.
func (e *Engine) userModePorts(c *Container) bool {
	return e.cfg.Rootless || c.Config.Net.Kind == runopts.ModeSlirp
}

// gidMapped reports whether gid exists in this process's user namespace.
func gidMapped(gid int) bool {
	b, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return true
	}
	m, err := rootless.ParseIDMap(string(b))
	return err != nil || rootless.InMap(m, gid)
}

// noFile is the open-files limit containers get: the host's hard limit, as
// Podman gives when it cannot raise it to 1048576.
func noFile() uint64 {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return min(r.Max, 1048576)
}

func loUp(ns *netns.NetNS) error {
	h, err := link.NewHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.ByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := h.Up(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

func (e *Engine) runc(args ...string) (string, error) {
	out, err := exec.Command(e.cfg.Runtime, append([]string{"--root", e.RuncRoot()}, args...)...).CombinedOutput()
	return string(out), err
}

// runcStatus is runc's status of the container, "" when runc does not
// know it.
func (e *Engine) runcStatus(id string) string {
	out, err := exec.Command(e.cfg.Runtime, "--root", e.RuncRoot(), "state", id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(out, &st) != nil {
		return ""
	}
	return st.Status
}

func (e *Engine) lockPath(id string) string {
	return filepath.Join(e.cfg.RunRoot, "locks", id)
}

// lock serialises start of one container.
func (e *Engine) lock(id string) (func(), error) { return flock(e.lockPath(id)) }

// lockCleanup serialises cleanup and removal of one container.
func (e *Engine) lockCleanup(id string) (func(), error) { return flock(e.lockPath(id) + ".cleanup") }

func flock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// UpdateNetworks changes the networks a container is configured with (the
// ones it joins at its next start): connect and disconnect record here.
func (e *Engine) UpdateNetworks(ref string, fn func(m *runopts.NetMode) error) (*Container, error) {
	c, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	return e.modify(c.Config.ID, func(c *Container) error { return fn(&c.Config.Net) })
}

// NetworksChanged records networks a running container joined (add) or
// left (remove) and rewrites its /etc/hosts and /etc/resolv.conf in place,
// as Podman does on network connect and disconnect.
func (e *Engine) NetworksChanged(ref string, add map[string]network.StatusBlock, remove []string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c, err = e.modify(c.Config.ID, func(c *Container) error {
		if c.State.Networks == nil {
			c.State.Networks = map[string]network.StatusBlock{}
		}
		for k, v := range add {
			c.State.Networks[k] = v
		}
		for _, k := range remove {
			delete(c.State.Networks, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !c.Running() {
		return nil
	}
	_, err = e.writeEtcFiles(c, c.State, true)
	return err
}
