// Package core attaches a container's network namespace to its networks
// and detaches it again: links, addresses, routes, sysctls, firewall rules
// and DNS entries, with rollback of everything done when a step fails.
//
// It is the core behind the netavark front-end, the berth CLI and the Go API.
// Calls are serialised per state directory by an flock, so concurrent setups
// and teardowns (Podman runs them in parallel) all succeed.
package core

import (
	"context"
	"errors"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/berthnet/berth/internal/aardvarkconf"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/link"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rollback"
)

// Config configures a Manager.
type Config struct {
	// ConfigDir is netavark's --config directory: the aardvark-dns
	// directory and berth's state live below it.
	ConfigDir string
	// AardvarkBinary is the DNS server to start for dns_enabled networks;
	// when it does not exist, DNS is skipped as netavark does.
	AardvarkBinary string
	// DNSPort is the port the DNS server listens on (default 53).
	DNSPort uint16
	// Rootless starts the DNS server the way a rootless netavark does.
	Rootless bool
	// Firewall programs the host firewall.
	Firewall firewall.Driver
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// FailPoint, when set, is called before each step and can inject a
	// failure (tests of rollback).
	FailPoint func(step string) error
	// AardvarkEnv is added to the DNS server's environment.
	AardvarkEnv []string
	// HostNS is the namespace that holds bridges, firewall and DNS server;
	// nil means the calling process's own. The firewall driver must be
	// bound to the same namespace.
	HostNS *netns.NetNS
	// DHCP leases addresses for networks whose IPAM driver is dhcp; nil
	// makes setting up such a network fail with ErrNoDHCPClient.
	DHCP DHCPClient
	// KeepBridges leaves a bridge and its network's firewall rules in
	// place when its last container leaves (as CNI's reference bridge
	// plugin does); RemoveBridge removes them. The next container then
	// skips creating them, and teardown skips two kernel waits.
	KeepBridges bool
	// SysctlDDir, when set, is where a created bridge's host sysctls are
	// also written as a sysctl.d(5) file (10-netavark-BRIDGE.conf), so a
	// later run of systemd-sysctl keeps them; the file goes with the
	// bridge. netavark 2.1 writes /run/sysctl.d on a host run by systemd,
	// when not rootless.
	SysctlDDir string
	// BackgroundLinkRemoval makes teardown retire container links (down,
	// off the bridge, renamed; see package reaper) and leave their
	// deletion, which waits for the kernel's RCU grace periods, to a
	// short-lived child process. The executable must call reaper.Main.
	BackgroundLinkRemoval bool
	// FirewallWatcher, when set, is the executable that runs the firewall
	// watcher as `FirewallWatcher firewall-watch --config DIR
	// --firewall-driver NAME --dns-port N` (WatchCommand; the program
	// calls WatchFirewall with a Manager of that configuration). The
	// first firewalled setup starts it, in HostNS, unless one runs for
	// ConfigDir (see watch.go). Not for Rootless.
	FirewallWatcher string
}

// Manager sets networks up and tears them down in the calling process's
// network namespace (the "host").
type Manager struct {
	cfg   Config
	state store
	log   *slog.Logger
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.ConfigDir == "" {
		return nil, errors.New("core: no config directory")
	}
	if cfg.Firewall == nil {
		return nil, errors.New("core: no firewall driver")
	}
	if cfg.DNSPort == 0 {
		cfg.DNSPort = 53
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, state: store{dir: filepath.Join(cfg.ConfigDir, "berth")}, log: l}, nil
}

// loaded is when the package was initialised: step timings in debug logs
// count from it (for the netavark front-end: from process start).
var loaded = time.Now()

// step logs the start of a named step at debug level, with the time since
// the process started.
func (m *Manager) step(name string) {
	if m.log.Enabled(context.Background(), slog.LevelDebug) {
		m.log.Debug("step", "name", name, "since_start", time.Since(loaded))
	}
}

func (m *Manager) fail(step string) error {
	m.step(step)
	if m.cfg.FailPoint == nil {
		return nil
	}
	if err := m.cfg.FailPoint(step); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}

