// Package berthnet is berth's embeddable Go API: define networks, attach a
// container's network namespace to one (bridge or macvlan, with addresses,
// routes, NAT and published ports), detach it again and list what is
// attached. It is the same core the berth CLI, the netavark front-end and
// berth's CNI plugins run on, behind a deliberately small surface: the
// types here are plain values, and everything else in berth stays internal
// and free to change.
//
// A Host works on the network namespace of the calling process (or the one
// named in Config.HostNetns): bridges, firewall rules (one nftables table,
// "inet berth") and state live there. State is a directory: attachment
// records and addresses in bbolt databases, network definitions as
// Podman-format JSON files. Calls are serialised across processes by file
// locks, so several programs may share a state directory.
//
// Attach and Detach need root (CAP_NET_ADMIN); defining and listing
// networks do not.
package berthnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/reaper"
	"github.com/berthnet/berth/internal/sysctl"
)

// DefaultStateDir is where a Host keeps its state unless Config says
// otherwise.
const DefaultStateDir = "/run/berth/net"

// Errors callers branch on (with errors.Is).
var (
	// ErrInvalid: a network definition or attach request is not valid; the
	// message names the field.
	ErrInvalid = network.ErrInvalid
	// ErrNotFound: no network or attachment of that name.
	ErrNotFound = errors.New("not found")
	// ErrExists: a network of that name exists.
	ErrExists = errors.New("already exists")
	// ErrInUse: a network still has attachments, or an address or host
	// port is taken.
	ErrInUse = errors.New("in use")
	// ErrPortInUse: a published host port is already forwarded elsewhere
	// (Attach's error matches ErrInUse too).
	ErrPortInUse = firewall.ErrPortInUse
	// ErrNoDHCP: a DHCP network, and Config.DHCP is nil.
	ErrNoDHCP = core.ErrNoDHCPClient
)

// Drivers.
const (
	Bridge  = "bridge"
	Macvlan = "macvlan"
)

// Config configures a Host.
type Config struct {
	// StateDir holds attachment records (state.db and the DNS directory),
	// addresses (ipam.db) and network definitions (networks/).
	// Default DefaultStateDir.
	StateDir string
	// Firewall is "nftables" (default), "iptables" or "none".
	Firewall string
	// HostNetns is the path of the network namespace that holds bridges
	// and firewall rules; empty means the calling process's.
	HostNetns string
	// Logger receives progress at debug level; nil discards.
	Logger *slog.Logger
	// KeepBridges leaves a bridge and its network's rules in place when
	// its last container detaches (CNI's convention); Collect removes them
	// once nothing is attached.
	KeepBridges bool
	// RuntimeSysctlD keeps each bridge's host sysctls (forwarding,
	// route_localnet, rp_filter) also in /run/sysctl.d/10-netavark-BRIDGE.conf
	// while the bridge exists, as netavark does, so a re-run of
	// systemd-sysctl does not reset them. It takes effect only for a
	// rootful Host on the machine's own network namespace of a host booted
	// with systemd (sysctl.RuntimeDropInDir).
	RuntimeSysctlD bool
	// FirewallDriver, when set, is used instead of Firewall (berth's
	// CLI and netavark front-end pick iptables or none this way, and
	// tests inject drivers).
	FirewallDriver FirewallDriver
	// AardvarkBinary is the DNS server started for dns_enabled networks
	// (netavark's --aardvark-binary); empty: no DNS server.
	AardvarkBinary string
	// AardvarkEnv is added to the DNS server's environment.
	AardvarkEnv []string
	// DNSPort is the DNS server's port (default 53).
	DNSPort uint16
	// Rootless starts the DNS server the way a rootless netavark does.
	Rootless bool
	// DHCP leases the addresses of DHCP networks (nil: Attach to a DHCP
	// network fails with ErrNoDHCP). The proxy's client lives in a
	// separate package so that programs without DHCP networks do not link
	// gRPC; berth's own programs pass it.
	DHCP DHCPClient
	// BackgroundLinkRemoval: Detach takes a container's links out of
	// service at once (down, off the bridge, renamed "brtgone…") and a
	// short-lived child process deletes them, so Detach does not wait
	// the 15-25 ms of RCU grace periods the kernel spends on each
	// deletion. The program's main must then start with
	// berthnet.RunReaper. Collect removes retired links whose child died.
	BackgroundLinkRemoval bool
	// FirewallWatcher, when set, is this program's executable, which
	// runs the firewall watcher as `FirewallWatcher firewall-watch
	// --config STATEDIR --firewall-driver NAME --dns-port N` (a command
	// that calls Host.WatchFirewall): the first Attach or SetupNetavark
	// with firewall rules starts it, unless one runs for the state
	// directory. It restores berth's rules within a second when someone
	// else removes them. Ignored when Rootless.
	FirewallWatcher string
}

