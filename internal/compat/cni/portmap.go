package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// portmapConfig is berth-portmap's configuration: the portMappings
// capability (hostPort, containerPort, protocol, hostIP) and snat
// (default true: hairpin traffic and connections to 127.0.0.1 are
// masqueraded so replies come back).
type portmapConfig struct {
	types.PluginConf
	SNAT          *bool  `json:"snat"`
	Backend       string `json:"backend"`
	StateDir      string `json:"stateDir"`
	RuntimeConfig struct {
		PortMappings []portMapEntry `json:"portMappings"`
	} `json:"runtimeConfig"`

	mappings []network.PortMapping
}

type portMapEntry struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// portmapRecord is what berth-portmap keeps per attachment, so DEL and GC
// work without prevResult.
type portmapRecord struct {
	IPv4     netip.Addr            `json:"ipv4,omitzero"`
	IPv6     netip.Addr            `json:"ipv6,omitzero"`
	Mappings []network.PortMapping `json:"mappings"`
	// Subnets are the container's subnets, whose rules this attachment
	// needs; SNAT whether they masquerade hairpin traffic.
	Subnets []netip.Prefix `json:"subnets,omitempty"`
	SNAT    bool           `json:"snat"`
}

// portmapVerbs is berth-portmap.
var portmapVerbs = verbs[*portmapConfig]{
	parse: func(r *request) (*portmapConfig, error) { return parsePortmap(r.StdinData) },
	add:   portmapAdd, del: portmapDel, check: portmapCheck, status: portmapStatus, gc: portmapGC,
}

func parsePortmap(stdin []byte) (*portmapConfig, error) {
	var c portmapConfig
	if err := parseConf(stdin, &c, &c.PluginConf); err != nil {
		return nil, err
	}
	if c.Backend != "" && c.Backend != "nftables" {
		return nil, unsupported("backend", c.Backend)
	}
	ms, err := parsePortMappings(c.RuntimeConfig.PortMappings)
	if err != nil {
		return nil, err
	}
	c.mappings = ms
	return &c, nil
}

// parsePortMappings validates the portMappings capability's entries.
func parsePortMappings(entries []portMapEntry) ([]network.PortMapping, error) {
	var ms []network.PortMapping
	for i, p := range entries {
		f := fmt.Sprintf("runtimeConfig.portMappings[%d]", i)
		if p.HostPort < 1 || p.HostPort > 65535 {
			return nil, invalid(f+".hostPort", "%d is not a port (want 1-65535)", p.HostPort)
		}
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return nil, invalid(f+".containerPort", "%d is not a port (want 1-65535)", p.ContainerPort)
		}
		proto := network.NormalizeProtocol(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return nil, invalid(f+".protocol", "%q is not tcp, udp or sctp", p.Protocol)
		}
		m := network.PortMapping{HostPort: uint16(p.HostPort), ContainerPort: uint16(p.ContainerPort), Protocol: proto, Range: 1}
		if p.HostIP != "" {
			a, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, invalid(f+".hostIP", "%q is not an IP address", p.HostIP)
			}
			m.HostIP = a.String()
		}
		ms = append(ms, m)
	}
	if err := network.CheckPortConflicts(ms); err != nil {
		return nil, invalid("runtimeConfig.portMappings", "%v", err)
	}
	return ms, nil
}

func (c *portmapConfig) snat() bool { return c.SNAT == nil || *c.SNAT }

func (c *portmapConfig) stateDir() string {
	if c.StateDir != "" {
		return c.StateDir
	}
	return DefaultStateDir
}

// openPortmapDB opens (and locks: bbolt takes a file lock) the records.
func (c *portmapConfig) openDB() (*bolt.DB, error) {
	if err := os.MkdirAll(c.stateDir(), 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("create stateDir: %v", err), "")
	}
	p := filepath.Join(c.stateDir(), "portmap.db")
	db, err := bolt.Open(p, 0o644, &bolt.Options{NoSync: true})
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("open %s: %v", p, err), "")
	}
	return db, nil
}