// ErrNamespace wraps failures to open the container namespace.
var ErrNamespace = errors.New("invalid namespace path")

// Setup attaches the namespace at nsPath to every network in o, in order,
// and returns one status block per network.
func (m *Manager) Setup(ctx context.Context, nsPath string, o *network.Options) (map[string]network.StatusBlock, error) {
	if err := o.ValidateSetup(); err != nil {
		return nil, err
	}
	ctrNS, err := netns.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNamespace, err)
	}
	defer ctrNS.Close()

	sess, err := m.state.open()
	if err != nil {
		return nil, err
	}
	defer sess.close()

	hostH, err := link.NewHandle(m.cfg.HostNS)
	if err != nil {
		return nil, err
	}
	defer hostH.Close()
	ctrH, err := link.NewHandle(ctrNS)
	if err != nil {
		return nil, err
	}
	defer ctrH.Close()

	var rb rollback.Stack
	res, err := m.setup(ctx, sess, ctrNS, hostH, ctrH, o, &rb)
	if err != nil {
		if rerr := rb.Run(); rerr != nil {
			m.log.Warn("rollback after failed setup was incomplete", "error", rerr)
			return nil, errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return nil, err
	}
	m.settleFirewall(sess, true)
	if sess.firewalled {
		m.ensureWatcher()
	}
	m.log.Debug("setup done", "since_start", time.Since(loaded))
	return res, nil
}

// setup attaches the container to every network in o, in order, then
// programs the firewall, saves the attachment record and registers the
// container's names with the DNS server. Everything it builds is pushed
// onto rb, so that on failure Setup can undo it, last step first.
func (m *Manager) setup(ctx context.Context, sess *session, ctrNS *netns.NetNS, hostH, ctrH *link.Handle, o *network.Options, rb *rollback.Stack) (map[string]network.StatusBlock, error) {
	if err := ctrH.LoopbackUp(); err != nil {
		return nil, err
	}
	res := map[string]network.StatusBlock{}
	att := make([]*attachment, 0, len(o.Networks))
	for _, a := range o.Networks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		at, err := m.attach(ctx, sess, ctrNS, hostH, ctrH, o, a, rb)
		if err != nil {
			return nil, err
		}
		att = append(att, at)
		res[a.Name] = at.status(o, m.haveDNSServer())
	}
	if err := m.setupFirewall(sess, ctrNS.Path(), o, att, rb); err != nil {
		return nil, err
	}
	if err := m.saveState(sess, ctrNS.Path(), o, rb); err != nil {
		return nil, err
	}
	if err := m.fail("dns"); err != nil {
		return nil, err
	}
	if err := m.setupDNS(o, att, rb); err != nil {
		return nil, err
	}
	return res, nil
}

// attach attaches the container to network a by its driver (a veth on a
// bridge, or a macvlan/ipvlan link) and, for a dhcp network, leases its
// address; a dhcp network's static routes wait for the lease, as their
// gateways are not reachable before. On failure, what it built is on rb
// and the error names the network.
func (m *Manager) attach(ctx context.Context, sess *session, ctrNS *netns.NetNS, hostH, ctrH *link.Handle, o *network.Options, a network.NamedNetworkOptions, rb *rollback.Stack) (*attachment, error) {
	n := networkOf(o, a.Name)
	at := &attachment{net: n, opts: a.PerNetworkOptions, ctrID: o.ContainerID}
	dhcp := n.IPAMDriver() == network.IPAMDHCP
	if dhcp {
		at.net.Routes = nil
	}
	var err error
	switch n.Driver {
	case network.DriverBridge:
		err = m.setupBridge(sess, ctrNS, hostH, ctrH, at, o.PortMappings, rb)
	case network.DriverMacvlan, network.DriverIPvlan:
		err = m.setupMacvlan(ctrNS, hostH, ctrH, at, rb)
	}
	if err == nil && dhcp {
		err = m.leaseDHCP(ctx, ctrNS, hostH, ctrH, at, o, rb)
	}
	if err != nil {
		return nil, &NetworkError{Network: n.Name, Err: err}
	}
	return at, nil
}

