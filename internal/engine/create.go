package engine

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rollback"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// CreateOptions are the options of `berth create` and `run`.
type CreateOptions struct {
	Name string
	// Image is resolved through the ImageSource; Rootfs is a directory
	// used as the root filesystem instead.
	Image, Rootfs string
	// Entrypoint overrides the image's when not nil (empty: none).
	Entrypoint  []string
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
	// Mounts are the -v, --mount and --tmpfs mounts.
	Mounts []runopts.Mount
	// Pod puts the container into a pod: it joins the infra container's
	// network, IPC and UTS namespaces.
	Pod string

	// Runtime: capabilities, privileged mode, limits, sysctls, ulimits,
	// devices, --init.
	Runtime runopts.Runtime
	// RestartPolicy is --restart.
	RestartPolicy RestartPolicy
	// EmbeddedDNS serves Docker's resolver at 127.0.0.11 inside the
	// container (containers that Docker clients create on user-defined
	// networks).
	EmbeddedDNS bool
	// Healthcheck is --health-cmd and its options, or --no-healthcheck
	// (Test NONE); nil takes the image's. HealthOnFailure is
	// --health-on-failure ("" is none).
	Healthcheck     *Healthcheck
	HealthOnFailure string

	// infraOf makes the container the infra container of a pod.
	infraOf string
}

// Create records a new container. Nothing runs yet; random host ports are
// chosen now, as Podman does.
func (e *Engine) Create(o CreateOptions) (c *Container, warnings []string, err error) {
	var rb rollback.Stack
	defer rb.OnError(&err)
	cfg, err := e.baseConfig(o)
	if err != nil {
		return nil, nil, err
	}
	exposed, volumes, err := e.command(&cfg, o)
	if err != nil {
		return nil, nil, err
	}
	if err := e.prepareMounts(&cfg, o.Mounts, volumes, &rb); err != nil {
		return nil, nil, err
	}
	if warnings, err = publishedPorts(&cfg, o, exposed); err != nil {
		return nil, nil, err
	}
	if e.cfg.Rootless {
		if err := rootlessPortCheck(cfg.Ports); err != nil {
			return nil, nil, err
		}
	}
	if err := e.joinNamespaces(&cfg, &o); err != nil {
		return nil, nil, err
	}
	setHostname(&cfg, o.Hostname)
	if err := e.checkRuntime(&cfg); err != nil {
		return nil, nil, err
	}
	c = &Container{Config: cfg, State: State{Status: StateCreated}}
	if err := e.validateNetworks(c); err != nil {
		return nil, nil, err
	}
	if err := e.store(c); err != nil {
		return nil, nil, err
	}
	if cfg.Pod != "" && !cfg.Infra {
		e.podMembersChanged(cfg.Pod)
	}
	e.containerEvent(c, "create", nil)
	return c, warnings, nil
}

// baseConfig is the configuration given by the options alone, with a
// random name when none is given.
func (e *Engine) baseConfig(o CreateOptions) (Config, error) {
	cfg := Config{
		ID: randomID(), Name: o.Name, Created: e.cfg.Now().UTC(),
		Env: o.Env, WorkingDir: o.WorkingDir, User: o.User,
		Terminal: o.Terminal, Stdin: o.Stdin, Remove: o.Remove,
		StopSignal: o.StopSignal, StopTimeout: 10, Labels: o.Labels, ReadOnly: o.ReadOnly,
		Net: o.Net, DNS: o.DNS, AddHosts: o.AddHosts, NoHosts: o.NoHosts,
		Runtime: o.Runtime, RestartPolicy: o.RestartPolicy,
		Healthcheck: o.Healthcheck, HealthOnFailure: o.HealthOnFailure, EmbeddedDNS: o.EmbeddedDNS,
	}
	if o.StopTimeout != nil {
		cfg.StopTimeout = *o.StopTimeout
	}
	if cfg.Name != "" {
		return cfg, nil
	}
	all, err := e.list()
	if err != nil {
		return cfg, err
	}
	cfg.Name = freeName(func(n string) bool {
		for _, c := range all {
			if c.Config.Name == n {
				return true
			}
		}
		return false
	})
	return cfg, nil
}

// command fills the command and the image's defaults (from the image or
// the --rootfs directory) and returns the image's exposed ports and
// volumes.
func (e *Engine) command(cfg *Config, o CreateOptions) (exposed []network.PortMapping, volumes []string, err error) {
	switch {
	case o.Rootfs != "" && o.Image != "":
		return nil, nil, errors.New("give either an image or --rootfs, not both")
	case o.Rootfs != "":
		err = rootfsCommand(cfg, o)
	default:
		exposed, volumes, err = e.imageCommand(cfg, o)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.Args) == 0 {
		return nil, nil, runspec.ErrNoCommand
	}
	if cfg.StopSignal != "" {
		if _, err := ParseSignal(cfg.StopSignal); err != nil {
			return nil, nil, fmt.Errorf("--stop-signal: %w", err)
		}
	}
	return exposed, volumes, nil
}