// forward is the firewall view of one attachment's record.
func forward(netName, key string, r *portmapRecord) firewall.PortForward {
	return firewall.PortForward{NetworkID: "portmap/" + netName, NetworkName: netName, ContainerID: key, IPv4: r.IPv4, IPv6: r.IPv6, Mappings: r.Mappings}
}

// hairpinRules are the per-subnet rules of the container subnets that
// have published ports: the hairpin masquerade (snat) and forward accepts,
// nothing else. They also keep berth's table alive while the ports exist.
func hairpinRules(netName string, s netip.Prefix, snat bool) firewall.NetworkRules {
	return firewall.NetworkRules{ID: "portmap/" + netName + "/" + s.String(), Name: netName, Subnets: []netip.Prefix{s}, NoMasquerade: true, NoHairpin: !snat}
}

// containerAddrs picks the container's first IPv4 and IPv6 address (with
// prefix) from a result: addresses of interfaces in the sandbox, else any.
func containerAddrs(r *current.Result, netnsPath string) (v4, v6 netip.Prefix) {
	for pass := 0; pass < 2; pass++ {
		for _, ip := range r.IPs {
			if pass == 0 {
				if ip.Interface == nil || *ip.Interface < 0 || *ip.Interface >= len(r.Interfaces) || r.Interfaces[*ip.Interface].Sandbox == "" {
					continue
				}
			}
			p, ok := prefixOf(ip.Address)
			if !ok {
				continue
			}
			a, _ := netip.AddrFromSlice(ip.Address.IP)
			p = netip.PrefixFrom(a.Unmap(), p.Bits())
			if p.Addr().Is4() && !v4.IsValid() {
				v4 = p
			}
			if p.Addr().Is6() && !v6.IsValid() {
				v6 = p
			}
		}
		if v4.IsValid() || v6.IsValid() {
			return v4, v6
		}
	}
	return v4, v6
}

func portmapAdd(args *request, c *portmapConfig) error {
	ms := c.mappings
	prev, err := prevResult(&c.PluginConf)
	if err != nil {
		return err
	}
	if prev == nil {
		return invalid("prevResult", "berth-portmap must be chained after a plugin that gives the container an address")
	}
	if len(ms) == 0 {
		return types.PrintResult(prev, c.CNIVersion)
	}
	v4, v6 := containerAddrs(prev, args.Netns)
	if !v4.IsValid() && !v6.IsValid() {
		return invalid("prevResult.ips", "no container address to forward ports to")
	}
	rec := &portmapRecord{IPv4: v4.Addr(), IPv6: v6.Addr(), Mappings: ms}
	if !v4.IsValid() {
		rec.IPv4 = netip.Addr{}
	}
	if !v6.IsValid() {
		rec.IPv6 = netip.Addr{}
	}
	rec.SNAT = c.snat()
	for _, p := range []netip.Prefix{v4, v6} {
		if p.IsValid() {
			rec.Subnets = append(rec.Subnets, p.Masked())
		}
	}
	db, err := c.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	key := args.ContainerID + "/" + args.IfName
	fw, err := portmapFirewall()
	if err != nil {
		return err
	}
	var nets []firewall.NetworkRules
	for _, s := range rec.Subnets {
		nets = append(nets, hairpinRules(c.Name, s, rec.SNAT))
	}
	pf := forward(c.Name, key, rec)
	if err := fw.Setup(nets, []firewall.PortForward{pf}); err != nil {
		if errors.Is(err, firewall.ErrPortInUse) {
			return types.NewError(ErrPortInUse, "berth-portmap: "+err.Error(), "")
		}
		return types.NewError(types.ErrInternal, "berth-portmap: "+err.Error(), "")
	}
	if err := putRecord(db, c.Name, key, rec); err != nil {
		_ = fw.Teardown([]firewall.PortForward{pf}, nil)
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if c.snat() && v4.IsValid() && needsLocalnet(ms) {
		// Connections to 127.0.0.1:hostPort are routed to the container's
		// link only with route_localnet on the host interface toward it.
		if err := core.RouteLocalnetToward(v4.Addr()); err != nil {
			return types.NewError(types.ErrInternal, "berth-portmap: "+err.Error(), "")
		}
	}
	return types.PrintResult(prev, c.CNIVersion)
}

func needsLocalnet(ms []network.PortMapping) bool {
	return firewall.NeedsRouteLocalnet([]firewall.PortForward{{IPv4: netip.IPv4Unspecified(), Mappings: ms}})
}

func putRecord(db *bolt.DB, netName, key string, r *portmapRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		nb, err := tx.CreateBucketIfNotExists([]byte(netName))
		if err != nil {
			return err
		}
		sb, err := tx.CreateBucketIfNotExists([]byte(subnetsBucket))
		if err != nil {
			return err
		}
		for _, s := range r.Subnets {
			if err := sb.Put([]byte(hairpinRules(netName, s, false).ID), nil); err != nil {
				return err
			}
		}
		return nb.Put([]byte(key), b)
	})
}

