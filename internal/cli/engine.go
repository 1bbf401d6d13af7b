package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// engine returns the container engine on the world's directories, with
// berth's own network backend attaching its containers.
func (w *world) engine() (*engine.Engine, error) {
	rt := w.env.getenv("BERTH_RUNTIME")
	if rt == "" {
		rt = "/usr/sbin/runc"
		if p, err := exec.LookPath("runc"); err == nil {
			rt = p
		}
	}
	return engine.New(engine.EngineConfig{
		Root: w.root, RunRoot: w.runRoot, Runtime: rt,
		Images:         w.imageSource(),
		Net:            &engineNet{w: w},
		MonitorCommand: w.monitorCommand,
		Rootless:       w.rootlessBridges(),
		Logger:         w.log,
		Now:            w.env.now,
	})
}

// imageSource is the image store under --root, opened on first use.
func (w *world) imageSource() engine.ImageSource {
	return &storeImages{dir: filepath.Join(w.root, "images")}
}

// storeImages adapts the image store to the engine.
type storeImages struct {
	dir string
	s   *image.Store
}

func (a *storeImages) store() (*image.Store, error) {
	if a.s == nil {
		s, err := image.Open(a.dir)
		if err != nil {
			return nil, err
		}
		a.s = s
	}
	return a.s, nil
}

func (a *storeImages) Resolve(ref string) (engine.ImageInfo, error) {
	s, err := a.store()
	if err != nil {
		return engine.ImageInfo{}, err
	}
	img, err := s.Lookup(ref)
	if err != nil {
		return engine.ImageInfo{}, err
	}
	name := ref
	if len(img.Names) > 0 {
		name = img.Names[0]
	}
	c := img.Config
	return engine.ImageInfo{
		ID: img.ID, Name: name, Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env,
		WorkingDir: c.WorkingDir, User: c.User, StopSignal: c.StopSignal, ExposedPorts: c.ExposedPorts,
	}, nil
}

func (a *storeImages) Mount(imageID, containerID string) (string, error) {
	s, err := a.store()
	if err != nil {
		return "", err
	}
	return s.Mount(imageID, containerID)
}

func (a *storeImages) Unmount(containerID string) error {
	s, err := a.store()
	if err != nil {
		return err
	}
	return s.Unmount(containerID)
}

func (a *storeImages) RemoveRootfs(containerID string) error {
	s, err := a.store()
	if err != nil {
		return err
	}
	return s.RemoveRootfs(containerID)
}

// monitorCommand starts `berth container-monitor ID` with this world's
// directories.
func (w *world) monitorCommand(id string) *exec.Cmd {
	exe := w.env.Executable
	if exe == "" {
		exe = "/proc/self/exe"
	}
	lvl := "warn"
	for k, v := range logLevels {
		if v == w.logLevel {
			lvl = k
			break
		}
	}
	return exec.Command(exe, "--root", w.root, "--runroot", w.runRoot,
		"--network-config-dir", w.store.Dir(), "--network-run-dir", w.runDir,
		"--log-level", lvl, "container-monitor", id)
}

// engineNet attaches engine containers with the same backend, IPAM and
// container records as `berth network connect`: an engine container is a
// registered container with the same ID and name.
type engineNet struct {
	w *world
}

func (n *engineNet) networkOf(r string) (network.Network, error) {
	if r == "" {
		r = n.w.store.DefaultName()
	}
	return n.w.store.Get(r)
}

// RenameDNS gives an attached container (a pod's infra) the DNS names of
// its current configuration: its own, its aliases and the pod's members.
func (n *engineNet) RenameDNS(c *engine.Container) error {
	w := n.w
	var rec *container
	if err := w.ctrs.update(func(all []*container) ([]*container, error) {
		for _, o := range all {
			if o.ID == c.Config.ID {
				o.Members = c.Config.PodMembers
				rec = o
				return []*container{o}, nil
			}
		}
		return nil, nil
	}); err != nil || rec == nil {
		return err
	}
	names := map[string][]string{}
	for _, nw := range rec.options(rec.Networks).Networks {
		names[nw.Name] = append([]string{rec.Name}, nw.Aliases...)
	}
	m, err := w.manager()
	if err != nil {
		return err
	}
	defer m.Close()
	return m.SetDNSNames(rec.ID, names)
}

// Validate checks the container's networks and static addresses before it
// is created.
func (n *engineNet) Validate(c *engine.Container) error {
	for _, r := range c.Config.Net.Networks {
		nw, err := n.networkOf(r.Name)
		if err != nil {
			return err
		}
		if len(r.IPs) > 0 && !ipam.Uses(nw) {
			return fmt.Errorf("network %s does not hand out addresses (ipam driver %s): --ip and --ip6 cannot be used", nw.Name, nw.IPAMDriver())
		}
		if err := ipam.Validate(nw, r.IPs); err != nil {
			return err
		}
	}
	return nil
}

