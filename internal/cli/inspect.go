package cli

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/image"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// ctrInspect is the Podman-compatible subset of `inspect` for a container.
type ctrInspect struct {
	ID              string       `json:"Id"`
	Created         time.Time    `json:"Created"`
	Path            string       `json:"Path"`
	Args            []string     `json:"Args"`
	State           inspectState `json:"State"`
	Image           string       `json:"Image"`
	ImageDigest     string       `json:"ImageDigest"`
	ImageName       string       `json:"ImageName"`
	Rootfs          string       `json:"Rootfs"`
	Pod             string       `json:"Pod"`
	ResolvConfPath  string       `json:"ResolvConfPath"`
	HostnamePath    string       `json:"HostnamePath"`
	HostsPath       string       `json:"HostsPath"`
	StaticDir       string       `json:"StaticDir"`
	OCIConfigPath   string       `json:"OCIConfigPath"`
	OCIRuntime      string       `json:"OCIRuntime"`
	ConmonPidFile   string       `json:"ConmonPidFile"`
	PidFile         string       `json:"PidFile"`
	Name            string       `json:"Name"`
	RestartCount    int          `json:"RestartCount"`
	Driver          string       `json:"Driver"`
	MountLabel      string       `json:"MountLabel"`
	ProcessLabel    string       `json:"ProcessLabel"`
	AppArmorProfile string       `json:"AppArmorProfile"`
	EffectiveCaps   []string     `json:"EffectiveCaps"`
	BoundingCaps    []string     `json:"BoundingCaps"`
	ExecIDs         []string     `json:"ExecIDs"`
	GraphDriver     graphDriver  `json:"GraphDriver"`
	// Mounts lists the container's mounts (an empty list without any).
	Mounts          []inspectMount `json:"Mounts"`
	Dependencies    []string       `json:"Dependencies"`
	LogPath         string         `json:"LogPath"`
	NetworkSettings inspectNetwork `json:"NetworkSettings"`
	Namespace       string         `json:"Namespace"`
	IsInfra         bool           `json:"IsInfra"`
	IsService       bool           `json:"IsService"`
	Config          inspectConfig  `json:"Config"`
	HostConfig      inspectHost    `json:"HostConfig"`
}

type inspectState struct {
	OciVersion     string        `json:"OciVersion"`
	Status         string        `json:"Status"`
	Running        bool          `json:"Running"`
	Paused         bool          `json:"Paused"`
	Restarting     bool          `json:"Restarting"`
	OOMKilled      bool          `json:"OOMKilled"`
	Dead           bool          `json:"Dead"`
	Pid            int           `json:"Pid"`
	ConmonPid      int           `json:"ConmonPid"`
	ExitCode       int           `json:"ExitCode"`
	Error          string        `json:"Error"`
	StartedAt      time.Time     `json:"StartedAt"`
	FinishedAt     time.Time     `json:"FinishedAt"`
	Health         engine.Health `json:"Health"`
	CgroupPath     string        `json:"CgroupPath"`
	CheckpointedAt time.Time     `json:"CheckpointedAt"`
	RestoredAt     time.Time     `json:"RestoredAt"`
}

type inspectConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	StdinOnce    bool                `json:"StdinOnce"`
	Volumes      map[string]struct{} `json:"Volumes"`
	OnBuild      []string            `json:"OnBuild"`
	Annotations  map[string]string   `json:"Annotations"`
	// CreateCommand is empty: berth does not record it.
	CreateCommand              []string            `json:"CreateCommand"`
	Umask                      string              `json:"Umask"`
	Timeout                    uint                `json:"Timeout"`
	Passwd                     bool                `json:"Passwd"`
	SdNotifyMode               string              `json:"sdNotifyMode"`
	Healthcheck                *engine.Healthcheck `json:"Healthcheck,omitempty"`
	HealthcheckOnFailureAction string              `json:"HealthcheckOnFailureAction"`
	Env                        []string            `json:"Env"`
	Cmd                        []string            `json:"Cmd"`
	Image                      string              `json:"Image"`
	WorkingDir                 string              `json:"WorkingDir"`
	Entrypoint                 string              `json:"Entrypoint"`
	Labels                     map[string]string   `json:"Labels"`
	StopSignal                 uint                `json:"StopSignal"`
	StopTimeout                uint                `json:"StopTimeout"`
	Tty                        bool                `json:"Tty"`
	OpenStdin                  bool                `json:"OpenStdin"`
	ExposedPorts               map[string]struct{} `json:"ExposedPorts,omitempty"`
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
	Bridge     string                         `json:"Bridge"`
	SandboxID  string                         `json:"SandboxID"`
	SandboxKey string                         `json:"SandboxKey"`
	Ports      map[string][]inspectPort       `json:"Ports"`
	Networks   map[string]*inspectNetEndpoint `json:"Networks,omitempty"`
	// berth has no hairpin mode or link-local addresses to show.
	HairpinMode            bool   `json:"HairpinMode"`
	LinkLocalIPv6Address   string `json:"LinkLocalIPv6Address"`
	LinkLocalIPv6PrefixLen int    `json:"LinkLocalIPv6PrefixLen"`
}

// inspectNetEndpoint is a container's endpoint on one of its networks.
type inspectNetEndpoint struct {
	inspectEndpoint
	DriverOpts map[string]string `json:"DriverOpts"`
	IPAMConfig map[string]string `json:"IPAMConfig"`
	Links      []string          `json:"Links"`
}

type inspectHost struct {
	NetworkMode  string                   `json:"NetworkMode"`
	PortBindings map[string][]inspectPort `json:"PortBindings"`
	AutoRemove   bool                     `json:"AutoRemove"`
	Dns          []string                 `json:"Dns"`
	DnsSearch    []string                 `json:"DnsSearch"`
	DnsOptions   []string                 `json:"DnsOptions"`
	ExtraHosts   []string                 `json:"ExtraHosts"`

	// The run flags' settings, with Podman's keys and types.
	CapAdd      []string        `json:"CapAdd"`
	CapDrop     []string        `json:"CapDrop"`
	Privileged  bool            `json:"Privileged"`
	SecurityOpt []string        `json:"SecurityOpt"`
	Memory      int64           `json:"Memory"`
	MemorySwap  int64           `json:"MemorySwap"`
	NanoCpus    int64           `json:"NanoCpus"`
	CpuShares   uint64          `json:"CpuShares"`
	CpuQuota    int64           `json:"CpuQuota"`
	CpuPeriod   uint64          `json:"CpuPeriod"`
	PidsLimit   int64           `json:"PidsLimit"`
	Ulimits     []inspectUlimit `json:"Ulimits"`
	Devices     []inspectDevice `json:"Devices"`
	GroupAdd    []string        `json:"GroupAdd"`
	Init        bool            `json:"Init,omitempty"`

	RestartPolicy inspectRestartPolicy `json:"RestartPolicy"`

	inspectHostRest
}

// inspectRestartPolicy is HostConfig.RestartPolicy.
type inspectRestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount uint   `json:"MaximumRetryCount"`
}

// inspectUlimit is one of HostConfig's Ulimits (Name as RLIMIT_X).
type inspectUlimit struct {
	Name string `json:"Name"`
	Soft int64  `json:"Soft"`
	Hard int64  `json:"Hard"`
}