// NetworkError is a failure to attach a container to (or detach it from)
// one network. Its text names the network; front-ends that word errors as
// netavark does (which names none) print Err alone.
type NetworkError struct {
	Network string
	Err     error
}

func (e *NetworkError) Error() string { return fmt.Sprintf("network %s: %v", e.Network, e.Err) }

func (e *NetworkError) Unwrap() error { return e.Err }

// setupFirewall programs the rules of the firewalled networks in att, with
// the container's published ports when these networks carry them, and
// pushes their removal onto rb: the ports, and the rules of the networks
// whose bridge this setup created. On failure it leaves the firewall as
// the driver left it.
func (m *Manager) setupFirewall(sess *session, nsPath string, o *network.Options, att []*attachment, rb *rollback.Stack) error {
	var fwNets, created []firewall.NetworkRules
	for _, at := range att {
		if at.net.Firewalled() {
			r := m.rules(at.net)
			fwNets = append(fwNets, r)
			if at.createdBridge {
				created = append(created, r)
			}
		}
	}
	ports := sess.forwards(nsPath, o, att)
	if err := m.fail("firewall"); err != nil {
		return err
	}
	if len(fwNets) == 0 {
		return nil
	}
	sess.firewalled = true
	m.heal(sess, "")
	fwNets = m.withActiveNetworks(sess, fwNets)
	if err := m.cfg.Firewall.Setup(fwNets, ports); err != nil {
		return fmt.Errorf("set up firewall (%s): %w", m.cfg.Firewall.Name(), err)
	}
	rb.Push(func() error { return m.cfg.Firewall.Teardown(ports, created) })
	return nil
}

// withActiveNetworks adds to nets the rules of the other firewalled
// networks with containers on them: drivers whose rules depend on each
// other (iptables strict isolation) see the whole picture, and a network
// whose rules were lost (a flushed ruleset) gets them back.
func (m *Manager) withActiveNetworks(sess *session, nets []firewall.NetworkRules) []firewall.NetworkRules {
	have := map[string]bool{}
	for _, r := range nets {
		have[r.ID] = true
	}
	for _, n := range sess.activeNetworks() {
		if n.Firewalled() && !have[n.ID] {
			have[n.ID] = true
			nets = append(nets, m.rules(n))
		}
	}
	return nets
}

// saveState records the container's attachments (options o in namespace
// nsPath) and pushes the record's removal onto rb. On failure nothing is
// recorded.
func (m *Manager) saveState(sess *session, nsPath string, o *network.Options, rb *rollback.Stack) error {
	if err := m.fail("state"); err != nil {
		return err
	}
	if err := sess.save(nsPath, o); err != nil {
		return err
	}
	rb.Push(func() error { return sess.remove(o) })
	return nil
}

// haveDNSServer reports whether the DNS server binary exists, so that
// DNS-enabled networks get their names registered. A path that exists but
// cannot be run (a directory) counts: starting it then fails the setup,
// rather than leaving DNS silently off.
func (m *Manager) haveDNSServer() bool {
	if m.cfg.AardvarkBinary == "" {
		return false
	}
	_, err := os.Stat(m.cfg.AardvarkBinary)
	return err == nil
}

// rules builds the firewall view of a network.
func (m *Manager) rules(n network.Network) firewall.NetworkRules {
	r := firewall.NetworkRules{ID: n.ID, Name: n.Name, Bridge: n.NetworkInterface, Isolation: n.Isolation(), DNSPort: m.cfg.DNSPort, NoMasquerade: n.NoMasquerade(),
		OutboundAddr4: n.OutboundAddr(false), OutboundAddr6: n.OutboundAddr(true)}
	if r.ID == "" {
		r.ID = n.Name
	}
	for _, s := range n.Subnets {
		r.Subnets = append(r.Subnets, s.Subnet.Masked())
	}
	if n.DNSEnabled {
		r.Gateways = n.Gateways()
	}
	return r
}

// forwards returns the DNAT targets of this call's attachments att when
// they carry the container's published ports (portsHere), else none.
func (s *session) forwards(nsPath string, o *network.Options, att []*attachment) []firewall.PortForward {
	if !s.portsHere(nsPath, o) {
		return nil
	}
	return forwards(o, att)
}

