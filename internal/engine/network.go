package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/dns"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rollback"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/usernet"
)

// NetworkConfig is what the engine attaches containers with: the network
// definitions and berth's attach service (which also allocates the
// addresses).
type NetworkConfig struct {
	Store *netstore.Store
	// Host configures the attach service the engine opens per operation
	// (a rootless engine sets HostNetns itself, to RootlessNetNS).
	Host berthnet.Config
	// RootlessNetNS holds the bridge networks of a rootless engine
	// (EngineConfig.Rootless); UserMode names the user-mode network
	// programs (pasta, slirp4netns) of its uplink and of --network pasta
	// and slirp4netns, and which one the uplink uses.
	RootlessNetNS rootless.NetNS
	UserMode      rootless.Uplink
	// LegacyRecords is the container database berth's CLI kept before the
	// engine recorded attachments; New merges it into the engine's
	// records and renames it aside.
	LegacyRecords string
}

// Attachment is one network of a container as it was set up: teardown
// uses this definition even if the network's file changed or went away.
type Attachment struct {
	Network network.Network `json:"network"`
	// Opts holds the interface name, aliases, the addresses IPAM gave
	// (static_ips) and the MAC address (static_mac) after setup.
	Opts network.PerNetworkOptions `json:"opts"`
}

// Errors of connect and disconnect.
var (
	ErrAlreadyConnected = errors.New("network is already connected")
	ErrNoNetwork        = errors.New("engine: no network backend")
)

// OpenHost opens berth's attach service on the engine's networks; a
// rootless engine starts its rootless netns first (publishing the ports
// of its containers again when the uplink had to restart). Callers Close
// it.
func (e *Engine) OpenHost() (*berthnet.Host, error) {
	nc := e.cfg.Network
	if nc == nil {
		return nil, ErrNoNetwork
	}
	cfg := nc.Host
	if e.cfg.Rootless {
		restarted, err := nc.RootlessNetNS.Ensure(nc.UserMode, "")
		if err != nil {
			return nil, err
		}
		cfg.HostNetns = nc.RootlessNetNS.Path()
		resolv, err := nc.RootlessNetNS.ResolvConf(nc.UserMode)
		if err != nil {
			return nil, err
		}
		if resolv != "" {
			cfg.AardvarkEnv = append(slices.Clone(cfg.AardvarkEnv), dns.ResolvConfEnv+"="+resolv)
		}
		if restarted {
			e.readdForwards()
		}
	}
	return berthnet.New(cfg)
}

// networkOf resolves a network reference ("" is the default network).
func (e *Engine) networkOf(ref string) (network.Network, error) {
	if e.cfg.Network == nil {
		return network.Network{}, ErrNoNetwork
	}
	if ref == "" {
		ref = e.cfg.Network.Store.DefaultName()
	}
	return e.cfg.Network.Store.Get(ref)
}

// checkNetwork checks that n can take a container with the static
// addresses ips.
func checkNetwork(n network.Network, ips []netip.Addr) error {
	if len(ips) > 0 && !ipam.Uses(n) {
		return fmt.Errorf("network %s does not hand out addresses (ipam driver %s): --ip and --ip6 cannot be used", n.Name, n.IPAMDriver())
	}
	if n.ManagedBridge() && n.IPAMDriver() == network.IPAMDHCP {
		return fmt.Errorf("network %s: dhcp needs a macvlan network", n.Name)
	}
	return ipam.Validate(n, ips)
}

// validateNetworks checks a new container's networks and static
// addresses.
func (e *Engine) validateNetworks(c *Container) error {
	if e.cfg.Network == nil || c.Config.Net.Kind != runopts.ModeBridge {
		return nil
	}
	for _, r := range c.Config.Net.Networks {
		n, err := e.networkOf(r.Name)
		if err != nil {
			return err
		}
		if err := checkNetwork(n, r.IPs); err != nil {
			return err
		}
	}
	return nil
}

// netOptions is the attach service's input for the attachments atts of
// c, with all its published ports (the attach service decides which
// network carries them).
func (e *Engine) netOptions(c *Container, atts []Attachment) *network.Options {
	o := &network.Options{ContainerID: c.Config.ID, ContainerName: c.Config.Name, NetworkInfo: map[string]network.Network{}, PortMappings: e.firewallPorts(c)}
	for _, a := range atts {
		if len(c.Config.PodMembers) > 0 {
			a.Opts.Aliases = append(append([]string{}, a.Opts.Aliases...), c.Config.PodMembers...)
		}
		o.Networks = append(o.Networks, network.NamedNetworkOptions{Name: a.Network.Name, PerNetworkOptions: a.Opts})
		o.NetworkInfo[a.Network.Name] = a.Network
	}
	return o
}