// inspectDevice is one of HostConfig's Devices.
type inspectDevice struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// runtimeHost fills h's run-flag keys from the container's recorded
// settings (empty lists and maps, not null, as Podman prints them; the
// capabilities come from capsOf).
func runtimeHost(h *inspectHost, rt runopts.Runtime) {
	h.Privileged, h.Init, h.GroupAdd = rt.Privileged, rt.Init, nonNil(rt.GroupAdd)
	h.SecurityOpt = []string{}
	if rt.NoNewPrivileges {
		h.SecurityOpt = append(h.SecurityOpt, "no-new-privileges")
	}
	if rt.LabelDisable {
		h.SecurityOpt = append(h.SecurityOpt, "label=disable")
	}
	r := rt.Resources
	h.Memory, h.MemorySwap, h.CpuShares, h.PidsLimit = r.Memory, r.MemorySwap, r.CPUShares, r.PidsLimit
	h.CpuQuota, h.CpuPeriod = r.CPUQuota, r.CPUPeriod
	if r.CPUPeriod > 0 {
		h.NanoCpus = r.CPUQuota * 1e9 / int64(r.CPUPeriod)
	}
	h.Ulimits = []inspectUlimit{}
	for _, u := range rt.Ulimits {
		if u.Name == "host" { // --ulimit host: the host's limits, none of its own
			continue
		}
		h.Ulimits = append(h.Ulimits, inspectUlimit{Name: "RLIMIT_" + strings.ToUpper(u.Name), Soft: u.Soft, Hard: u.Hard})
	}
	h.Devices = []inspectDevice{}
	for _, d := range rt.Devices {
		h.Devices = append(h.Devices, inspectDevice{PathOnHost: d.Source, PathInContainer: d.Destination, CgroupPermissions: d.Permissions})
	}
}

// nonNil returns s, or an empty list for nil.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// inspectContainer builds the inspect view; the network part comes from
// the live registered container (so connect and disconnect show).
func (w *world) inspectContainer(e *engine.Engine, c *engine.Container) ctrInspect {
	id := c.Config.ID
	out := ctrInspect{
		ID: id, Created: c.Config.Created, Name: c.Config.Name,
		Image: c.Config.ImageID, ImageName: c.Config.Image, Rootfs: c.Config.Rootfs,
		RestartCount: int(c.State.RestartCount), OCIRuntime: "runc",
		LogPath: e.LogPath(id), Pod: c.Config.Pod, IsInfra: c.Config.Infra,
		StaticDir: e.DataDir(id), OCIConfigPath: e.RunDir(id) + "/config.json", Driver: "overlay",
		ExecIDs: []string{}, Dependencies: []string{},
		Mounts: inspectMounts(e, c), GraphDriver: graphDriver{Name: "overlay", Data: map[string]string{}},
		State: inspectState{
			OciVersion: "1.0.2-dev", Status: pausedOr(c), Running: c.Running() && !c.State.Paused, Paused: c.State.Paused,
			Pid: c.State.Pid, ConmonPid: c.State.MonitorPid, ExitCode: c.State.ExitCode, Restarting: c.State.Restarting,
			Error: c.State.Error, StartedAt: c.State.StartedAt, FinishedAt: c.State.FinishedAt,
			Health: c.State.Health,
		},
		Config: inspectConfig{
			Hostname: c.Config.Hostname, User: c.Config.User, Cmd: c.Config.Cmd,
			Env:   runspec.MergeEnv([]string{"PATH=" + runspec.DefaultPath, "container=berth", "HOSTNAME=" + c.Config.Hostname}, c.Config.Env),
			Image: imageName(c), WorkingDir: c.Config.WorkingDir, Entrypoint: strings.Join(c.Config.Entrypoint, " "),
			Labels: c.Config.Labels, StopTimeout: c.Config.StopTimeout,
			Tty: c.Config.Terminal, OpenStdin: c.Config.Stdin,
			Annotations: map[string]string{}, CreateCommand: []string{}, Umask: "0022",
			SdNotifyMode: "container", HealthcheckOnFailureAction: cmp.Or(c.Config.HealthOnFailure, engine.HealthActionNone),
			Healthcheck: c.Config.Healthcheck,
		},
		HostConfig: inspectHost{AutoRemove: c.Config.Remove, PortBindings: map[string][]inspectPort{}, DnsSearch: c.Config.DNS.Search, DnsOptions: c.Config.DNS.Options},
	}
	runtimeHost(&out.HostConfig, c.Config.Runtime)
	for k, v := range c.Config.Runtime.Annotations {
		out.Config.Annotations[k] = v
	}
	out.HostConfig.RestartPolicy = inspectRestartPolicy{Name: c.Config.RestartPolicy.Name, MaximumRetryCount: c.Config.RestartPolicy.MaxRetries}
	out.HostConfig.inspectHostRest = hostRest(c, e.LogPath(id))
	out.HostConfig.MemoryReservation = c.Config.Runtime.Resources.MemoryReservation
	if size := c.Config.Runtime.ShmSize; size != nil {
		out.HostConfig.ShmSize = *size
	}
	out.EffectiveCaps, out.BoundingCaps, out.HostConfig.CapAdd, out.HostConfig.CapDrop = capsOf(c.Config)
	out.Config.StopSignal = uint(syscall.SIGTERM)
	if sig, err := engine.ParseSignal(c.Config.StopSignal); err == nil && c.Config.StopSignal != "" {
		out.Config.StopSignal = uint(sig)
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
	netc := c
	if c.Config.Net.Kind == runopts.ModeContainer {
		// A container sharing another's network (a pod member) shows
		// that container's networks, as Podman does.
		if t, err := e.Get(c.Config.Net.Target); err == nil {
			netc = t
		}
	}
	out.NetworkSettings = w.inspectNetworkSettings(netc, ports)
	return out
}

// inspectHostNetwork fills the host config's DNS servers, extra hosts
// and network mode.
func inspectHostNetwork(c *engine.Container, h *inspectHost) {
	// Empty lists, not null, as Podman prints them.
	h.Dns, h.ExtraHosts = []string{}, []string{}
	h.DnsSearch, h.DnsOptions = nonNil(h.DnsSearch), nonNil(h.DnsOptions)
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
	ns.Networks = map[string]*inspectNetEndpoint{}
	for _, r := range c.Config.Net.Networks {
		name := r.Name
		if name == "" {
			name = w.store.DefaultName()
		}
		ep := &inspectNetEndpoint{inspectEndpoint: inspectEndpoint{Aliases: append(append([]string{}, r.Aliases...), c.ShortID())}}
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
			ns.inspectEndpoint = ep.inspectEndpoint
			ns.inspectEndpoint.NetworkID, ns.inspectEndpoint.Aliases = "", nil
		}
	}
	return ns
}