// rootfsCommand runs a directory given with --rootfs.
func rootfsCommand(cfg *Config, o CreateOptions) error {
	abs, err := filepath.Abs(o.Rootfs)
	if err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return fmt.Errorf("--rootfs %s: not a directory", o.Rootfs)
	}
	cfg.Rootfs = abs
	cfg.Args = runspec.Command(nil, nil, o.Entrypoint, o.Args)
	if len(o.Entrypoint) > 0 {
		cfg.Entrypoint = o.Entrypoint
	}
	cfg.Cmd = o.Args
	return nil
}

// imageCommand resolves the image and takes its defaults where the
// options give none.
func (e *Engine) imageCommand(cfg *Config, o CreateOptions) ([]network.PortMapping, []string, error) {
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
		if len(o.Entrypoint) > 0 {
			cfg.Entrypoint = o.Entrypoint
		}
	}
	if len(o.Args) > 0 {
		cfg.Cmd = o.Args
	}
	cfg.Env = runspec.MergeEnv(img.Env, o.Env)
	cfg.WorkingDir = cmp.Or(cfg.WorkingDir, img.WorkingDir)
	if cfg.Healthcheck == nil {
		cfg.Healthcheck = ImageHealthcheck(img.Healthcheck)
	}
	cfg.User = cmp.Or(cfg.User, img.User)
	cfg.StopSignal = cmp.Or(cfg.StopSignal, img.StopSignal)
	var exposed []network.PortMapping
	for _, p := range img.ExposedPorts {
		ep, err := runopts.ParseExpose(p)
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: exposed port: %w", o.Image, err)
		}
		exposed = append(exposed, ep)
	}
	return exposed, img.Volumes, nil
}

// publishedPorts records the exposed ports (port by port, as Podman lists
// them) and the published ones, -P's included, with random host ports
// chosen.
func publishedPorts(cfg *Config, o CreateOptions, exposed []network.PortMapping) (warnings []string, err error) {
	exposed = append(exposed, o.Expose...)
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
	if err := network.CheckPortConflicts(ports); err != nil {
		return warnings, fmt.Errorf("-p: %w", err)
	}
	cfg.Ports, err = choosePorts(ports)
	return warnings, err
}

// joinNamespaces resolves a pod (whose infra container's namespaces the
// container joins) and --network container:.
func (e *Engine) joinNamespaces(cfg *Config, o *CreateOptions) error {
	if o.infraOf != "" {
		cfg.Pod, cfg.Infra = o.infraOf, true
	}
	if o.Pod != "" {
		p, err := e.GetPod(o.Pod)
		if err != nil {
			return err
		}
		if len(cfg.Ports) > 0 {
			return errors.New("invalid config provided: published or exposed ports must be defined when the pod is created: network cannot be configured when it is shared with a pod")
		}
		cfg.Pod = p.ID
		cfg.Net = runopts.NetMode{Kind: runopts.ModeContainer, Target: p.InfraID}
		o.Hostname = cmp.Or(o.Hostname, p.Hostname)
	}
	if cfg.Net.Kind == runopts.ModeContainer {
		all, err := e.list()
		if err != nil {
			return err
		}
		t, err := Lookup(all, cfg.Net.Target)
		if err != nil {
			return fmt.Errorf("--network container:%s: %w", cfg.Net.Target, err)
		}
		cfg.Net.Target = t.Config.ID
		if len(cfg.AddHosts) > 0 {
			return errors.New("cannot set extra host entries when the container is joined to another containers network namespace")
		}
	}
	if cfg.NoHosts && len(cfg.AddHosts) > 0 {
		return errors.New("--no-hosts and --add-host cannot be set together")
	}
	return nil
}

// setHostname sets the hostname: the given one, else the short ID (the
// host's name on the host network).
func setHostname(cfg *Config, given string) {
	cfg.Hostname = given
	if cfg.Hostname != "" {
		return
	}
	cfg.Hostname = network.ShortID(cfg.ID)
	if cfg.Net.Kind == runopts.ModeHost {
		if h, err := os.Hostname(); err == nil {
			cfg.Hostname = h
		}
	}
}

// store records a new container; its layer exists from create on, so the
// image store knows the image is in use (rmi refuses it).
func (e *Engine) store(c *Container) (err error) {
	var rb rollback.Stack
	defer rb.OnError(&err)
	id := c.Config.ID
	if err := e.put(c, true); err != nil {
		return err
	}
	rb.Defer(func() { _ = e.delete(id) })
	if c.Config.ImageID == "" {
		return nil
	}
	rb.Defer(func() { _ = e.cfg.Images.RemoveRootfs(id) })
	_, err = e.cfg.Images.Mount(c.Config.ImageID, id)
	if err == nil {
		err = e.cfg.Images.Unmount(id)
	}
	if err != nil {
		return fmt.Errorf("create the root filesystem: %w", err)
	}
	return nil
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