// firewallPorts are the mappings the firewall sets up: a rootless
// engine's uplink delivers the host's ports to the rootless netns's
// address, so there they have no host address.
func (e *Engine) firewallPorts(c *Container) []network.PortMapping {
	if !e.cfg.Rootless {
		return c.Config.Ports
	}
	var out []network.PortMapping
	for _, pm := range c.Config.Ports {
		pm.HostIP = ""
		out = append(out, pm)
	}
	return out
}

func findAttachment(atts []Attachment, netName string) int {
	for i, a := range atts {
		if a.Network.Name == netName {
			return i
		}
	}
	return -1
}

// nextInterface returns the first ethN no attachment uses.
func nextInterface(atts []Attachment) string {
	used := map[string]bool{}
	for _, a := range atts {
		used[a.Opts.InterfaceName] = true
	}
	for i := 0; ; i++ {
		if n := fmt.Sprintf("eth%d", i); !used[n] {
			return n
		}
	}
}

// attach allocates addresses and sets every network of c up in one call
// of the attach service; the attachments are recorded on c. On failure
// nothing is left. The attachments are journaled in in (when not nil)
// before any kernel object exists, and in is dropped with their record.
func (e *Engine) attach(c *Container, nsPath string, in *intent) (res map[string]network.StatusBlock, err error) {
	if e.cfg.Network == nil {
		return nil, ErrNoNetwork
	}
	switch c.Config.Net.Kind {
	case runopts.ModeSlirp:
		return nil, e.attachSlirp(c, nsPath)
	case runopts.ModePasta:
		return nil, e.attachPasta(c, nsPath)
	}
	id := c.Config.ID
	h, err := e.OpenHost()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var rb rollback.Stack
	defer rb.OnError(&err)
	rb.Push(func() error { return h.ReleaseAllNetavark(id) })
	atts, err := e.allocate(h, c)
	if err != nil {
		return nil, err
	}
	if in != nil {
		in.Attachments = atts
		if err := e.journal(in); err != nil {
			return nil, err
		}
	}
	cur := *c
	cur.State.Attachments, cur.State.NetNS = atts, nsPath
	o := e.netOptions(&cur, atts)
	if res, err = h.SetupNetavark(context.Background(), nsPath, o); err != nil {
		return nil, fmt.Errorf("set up the network of container %s: %w", c.Config.Name, err)
	}
	rb.Push(func() error { return h.TeardownNetavark(context.Background(), nsPath, o) })
	keepMACs(atts, res)
	var fwds []usernet.Forward
	var ids []int
	if e.cfg.Rootless && len(c.Config.Ports) > 0 {
		if fwds, ids, err = e.publishOnUplink(c, nsPath, res, atts); err != nil {
			return nil, err
		}
		rb.Defer(func() { removeForwards(e.cfg.Network.RootlessNetNS.API(), ids) })
	}
	return res, e.tx(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, id)
		if err != nil || r == nil {
			return cmpErr(err, fmt.Errorf("container %s: %w", id, ErrNoSuchContainer))
		}
		r.State.Attachments, r.State.Forwards, r.State.Fwd = atts, ids, fwds
		if err := putRecord(tx, r); err != nil || in == nil {
			return err
		}
		return dropIntent(tx, in)
	})
}

// allocate gives every network of c its addresses and interface.
func (e *Engine) allocate(h *berthnet.Host, c *Container) ([]Attachment, error) {
	var atts []Attachment
	for i, r := range c.Config.Net.Networks {
		n, err := e.networkOf(r.Name)
		if err != nil {
			return nil, err
		}
		if err := checkNetwork(n, nil); err != nil {
			return nil, err
		}
		if r.Interface == "" {
			r.Interface = fmt.Sprintf("eth%d", i)
		}
		a, err := allocateOne(h, c.Config.ID, n, r)
		if err != nil {
			return nil, err
		}
		atts = append(atts, a)
	}
	return atts, nil
}

