package cli

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// ctrInspect is the Podman-compatible subset of `inspect` for a container.
type ctrInspect struct {
	ID              string         `json:"Id"`
	Created         time.Time      `json:"Created"`
	Path            string         `json:"Path"`
	Args            []string       `json:"Args"`
	State           inspectState   `json:"State"`
	Image           string         `json:"Image"`
	ImageName       string         `json:"ImageName"`
	Rootfs          string         `json:"Rootfs"`
	ResolvConfPath  string         `json:"ResolvConfPath"`
	HostnamePath    string         `json:"HostnamePath"`
	HostsPath       string         `json:"HostsPath"`
	Name            string         `json:"Name"`
	RestartCount    int            `json:"RestartCount"`
	OCIRuntime      string         `json:"OCIRuntime"`
	ConmonPidFile   string         `json:"ConmonPidFile"`
	LogPath         string         `json:"LogPath"`
	Mounts          []inspectMount `json:"Mounts"`
	Config          inspectConfig  `json:"Config"`
	NetworkSettings inspectNetwork `json:"NetworkSettings"`
	HostConfig      inspectHost    `json:"HostConfig"`
}

type inspectState struct {
	OciVersion string    `json:"OciVersion"`
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ConmonPid  int       `json:"ConmonPid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

type inspectConfig struct {
	Hostname     string              `json:"Hostname"`
	User         string              `json:"User"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Image        string              `json:"Image"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   string              `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal"`
	StopTimeout  uint                `json:"StopTimeout"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
}

type inspectPort struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

type inspectEndpoint struct {
	EndpointID          string   `json:"EndpointID"`
	Gateway             string   `json:"Gateway"`
	IPAddress           string   `json:"IPAddress"`
	IPPrefixLen         int      `json:"IPPrefixLen"`
	IPv6Gateway         string   `json:"IPv6Gateway"`
	GlobalIPv6Address   string   `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int      `json:"GlobalIPv6PrefixLen"`
	MacAddress          string   `json:"MacAddress"`
	NetworkID           string   `json:"NetworkID,omitempty"`
	Aliases             []string `json:"Aliases,omitempty"`
}

type inspectNetwork struct {
	inspectEndpoint
	Bridge     string                      `json:"Bridge"`
	SandboxID  string                      `json:"SandboxID"`
	SandboxKey string                      `json:"SandboxKey"`
	Ports      map[string][]inspectPort    `json:"Ports"`
	Networks   map[string]*inspectEndpoint `json:"Networks,omitempty"`
}

type inspectHost struct {
	NetworkMode  string                   `json:"NetworkMode"`
	PortBindings map[string][]inspectPort `json:"PortBindings"`
	AutoRemove   bool                     `json:"AutoRemove"`
	Dns          []string                 `json:"Dns"`
	DnsSearch    []string                 `json:"DnsSearch"`
	DnsOptions   []string                 `json:"DnsOptions"`
	ExtraHosts   []string                 `json:"ExtraHosts"`
}

