package dockerapi

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	dnet "github.com/moby/moby/api/types/network"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/runopts"
)

// dockerState is a berth container's state in Docker's words.
func dockerState(c *engine.Container) container.ContainerState {
	switch {
	case c.State.Paused:
		return container.StatePaused
	case c.State.Restarting:
		return container.StateRestarting
	case c.State.Status == engine.StateRunning:
		return container.StateRunning
	case c.State.Status == engine.StateCreated:
		return container.StateCreated
	}
	return container.StateExited
}

// statusText is `docker ps`'s STATUS: "Up 5 seconds (healthy)",
// "Exited (1) 2 minutes ago", "Created".
func statusText(c *engine.Container, now time.Time) string {
	switch dockerState(c) {
	case container.StateRunning, container.StatePaused:
		s := "Up " + units.HumanDuration(now.Sub(c.State.StartedAt))
		if c.State.Paused {
			s += " (Paused)"
		} else if h := c.State.Health.Status; h != "" {
			s += " (" + h + ")"
		}
		return s
	case container.StateRestarting:
		return "Restarting (" + strconv.Itoa(c.State.ExitCode) + ") " + units.HumanDuration(now.Sub(c.State.FinishedAt)) + " ago"
	case container.StateCreated:
		return "Created"
	}
	return "Exited (" + strconv.Itoa(c.State.ExitCode) + ") " + units.HumanDuration(now.Sub(c.State.FinishedAt)) + " ago"
}

func imageID(id string) string {
	if id == "" || strings.HasPrefix(id, "sha256:") {
		return id
	}
	return "sha256:" + id
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ContainerSummary is a container as `GET /containers/json` lists it.
func ContainerSummary(c *engine.Container, now time.Time) container.Summary {
	cfg := c.Config
	s := container.Summary{
		ID: cfg.ID, Names: []string{"/" + cfg.Name}, Image: cfg.Image, ImageID: imageID(cfg.ImageID),
		Command: strings.Join(commandLine(c), " "), Created: cfg.Created.Unix(),
		Ports: portSummaries(c), Labels: cfg.Labels, State: dockerState(c), Status: statusText(c, now),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: endpointSettings(c)},
		Mounts:          mountPoints(c),
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = networkMode(c)
	if h := c.State.Health.Status; h != "" {
		s.Health = &container.HealthSummary{Status: container.HealthStatus(h), FailingStreak: c.State.Health.FailingStreak}
	}
	return s
}

func commandLine(c *engine.Container) []string {
	return append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
}

func networkMode(c *engine.Container) string {
	n := c.Config.Net
	switch n.Kind {
	case runopts.ModeBridge:
		if len(n.Networks) > 0 && n.Networks[0].Name != "" {
			return n.Networks[0].Name
		}
		return "bridge"
	case runopts.ModeContainer:
		return "container:" + n.Target
	}
	return n.Kind
}

func portSummaries(c *engine.Container) []container.PortSummary {
	out := []container.PortSummary{}
	for _, p := range c.Config.Ports {
		r := max(p.Range, 1)
		for i := range r {
			ps := container.PortSummary{PrivatePort: p.ContainerPort + i, PublicPort: p.HostPort + i, Type: p.Protocol}
			if a, err := netip.ParseAddr(p.HostIP); err == nil {
				ps.IP = a
			} else {
				ps.IP = netip.IPv4Unspecified()
			}
			out = append(out, ps)
		}
	}
	return out
}

// portMap is NetworkSettings.Ports: published and exposed ports.
func portMap(c *engine.Container) dnet.PortMap {
	m := dnet.PortMap{}
	for _, e := range c.Config.ExposedPorts {
		if p, err := dnet.ParsePort(e); err == nil {
			m[p] = nil
		}
	}
	for _, ps := range portSummaries(c) {
		p, err := dnet.ParsePort(strconv.Itoa(int(ps.PrivatePort)) + "/" + ps.Type)
		if err != nil {
			continue
		}
		m[p] = append(m[p], dnet.PortBinding{HostIP: ps.IP, HostPort: strconv.Itoa(int(ps.PublicPort))})
	}
	return m
}

// endpointSettings are the container's networks: configured ones, with
// the addresses they gave while it runs.
func endpointSettings(c *engine.Container) map[string]*dnet.EndpointSettings {
	out := map[string]*dnet.EndpointSettings{}
	for _, a := range c.State.Attachments {
		es := &dnet.EndpointSettings{
			NetworkID: a.Network.ID, EndpointID: EndpointID(a.Network.ID, c.Config.ID),
			Aliases: a.Opts.Aliases, DNSNames: append([]string{c.Config.Name, c.ShortID()}, a.Opts.Aliases...),
		}
		if mac, err := net.ParseMAC(a.Opts.StaticMAC); err == nil {
			es.MacAddress = dnet.HardwareAddr(mac)
		}
		for _, ip := range a.Opts.StaticIPs {
			for _, s := range a.Network.Subnets {
				if !s.Subnet.Contains(ip) {
					continue
				}
				if ip.Is4() {
					es.IPAddress, es.IPPrefixLen, es.Gateway = ip, s.Subnet.Bits(), s.Gateway
				} else {
					es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = ip, s.Subnet.Bits(), s.Gateway
				}
			}
		}
		out[a.Network.Name] = es
	}
	if c.Config.Net.Kind == runopts.ModeBridge {
		for _, r := range c.Config.Net.Networks {
			name := r.Name
			if name == "" {
				name = "bridge"
			}
			if _, ok := out[name]; !ok && len(c.State.Attachments) == 0 {
				out[name] = &dnet.EndpointSettings{Aliases: r.Aliases}
			}
		}
	} else if c.Config.Net.Kind == runopts.ModeHost || c.Config.Net.Kind == runopts.ModeNone {
		out[c.Config.Net.Kind] = &dnet.EndpointSettings{}
	}
	return out
}

func mountPoints(c *engine.Container) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.Config.Mounts {
		mp := container.MountPoint{Destination: m.Destination, RW: !m.ReadOnly(), Mode: strings.Join(m.Options, ",")}
		switch m.Type {
		case runopts.MountVolume:
			mp.Type, mp.Name, mp.Driver = mount.TypeVolume, m.Source, "local"
		case runopts.MountTmpfs:
			mp.Type = mount.TypeTmpfs
		default:
			mp.Type, mp.Source = mount.TypeBind, m.Source
		}
		out = append(out, mp)
	}
	return out
}

