package dockerapi

import (
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	dnet "github.com/moby/moby/api/types/network"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runopts"
)

// CreateFromDocker translates a Docker container create request into
// berth's create options. Every field berth cannot honour is refused
// with an error naming it; client-side fields (ContainerIDFile,
// ConsoleSize) and Windows fields at their zero values are ignored.
func CreateFromDocker(name string, cfg *container.Config, hc *container.HostConfig, nc *dnet.NetworkingConfig) (engine.CreateOptions, error) {
	var o engine.CreateOptions
	if cfg == nil {
		return o, fmt.Errorf("config cannot be empty in order to create a container: %w", ErrInvalid)
	}
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if nc == nil {
		nc = &dnet.NetworkingConfig{}
	}
	steps := []func(*engine.CreateOptions, *container.Config, *container.HostConfig, *dnet.NetworkingConfig) error{
		fromConfig, fromHostRefusals, fromPolicies, fromNetworking, fromMounts, fromRuntime,
	}
	o.Name = name
	for _, step := range steps {
		if err := step(&o, cfg, hc, nc); err != nil {
			return engine.CreateOptions{}, err
		}
	}
	return o, nil
}

func invalid(field string, format string, a ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, a...), ErrInvalid)
}

func unsupported(field string) error {
	return fmt.Errorf("%s is not supported by berth: %w", field, ErrNotImplemented)
}

func fromConfig(o *engine.CreateOptions, cfg *container.Config, hc *container.HostConfig, _ *dnet.NetworkingConfig) error {
	if cfg.Image == "" {
		return invalid("Image", "an image is required")
	}
	if cfg.Domainname != "" {
		return unsupported("Domainname")
	}
	o.Image = cfg.Image
	o.Hostname = cfg.Hostname
	o.User = cfg.User
	o.Env = cfg.Env
	o.WorkingDir = cfg.WorkingDir
	o.Labels = cfg.Labels
	o.Terminal = cfg.Tty
	o.Stdin = cfg.OpenStdin
	o.StopSignal = cfg.StopSignal
	if cfg.StopTimeout != nil {
		if *cfg.StopTimeout < 0 {
			return invalid("StopTimeout", "%d is negative", *cfg.StopTimeout)
		}
		t := uint(*cfg.StopTimeout)
		o.StopTimeout = &t
	}
	if cfg.Entrypoint != nil {
		o.Entrypoint = []string{}
		if !(len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "") {
			o.Entrypoint = cfg.Entrypoint
		}
	}
	o.Args = cfg.Cmd
	ports := make([]string, 0, len(cfg.ExposedPorts))
	for p := range cfg.ExposedPorts {
		ports = append(ports, p.String())
	}
	sort.Strings(ports)
	for _, p := range ports {
		e, err := runopts.ParseExpose(p)
		if err != nil {
			return invalid("ExposedPorts", "%v", err)
		}
		o.Expose = append(o.Expose, e)
	}
	o.Remove = hc.AutoRemove
	o.ReadOnly = hc.ReadonlyRootfs
	return nil
}

// fromPolicies maps the restart policy and the health check.
func fromPolicies(o *engine.CreateOptions, cfg *container.Config, hc *container.HostConfig, _ *dnet.NetworkingConfig) error {
	rp := string(hc.RestartPolicy.Name)
	if hc.RestartPolicy.MaximumRetryCount != 0 {
		if rp != engine.RestartOnFailure {
			return invalid("HostConfig.RestartPolicy", "maximum retry count cannot be used with restart policy '%s'", rp)
		}
		rp += ":" + strconv.Itoa(hc.RestartPolicy.MaximumRetryCount)
	}
	p, err := engine.ParseRestartPolicy(rp)
	if err != nil {
		return invalid("HostConfig.RestartPolicy", "%v", err)
	}
	if hc.AutoRemove && p.Name != "" && p.Name != engine.RestartNo {
		return invalid("HostConfig.AutoRemove", "can't create 'AutoRemove' container with restart policy")
	}
	o.RestartPolicy = p
	if h := cfg.Healthcheck; h != nil && len(h.Test) > 0 {
		if h.Interval < 0 || h.Timeout < 0 || h.StartPeriod < 0 || h.Retries < 0 {
			return invalid("Healthcheck", "intervals, timeout and retries must not be negative")
		}
		o.Healthcheck = engine.ImageHealthcheck(&engine.Healthcheck{
			Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries,
		})
		if h.Test[0] == "NONE" {
			o.Healthcheck = &engine.Healthcheck{Test: []string{"NONE"}}
		}
	}
	return nil
}