// Attach allocates addresses, registers the container and sets every
// network up in one core call; on failure nothing is left.
func (n *engineNet) Attach(c *engine.Container, nsPath string) (res map[string]network.StatusBlock, err error) {
	if c.Config.Net.Kind == runopts.ModeSlirp {
		return n.attachSlirp(c, nsPath)
	}
	w := n.w
	id := c.Config.ID
	rec := &container{ID: id, Name: c.Config.Name, NetNS: nsPath, Created: c.Config.Created, Ports: c.Config.Ports, Members: c.Config.PodMembers}
	uplinkPorts := w.rootlessBridges() && len(c.Config.Ports) > 0
	if uplinkPorts {
		// The host's ports are forwarded by the rootless netns's uplink
		// (UDP to the same ports on its address, where the firewall maps
		// them on: the mappings there have no host address).
		if _, err = forwardsOf(c.Config.Ports, netip.Addr{}, true); err != nil {
			return nil, err
		}
		rec.Ports = nil
		for _, pm := range c.Config.Ports {
			pm.HostIP = ""
			rec.Ports = append(rec.Ports, pm)
		}
	}
	defer func() {
		if err != nil {
			if rerr := w.alloc.ReleaseAll(id); rerr != nil {
				w.log.Warn("release addresses after failed start", "error", rerr)
			}
		}
	}()
	for i, r := range c.Config.Net.Networks {
		nw, err := n.networkOf(r.Name)
		if err != nil {
			return nil, err
		}
		if nw.Driver == network.DriverBridge && nw.IPAMDriver() == network.IPAMDHCP && !nw.Unmanaged() {
			return nil, fmt.Errorf("network %s: dhcp needs a macvlan network", nw.Name)
		}
		addrs, err := w.alloc.Allocate(id, nw, r.IPs)
		if err != nil {
			return nil, err
		}
		ifname := r.Interface
		if ifname == "" {
			ifname = fmt.Sprintf("eth%d", i)
		}
		att := attached{Network: nw, Opts: network.PerNetworkOptions{
			Aliases:       append(append([]string{}, r.Aliases...), network.ShortID(id)),
			StaticMAC:     r.MAC,
			InterfaceName: ifname,
		}}
		for _, a := range addrs {
			att.Opts.StaticIPs = append(att.Opts.StaticIPs, a.Addr())
		}
		rec.Networks = append(rec.Networks, att)
	}
	if err := w.ctrs.update(func(all []*container) ([]*container, error) {
		for _, o := range all {
			if o.ID != id && o.Name == rec.Name {
				return nil, fmt.Errorf("container name %s is already in use by %s", rec.Name, o.ID)
			}
		}
		return []*container{rec}, nil
	}); err != nil {
		return nil, err
	}
	forget := func() {
		_ = w.ctrs.update(func(all []*container) ([]*container, error) {
			return []*container{{ID: id}}, nil
		})
	}
	m, err := w.manager()
	if err != nil {
		forget()
		return nil, err
	}
	defer m.Close()
	res, err = m.SetupNetavark(context.Background(), nsPath, rec.options(rec.Networks))
	if err != nil {
		forget()
		return nil, fmt.Errorf("set up the network of container %s: %w", rec.Name, err)
	}
	if uplinkPorts {
		var order []string
		for _, a := range rec.Networks {
			order = append(order, a.Network.Name)
		}
		fwds, err := bridgeForwards(c.Config.Ports, nsPath, res, order)
		if err == nil {
			rec.Fwd = fwds
			rec.Forwards, err = addForwards(w.rootlessNetNS().API(), fwds)
		}
		if err != nil {
			_ = m.TeardownNetavark(context.Background(), nsPath, rec.options(rec.Networks))
			forget()
			return nil, err
		}
	}
	// Keep the MACs the kernel chose, so reload recreates the same
	// interfaces.
	_ = w.ctrs.update(func(all []*container) ([]*container, error) {
		for _, o := range all {
			if o.ID != id {
				continue
			}
			o.Forwards, o.Fwd = rec.Forwards, rec.Fwd
			for i, a := range o.Networks {
				if sb, ok := res[a.Network.Name]; ok && a.Opts.StaticMAC == "" {
					if ifc, ok := sb.Interfaces[a.Opts.InterfaceName]; ok {
						o.Networks[i].Opts.StaticMAC = ifc.MACAddress
					}
				}
			}
			return []*container{o}, nil
		}
		return nil, nil
	})
	return res, nil
}