// allocateOne allocates the addresses of one attachment through the
// attach service (r.Name is n).
func allocateOne(h *berthnet.Host, id string, n network.Network, r runopts.NetworkRequest) (Attachment, error) {
	addrs, err := h.AllocateNetavark(id, n, r.IPs)
	if err != nil {
		return Attachment{}, err
	}
	a := Attachment{Network: n, Opts: network.PerNetworkOptions{
		Aliases:       append(append([]string{}, r.Aliases...), network.ShortID(id)),
		StaticMAC:     r.MAC,
		InterfaceName: r.Interface,
	}}
	if r.GwPriority != 0 {
		a.Opts.Options = map[string]string{network.OptGwPriority: strconv.Itoa(r.GwPriority)}
	}
	for _, p := range addrs {
		a.Opts.StaticIPs = append(a.Opts.StaticIPs, p.Addr())
	}
	return a, nil
}

// keepMACs records the MACs the kernel chose, so reload recreates the
// same interfaces.
func keepMACs(atts []Attachment, res map[string]network.StatusBlock) {
	for i, a := range atts {
		if sb, ok := res[a.Network.Name]; ok && a.Opts.StaticMAC == "" {
			if ifc, ok := sb.Interfaces[a.Opts.InterfaceName]; ok {
				atts[i].Opts.StaticMAC = ifc.MACAddress
			}
		}
	}
}

// detach tears down every network the container is attached to, frees
// its addresses and forgets the attachments; it tolerates a namespace
// that is already gone and a container that is not attached. It runs
// under the engine lock and is journaled: an interrupted detach is
// completed by the next command.
func (e *Engine) detach(c *Container) error {
	if e.cfg.Network == nil {
		return nil
	}
	switch c.Config.Net.Kind {
	case runopts.ModeSlirp:
		return e.detachSlirp(c)
	case runopts.ModePasta:
		return e.detachPasta(c)
	}
	ctx := e.ctx()
	unlock, err := e.lockEngine(ctx)
	defer unlock()
	if err != nil {
		return err
	}
	cur, err := e.record(c.Config.ID)
	if err != nil {
		return err
	}
	in := &intent{Op: opDetach, ID: cur.Config.ID, NetNS: cur.State.NetNS, Attachments: cur.State.Attachments, Forwards: cur.State.Forwards, Since: e.cfg.Now().UTC()}
	if err := e.journal(in); err != nil {
		return err
	}
	if err := e.settle(context.WithoutCancel(ctx), in, true); err != nil {
		return fmt.Errorf("tear down the network of container %s: %w", cur.Config.Name, err)
	}
	return nil
}

// record reads the stored record of id (engine container or registered
// namespace) without reconciling.
func (e *Engine) record(id string) (*Container, error) {
	all, err := e.list()
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.Config.ID == id {
			return c, nil
		}
	}
	return nil, fmt.Errorf("container %s: %w", id, ErrNoSuchContainer)
}

// renameDNS gives an attached pod infra container the DNS names of its
// current configuration: its own, its aliases and the pod's members.
func (e *Engine) renameDNS(infra *Container) error {
	if e.cfg.Network == nil || len(infra.State.Attachments) == 0 {
		return nil
	}
	names := map[string][]string{}
	for _, nw := range e.netOptions(infra, infra.State.Attachments).Networks {
		names[nw.Name] = append([]string{infra.Config.Name}, nw.Aliases...)
	}
	h, err := e.OpenHost()
	if err != nil {
		return err
	}
	defer h.Close()
	return h.SetDNSNames(infra.Config.ID, names)
}

// lookupAttachable finds a record by name, ID or unique ID prefix among
// engine containers and registered namespaces, or by namespace path when
// ref is ns:PATH.
func lookupAttachable(all []*Container, ref string) (*Container, error) {
	if p, ok := strings.CutPrefix(ref, "ns:"); ok {
		p, _ = filepath.Abs(p)
		for _, c := range all {
			if c.Config.Registered && c.State.NetNS == p {
				return c, nil
			}
		}
		return nil, fmt.Errorf("no container with name or ID %q found: %w", ref, ErrNoSuchContainer)
	}
	return Lookup(all, ref)
}

// Attached returns every record with attachments: running engine
// containers and registered namespaces.
func (e *Engine) Attached() ([]*Container, error) {
	all, err := e.list()
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, c := range all {
		if len(c.State.Attachments) > 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// removeIfDone deletes a registered namespace's record once it has no
// attachment left.
func (e *Engine) removeIfDone(id string) error {
	c, err := e.record(id)
	if errors.Is(err, ErrNoSuchContainer) {
		return nil
	}
	if err != nil || !c.Config.Registered || len(c.State.Attachments) > 0 {
		return err
	}
	return e.delete(id)
}