// records returns the network's records by key.
func records(db *bolt.DB, netName string) (map[string]*portmapRecord, error) {
	out := map[string]*portmapRecord{}
	err := db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket([]byte(netName))
		if nb == nil {
			return nil
		}
		return nb.ForEach(func(k, v []byte) error {
			var r portmapRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %s: %w", k, err)
			}
			out[string(k)] = &r
			return nil
		})
	})
	return out, err
}

// unpublish removes the forwards of the attachments in keys and their
// records; with rules (GC), also the per-subnet rules no remaining
// attachment needs. DEL keeps those, as the reference portmap keeps its
// chains: the next container on the subnet finds them in place.
func unpublish(db *bolt.DB, netName string, keys []string, rules bool) error {
	recs, err := records(db, netName)
	if err != nil {
		return err
	}
	var ports []firewall.PortForward
	gone := map[string]bool{}
	for _, k := range keys {
		if r, ok := recs[k]; ok {
			ports = append(ports, forward(netName, k, r))
			gone[k] = true
		}
	}
	if len(gone) == 0 && !rules {
		return nil
	}
	needed := map[netip.Prefix]bool{}
	for k, r := range recs {
		if gone[k] {
			continue
		}
		for _, s := range r.Subnets {
			needed[s] = true
		}
	}
	var complete []firewall.NetworkRules
	if rules {
		seen := map[string]bool{}
		for _, s := range kept(db, netName) {
			id := hairpinRules(netName, s, false).ID
			if !needed[s] && !seen[id] {
				seen[id] = true
				complete = append(complete, hairpinRules(netName, s, false))
			}
		}
	}
	fw, err := portmapFirewall()
	if err != nil {
		return err
	}
	if err := fw.Teardown(ports, complete); err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		nb := tx.Bucket([]byte(netName))
		if nb == nil {
			return nil
		}
		for k := range gone {
			if err := nb.Delete([]byte(k)); err != nil {
				return err
			}
		}
		sb, err := tx.CreateBucketIfNotExists([]byte(subnetsBucket))
		if err != nil {
			return err
		}
		if rules {
			for _, r := range complete {
				_ = sb.Delete([]byte(r.ID))
			}
		}
		return nil
	})
}

// subnetsBucket records the subnets whose per-subnet rules exist, by rule
// ID, so GC finds them after their last attachment is gone.
const subnetsBucket = "\x00subnets"

// kept returns the subnets of the network whose rules exist.
func kept(db *bolt.DB, netName string) []netip.Prefix {
	var out []netip.Prefix
	prefix := "portmap/" + netName + "/"
	_ = db.View(func(tx *bolt.Tx) error {
		sb := tx.Bucket([]byte(subnetsBucket))
		if sb == nil {
			return nil
		}
		return sb.ForEach(func(k, v []byte) error {
			if p, ok := strings.CutPrefix(string(k), prefix); ok {
				if s, err := netip.ParsePrefix(p); err == nil {
					out = append(out, s)
				}
			}
			return nil
		})
	})
	return out
}