// portsHere reports whether the networks of o carry the container's
// published ports. They live on its first managed, non-internal bridge
// network — among the networks recorded for it in the same namespace,
// then those of o — so a setup that adds a network (network connect)
// does not publish them again (the firewall maps a host port to one
// destination), and a teardown of a network that does not carry them
// leaves them alone.
func (s *session) portsHere(nsPath string, o *network.Options) bool {
	if len(o.PortMappings) == 0 {
		return false
	}
	var order []network.Network
	here := map[string]bool{}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if r := getRecord(tx.Bucket(bucketContainers), o.ContainerID); r != nil && r.NSPath == nsPath {
			for _, a := range r.Options.Networks {
				order = append(order, r.Options.NetworkInfo[a.Name])
			}
		}
		return nil
	})
	for _, a := range o.Networks {
		here[a.Name] = true
		n := o.NetworkInfo[a.Name]
		n.Name = a.Name
		order = append(order, n)
	}
	for _, n := range order {
		if n.Driver == network.DriverBridge && !n.Internal && !n.Unmanaged() {
			return here[n.Name]
		}
	}
	return false
}

// forwards picks the DNAT targets: port mappings go to the first
// non-internal bridge network that gives the container an address of each
// family, so a host port never points at two places.
func forwards(o *network.Options, att []*attachment) []firewall.PortForward {
	if len(o.PortMappings) == 0 {
		return nil
	}
	var out []firewall.PortForward
	have4, have6 := false, false
	for _, at := range att {
		n := at.net
		if n.Driver != network.DriverBridge || n.Internal || n.Unmanaged() {
			continue
		}
		pf := firewall.PortForward{NetworkID: n.ID, NetworkName: n.Name, ContainerID: at.ctrID, Mappings: o.PortMappings}
		if pf.NetworkID == "" {
			pf.NetworkID = n.Name
		}
		for _, a := range at.addrs {
			ip := a.Addr()
			if ip.Is4() && !have4 && !pf.IPv4.IsValid() {
				pf.IPv4 = ip
			}
			if ip.Is6() && !have6 && !pf.IPv6.IsValid() {
				pf.IPv6 = ip
			}
		}
		if pf.IPv4.IsValid() || pf.IPv6.IsValid() {
			have4 = have4 || pf.IPv4.IsValid()
			have6 = have6 || pf.IPv6.IsValid()
			out = append(out, pf)
		}
	}
	return out
}

// attachment is one container interface on one network.
type attachment struct {
	net           network.Network
	opts          network.PerNetworkOptions
	ctrID         string
	addrs         []netip.Prefix
	mac           string
	createdBridge bool
	// dhcp is the lease's gateway, DNS servers and domain (ipam driver
	// dhcp).
	dhcp *dhcpLease
	// dnsBind are the addresses the DNS server listens on for a
	// dns_enabled bridge network (dnsBindAddrs).
	dnsBind []netip.Addr
}

// networkOf returns the network of o named name, with its name filled in
// when o's network info leaves it out.
func networkOf(o *network.Options, name string) network.Network {
	n := o.NetworkInfo[name]
	if n.Name == "" {
		n.Name = name
	}
	return n
}

// hostVethName names the host end of the attachment's veth on a bridge
// network: the host_interface_name option, else "" (the kernel names it
// vethN, as netavark's are named; berth finds it by its mark).
func (at *attachment) hostVethName() string {
	return at.opts.Options["host_interface_name"]
}

// legacyHostVethName is the name berth gave an unnamed attachment's host
// end before the kernel named them, found by name on teardown.
func (at *attachment) legacyHostVethName() string {
	return network.HostVethName(at.ctrID, at.net.Name)
}

