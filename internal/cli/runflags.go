package cli

// The process, security and resource flags of run and create, --cidfile
// and --replace, and the table of Podman flags berth refuses.

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runopts"
)

// rtFlags are the runtime flags of run and create.
type rtFlags struct {
	capAdd, capDrop, securityOpt []string
	privileged                   bool
	memory, memorySwap           string
	cpus                         float64
	cpuShares                    uint64
	pidsLimit                    int64
	sysctls, ulimits, groupAdd   []string
	devices                      []string
	init                         bool
	initPath                     string
	envFiles, labelFiles         []string
	envHost                      bool
	cidfile                      string
	replace                      bool
	restart                      string
	memoryReservation, shmSize   string
	logDriver                    string
	annotations                  []string
	health                       healthFlags
}

// registerRuntime registers the runtime flags.
func (f *ctrFlags) registerRuntime(fl *pflag.FlagSet) {
	r := &f.rt
	fl.StringSliceVar(&r.capAdd, "cap-add", nil, "add capabilities (NET_ADMIN or CAP_NET_ADMIN, all)")
	fl.StringSliceVar(&r.capDrop, "cap-drop", nil, "drop capabilities (or all)")
	fl.BoolVar(&r.privileged, "privileged", false, "give all capabilities and host devices, no masked or read-only kernel paths")
	fl.StringArrayVar(&r.securityOpt, "security-opt", nil, "security option: no-new-privileges[=true|false], label=disable")
	fl.StringVarP(&r.memory, "memory", "m", "", "memory limit (number with unit b, k, m, g)")
	fl.StringVar(&r.memorySwap, "memory-swap", "", "memory plus swap limit (-1: unlimited swap)")
	fl.Float64Var(&r.cpus, "cpus", 0, "number of CPUs (a CFS quota; 0: no limit)")
	fl.Uint64VarP(&r.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&r.pidsLimit, "pids-limit", 0, "maximum number of processes (-1: unlimited)")
	fl.StringSliceVar(&r.sysctls, "sysctl", nil, "namespaced sysctl KEY=VALUE (net.*, fs.mqueue.*, kernel IPC ones)")
	fl.StringSliceVar(&r.ulimits, "ulimit", nil, "resource limit TYPE=SOFT[:HARD] (nofile, nproc, ...; host: berth's own)")
	fl.StringSliceVar(&r.groupAdd, "group-add", nil, "additional groups for the process (names or numbers)")
	fl.StringArrayVar(&r.devices, "device", nil, "host device to add: /dev/x[:/dev/y][:rwm]")
	fl.BoolVar(&r.init, "init", false, "run catatonit as PID 1 to forward signals and reap processes")
	fl.StringVar(&r.initPath, "init-path", "", "path of the --init binary")
	fl.StringArrayVar(&r.envFiles, "env-file", nil, "read KEY=VALUE lines from a file into the environment")
	fl.BoolVar(&r.envHost, "env-host", false, "use the caller's environment in the container")
	fl.StringArrayVar(&r.labelFiles, "label-file", nil, "read KEY=VALUE labels from a file")
	fl.StringVar(&r.cidfile, "cidfile", "", "write the container ID to this file (which must not exist)")
	fl.BoolVar(&r.replace, "replace", false, "remove an existing container of the same --name first")
	fl.StringVar(&r.memoryReservation, "memory-reservation", "", "memory soft limit (number with unit b, k, m, g)")
	fl.StringVar(&r.shmSize, "shm-size", "", "size of /dev/shm (number with unit b, k, m, g; 0: no limit; default 64m)")
	fl.StringVar(&r.logDriver, "log-driver", "", "log driver: k8s-file (berth's only one)")
	fl.StringArrayVar(&r.annotations, "annotation", nil, "add an annotation KEY=VALUE to the container's OCI spec (repeatable)")
	fl.SetNormalizeFunc(podmanFlagAliases)
	fl.StringVar(&r.restart, "restart", "", `restart policy when the container exits ("always"|"no"|"on-failure[:N]"|"unless-stopped")`)
	r.health.register(fl)
}