// fromHostRefusals refuses the HostConfig fields berth has no equivalent
// for when they are set to anything but their defaults.
func fromHostRefusals(_ *engine.CreateOptions, _ *container.Config, hc *container.HostConfig, _ *dnet.NetworkingConfig) error {
	r := hc.Resources
	checks := []struct {
		set   bool
		field string
	}{
		{len(hc.VolumesFrom) > 0, "HostConfig.VolumesFrom"},
		{len(hc.Links) > 0, "HostConfig.Links (use a user-defined network and its names)"},
		{hc.VolumeDriver != "" && hc.VolumeDriver != "local", "HostConfig.VolumeDriver " + hc.VolumeDriver},
		{hc.IpcMode != "" && hc.IpcMode != "private" && hc.IpcMode != "shareable", "HostConfig.IpcMode " + string(hc.IpcMode)},
		{hc.PidMode != "", "HostConfig.PidMode " + string(hc.PidMode)},
		{hc.UTSMode != "", "HostConfig.UTSMode " + string(hc.UTSMode)},
		{hc.UsernsMode != "", "HostConfig.UsernsMode " + string(hc.UsernsMode)},
		{hc.CgroupnsMode != "" && hc.CgroupnsMode != "private", "HostConfig.CgroupnsMode " + string(hc.CgroupnsMode)},
		{hc.Cgroup != "", "HostConfig.Cgroup"},
		{hc.Isolation != "" && hc.Isolation != "default", "HostConfig.Isolation"},
		{hc.Runtime != "" && hc.Runtime != "runc", "HostConfig.Runtime " + hc.Runtime},
		{len(hc.StorageOpt) > 0, "HostConfig.StorageOpt"},
		{len(hc.Annotations) > 0, "HostConfig.Annotations"},
		{len(hc.MaskedPaths) > 0, "HostConfig.MaskedPaths"},
		{len(hc.ReadonlyPaths) > 0, "HostConfig.ReadonlyPaths"},
		{hc.OomScoreAdj != 0, "HostConfig.OomScoreAdj"},
		{hc.ShmSize != 0 && hc.ShmSize != 64<<20, "HostConfig.ShmSize"},
		{hc.Umask != nil, "HostConfig.Umask"},
		{hc.LogConfig.Type != "" && hc.LogConfig.Type != "json-file" && hc.LogConfig.Type != "k8s-file", "HostConfig.LogConfig.Type " + hc.LogConfig.Type + " (berth keeps logs in its own file; docker logs reads them)"},
		{r.CgroupParent != "", "HostConfig.CgroupParent"},
		{r.BlkioWeight != 0 || len(r.BlkioWeightDevice) > 0 || len(r.BlkioDeviceReadBps) > 0 || len(r.BlkioDeviceWriteBps) > 0 || len(r.BlkioDeviceReadIOps) > 0 || len(r.BlkioDeviceWriteIOps) > 0, "HostConfig.Blkio*"},
		{r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0, "HostConfig.CpuRealtime*"},
		{r.CpusetCpus != "" || r.CpusetMems != "", "HostConfig.CpusetCpus/CpusetMems"},
		{len(r.DeviceCgroupRules) > 0, "HostConfig.DeviceCgroupRules"},
		{len(r.DeviceRequests) > 0, "HostConfig.DeviceRequests (GPUs)"},
		{r.MemoryReservation != 0, "HostConfig.MemoryReservation"},
		{r.MemorySwappiness != nil && *r.MemorySwappiness != -1, "HostConfig.MemorySwappiness"},
		{r.OomKillDisable != nil && *r.OomKillDisable, "HostConfig.OomKillDisable"},
		{r.CPUCount != 0 || r.CPUPercent != 0 || r.IOMaximumIOps != 0 || r.IOMaximumBandwidth != 0, "HostConfig Windows resources"},
	}
	for _, c := range checks {
		if c.set {
			return unsupported(c.field)
		}
	}
	return nil
}