// Detach tears down every network the registered container is on, frees
// its addresses and forgets it.
func (n *engineNet) Detach(c *engine.Container) error {
	if c.Config.Net.Kind == runopts.ModeSlirp {
		return n.detachSlirp(c)
	}
	w := n.w
	all, err := w.ctrs.all()
	if err != nil {
		return err
	}
	var rec *container
	for _, o := range all {
		if o.ID == c.Config.ID {
			rec = o
		}
	}
	var errs []error
	if rec != nil && len(rec.Forwards) > 0 {
		removeForwards(w.rootlessNetNS().API(), rec.Forwards)
	}
	if rec != nil && len(rec.Networks) > 0 {
		m, err := w.manager()
		if err != nil {
			return err
		}
		defer m.Close()
		if err := m.TeardownNetavark(context.Background(), rec.NetNS, rec.options(rec.Networks)); err != nil {
			errs = append(errs, fmt.Errorf("tear down the network of container %s: %w", rec.Name, err))
		}
	}
	if err := w.alloc.ReleaseAll(c.Config.ID); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return w.ctrs.update(func(all []*container) ([]*container, error) {
		return []*container{{ID: c.Config.ID}}, nil
	})
}

// monitorCmd is the hidden command the engine starts as a container's
// monitor (berth's conmon).
func monitorCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "container-monitor ID",
		Short:  "Supervise a container (started by the engine; not for direct use)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			e, err := w.engine()
			if err != nil {
				return err
			}
			// The inherited descriptors stay out of runc and the container.
			syscall.CloseOnExec(3)
			sync := os.NewFile(3, "sync")
			n, _ := strconv.Atoi(env.getenv("BERTH_MONITOR_PORTS"))
			var ports []*os.File
			for i := 0; i < n; i++ {
				syscall.CloseOnExec(4 + i)
				ports = append(ports, os.NewFile(uintptr(4+i), "port"))
			}
			c, err := e.Get(id)
			if err != nil {
				sync.Close()
				return err
			}
			return monitor.Run(monitor.Config{
				ID: id, Runtime: e.Runtime(), RuntimeRoot: e.RuncRoot(), Bundle: e.RunDir(id),
				LogPath: e.LogPath(id), ExitFile: e.ExitFile(id), AttachSocket: e.AttachSocket(id), Dir: e.RunDir(id),
				Terminal: c.Config.Terminal, Stdin: c.Config.Stdin,
				WaitAttach: env.getenv("BERTH_MONITOR_WAIT_ATTACH") == "1",
				Sync:       sync, Ports: ports,
				OnStarted: func(pid int) error { return e.MonitorStarted(id, pid, os.Getpid()) },
				OnExited:  func(code int, at time.Time) { e.MonitorExited(id, code, at) },
				Log:       w.log,
				Now:       env.now,
			})
		},
	}
}

// engineContainer returns the engine container ref names, or nil.
func (w *world) engineContainer(ref string) *engine.Container {
	e, err := w.engine()
	if err != nil {
		return nil
	}
	c, err := e.Get(ref)
	if err != nil {
		return nil
	}
	return c
}

// netName resolves a configured network reference ("" is the default).
func (w *world) netName(ref string) string {
	if ref == "" {
		ref = w.store.DefaultName()
	}
	if n, err := w.store.Get(ref); err == nil {
		return n.Name
	}
	return ref
}

// engineHasNetwork reports whether c is configured with network name.
func (w *world) engineHasNetwork(c *engine.Container, name string) bool {
	for _, r := range c.Config.Net.Networks {
		if w.netName(r.Name) == name {
			return true
		}
	}
	return false
}

// recordEngineNetwork adds (or removes) a network in an engine
// container's configuration.
func (w *world) recordEngineNetwork(c *engine.Container, req *runopts.NetworkRequest, add bool) error {
	e, err := w.engine()
	if err != nil {
		return err
	}
	_, err = e.UpdateNetworks(c.Config.ID, func(m *runopts.NetMode) error {
		var keep []runopts.NetworkRequest
		for _, r := range m.Networks {
			if w.netName(r.Name) != req.Name {
				keep = append(keep, r)
			}
		}
		if add {
			keep = append(keep, *req)
		}
		m.Networks = keep
		return nil
	})
	return err
}

// engineUsers returns the engine containers configured with network name.
func (w *world) engineUsers(name string) ([]*engine.Container, *engine.Engine, error) {
	e, err := w.engine()
	if err != nil {
		return nil, nil, err
	}
	all, err := e.List()
	if err != nil {
		return nil, nil, err
	}
	var out []*engine.Container
	for _, c := range all {
		if c.Config.Net.Kind == runopts.ModeBridge && w.engineHasNetwork(c, name) {
			out = append(out, c)
		}
	}
	return out, e, nil
}