func (at *attachment) status(o *network.Options, dns bool) network.StatusBlock {
	sb := network.StatusBlock{DNSSearchDomains: []string{}, DNSServerIPs: []netip.Addr{}, Interfaces: map[string]network.Interface{}}
	iface := network.Interface{MACAddress: at.mac, Subnets: []network.NetAddress{}}
	for _, a := range at.addrs {
		na := network.NetAddress{IPNet: a}
		if s, ok := at.net.SubnetFor(a.Addr()); ok && s.Gateway.IsValid() && !at.net.Internal {
			gw := s.Gateway
			na.Gateway = &gw
		}
		if at.dhcp != nil && at.dhcp.gateway.IsValid() {
			gw := at.dhcp.gateway
			na.Gateway = &gw
		}
		iface.Subnets = append(iface.Subnets, na)
	}
	sb.Interfaces[at.opts.InterfaceName] = iface
	if at.dhcp != nil {
		// netavark: the lease's DNS servers, and its domain as the search
		// domain.
		sb.DNSServerIPs = append(sb.DNSServerIPs, at.dhcp.dns...)
		if at.dhcp.domain != "" {
			sb.DNSSearchDomains = []string{at.dhcp.domain}
		}
		return sb
	}
	if at.net.Driver == network.DriverBridge && at.net.DNSEnabled && dns {
		sb.DNSServerIPs = append(sb.DNSServerIPs, at.dnsBind...)
		sb.DNSSearchDomains = []string{network.DNSSearchDomain}
	} else if len(o.DNSServers) > 0 && at.net.Driver == network.DriverBridge {
		sb.DNSServerIPs = append(sb.DNSServerIPs, o.DNSServers...)
	}
	return sb
}

// setupDNS writes the aardvark-dns entries and starts or signals the server.
func (m *Manager) setupDNS(o *network.Options, att []*attachment, rb *rollback.Stack) error {
	entries := map[string]aardvarkconf.Entry{}
	headers := map[string]aardvarkconf.Header{}
	var names []string
	for _, at := range att {
		n := at.net
		if n.Driver != network.DriverBridge || !n.DNSEnabled {
			continue
		}
		e := aardvarkconf.Entry{ID: o.ContainerID, Names: m.dnsNames(o.ContainerName, at.opts.Aliases), DNSServers: o.DNSServers}
		for _, a := range at.addrs {
			if a.Addr().Is4() {
				e.IPv4 = append(e.IPv4, a.Addr())
			} else {
				e.IPv6 = append(e.IPv6, a.Addr())
			}
		}
		file := dnsFile(n)
		entries[file] = e
		headers[file] = aardvarkconf.Header{BindIPs: at.dnsBind, DNSServers: n.NetworkDNSServers}
		names = append(names, file)
	}
	if len(entries) == 0 {
		return nil
	}
	if !m.haveDNSServer() {
		m.log.Info("dns is disabled because the aardvark-dns binary was not found", "path", m.cfg.AardvarkBinary)
		return nil
	}
	dir := m.dnsDir()
	if err := os.MkdirAll(dir.Path, 0o755); err != nil {
		return fmt.Errorf("create aardvark-dns directory: %w", err)
	}
	if err := checkDNSLoop(o, att); err != nil {
		return fmt.Errorf("error while applying dns entries: %w", err)
	}
	if err := dir.Add(entries, headers); err != nil {
		return fmt.Errorf("write dns entries: %w", err)
	}
	rb.Push(func() error {
		if _, err := dir.Remove(o.ContainerID, names); err != nil {
			return err
		}
		return m.signalDNS(false)
	})
	if err := m.signalDNS(true); err != nil {
		return fmt.Errorf("error while applying dns entries: %w", err)
	}
	return nil
}

// dnsNames returns the container's name and aliases as DNS names,
// leaving out empty ones with netavark 2.1's warning (validation has
// already refused names the entry file cannot carry).
func (m *Manager) dnsNames(name string, aliases []string) []string {
	names := make([]string, 0, 1+len(aliases))
	for _, n := range append([]string{name}, aliases...) {
		if n == "" {
			m.log.Warn(`invalid network alias "": name is empty, ignoring this name`)
			continue
		}
		names = append(names, n)
	}
	return names
}

func (m *Manager) dnsDir() aardvarkconf.Dir {
	return aardvarkconf.Dir{Path: filepath.Join(m.cfg.ConfigDir, "aardvark-dns")}
}