// RunReaper must be the first call in main of a program that sets
// Config.BackgroundLinkRemoval: when the process was started as a link
// reaper, it deletes the link and exits.
func RunReaper() {
	if ok, code := reaper.Main(os.Args); ok {
		os.Exit(code)
	}
}

// Network is a network definition.
type Network struct {
	// Name is unique per state directory: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
	Name string
	// Driver is Bridge (default) or Macvlan.
	Driver string
	// Interface is the bridge's name (default "berth-" and up to 9
	// characters of the name) or the macvlan parent (default: the link of
	// the host's default route).
	Interface string
	// Subnets are the address ranges; a gateway of a bridge network goes
	// on the bridge and becomes the containers' default route.
	Subnets []Subnet
	// Routes are added in every container, besides the default route
	// through the subnets' gateways.
	Routes []Route
	// NoDefaultRoute leaves out the default route through the gateways.
	NoDefaultRoute bool
	// Internal networks have no default route and no NAT.
	Internal bool
	// NoMasquerade keeps containers' source addresses on traffic leaving
	// the network (routed setups).
	NoMasquerade bool
	// MTU of the bridge and container links; 0: the host's default-route
	// link's.
	MTU int
	// Mode is the macvlan mode (bridge, private, vepa, passthru).
	Mode string
	// DHCP takes the containers' addresses from the LAN's DHCP server
	// through berth's DHCP proxy (macvlan networks; no Subnets). It needs
	// Config.DHCP (ErrNoDHCP otherwise).
	DHCP bool
	// Isolate is the bridge's isolation from berth's other bridges: ""
	// (none, as CNI's reference bridge), "true" (no traffic from other
	// isolated bridges) or "strict" (none from any other bridge), as
	// netavark's isolate option.
	Isolate string
}

// Subnet is one address range of a network.
type Subnet struct {
	Prefix netip.Prefix
	// Gateway is the bridge's address; zero for none.
	Gateway netip.Addr
	// First and Last limit the addresses given to containers (zero: the
	// whole subnet).
	First, Last netip.Addr
}

// Route is a static route in the container.
type Route struct {
	Destination netip.Prefix
	// Gateway is the next hop (required).
	Gateway netip.Addr
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	// HostIP limits the mapping to one host address (zero: all).
	HostIP        netip.Addr
	HostPort      uint16
	ContainerPort uint16
	// Protocol is tcp (default), udp or sctp.
	Protocol string
}

// AttachOptions says how a container joins a network.
type AttachOptions struct {
	// ContainerID identifies the container ([A-Za-z0-9_.-]).
	ContainerID string
	// Netns is the path of the container's network namespace.
	Netns string
	// Interface is the container-side link name (default eth0). A
	// container may be attached once per interface name.
	Interface string
	// Addresses are the container's addresses, one per subnet; when
	// empty, the Host allocates them (and releases them on Detach).
	Addresses []netip.Addr
	// MAC is the container link's MAC address (default random).
	MAC string
	// HostInterface names the host end of a bridge attachment (default
	// "veth" and 11 hex digits derived from container, interface and
	// network).
	HostInterface string
	// Ports are published on the host (bridge networks).
	Ports []PortMapping
}