func portmapDel(args *request, c *portmapConfig) error {
	db, err := c.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	if err := unpublish(db, c.Name, []string{args.ContainerID + "/" + args.IfName}, false); err != nil {
		return types.NewError(types.ErrInternal, "berth-portmap: "+err.Error(), "")
	}
	return nil
}

func portmapCheck(args *request, c *portmapConfig) error {
	ms := c.mappings
	prev, err := prevResult(&c.PluginConf)
	if err != nil {
		return err
	}
	if prev == nil {
		return invalid("prevResult", "CHECK needs the result of ADD")
	}
	if len(ms) == 0 {
		return nil
	}
	db, err := c.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	key := args.ContainerID + "/" + args.IfName
	recs, err := records(db, c.Name)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	r, ok := recs[key]
	if !ok {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("berth-portmap: no port mappings are recorded for %s", key), "")
	}
	v4, v6 := containerAddrs(prev, args.Netns)
	want := &portmapRecord{IPv4: v4.Addr(), IPv6: v6.Addr(), Mappings: ms}
	if !v4.IsValid() {
		want.IPv4 = netip.Addr{}
	}
	if !v6.IsValid() {
		want.IPv6 = netip.Addr{}
	}
	if want.IPv4 != r.IPv4 || want.IPv6 != r.IPv6 {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("berth-portmap: ports of %s go to %s %s, not to the container's %s %s", key, r.IPv4, r.IPv6, want.IPv4, want.IPv6), "")
	}
	fw, err := portmapChecker()
	if err != nil {
		return err
	}
	if err := fw.HasForwards([]firewall.PortForward{forward(c.Name, key, want)}); err != nil {
		return types.NewError(ErrCheckFailed, "berth-portmap: "+err.Error(), "")
	}
	return nil
}

func portmapStatus(args *request, c *portmapConfig) error {
	db, err := c.openDB()
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	db.Close()
	if err := firewallReady(); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "berth-portmap: "+err.Error(), "")
	}
	return nil
}

// portmapGC removes the forwards of every attachment not in the valid
// list.
func portmapGC(args *request, c *portmapConfig) error {
	keep, err := validAttachments(args.StdinData)
	if err != nil {
		return err
	}
	db, err := c.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	recs, err := records(db, c.Name)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	var gone []string
	for k := range recs {
		if !keep[k] {
			gone = append(gone, k)
		}
	}
	if err := unpublish(db, c.Name, gone, true); err != nil {
		return types.NewError(types.ErrInternal, "berth-portmap gc: "+err.Error(), "")
	}
	return nil
}

// portmapFirewall is the driver of berth-portmap's (and berth-bridge's)
// port forwards: nftables, in the plugin's namespace.
func portmapFirewall() (firewall.Driver, error) {
	fw, err := core.NewFirewall(firewall.DriverNftables, nil)
	if err != nil {
		return nil, types.NewError(types.ErrInternal, "berth-portmap: "+err.Error(), "")
	}
	return fw, nil
}

// portmapChecker is portmapFirewall, for CHECK and STATUS.
func portmapChecker() (firewall.Checker, error) {
	fw, err := portmapFirewall()
	if err != nil {
		return nil, err
	}
	c, ok := fw.(firewall.Checker)
	if !ok {
		return nil, types.NewError(types.ErrInternal, "berth-portmap: firewall driver "+fw.Name()+" cannot check its rules", "")
	}
	return c, nil
}

// firewallReady reports whether nftables can be programmed here.
func firewallReady() error {
	fw, err := portmapChecker()
	if err != nil {
		return err
	}
	if _, err := fw.HasNetwork(""); err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			return fmt.Errorf("nftables: %w (needs CAP_NET_ADMIN)", err)
		}
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}