// fromNetworking maps NetworkMode and EndpointsConfig onto berth's
// network mode: "default"/"bridge" is the default network, a name is
// that network, host/none/container:ID as Docker's.
func fromNetworking(o *engine.CreateOptions, cfg *container.Config, hc *container.HostConfig, nc *dnet.NetworkingConfig) error {
	mode := string(hc.NetworkMode)
	if cfg.NetworkDisabled {
		mode = "none"
	}
	switch {
	case mode == "host" || mode == "none":
		if len(nc.EndpointsConfig) > 0 && !(len(nc.EndpointsConfig) == 1 && nc.EndpointsConfig[mode] != nil) {
			return invalid("NetworkingConfig", "container cannot be connected to other networks in network mode %s", mode)
		}
		o.Net = runopts.NetMode{Kind: mode}
	case strings.HasPrefix(mode, "container:"):
		o.Net = runopts.NetMode{Kind: runopts.ModeContainer, Target: strings.TrimPrefix(mode, "container:")}
	default:
		nm, err := bridgeNetworks(mode, nc.EndpointsConfig)
		if err != nil {
			return err
		}
		o.Net = nm
		// Docker resolves names through 127.0.0.11 on user-defined
		// networks, not on the default bridge.
		o.EmbeddedDNS = nm.Networks[0].Name != ""
	}
	if err := fromPorts(o, hc); err != nil {
		return err
	}
	dns := make([]string, 0, len(hc.DNS))
	for _, a := range hc.DNS {
		dns = append(dns, a.String())
	}
	d, err := runopts.ParseDNS(dns, hc.DNSSearch, hc.DNSOptions, o.Net.Kind)
	if err != nil {
		return invalid("HostConfig.Dns", "%v", err)
	}
	o.DNS = d
	for _, h := range hc.ExtraHosts {
		eh, err := runopts.ParseAddHost(strings.Replace(h, "=", ":", 1))
		if err != nil {
			return invalid("HostConfig.ExtraHosts", "%v", err)
		}
		o.AddHosts = append(o.AddHosts, eh)
	}
	return nil
}