// inspectContainer builds the inspect view; the network part comes from
// the live registered container (so connect and disconnect show).
func (w *world) inspectContainer(e *engine.Engine, c *engine.Container) ctrInspect {
	id := c.Config.ID
	out := ctrInspect{
		ID: id, Created: c.Config.Created, Name: c.Config.Name,
		Image: c.Config.ImageID, ImageName: c.Config.Image, Rootfs: c.Config.Rootfs,
		RestartCount: max(0, c.State.StartCount-1), OCIRuntime: "runc",
		LogPath: e.LogPath(id), Mounts: inspectMounts(e, c),
		State: inspectState{
			OciVersion: "1.0.2-dev", Status: c.State.Status, Running: c.Running(),
			Pid: c.State.Pid, ConmonPid: c.State.MonitorPid, ExitCode: c.State.ExitCode,
			Error: c.State.Error, StartedAt: c.State.StartedAt, FinishedAt: c.State.FinishedAt,
		},
		Config: inspectConfig{
			Hostname: c.Config.Hostname, User: c.Config.User, Cmd: c.Config.Cmd,
			Env:   runspec.MergeEnv([]string{"PATH=" + runspec.DefaultPath, "container=berth", "HOSTNAME=" + c.Config.Hostname}, c.Config.Env),
			Image: imageName(c), WorkingDir: c.Config.WorkingDir, Entrypoint: strings.Join(c.Config.Entrypoint, " "),
			Labels: c.Config.Labels, StopSignal: c.Config.StopSignal, StopTimeout: c.Config.StopTimeout,
			Tty: c.Config.Terminal, OpenStdin: c.Config.Stdin,
		},
		HostConfig: inspectHost{AutoRemove: c.Config.Remove, PortBindings: map[string][]inspectPort{}, DnsSearch: c.Config.DNS.Search, DnsOptions: c.Config.DNS.Options},
	}
	if out.Config.StopSignal == "" {
		out.Config.StopSignal = "SIGTERM"
	}
	if len(c.Config.Args) > 0 {
		out.Path, out.Args = c.Config.Args[0], c.Config.Args[1:]
	}
	if c.Running() {
		dir := e.RunDir(id)
		out.HostsPath, out.ResolvConfPath, out.HostnamePath = dir+"/hosts", dir+"/resolv.conf", dir+"/hostname"
	}
	inspectHostNetwork(c, &out.HostConfig)
	ports := inspectPorts(c, &out)
	out.NetworkSettings = w.inspectNetworkSettings(c, ports)
	return out
}

// inspectHostNetwork fills the host config's DNS servers, extra hosts
// and network mode.
func inspectHostNetwork(c *engine.Container, h *inspectHost) {
	for _, s := range c.Config.DNS.Servers {
		h.Dns = append(h.Dns, s.String())
	}
	for _, eh := range c.Config.AddHosts {
		h.ExtraHosts = append(h.ExtraHosts, strings.Join(eh.Names, ";")+":"+eh.IP)
	}
	switch c.Config.Net.Kind {
	case runopts.ModeBridge:
		h.NetworkMode = "bridge"
	case runopts.ModeContainer, runopts.ModeNS:
		h.NetworkMode = c.Config.Net.Kind + ":" + c.Config.Net.Target
	default:
		h.NetworkMode = c.Config.Net.Kind
	}
}

// inspectPorts fills the exposed ports and port bindings and returns the
// network settings' port map: every exposed port (without bindings) and
// every published one with its bindings.
func inspectPorts(c *engine.Container, out *ctrInspect) map[string][]inspectPort {
	ports := map[string][]inspectPort{}
	for _, p := range c.Config.ExposedPorts {
		if out.Config.ExposedPorts == nil {
			out.Config.ExposedPorts = map[string]struct{}{}
		}
		out.Config.ExposedPorts[p] = struct{}{}
		ports[p] = nil
	}
	for _, pm := range network.ExpandPorts(c.Config.Ports...) {
		k := fmt.Sprintf("%d/%s", pm.ContainerPort, pm.Protocol)
		b := inspectPort{HostIP: pm.HostIP, HostPort: strconv.Itoa(int(pm.HostPort))}
		ports[k] = append(ports[k], b)
		out.HostConfig.PortBindings[k] = append(out.HostConfig.PortBindings[k], b)
	}
	return ports
}

// inspectNetworkSettings builds the network settings: for a bridge-mode
// container one endpoint per network it was given, updated from its live
// attachments, with a single network's endpoint also shown at the top.
func (w *world) inspectNetworkSettings(c *engine.Container, ports map[string][]inspectPort) inspectNetwork {
	ns := inspectNetwork{Ports: ports}
	if c.Running() {
		ns.SandboxKey = c.State.NetNS
	}
	if c.Config.Net.Kind != runopts.ModeBridge {
		return ns
	}
	ns.Networks = map[string]*inspectEndpoint{}
	for _, r := range c.Config.Net.Networks {
		name := r.Name
		if name == "" {
			name = w.store.DefaultName()
		}
		ep := &inspectEndpoint{Aliases: append(append([]string{}, r.Aliases...), c.ShortID())}
		if n, err := w.store.Get(name); err == nil {
			ep.NetworkID = n.Name
			name = n.Name
		}
		ns.Networks[name] = ep
	}
	if c.Running() {
		inspectAttachments(c, ns.Networks)
	}
	if len(ns.Networks) == 1 {
		for _, ep := range ns.Networks {
			ns.inspectEndpoint = *ep
			ns.inspectEndpoint.NetworkID, ns.inspectEndpoint.Aliases = "", nil
		}
	}
	return ns
}