// InspectInfo is what inspect shows beyond the record: where berth keeps
// the container's files.
type InspectInfo struct {
	LogPath, HostsPath, ResolvConfPath, HostnamePath string
}

// inspectResponse is Docker's inspect shape; NetworkSettings carries the
// top-level address fields that API versions before 1.44 have (scripts
// read {{.NetworkSettings.IPAddress}}).
type inspectResponse struct {
	container.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

type legacyNetworkSettings struct {
	container.NetworkSettings
	Bridge                 string
	SandboxID              string
	SandboxKey             string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
}

// ContainerInspect is a container in Docker's inspect shape.
func ContainerInspect(c *engine.Container, info InspectInfo) inspectResponse {
	cfg := c.Config
	argv := commandLine(c)
	out := inspectResponse{InspectResponse: container.InspectResponse{
		ID: cfg.ID, Created: timeText(cfg.Created), Args: []string{},
		State: &container.State{
			Status: dockerState(c), Running: c.Running(), Paused: c.State.Paused, Restarting: c.State.Restarting,
			Pid: c.State.Pid, ExitCode: c.State.ExitCode, Error: c.State.Error,
			StartedAt: timeText(c.State.StartedAt), FinishedAt: timeText(c.State.FinishedAt), Health: health(c),
		},
		Image: imageID(cfg.ImageID), Name: "/" + cfg.Name, RestartCount: int(c.State.RestartCount),
		Driver: "overlay", Platform: "linux", ExecIDs: nil,
		LogPath: info.LogPath, HostsPath: info.HostsPath, ResolvConfPath: info.ResolvConfPath, HostnamePath: info.HostnamePath,
		HostConfig: hostConfig(c), Mounts: mountPoints(c), Config: dockerConfig(c),
	}}
	if len(argv) > 0 {
		out.Path, out.Args = argv[0], argv[1:]
	}
	ns := &legacyNetworkSettings{NetworkSettings: container.NetworkSettings{Ports: portMap(c), Networks: endpointSettings(c)}}
	ns.SandboxKey = c.State.NetNS
	for _, es := range ns.Networks {
		if es.IPAddress.IsValid() && ns.IPAddress == "" {
			ns.IPAddress, ns.IPPrefixLen, ns.Gateway = es.IPAddress.String(), es.IPPrefixLen, addrText(es.Gateway)
			ns.MacAddress, ns.EndpointID = es.MacAddress.String(), es.EndpointID
		}
		if es.GlobalIPv6Address.IsValid() && ns.GlobalIPv6Address == "" {
			ns.GlobalIPv6Address, ns.GlobalIPv6PrefixLen, ns.IPv6Gateway = es.GlobalIPv6Address.String(), es.GlobalIPv6PrefixLen, addrText(es.IPv6Gateway)
		}
	}
	out.NetworkSettings = ns
	return out
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func health(c *engine.Container) *container.Health {
	h := c.State.Health
	if h.Status == "" {
		return nil
	}
	out := &container.Health{Status: container.HealthStatus(h.Status), FailingStreak: h.FailingStreak, Log: []*container.HealthcheckResult{}}
	for _, l := range h.Log {
		start, _ := time.Parse(time.RFC3339Nano, l.Start)
		end, _ := time.Parse(time.RFC3339Nano, l.End)
		out.Log = append(out.Log, &container.HealthcheckResult{Start: start, End: end, ExitCode: l.ExitCode, Output: l.Output})
	}
	return out
}

func dockerConfig(c *engine.Container) *container.Config {
	cfg := c.Config
	out := &container.Config{
		Hostname: cfg.Hostname, User: cfg.User, Tty: cfg.Terminal, OpenStdin: cfg.Stdin,
		Env: cfg.Env, Cmd: cfg.Cmd, Image: cfg.Image, WorkingDir: cfg.WorkingDir, Entrypoint: cfg.Entrypoint,
		Labels: cfg.Labels, StopSignal: cfg.StopSignal, ExposedPorts: dnet.PortSet{},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	t := int(cfg.StopTimeout)
	out.StopTimeout = &t
	for p := range portMap(c) {
		out.ExposedPorts[p] = struct{}{}
	}
	if hc := cfg.Healthcheck; hc != nil {
		out.Healthcheck = &container.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, StartPeriod: hc.StartPeriod, Retries: hc.Retries}
	}
	return out
}

func hostConfig(c *engine.Container) *container.HostConfig {
	cfg := c.Config
	rt := cfg.Runtime
	hc := &container.HostConfig{
		NetworkMode:     container.NetworkMode(networkMode(c)),
		PortBindings:    dnet.PortMap{},
		RestartPolicy:   container.RestartPolicy{Name: container.RestartPolicyMode(restartName(cfg.RestartPolicy)), MaximumRetryCount: int(cfg.RestartPolicy.MaxRetries)},
		AutoRemove:      cfg.Remove,
		CapAdd:          trimCaps(rt.CapAdd),
		CapDrop:         trimCaps(rt.CapDrop),
		DNS:             cfg.DNS.Servers,
		DNSOptions:      cfg.DNS.Options,
		DNSSearch:       cfg.DNS.Search,
		Privileged:      rt.Privileged,
		ReadonlyRootfs:  cfg.ReadOnly,
		Sysctls:         rt.Sysctls,
		GroupAdd:        rt.GroupAdd,
		Binds:           binds(cfg.Mounts),
		LogConfig:       container.LogConfig{Type: "k8s-file", Config: map[string]string{}},
		Init:            &rt.Init,
		PublishAllPorts: false,
	}
	for p, b := range portMap(c) {
		if len(b) > 0 {
			hc.PortBindings[p] = b
		}
	}
	for _, h := range cfg.AddHosts {
		for _, n := range h.Names {
			hc.ExtraHosts = append(hc.ExtraHosts, n+":"+h.IP)
		}
	}
	hc.Memory, hc.MemorySwap = rt.Resources.Memory, rt.Resources.MemorySwap
	hc.CPUShares, hc.CPUQuota, hc.CPUPeriod = int64(rt.Resources.CPUShares), rt.Resources.CPUQuota, int64(rt.Resources.CPUPeriod)
	if rt.Resources.PidsLimit != 0 {
		p := rt.Resources.PidsLimit
		hc.PidsLimit = &p
	}
	return hc
}

func restartName(p engine.RestartPolicy) string {
	if p.Name == "" {
		return "no"
	}
	return p.Name
}

func trimCaps(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		out = append(out, strings.TrimPrefix(c, "CAP_"))
	}
	sort.Strings(out)
	return out
}

func binds(ms []runopts.Mount) []string {
	var out []string
	for _, m := range ms {
		if m.Type == runopts.MountTmpfs || m.Anonymous {
			continue
		}
		s := m.Source + ":" + m.Destination
		if len(m.Options) > 0 {
			s += ":" + strings.Join(m.Options, ",")
		}
		out = append(out, s)
	}
	return out
}
