package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/berthnet/berth/internal/aardvarkconf"
	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/network"
)

// dnsConfig is berth-dns's configuration. It is a meta plugin: chained
// after the plugin that gives the container its addresses, it registers the
// container's names with berth's DNS server (aardvark-dns compatible),
// which listens on the network's gateway addresses.
type dnsConfig struct {
	types.PluginConf
	StateDir string `json:"stateDir"`
	// AardvarkBinary is the DNS server (default: aardvark-dns beside this
	// plugin, as `make` builds it).
	AardvarkBinary string `json:"aardvarkBinary"`
	// DNSPort is where the server listens (default 53).
	DNSPort       int          `json:"dnsPort"`
	Servers       []netip.Addr `json:"upstreamServers"`
	RuntimeConfig struct {
		Aliases []string `json:"aliases"`
	} `json:"runtimeConfig"`
}

func parseDNS(stdin []byte) (*dnsConfig, error) {
	var c dnsConfig
	if err := parseConf(stdin, &c, &c.PluginConf); err != nil {
		return nil, err
	}
	if c.DNSPort < 0 || c.DNSPort > 65535 {
		return nil, invalid("dnsPort", "%d is not a port", c.DNSPort)
	}
	if c.DNSPort == 0 {
		c.DNSPort = 53
	}
	if c.AardvarkBinary == "" {
		if exe, err := os.Executable(); err == nil {
			c.AardvarkBinary = filepath.Join(filepath.Dir(exe), "aardvark-dns")
		}
	}
	for i, a := range c.RuntimeConfig.Aliases {
		if a == "" || strings.ContainsAny(a, " ,\n\t") {
			return nil, invalid(fmt.Sprintf("runtimeConfig.aliases[%d]", i), "%q is not a DNS name", a)
		}
	}
	return &c, nil
}

func (c *dnsConfig) manager() (*core.Manager, error) {
	// The main plugin owns the firewall rules; the DNS port is the
	// gateway's own.
	noFirewall, err := core.NewFirewall(firewall.DriverNone, nil)
	if err != nil {
		return nil, err
	}
	dir := c.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	m, err := core.New(core.Config{ConfigDir: dir, AardvarkBinary: c.AardvarkBinary, DNSPort: uint16(c.DNSPort), Firewall: noFirewall, Logger: debugLog})
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("create stateDir: %v", err), "")
	}
	return m, nil
}

// names are the container's DNS names: the aliases capability, else the
// pod name a CRI runtime passes in CNI_ARGS, else the short container ID.
func (c *dnsConfig) names(args *skel.CmdArgs) []string {
	names := append([]string(nil), c.RuntimeConfig.Aliases...)
	for _, kv := range strings.Split(args.Args, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "K8S_POD_NAME" && v != "" {
			names = append(names, v)
		}
	}
	if len(names) == 0 {
		names = []string{network.ShortID(args.ContainerID)}
	}
	return names
}

// dnsVerbs is berth-dns.
var dnsVerbs = verbs[*dnsConfig]{
	parse: func(r *request) (*dnsConfig, error) { return parseDNS(r.StdinData) },
	add:   dnsAdd, del: dnsDel, check: dnsCheck, status: dnsStatus, gc: dnsGC,
}

func dnsAdd(args *request, c *dnsConfig) error {
	prev, err := prevResult(&c.PluginConf)
	if err != nil {
		return err
	}
	if prev == nil {
		return invalid("prevResult", "berth-dns must be chained after a plugin that gives the container an address")
	}
	if _, err := os.Stat(c.AardvarkBinary); err != nil {
		return invalid("aardvarkBinary", "%v", err)
	}
	e := aardvarkconf.Entry{ID: args.ContainerID, Names: c.names(args.CmdArgs)}
	var h aardvarkconf.Header
	h.DNSServers = c.Servers
	for _, ip := range prev.IPs {
		if ip.Interface != nil && (*ip.Interface < 0 || *ip.Interface >= len(prev.Interfaces) || prev.Interfaces[*ip.Interface].Sandbox == "") {
			continue
		}
		a, ok := netip.AddrFromSlice(ip.Address.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		if a.Is4() {
			e.IPv4 = append(e.IPv4, a)
		} else {
			e.IPv6 = append(e.IPv6, a)
		}
		if g, ok := netip.AddrFromSlice(ip.Gateway); ok && ip.Gateway != nil {
			h.BindIPs = append(h.BindIPs, g.Unmap())
		}
	}
	if len(h.BindIPs) == 0 {
		return invalid("prevResult.ips", "no gateway address for the DNS server to listen on")
	}
	m, err := c.manager()
	if err != nil {
		return err
	}
	if err := m.AddDNSEntry(c.Name, h, e); err != nil {
		_ = m.RemoveDNSEntries(c.Name, args.ContainerID)
		return types.NewError(types.ErrInternal, "berth-dns: "+err.Error(), "")
	}
	res := prev
	res.DNS.Nameservers = nil
	for _, g := range h.BindIPs {
		res.DNS.Nameservers = append(res.DNS.Nameservers, g.String())
	}
	res.DNS.Search = append([]string{network.DNSSearchDomain}, res.DNS.Search...)
	return types.PrintResult(res, c.CNIVersion)
}

func dnsDel(args *request, c *dnsConfig) error {
	m, err := c.manager()
	if err != nil {
		return err
	}
	return (m.RemoveDNSEntries(c.Name, args.ContainerID))
}

func dnsCheck(args *request, c *dnsConfig) error {
	m, err := c.manager()
	if err != nil {
		return err
	}
	f, err := m.DNSEntries(c.Name)
	if err != nil {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("berth-dns: network %s has no DNS entries: %v", c.Name, err), "")
	}
	found := false
	for _, e := range f.Entries {
		if e.ID == args.ContainerID {
			found = true
		}
	}
	if !found {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("berth-dns: no DNS entry for %s on network %s", args.ContainerID, c.Name), "")
	}
	if m.DNSServerPID() == 0 {
		return types.NewError(ErrCheckFailed, "berth-dns: the DNS server is not running", "")
	}
	return nil
}

func dnsStatus(args *request, c *dnsConfig) error {
	if _, err := os.Stat(c.AardvarkBinary); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "berth-dns: DNS server: "+err.Error(), "")
	}
	return nil
}

// dnsGC removes the entries of containers with no valid attachment.
func dnsGC(args *request, c *dnsConfig) error {
	keep, err := validAttachments(args.StdinData)
	if err != nil {
		return err
	}
	valid := map[string]bool{}
	for k := range keep {
		valid[k[:strings.LastIndexByte(k, '/')]] = true
	}
	m, err := c.manager()
	if err != nil {
		return err
	}
	f, err := m.DNSEntries(c.Name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return (err)
	}
	var gone []string
	for _, e := range f.Entries {
		if !valid[e.ID] {
			gone = append(gone, e.ID)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	return (m.RemoveDNSEntries(c.Name, gone...))
}