// inspectAttachments updates (or adds) each live attachment's endpoint
// with its aliases, MAC and addresses (the DHCP lease when none were
// allocated).
func inspectAttachments(c *engine.Container, eps map[string]*inspectNetEndpoint) {
	for _, a := range c.State.Attachments {
		ep := eps[a.Network.Name]
		if ep == nil {
			ep = &inspectNetEndpoint{inspectEndpoint: inspectEndpoint{NetworkID: a.Network.Name}}
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
			leasedAddrs(&ep.inspectEndpoint, c.State.Networks[a.Network.Name])
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

// inspect --type values.
const (
	inspectAll           = "all"
	inspectContainerType = "container"
	inspectImageType     = "image"
	inspectNetworkType   = "network"
	inspectPodType       = "pod"
	inspectVolumeType    = "volume"
)

// ctrInspectCmd is `inspect` (any object, or those of --type) and, with
// typ container, `container inspect`.
func ctrInspectCmd(env Env, g *globals, typ string) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:     "inspect [options] NAME...",
		Aliases: []string{"container-inspect"},
		Short:   "Show the configuration and state of containers, images, networks or pods",
		Long: "Show containers, images, networks and pods as Podman's JSON (an array) or through a Go template.\n" +
			"Each name is looked up as a container, then an image, a network and a pod, or only as --type says.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkInspectType(typ); err != nil {
				return err
			}
			w, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			in := &inspector{env: env, g: g, w: w, e: e}
			out := []any{}
			var errs []error
			for _, a := range args {
				v, err := in.lookup(typ, a)
				if err != nil {
					errs = append(errs, &exitError{code: 125, err: fmt.Errorf("inspecting object: %w", err)})
					continue
				}
				out = append(out, v)
			}
			if err := printInspect(env, out, format); err != nil {
				return err
			}
			return lastError(env, errs)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template or json")
	if typ == inspectAll {
		c.Flags().StringVarP(&typ, "type", "t", inspectAll, "the type of object: container, image, network, pod, volume or all")
	}
	return c
}

// checkInspectType rejects a --type Podman does not know.
func checkInspectType(typ string) error {
	switch typ {
	case inspectAll, inspectContainerType, inspectImageType, inspectNetworkType, inspectPodType, inspectVolumeType:
		return nil
	}
	return fmt.Errorf("invalid type %q: must be \"image\", \"container\", \"pod\", \"network\", \"volume\", or \"all\"", typ)
}

// inspector finds the objects inspect shows.
type inspector struct {
	env Env
	g   *globals
	w   *world
	e   *engine.Engine
}

// lookup returns the inspect view of the object ref of type typ (all: the
// first container, image, network or pod of that name).
func (in *inspector) lookup(typ, ref string) (any, error) {
	order := []string{typ}
	if typ == inspectAll {
		order = []string{inspectContainerType, inspectImageType, inspectNetworkType, inspectPodType, inspectVolumeType}
	}
	for _, t := range order {
		v, err := in.lookupType(t, ref)
		if err == nil || typ != inspectAll {
			return v, err
		}
		if !errors.Is(err, errInspectNotFound) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no such object: %q", ref)
}

// errInspectNotFound marks a name that is not an object of the type.
var errInspectNotFound = errors.New("not found")

// notFoundAs wraps a lookup's not-found error as Podman words it.
func notFoundAs(msg string) error {
	return fmt.Errorf("%s%w", msg, &quietErr{errInspectNotFound})
}

// quietErr wraps an error for errors.Is without adding to the message.
type quietErr struct{ err error }

func (q *quietErr) Error() string { return "" }
func (q *quietErr) Unwrap() error { return q.err }

func (in *inspector) lookupType(typ, ref string) (any, error) {
	switch typ {
	case inspectContainerType:
		c, err := in.e.Get(ref)
		if errors.Is(err, engine.ErrNoSuchContainer) {
			return nil, notFoundAs("no such container " + ref)
		} else if err != nil {
			return nil, err
		}
		return in.w.inspectContainer(in.e, c), nil
	case inspectImageType:
		s, err := openImages(in.env, in.g)
		if err != nil {
			return nil, err
		}
		img, err := s.Lookup(ref)
		if errors.Is(err, image.ErrNotFound) {
			return nil, notFoundAs(ref + ": image not known")
		} else if err != nil {
			return nil, err
		}
		return inspectImage(s, img)
	case inspectNetworkType:
		n, err := in.w.store.Get(ref)
		if errors.Is(err, netstore.ErrNotFound) {
			return nil, notFoundAs("network " + ref + ": " + err.Error())
		} else if err != nil {
			return nil, err
		}
		return n, nil
	case inspectPodType:
		p, err := in.e.GetPod(ref)
		if errors.Is(err, engine.ErrNoSuchPod) {
			return nil, notFoundAs("no such pod " + ref)
		} else if err != nil {
			return nil, err
		}
		return in.w.podInspectOf(in.e, p)
	}
	v, err := in.e.GetVolume(ref)
	if errors.Is(err, engine.ErrNoSuchVolume) {
		return nil, notFoundAs("no such volume " + ref)
	} else if err != nil {
		return nil, err
	}
	return inspectVolume(in.e, v), nil
}

// printInspect prints the objects as a JSON array or each through a
// template.
func printInspect(env Env, out []any, format string) error {
	if format == "" || isJSON(format) {
		return inspectJSON(env.Stdout, out)
	}
	// Podman accepts Docker's {{.Id}} for {{.ID}}.
	format = idField.ReplaceAllString(format, ".ID$1")
	t, err := template.New("inspect").Funcs(templateFuncs).Parse(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format))
	if err != nil {
		return fmt.Errorf("parse --format: %w", err)
	}
	for _, v := range out {
		if n, ok := v.(network.Network); ok {
			v = viewOf(n)
		}
		if err := t.Execute(env.Stdout, v); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout)
	}
	return nil
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

// pausedOr is the state inspect shows: paused for a frozen container.
func pausedOr(c *engine.Container) string {
	if c.State.Paused && c.Running() {
		return engine.StatePaused
	}
	return c.State.Status
}