// Attachment is one container interface on one network.
type Attachment struct {
	ContainerID string
	Interface   string
	Network     string
	Netns       string
	// Addresses of the container interface, with their prefix length.
	Addresses []netip.Prefix
	// Gateways are the default-route gateways given to the container.
	Gateways []netip.Addr
	MAC      string
	// HostInterface is the host end of a bridge attachment's veth.
	HostInterface string
	Ports         []PortMapping
	// DNS and SearchDomains are what the container should use as
	// resolvers (a DHCP lease's, at Attach).
	DNS           []netip.Addr
	SearchDomains []string
}

// Host attaches containers to networks on one host network namespace.
type Host struct {
	cfg   Config
	mgr   *core.Manager
	fw    firewall.Driver
	ipam  *ipam.Allocator
	store *netstore.Store
	host  *netns.NetNS
}

// New returns a Host. Close releases it.
func New(cfg Config) (*Host, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	h := &Host{cfg: cfg}
	if cfg.HostNetns != "" {
		ns, err := netns.Open(cfg.HostNetns)
		if err != nil {
			return nil, fmt.Errorf("berthnet: host namespace: %w", err)
		}
		h.host = ns
	}
	h.fw = cfg.FirewallDriver
	if h.fw == nil {
		fw, err := core.NewFirewall(cfg.Firewall, h.host)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("berthnet: Config.Firewall: %w: %w", err, ErrInvalid)
		}
		h.fw = fw
	}
	dhcp := cfg.DHCP
	mgr, err := core.New(core.Config{
		ConfigDir: cfg.StateDir, Firewall: h.fw, Logger: cfg.Logger, HostNS: h.host, KeepBridges: cfg.KeepBridges, DHCP: dhcp,
		BackgroundLinkRemoval: cfg.BackgroundLinkRemoval, SysctlDDir: sysctlDDir(cfg), FirewallWatcher: cfg.FirewallWatcher,
		AardvarkBinary: cfg.AardvarkBinary, AardvarkEnv: cfg.AardvarkEnv, DNSPort: cfg.DNSPort, Rootless: cfg.Rootless,
	})
	if err != nil {
		h.Close()
		return nil, err
	}
	h.mgr = mgr
	if h.ipam, err = ipam.New(filepath.Join(cfg.StateDir, "ipam.db")); err != nil {
		h.Close()
		return nil, err
	}
	if h.store, err = netstore.New(netstore.Config{Dir: filepath.Join(cfg.StateDir, "networks"), DefaultName: "\x00none"}); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// sysctlDDir is the sysctl.d directory for cfg's bridges ("" for none).
func sysctlDDir(cfg Config) string {
	if !cfg.RuntimeSysctlD || cfg.HostNetns != "" {
		return ""
	}
	return sysctl.RuntimeDropInDir(sysctl.ProbeDropInHost(cfg.Rootless))
}

// Close releases the Host's resources; attachments stay.
func (h *Host) Close() error {
	if h.host != nil {
		return h.host.Close()
	}
	return nil
}

// StateDir returns the state directory.
func (h *Host) StateDir() string { return h.cfg.StateDir }

// Firewall returns the firewall driver's name.
func (h *Host) Firewall() string { return h.fw.Name() }

// CreateNetwork validates n, fills in defaults and stores it. A network of
// the same name gives ErrExists.
func (h *Host) CreateNetwork(n Network) (Network, error) {
	in, err := n.internal()
	if err != nil {
		return Network{}, err
	}
	unlock, err := h.store.Lock()
	if err != nil {
		return Network{}, err
	}
	defer unlock()
	in.Created = time.Now().UTC().Format(time.RFC3339Nano)
	if err := h.store.Create(in); err != nil {
		if errors.Is(err, netstore.ErrExists) {
			return Network{}, fmt.Errorf("create network %s: %w", n.Name, ErrExists)
		}
		return Network{}, fmt.Errorf("create network %s: %w", n.Name, err)
	}
	return fromInternal(in), nil
}