// runtimeOptions turns the runtime flags into o.Runtime and adds the
// environment and labels from files, with Podman's precedence: image, then
// --env-host, --env-file, --env.
func (f *ctrFlags) runtimeOptions(cmd *cobra.Command, o *engine.CreateOptions) error {
	if err := refuseUnsupported(cmd.Flags()); err != nil {
		return err
	}
	r := &f.rt
	rt := &o.Runtime
	var err error
	if rt.CapAdd, err = runopts.NormalizeCapabilities(r.capAdd); err != nil {
		return err
	}
	if rt.CapDrop, err = runopts.NormalizeCapabilities(r.capDrop); err != nil {
		return err
	}
	if _, err := runopts.MergeCapabilities(nil, runopts.AllCapabilities, rt.CapAdd, rt.CapDrop); err != nil {
		return err
	}
	rt.Privileged = r.privileged
	for _, s := range r.securityOpt {
		if err := runopts.ParseSecurityOpt(s, rt); err != nil {
			return err
		}
	}
	if rt.Resources, err = runopts.ParseResources(r.memory, r.memorySwap, r.cpus, r.cpuShares, r.pidsLimit); err != nil {
		return err
	}
	if err := runopts.ParseMemoryReservation(r.memoryReservation, &rt.Resources); err != nil {
		return err
	}
	if rt.ShmSize, err = runopts.ParseShmSize(r.shmSize); err != nil {
		return err
	}
	if rt.Annotations, err = runopts.ParseAnnotations(r.annotations); err != nil {
		return err
	}
	if r.logDriver != "" && r.logDriver != "k8s-file" {
		return fmt.Errorf("--log-driver %q: berth writes container logs only as k8s-file", r.logDriver)
	}
	if err := f.parseLists(rt); err != nil {
		return err
	}
	rt.Init, rt.InitPath = r.init, r.initPath
	if r.initPath != "" && !r.init {
		return errors.New("--init-path needs --init")
	}
	if err := f.fileOptions(o); err != nil {
		return err
	}
	if r.replace && f.name == "" {
		return errors.New("cannot replace container without --name being set")
	}
	if o.RestartPolicy, err = engine.ParseRestartPolicy(r.restart); err != nil {
		return err
	}
	if err := engine.CheckRestartWithRemove(r.restart, o.RestartPolicy, o.Remove); err != nil {
		return err
	}
	return r.health.options(o)
}

// parseLists parses --sysctl, --ulimit, --group-add and --device.
func (f *ctrFlags) parseLists(rt *runopts.Runtime) error {
	r := &f.rt
	for _, s := range r.sysctls {
		k, v, err := runopts.ParseSysctl(s)
		if err != nil {
			return err
		}
		if rt.Sysctls == nil {
			rt.Sysctls = map[string]string{}
		}
		rt.Sysctls[k] = v
	}
	for _, s := range r.ulimits {
		if s == "host" {
			rt.Ulimits = append(rt.Ulimits, runopts.Ulimit{Name: "host"})
			continue
		}
		u, err := runopts.ParseUlimit(s)
		if err != nil {
			return err
		}
		rt.Ulimits = append(rt.Ulimits, u)
	}
	for _, g := range r.groupAdd {
		if g == "keep-groups" {
			return errors.New("--group-add keep-groups: berth does not support keeping the caller's groups")
		}
		if g == "" {
			return errors.New("--group-add: empty group name")
		}
		rt.GroupAdd = append(rt.GroupAdd, g)
	}
	for _, s := range r.devices {
		d, err := runopts.ParseDevice(s)
		if err != nil {
			return err
		}
		rt.Devices = append(rt.Devices, d)
	}
	return nil
}

// fileOptions reads --env-file and --label-file and applies --env-host.
func (f *ctrFlags) fileOptions(o *engine.CreateOptions) error {
	var pre []string
	environ := os.Environ()
	if f.rt.envHost {
		pre = append(pre, environ...)
	}
	for _, p := range f.rt.envFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("parsing env file %q: %w", p, err)
		}
		es, err := runopts.ParseEnvFile(string(b), environ)
		if err != nil {
			return fmt.Errorf("parsing env file %q: %w", p, err)
		}
		pre = append(pre, es...)
	}
	if len(pre) > 0 {
		o.Env = append(pre, o.Env...)
	}
	for _, p := range f.rt.labelFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("unable to process labels: %w", err)
		}
		ls, err := runopts.ParseLabelFile(string(b))
		if err != nil {
			return fmt.Errorf("unable to process labels: %s: %w", p, err)
		}
		for k, v := range ls {
			if o.Labels == nil {
				o.Labels = map[string]string{}
			}
			if _, set := o.Labels[k]; !set { // --label wins
				o.Labels[k] = v
			}
		}
	}
	return nil
}

// create creates the container with --replace and --cidfile: an
// existing container of the name is removed first; the ID file is
// claimed before and removed again if creating fails.
func (f *ctrFlags) create(e *engine.Engine, o engine.CreateOptions) (*engine.Container, []string, error) {
	if f.rt.replace {
		if _, err := e.Get(o.Name); err == nil {
			if _, err := e.Remove(o.Name, true); err != nil && !errors.Is(err, engine.ErrNoSuchContainer) {
				return nil, nil, fmt.Errorf("--replace: %w", err)
			}
		}
	}
	var cid *os.File
	if f.rt.cidfile != "" {
		var err error
		cid, err = os.OpenFile(f.rt.cidfile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("container id file exists. Ensure another container is not using it or delete %s", f.rt.cidfile)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("opening cidfile: %w", err)
		}
	}
	c, warns, err := e.Create(o)
	if cid != nil {
		if err == nil {
			_, err = cid.WriteString(c.Config.ID)
		}
		if cerr := cid.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.rt.cidfile)
			if c != nil {
				_, _ = e.Remove(c.Config.ID, true)
			}
			return nil, nil, err
		}
	}
	return c, warns, err
}