// bridgeNetworks orders the networks: NetworkMode's first, then the rest
// of EndpointsConfig by name.
func bridgeNetworks(mode string, eps map[string]*dnet.EndpointSettings) (runopts.NetMode, error) {
	nm := runopts.NetMode{Kind: runopts.ModeBridge}
	first := mode
	if mode == "" || mode == "default" || mode == "bridge" {
		first = ""
	}
	names := make([]string, 0, len(eps))
	for n := range eps {
		if n != mode && !(first == "" && (n == "bridge" || n == "default")) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	firstEP := eps[mode]
	if first == "" && firstEP == nil {
		firstEP = eps["bridge"]
	}
	if first == "" && firstEP == nil && len(names) > 0 {
		first, firstEP, names = names[0], eps[names[0]], names[1:]
	}
	add := func(name string, es *dnet.EndpointSettings) error {
		r := runopts.NetworkRequest{Name: name}
		if es != nil {
			cr, err := ConnectFromEndpoint(name, es)
			if err != nil {
				return err
			}
			r.IPs, r.MAC, r.Aliases, r.GwPriority = cr.IPs, cr.MAC, cr.Aliases, cr.GwPriority
		}
		nm.Networks = append(nm.Networks, r)
		return nil
	}
	if err := add(first, firstEP); err != nil {
		return nm, err
	}
	for _, n := range names {
		if err := add(n, eps[n]); err != nil {
			return nm, err
		}
	}
	return nm, nil
}

// fromPorts turns PortBindings into -p values (berth's parser checks
// them) and PublishAllPorts into -P.
func fromPorts(o *engine.CreateOptions, hc *container.HostConfig) error {
	keys := make([]dnet.Port, 0, len(hc.PortBindings))
	for p := range hc.PortBindings {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, p := range keys {
		bs := hc.PortBindings[p]
		if len(bs) == 0 {
			bs = []dnet.PortBinding{{}}
		}
		for _, b := range bs {
			spec := publishSpec(b.HostIP, b.HostPort, p)
			pms, err := runopts.ParsePublish(spec)
			if err != nil {
				return invalid("HostConfig.PortBindings", "%v", err)
			}
			o.Ports = append(o.Ports, pms...)
		}
	}
	o.PublishAll = hc.PublishAllPorts
	return nil
}

func publishSpec(ip netip.Addr, hostPort string, p dnet.Port) string {
	ctr := p.Port() + "/" + string(p.Proto())
	switch {
	case ip.IsValid() && ip.Is6() && !ip.Is4In6():
		return "[" + ip.String() + "]:" + hostPort + ":" + ctr
	case ip.IsValid():
		return ip.Unmap().String() + ":" + hostPort + ":" + ctr
	case hostPort != "":
		return hostPort + ":" + ctr
	}
	return ctr
}

// fromMounts maps Binds, Mounts and Tmpfs onto berth's mounts through
// the same parsers as -v, --mount and --tmpfs, then Config.Volumes.
func fromMounts(o *engine.CreateOptions, cfg *container.Config, hc *container.HostConfig, _ *dnet.NetworkingConfig) error {
	if err := fromHostMounts(o, hc); err != nil {
		return err
	}
	return fromConfigVolumes(o, cfg)
}

// fromConfigVolumes adds an anonymous volume for each Config.Volumes
// path no bind, mount or tmpfs covers: as in Docker, those take the
// destination (docker-compose names a service's volumes in both).
func fromConfigVolumes(o *engine.CreateOptions, cfg *container.Config) error {
	taken := make(map[string]bool, len(o.Mounts))
	for _, m := range o.Mounts {
		taken[path.Clean(m.Destination)] = true
	}
	vols := make([]string, 0, len(cfg.Volumes))
	for v := range cfg.Volumes {
		vols = append(vols, v)
	}
	sort.Strings(vols)
	for _, v := range vols {
		m, err := runopts.ParseVolume(v)
		if err != nil {
			return invalid("Volumes", "%v", err)
		}
		if taken[path.Clean(m.Destination)] {
			continue
		}
		o.Mounts = append(o.Mounts, m)
	}
	return nil
}

// fromHostMounts maps Binds, Mounts and Tmpfs.
func fromHostMounts(o *engine.CreateOptions, hc *container.HostConfig) error {
	for _, b := range hc.Binds {
		m, err := runopts.ParseVolume(b)
		if err != nil {
			return invalid("HostConfig.Binds", "%v", err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	for i, dm := range hc.Mounts {
		spec, err := mountSpec(dm)
		if err != nil {
			return invalid(fmt.Sprintf("HostConfig.Mounts[%d]", i), "%v", err)
		}
		m, err := runopts.ParseMount(spec)
		if err != nil {
			return invalid(fmt.Sprintf("HostConfig.Mounts[%d]", i), "%v", err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	paths := make([]string, 0, len(hc.Tmpfs))
	for p := range hc.Tmpfs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		spec := p
		if opts := hc.Tmpfs[p]; opts != "" {
			spec += ":" + opts
		}
		m, err := runopts.ParseTmpfs(spec)
		if err != nil {
			return invalid("HostConfig.Tmpfs", "%v", err)
		}
		o.Mounts = append(o.Mounts, m)
	}
	return nil
}

// mountSpec writes a Docker mount as a --mount value.
func mountSpec(m mount.Mount) (string, error) {
	if strings.ContainsAny(m.Source+m.Target, ",") {
		return "", fmt.Errorf("commas in paths are not supported")
	}
	parts := []string{"type=" + string(m.Type)}
	if m.Source != "" {
		parts = append(parts, "source="+m.Source)
	}
	parts = append(parts, "target="+m.Target)
	if m.ReadOnly {
		parts = append(parts, "readonly")
	}
	switch m.Type {
	case mount.TypeBind:
		if b := m.BindOptions; b != nil {
			if b.NonRecursive || b.ReadOnlyNonRecursive || b.ReadOnlyForceRecursive {
				return "", fmt.Errorf("non-recursive bind options are not supported")
			}
			if b.Propagation != "" {
				parts = append(parts, "bind-propagation="+string(b.Propagation))
			}
		}
	case mount.TypeVolume:
		if v := m.VolumeOptions; v != nil {
			if v.DriverConfig != nil && v.DriverConfig.Name != "" && v.DriverConfig.Name != "local" || v.Subpath != "" || len(v.Labels) > 0 {
				return "", fmt.Errorf("volume driver, subpath and labels are not supported")
			}
			if v.NoCopy {
				parts = append(parts, "volume-nocopy")
			}
		}
	case mount.TypeTmpfs:
		if t := m.TmpfsOptions; t != nil {
			if t.SizeBytes > 0 {
				parts = append(parts, "tmpfs-size="+strconv.FormatInt(t.SizeBytes, 10))
			}
			if t.Mode != 0 {
				parts = append(parts, fmt.Sprintf("tmpfs-mode=%o", t.Mode.Perm()))
			}
		}
	default:
		return "", fmt.Errorf("mount type %q is not supported (bind, volume, tmpfs)", m.Type)
	}
	return strings.Join(parts, ","), nil
}

// fromRuntime maps capabilities, privileges, limits, sysctls, ulimits,
// devices, groups and init.
func fromRuntime(o *engine.CreateOptions, _ *container.Config, hc *container.HostConfig, _ *dnet.NetworkingConfig) error {
	rt := &o.Runtime
	var err error
	if rt.CapAdd, err = runopts.NormalizeCapabilities(hc.CapAdd); err != nil {
		return invalid("HostConfig.CapAdd", "%v", err)
	}
	if rt.CapDrop, err = runopts.NormalizeCapabilities(hc.CapDrop); err != nil {
		return invalid("HostConfig.CapDrop", "%v", err)
	}
	rt.Privileged = hc.Privileged
	for _, s := range hc.SecurityOpt {
		if err := runopts.ParseSecurityOpt(s, rt); err != nil {
			return invalid("HostConfig.SecurityOpt", "%v", err)
		}
	}
	if err := fromResources(rt, hc.Resources); err != nil {
		return err
	}
	for k, v := range hc.Sysctls {
		if _, _, err := runopts.ParseSysctl(k + "=" + v); err != nil {
			return invalid("HostConfig.Sysctls", "%v", err)
		}
		if rt.Sysctls == nil {
			rt.Sysctls = map[string]string{}
		}
		rt.Sysctls[k] = v
	}
	for _, u := range hc.Ulimits {
		if u == nil {
			continue
		}
		ul, err := runopts.ParseUlimit(fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
		if err != nil {
			return invalid("HostConfig.Ulimits", "%v", err)
		}
		rt.Ulimits = append(rt.Ulimits, ul)
	}
	for _, d := range hc.Devices {
		spec := d.PathOnHost
		if d.PathInContainer != "" {
			spec += ":" + d.PathInContainer
		}
		if d.CgroupPermissions != "" {
			spec += ":" + d.CgroupPermissions
		}
		dev, err := runopts.ParseDevice(spec)
		if err != nil {
			return invalid("HostConfig.Devices", "%v", err)
		}
		rt.Devices = append(rt.Devices, dev)
	}
	rt.GroupAdd = hc.GroupAdd
	if hc.Init != nil {
		rt.Init = *hc.Init
	}
	return nil
}

func fromResources(rt *runopts.Runtime, r container.Resources) error {
	mem, swap := "", ""
	if r.Memory > 0 {
		mem = strconv.FormatInt(r.Memory, 10)
	}
	if r.MemorySwap != 0 {
		swap = strconv.FormatInt(r.MemorySwap, 10)
	}
	var pids int64
	if r.PidsLimit != nil {
		pids = *r.PidsLimit
		if pids == 0 {
			pids = -1
		}
	}
	if r.CPUShares < 0 {
		return invalid("HostConfig.CpuShares", "%d is negative", r.CPUShares)
	}
	res, err := runopts.ParseResources(mem, swap, float64(r.NanoCPUs)/1e9, uint64(r.CPUShares), pids)
	if err != nil {
		return invalid("HostConfig.Resources", "%v", err)
	}
	if r.CPUQuota != 0 {
		if r.NanoCPUs != 0 {
			return invalid("HostConfig.CpuQuota", "conflicts with NanoCpus")
		}
		res.CPUQuota = r.CPUQuota
		res.CPUPeriod = 100000
	}
	if r.CPUPeriod != 0 {
		res.CPUPeriod = uint64(r.CPUPeriod)
	}
	rt.Resources = res
	return nil
}