// inspectAttachments updates (or adds) each live attachment's endpoint
// with its aliases, MAC and addresses (the DHCP lease when none were
// allocated).
func inspectAttachments(c *engine.Container, eps map[string]*inspectEndpoint) {
	for _, a := range c.State.Attachments {
		ep := eps[a.Network.Name]
		if ep == nil {
			ep = &inspectEndpoint{NetworkID: a.Network.Name}
			eps[a.Network.Name] = ep
		}
		ep.Aliases = a.Opts.Aliases
		ep.MacAddress = a.Opts.StaticMAC
		for _, ip := range a.Opts.StaticIPs {
			bits, gw := subnetOf(a.Network, ip)
			if ip.Is4() {
				ep.IPAddress, ep.IPPrefixLen, ep.Gateway = ip.String(), bits, gw
			} else {
				ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen, ep.IPv6Gateway = ip.String(), bits, gw
			}
		}
		if len(a.Opts.StaticIPs) == 0 {
			// No allocated addresses (ipam driver dhcp): the
			// lease is in the setup's status block.
			leasedAddrs(ep, c.State.Networks[a.Network.Name])
		}
	}
}

var idField = regexp.MustCompile(`\.Id(\W|$)`)

func subnetOf(n network.Network, ip netip.Addr) (int, string) {
	for _, s := range n.Subnets {
		if s.Subnet.Contains(ip) {
			gw := ""
			if s.Gateway.IsValid() {
				gw = s.Gateway.String()
			}
			return s.Subnet.Bits(), gw
		}
	}
	return 0, ""
}

func ctrInspectCmd(env Env, g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:     "inspect [options] CONTAINER...",
		Aliases: []string{"container-inspect"},
		Short:   "Show a container's configuration, state and network settings",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			var out []ctrInspect
			var errs []error
			for _, a := range args {
				c, err := e.Get(a)
				if err != nil {
					errs = append(errs, notFound(err, 125))
					continue
				}
				out = append(out, w.inspectContainer(e, c))
			}
			if format == "" || isJSON(format) {
				if out == nil {
					out = []ctrInspect{}
				}
				if err := inspectJSON(env.Stdout, out); err != nil {
					return err
				}
				return lastError(env, errs)
			}
			// Podman accepts Docker's {{.Id}} for {{.ID}}.
			format = idField.ReplaceAllString(format, ".ID$1")
			t, err := template.New("inspect").Funcs(templateFuncs).Parse(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format))
			if err != nil {
				return fmt.Errorf("parse --format: %w", err)
			}
			for _, v := range out {
				if err := t.Execute(env.Stdout, v); err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout)
			}
			return lastError(env, errs)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template or json")
	return c
}

// leasedAddrs fills an endpoint's addresses from a setup's status block.
func leasedAddrs(ep *inspectEndpoint, sb network.StatusBlock) {
	for _, ifc := range sb.Interfaces {
		if ep.MacAddress == "" {
			ep.MacAddress = ifc.MACAddress
		}
		for _, a := range ifc.Subnets {
			gw := ""
			if a.Gateway != nil {
				gw = a.Gateway.String()
			}
			ip := a.IPNet.Addr()
			if ip.Is4() && ep.IPAddress == "" {
				ep.IPAddress, ep.IPPrefixLen, ep.Gateway = ip.String(), a.IPNet.Bits(), gw
			} else if ip.Is6() && ep.GlobalIPv6Address == "" {
				ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen, ep.IPv6Gateway = ip.String(), a.IPNet.Bits(), gw
			}
		}
	}
}
