package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/runopts"
)

// engine returns the container engine on the world's directories, with
// berth's own network backend attaching its containers.
func (w *world) engine() (*engine.Engine, error) {
	if w.eng != nil {
		return w.eng, nil
	}
	rt := w.env.getenv("BERTH_RUNTIME")
	if rt == "" {
		rt = "/usr/sbin/runc"
		if p, err := exec.LookPath("runc"); err == nil {
			rt = p
		}
	}
	host, err := w.hostConfig()
	if err != nil {
		return nil, err
	}
	e, err := engine.New(engine.EngineConfig{
		Root: w.root, RunRoot: w.runRoot, Runtime: rt,
		Images: w.imageSource(),
		Network: &engine.NetworkConfig{
			Store: w.store, Host: host,
			RootlessNetNS: w.rootlessNetNS(), UserMode: w.userMode(),
			LegacyRecords: filepath.Join(w.runDir, "berth", "containers.db"),
		},
		MonitorCommand: w.monitorCommand,
		Rootless:       w.rootlessBridges(),
		Logger:         w.log,
		Now:            w.env.now,
		Context:        w.ctx,
	})
	if err != nil {
		return nil, err
	}
	w.eng = e
	return e, nil
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
		Volumes: c.Volumes, Healthcheck: imageHealthcheck(s, img.ID),
	}, nil
}

// imageHealthcheck is the image's HEALTHCHECK (nil without one).
func imageHealthcheck(s *image.Store, id string) *engine.Healthcheck {
	cf, err := s.ConfigFile(id)
	if err != nil || cf.Config.Healthcheck == nil {
		return nil
	}
	h := cf.Config.Healthcheck
	return &engine.Healthcheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
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
			// The monitor's cleanup after the exit must not be cut
			// short by a signal.
			w.ctx = context.Background()
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
			if parent, err := strconv.Atoi(env.getenv("BERTH_MONITOR_PARENT")); err == nil {
				if err := e.WaitAdopted(id, os.Getpid(), parent); err != nil {
					sync.Close()
					return err
				}
			}
			c, err := e.Get(id)
			if err != nil {
				sync.Close()
				return err
			}
			// Docker's 127.0.0.11 resolver lives as long as the
			// namespace, through restarts in place; it is listening
			// before the container's process starts.
			stopDNS, err := e.ServeEmbeddedDNS(id)
			if err != nil {
				w.log.Warn("embedded DNS not served", "container", c.Config.Name, "error", err)
			}
			if stopDNS != nil {
				defer stopDNS()
			}
			return monitor.Run(monitor.Config{
				ID: id, Runtime: e.Runtime(), RuntimeRoot: e.RuncRoot(), Bundle: e.RunDir(id),
				LogPath: e.LogPath(id), ExitFile: e.ExitFile(id), AttachSocket: e.AttachSocket(id), Dir: e.RunDir(id),
				Terminal: c.Config.Terminal, Stdin: c.Config.Stdin, ResizeSocket: e.ResizeSocket(id),
				WaitAttach: env.getenv("BERTH_MONITOR_WAIT_ATTACH") == "1",
				Sync:       sync, Ports: ports,
				OnStarted:      func(pid int) error { return e.MonitorStarted(id, pid, os.Getpid()) },
				OnExited:       func(code int, at time.Time) { e.MonitorExited(id, code, at) },
				Restart:        func(code int, at time.Time) bool { return e.MonitorRestart(id, code, at) },
				KeepRestarting: func() bool { return e.MonitorKeepRestarting(id, os.Getpid()) },
				RestartLock:    func() (func(), error) { return e.MonitorRestartLock(id) },
				OnRestarted:    func(pid int) error { return e.MonitorRestarted(id, pid, os.Getpid()) },
				Supervise:      func(pid int) func() { return w.startHealthChecks(c, pid) },
				Log:            w.log,
				Now:            env.now,
			})
		},
	}
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