// unsupportedFlags are the flags of podman run and create berth does not
// implement: they are accepted by the parser only to be refused by name.
// Bool ones take no value.
var unsupportedFlags = []struct {
	name, short string
	isBool      bool
}{
	{name: "arch"}, {name: "attach", short: "a"}, {name: "authfile"},
	{name: "blkio-weight"}, {name: "blkio-weight-device"}, {name: "cgroup-conf"}, {name: "cgroup-parent"},
	{name: "cgroupns"}, {name: "cgroups"}, {name: "chrootdirs"}, {name: "conmon-pidfile"},
	{name: "cpu-period"}, {name: "cpu-quota"}, {name: "cpu-rt-period"}, {name: "cpu-rt-runtime"},
	{name: "cpuset-cpus"}, {name: "cpuset-mems"}, {name: "detach-keys"}, {name: "device-cgroup-rule"},
	{name: "device-read-bps"}, {name: "device-read-iops"}, {name: "device-write-bps"}, {name: "device-write-iops"},
	{name: "disable-content-trust", isBool: true}, {name: "env-merge"}, {name: "gidmap"},
	{name: "hostuser"}, {name: "http-proxy", isBool: true},
	{name: "image-volume"}, {name: "ipc"}, {name: "log-opt"},
	{name: "memory-swappiness"},
	{name: "oom-kill-disable", isBool: true}, {name: "oom-score-adj"}, {name: "os"}, {name: "passwd", isBool: true},
	{name: "passwd-entry"}, {name: "personality"}, {name: "pid"}, {name: "pidfile"}, {name: "platform"},
	{name: "pod-id-file"}, {name: "preserve-fds"},
	{name: "read-only-tmpfs", isBool: true}, {name: "requires"}, {name: "rmi", isBool: true},
	{name: "sdnotify"}, {name: "seccomp-policy"}, {name: "secret"},
	{name: "sig-proxy", isBool: true}, {name: "subgidname"}, {name: "subuidname"}, {name: "systemd"},
	{name: "timeout"}, {name: "tz"}, {name: "uidmap"}, {name: "umask"},
	{name: "unsetenv"}, {name: "unsetenv-all", isBool: true}, {name: "userns"}, {name: "uts"}, {name: "variant"},
	{name: "volume", short: "v"}, {name: "volumes-from"}, {name: "mount"}, {name: "tmpfs"},
}

// podmanFlagAliases maps the old names Podman still takes for run and
// create flags to the current ones (podman-compose passes
// --healthcheck-command, for one).
func podmanFlagAliases(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "healthcheck-command":
		name = "health-cmd"
	case "healthcheck-interval":
		name = "health-interval"
	case "healthcheck-retries":
		name = "health-retries"
	case "healthcheck-start-period":
		name = "health-start-period"
	case "healthcheck-timeout":
		name = "health-timeout"
	case "dns-opt":
		name = "dns-option"
	}
	return pflag.NormalizedName(name)
}

// unsupportedAnnotation marks the flags registered by registerUnsupported.
const unsupportedAnnotation = "berth-unsupported"

// registerUnsupported registers, hidden, every Podman flag of the table
// not registered already, so that using one is refused by name instead
// of as an unknown flag. Call it after the other registrations.
func registerUnsupported(fl *pflag.FlagSet) {
	for _, u := range unsupportedFlags {
		if fl.Lookup(u.name) != nil || u.short != "" && fl.ShorthandLookup(u.short) != nil {
			continue
		}
		if u.isBool {
			fl.BoolP(u.name, u.short, false, "not supported by berth")
		} else {
			fl.StringArrayP(u.name, u.short, nil, "not supported by berth")
		}
		_ = fl.MarkHidden(u.name)
		_ = fl.SetAnnotation(u.name, unsupportedAnnotation, []string{"true"})
	}
}

// refuseUnsupported fails on the first unsupported flag given.
func refuseUnsupported(fl *pflag.FlagSet) error {
	var err error
	fl.Visit(func(f *pflag.Flag) {
		if err == nil && f.Annotations[unsupportedAnnotation] != nil {
			err = fmt.Errorf("berth does not support --%s yet", f.Name)
		}
	})
	return err
}