// Network returns the stored network of that name.
func (h *Host) Network(name string) (Network, error) {
	nets, err := h.Networks()
	if err != nil {
		return Network{}, err
	}
	for _, n := range nets {
		if n.Name == name {
			return n, nil
		}
	}
	return Network{}, fmt.Errorf("network %s: %w", name, ErrNotFound)
}

// Networks returns the stored networks, sorted by name.
func (h *Host) Networks() ([]Network, error) {
	list, err := h.store.List()
	if err != nil {
		return nil, err
	}
	var out []Network
	for _, n := range list {
		if h.store.IsDefault(n) {
			continue
		}
		out = append(out, fromInternal(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveNetwork deletes a stored network; one with attachments gives
// ErrInUse.
func (h *Host) RemoveNetwork(name string) error {
	atts, err := h.Attachments()
	if err != nil {
		return err
	}
	for _, a := range atts {
		if a.Network == name {
			return fmt.Errorf("remove network %s: container %s is attached: %w", name, a.ContainerID, ErrInUse)
		}
	}
	unlock, err := h.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := h.store.Remove(name); err != nil {
		if errors.Is(err, netstore.ErrNotFound) {
			return fmt.Errorf("remove network %s: %w", name, ErrNotFound)
		}
		return err
	}
	return h.ipam.RemoveNetwork(name)
}

// key is the record key of an attachment: one record per container
// interface.
func key(ctrID, ifname string) string { return ctrID + "/" + ifname }

func splitKey(k string) (ctrID, ifname string) {
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return k, ""
	}
	return k[:i], k[i+1:]
}

// Attach connects the container namespace o.Netns to network n (stored or
// not) and returns the attachment. On failure nothing is left behind.
func (h *Host) Attach(ctx context.Context, n Network, o AttachOptions) (Attachment, error) {
	in, err := n.internal()
	if err != nil {
		return Attachment{}, err
	}
	if o.Interface == "" {
		o.Interface = "eth0"
	}
	if err := validContainerID(o.ContainerID); err != nil {
		return Attachment{}, err
	}
	if o.Netns == "" {
		return Attachment{}, fmt.Errorf("attach: no namespace path: %w", ErrInvalid)
	}
	k := key(o.ContainerID, o.Interface)
	static := o.Addresses
	allocated := false
	if len(static) == 0 && len(in.Subnets) > 0 && in.IPAMDriver() == network.IPAMHostLocal {
		ps, err := h.ipam.Allocate(k, in, nil)
		if err != nil {
			if errors.Is(err, ipam.ErrInUse) || errors.Is(err, ipam.ErrExhausted) {
				return Attachment{}, fmt.Errorf("%w: %w", ErrInUse, err)
			}
			return Attachment{}, err
		}
		for _, p := range ps {
			static = append(static, p.Addr())
		}
		allocated = true
	}
	opts := attachOptions(in, o, static, n.DHCP)
	pno := opts.Networks[0].PerNetworkOptions
	status, err := h.mgr.Setup(ctx, o.Netns, opts)
	if err != nil {
		if allocated {
			if rerr := h.ipam.Release(k, in.Name); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		if errors.Is(err, firewall.ErrPortInUse) {
			err = fmt.Errorf("%w: %w", ErrInUse, err)
		}
		return Attachment{}, fmt.Errorf("attach %s to network %s: %w", o.ContainerID, in.Name, err)
	}
	a := Attachment{ContainerID: o.ContainerID, Interface: o.Interface, Network: in.Name, Netns: o.Netns, HostInterface: pno.Options["host_interface_name"], Ports: o.Ports}
	if sb, ok := status[in.Name]; ok {
		a.DNS, a.SearchDomains = sb.DNSServerIPs, sb.DNSSearchDomains
		if ifc, ok := sb.Interfaces[o.Interface]; ok {
			a.MAC = ifc.MACAddress
			for _, s := range ifc.Subnets {
				a.Addresses = append(a.Addresses, s.IPNet)
				if s.Gateway != nil && !in.NoDefaultRoute() {
					a.Gateways = append(a.Gateways, *s.Gateway)
				}
			}
		}
	}
	return a, nil
}

// attachOptions is the core's input for attaching o's interface to in
// with the addresses static.
func attachOptions(in network.Network, o AttachOptions, static []netip.Addr, dhcp bool) *network.Options {
	if len(static) == 0 && !dhcp {
		in.IPAMOptions = map[string]string{"driver": network.IPAMNone}
	}
	pno := network.PerNetworkOptions{StaticIPs: static, InterfaceName: o.Interface, StaticMAC: o.MAC}
	if o.HostInterface != "" {
		pno.Options = map[string]string{"host_interface_name": o.HostInterface}
	} else if in.Driver == network.DriverBridge {
		pno.Options = map[string]string{"host_interface_name": HostVethName(o.ContainerID, o.Interface, in.Name)}
	}
	opts := &network.Options{
		ContainerID:   key(o.ContainerID, o.Interface),
		ContainerName: o.ContainerID,
		Networks:      network.Attachments{{Name: in.Name, PerNetworkOptions: pno}},
		NetworkInfo:   map[string]network.Network{in.Name: in},
	}
	for _, p := range o.Ports {
		opts.PortMappings = append(opts.PortMappings, p.internal())
	}
	return opts
}

// DetachAttempt detaches the container interface of an Attach to n with
// o that may not have finished: when the attachment is recorded, it is
// Detach; when not (the attaching process was killed before it recorded
// the attachment), it tears down what that Attach may have built, from n
// and o alone: o.Interface in o.Netns and its host veth, each only when
// it carries berth's mark for this attachment, and o.Ports; and it frees
// the addresses the Host allocated for the interface. A runtime's DEL
// after an interrupted ADD is this call.
func (h *Host) DetachAttempt(ctx context.Context, n Network, o AttachOptions) error {
	if o.Interface == "" {
		o.Interface = "eth0"
	}
	k := key(o.ContainerID, o.Interface)
	if _, ok, err := h.mgr.Lookup(k); err != nil || ok {
		return errors.Join(err, h.detach(ctx, o.ContainerID, o.Interface, false))
	}
	in, err := n.internal()
	if err != nil || validContainerID(o.ContainerID) != nil {
		// No Attach could have built anything from this request.
		return h.ipam.ReleaseAll(k)
	}
	var errs []error
	if err := h.mgr.Teardown(ctx, o.Netns, attachOptions(in, o, o.Addresses, n.DHCP)); err != nil {
		errs = append(errs, err)
	}
	if err := h.ipam.ReleaseAll(k); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach %s: %w", o.ContainerID, err)
	}
	return nil
}

// Detach removes the container interface from its network: links,
// firewall rules and published ports, and addresses the Host allocated.
// It works when the namespace is gone (only the host side is cleaned), and
// detaching what is not attached is not an error.
func (h *Host) Detach(ctx context.Context, containerID, iface string) error {
	return h.detach(ctx, containerID, iface, false)
}

func (h *Host) detach(ctx context.Context, containerID, iface string, hostOnly bool) error {
	if iface == "" {
		iface = "eth0"
	}
	k := key(containerID, iface)
	rec, ok, err := h.mgr.Lookup(k)
	if err != nil {
		return err
	}
	if !ok {
		// An Attach killed after it allocated, before it recorded: the
		// key is the Host's own, so its addresses are the Host's to free.
		return h.ipam.ReleaseAll(k)
	}
	nsPath := rec.NSPath
	if hostOnly {
		nsPath = ""
	}
	var errs []error
	if err := h.mgr.Teardown(ctx, nsPath, rec.Options); err != nil {
		errs = append(errs, err)
	}
	for _, a := range rec.Options.Networks {
		if err := h.ipam.Release(k, a.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach %s: %w", containerID, err)
	}
	return nil
}

// Attachments lists every attachment, sorted by network, container and
// interface.
func (h *Host) Attachments() ([]Attachment, error) {
	recs, err := h.mgr.Records()
	var out []Attachment
	for _, r := range recs {
		ctr, ifn := splitKey(r.Options.ContainerID)
		for _, na := range r.Options.Networks {
			n := r.Options.NetworkInfo[na.Name]
			a := Attachment{ContainerID: ctr, Interface: ifn, Network: na.Name, Netns: r.NSPath, MAC: na.StaticMAC, HostInterface: na.Options["host_interface_name"]}
			for _, ip := range na.StaticIPs {
				if s, ok := n.SubnetFor(ip); ok {
					a.Addresses = append(a.Addresses, netip.PrefixFrom(ip, s.Subnet.Bits()))
					if s.Gateway.IsValid() && !n.Internal && !n.NoDefaultRoute() {
						a.Gateways = append(a.Gateways, s.Gateway)
					}
				}
			}
			for _, p := range r.Options.PortMappings {
				a.Ports = append(a.Ports, fromPortMapping(p))
			}
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		if x.Network != y.Network {
			return x.Network < y.Network
		}
		if x.ContainerID != y.ContainerID {
			return x.ContainerID < y.ContainerID
		}
		return x.Interface < y.Interface
	})
	return out, err
}

// Collect detaches every attachment of network n that keep does not report
// as valid, cleaning only the host side (their namespaces are assumed
// gone): links, rules, ports and addresses; when nothing is left attached,
// the network's bridge and rules go too. It returns the attachments it
// removed; it carries on past errors and returns them joined.
func (h *Host) Collect(ctx context.Context, n Network, keep func(containerID, iface string) bool) ([]Attachment, error) {
	in, err := n.internal()
	if err != nil {
		return nil, err
	}
	networkName := in.Name
	atts, err := h.Attachments()
	if err != nil && atts == nil {
		return nil, err
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	var gone []Attachment
	for _, a := range atts {
		if a.Network != networkName || keep(a.ContainerID, a.Interface) {
			continue
		}
		if err := h.detach(ctx, a.ContainerID, a.Interface, true); err != nil {
			errs = append(errs, err)
			continue
		}
		gone = append(gone, a)
	}
	// Addresses held without an attachment record (a crash between
	// allocation and setup).
	leases, lerr := h.ipam.Dump()
	if lerr != nil {
		errs = append(errs, lerr)
	}
	have := map[string]bool{}
	for _, a := range atts {
		have[key(a.ContainerID, a.Interface)] = true
	}
	for _, l := range leases {
		if l.Network != networkName || have[l.ContainerID] {
			continue
		}
		ctr, ifn := splitKey(l.ContainerID)
		if keep(ctr, ifn) {
			continue
		}
		if err := h.ipam.Release(l.ContainerID, networkName); err != nil {
			errs = append(errs, err)
		}
	}
	// Host veths on the bridge that no record knows of (a process killed
	// between creating the link and recording it).
	if in.Driver == network.DriverBridge {
		known := map[string]bool{}
		for _, a := range atts {
			known[a.HostInterface] = true
		}
		for _, a := range gone {
			known[a.HostInterface] = false
		}
		if err := h.removeStrayVeths(in, known); err != nil {
			errs = append(errs, err)
		}
	}
	if !attached(atts, gone, networkName) {
		if _, err := h.mgr.RemoveBridge(ctx, in); err != nil {
			errs = append(errs, err)
		}
	}
	return gone, errors.Join(errs...)
}

// strayVeth matches the host veth names berth gives.
// (compiled on first use, not at every plugin start)
var strayVeth = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^veth[0-9a-f]{11}$`) })

// removeStrayVeths deletes veths named as berth names them that are ports
// of n's bridge, when berth made that bridge, and not known attachments,
// and retired links whose reaper did not finish.
func (h *Host) removeStrayVeths(n network.Network, known map[string]bool) error {
	hh, err := link.NewHandle(h.host)
	if err != nil {
		return err
	}
	defer hh.Close()
	// Only ports of a bridge berth made (its mark) are berth's to sweep.
	brIndex := -1
	if br, err := hh.Link(n.NetworkInterface); err == nil && core.OwnsBridge(br, n) {
		brIndex = br.Index
	} else if err != nil && !errors.Is(err, link.ErrNotFound) {
		return err
	}
	links, err := hh.Links()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if reaper.IsRetired(l.Name) {
			// A retired link whose reaper did not finish.
			if err := l.Delete(); err != nil && !errors.Is(err, link.ErrNotFound) {
				errs = append(errs, fmt.Errorf("remove retired link %s: %w", l.Name, err))
			}
			continue
		}
		if l.MasterIndex != brIndex || l.Kind != "veth" || !strayVeth().MatchString(l.Name) || known[l.Name] {
			continue
		}
		if err := l.Delete(); err != nil && !errors.Is(err, link.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove stray veth %s: %w", l.Name, err))
		}
	}
	return errors.Join(errs...)
}

// attached reports whether an attachment of the network remains in atts
// that is not in gone.
func attached(atts, gone []Attachment, networkName string) bool {
	left := 0
	for _, a := range atts {
		if a.Network == networkName {
			left++
		}
	}
	for _, a := range gone {
		if a.Network == networkName {
			left--
		}
	}
	return left > 0
}

// Check verifies that an attachment is intact: the container interface
// exists with its addresses, a bridge attachment's host end is on the
// bridge, and the network's firewall rules and the published ports are in
// place. It returns ErrNotFound when nothing is attached.
func (h *Host) Check(ctx context.Context, containerID, iface string) error {
	if iface == "" {
		iface = "eth0"
	}
	rec, ok, err := h.mgr.Lookup(key(containerID, iface))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("check %s/%s: no attachment: %w", containerID, iface, ErrNotFound)
	}
	ctrNS, err := netns.Open(rec.NSPath)
	if err != nil {
		return fmt.Errorf("check %s: %w", containerID, err)
	}
	defer ctrNS.Close()
	ch, err := link.NewHandle(ctrNS)
	if err != nil {
		return err
	}
	defer ch.Close()
	hh, err := link.NewHandle(h.host)
	if err != nil {
		return err
	}
	defer hh.Close()
	for _, na := range rec.Options.Networks {
		n := rec.Options.NetworkInfo[na.Name]
		l, err := ch.Link(na.InterfaceName)
		if err != nil {
			return fmt.Errorf("check %s: container interface %s: %w", containerID, na.InterfaceName, err)
		}
		addrs, err := l.Addrs()
		if err != nil {
			return fmt.Errorf("check %s: %w", containerID, err)
		}
		for _, ip := range na.StaticIPs {
			found := false
			for _, a := range addrs {
				if a.Addr() == ip {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("check %s: address %s is missing from %s", containerID, ip, na.InterfaceName)
			}
		}
		if n.Driver != network.DriverBridge {
			continue
		}
		br, err := hh.Link(n.NetworkInterface)
		if err != nil {
			return fmt.Errorf("check %s: bridge %s: %w", containerID, n.NetworkInterface, err)
		}
		if hn := na.Options["host_interface_name"]; hn != "" {
			hv, err := hh.Link(hn)
			if err != nil {
				return fmt.Errorf("check %s: host interface %s: %w", containerID, hn, err)
			}
			if hv.MasterIndex != br.Index {
				return fmt.Errorf("check %s: host interface %s is not on bridge %s", containerID, hn, n.NetworkInterface)
			}
		}
		if fc, ok := h.fw.(firewall.Checker); ok && n.Firewalled() {
			id := n.ID
			if id == "" {
				id = n.Name
			}
			have, err := fc.HasNetwork(id)
			if err != nil {
				return err
			}
			if !have {
				return fmt.Errorf("check %s: the firewall rules of network %s are missing", containerID, n.Name)
			}
		}
	}
	return nil
}

// HostVethName is the default host-side name of a bridge attachment's
// veth: "veth" and 11 hex digits of a hash of container, interface and
// network.
func HostVethName(containerID, iface, networkName string) string {
	return network.HostVethName(containerID+"/"+iface, networkName)
}

func validContainerID(id string) error {
	if id == "" {
		return fmt.Errorf("container ID: must not be empty: %w", ErrInvalid)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return fmt.Errorf("container ID %q: only letters, digits, '_', '.' and '-' are allowed: %w", id, ErrInvalid)
		}
	}
	return nil
}

// internal converts n to berth's model with defaults, and validates it.
func (n Network) internal() (network.Network, error) {
	if !network.ValidName(n.Name) {
		return network.Network{}, fmt.Errorf("network name %q: want %s: %w", n.Name, network.NameRule, ErrInvalid)
	}
	id := sha256.Sum256([]byte("berthnet:" + n.Name))
	in := network.Network{Name: n.Name, ID: hex.EncodeToString(id[:]), Driver: n.Driver, NetworkInterface: n.Interface, Internal: n.Internal, Options: map[string]string{}}
	if in.Driver == "" {
		in.Driver = network.DriverBridge
	}
	if in.Driver == network.DriverBridge && in.NetworkInterface == "" {
		b := "berth-" + n.Name
		if len(b) > 15 {
			b = b[:15]
		}
		in.NetworkInterface = b
	}
	if n.MTU != 0 {
		in.Options[network.OptMTU] = strconv.Itoa(n.MTU)
	}
	if n.NoMasquerade {
		in.Options[network.OptNoMasquerade] = "true"
	}
	if n.Mode != "" {
		in.Options[network.OptMode] = n.Mode
	}
	if n.NoDefaultRoute {
		in.Options[network.OptNoDefaultRoute] = "true"
	}
	if in.Driver == network.DriverBridge {
		// netavark 2.x reads an unset isolate as strict; berthnet's
		// networks keep CNI's default of none unless asked.
		in.Options[network.OptIsolate] = "false"
		if n.Isolate != "" {
			in.Options[network.OptIsolate] = n.Isolate
		}
	}
	if n.DHCP {
		in.IPAMOptions = map[string]string{"driver": network.IPAMDHCP}
	}
	for _, r := range n.Routes {
		in.Routes = append(in.Routes, network.Route{Destination: r.Destination.Masked(), Gateway: r.Gateway})
	}
	for _, s := range n.Subnets {
		sub := network.Subnet{Subnet: s.Prefix.Masked(), Gateway: s.Gateway}
		if s.First.IsValid() || s.Last.IsValid() {
			sub.LeaseRange = &network.LeaseRange{StartIP: s.First, EndIP: s.Last}
		}
		if sub.Subnet.Addr().Is6() {
			in.IPv6Enabled = true
		}
		in.Subnets = append(in.Subnets, sub)
	}
	if len(in.Options) == 0 {
		in.Options = nil
	}
	if err := in.Validate(); err != nil {
		return network.Network{}, err
	}
	return in, nil
}

func fromInternal(in network.Network) Network {
	n := Network{Name: in.Name, Driver: in.Driver, Interface: in.NetworkInterface, Internal: in.Internal, NoMasquerade: in.NoMasquerade(), NoDefaultRoute: in.NoDefaultRoute(), DHCP: in.IPAMDriver() == network.IPAMDHCP, MTU: in.MTU(), Mode: in.Option(network.OptMode)}
	for _, s := range in.Subnets {
		sub := Subnet{Prefix: s.Subnet, Gateway: s.Gateway}
		if s.LeaseRange != nil {
			sub.First, sub.Last = s.LeaseRange.StartIP, s.LeaseRange.EndIP
		}
		n.Subnets = append(n.Subnets, sub)
	}
	for _, r := range in.Routes {
		n.Routes = append(n.Routes, Route{Destination: r.Destination, Gateway: r.Gateway})
	}
	return n
}

func (p PortMapping) internal() network.PortMapping {
	m := network.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Range: 1, Protocol: p.Protocol}
	if m.Protocol == "" {
		m.Protocol = "tcp"
	}
	if p.HostIP.IsValid() {
		m.HostIP = p.HostIP.String()
	}
	return m
}

func fromPortMapping(m network.PortMapping) PortMapping {
	p := PortMapping{HostPort: m.HostPort, ContainerPort: m.ContainerPort, Protocol: m.Protocol}
	p.HostIP, _ = netip.ParseAddr(m.HostIP)
	return p
}
