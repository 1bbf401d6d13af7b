package engine

// A container's /etc/hostname, /etc/hosts and /etc/resolv.conf: written
// into its run directory and bind-mounted, rewritten in place when its
// networks change.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthnet/berth/internal/hostsfile"
	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/resolvconf"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// writeEtc writes hosts, resolv.conf and hostname into the run directory
// and returns their bind mounts.
func (e *Engine) writeEtc(c *Container, st State) ([]runspec.Bind, error) {
	return e.writeEtcFiles(c, st, false)
}

// writeEtcFiles writes the files; inPlace rewrites the existing files of a
// running container without changing their inodes (they are bind mounts).
func (e *Engine) writeEtcFiles(c *Container, st State, inPlace bool) ([]runspec.Bind, error) {
	w := &etcWriter{dir: e.RunDir(c.Config.ID), inPlace: inPlace}
	if err := w.write("hostname", "/etc/hostname", []byte(c.Config.Hostname+"\n")); err != nil {
		return nil, err
	}
	var owner *Container
	if c.Config.Net.Kind == runopts.ModeContainer {
		o, err := e.reconcile(c.Config.Net.Target)
		if err != nil {
			return nil, err
		}
		owner = o
	}
	f := statusFacts(c, st)
	switch c.Config.Net.Kind {
	case runopts.ModeSlirp:
		f = slirpFacts(c, f)
	case runopts.ModePasta:
		f = e.pastaFacts(c, st, f)
	}
	if !c.Config.NoHosts {
		data, err := e.hostsFile(c, owner, f)
		if err != nil {
			return nil, err
		}
		if err := w.write("hosts", "/etc/hosts", data); err != nil {
			return nil, err
		}
	}
	if c.Config.DNS.None || c.Config.Net.Kind == runopts.ModeNone {
		return w.binds, nil
	}
	if err := w.write("resolv.conf", "/etc/resolv.conf", e.resolvConf(c, owner, f)); err != nil {
		return nil, err
	}
	return w.binds, nil
}

// etcWriter writes a container's files into its run directory and
// collects their bind mounts.
type etcWriter struct {
	dir     string
	inPlace bool
	binds   []runspec.Bind
}

func (w *etcWriter) write(name, dest string, data []byte) error {
	p := filepath.Join(w.dir, name)
	if w.inPlace {
		if _, err := os.Stat(p); err != nil {
			return nil // not mounted in this container
		}
		return os.WriteFile(p, data, 0o644)
	}
	if err := monitor.WriteFileAtomic(p, data, 0o644); err != nil {
		return err
	}
	w.binds = append(w.binds, runspec.Bind{Source: p, Destination: dest})
	return nil
}

// netFacts is what a container's networks tell its /etc files.
type netFacts struct {
	// gw4 is the first IPv4 gateway of its bridge networks:
	// host.containers.internal and host-gateway.
	gw4     string
	entries []hostsfile.Entry // the container's own addresses
	servers []netip.Addr      // the networks' DNS servers
	search  []string
	ipv6    bool
}

// statusFacts reads the networks' status blocks, in the container's
// order.
func statusFacts(c *Container, st State) netFacts {
	var f netFacts
	for _, name := range networkOrder(c, st) {
		sb := st.Networks[name]
		f.servers = append(f.servers, sb.DNSServerIPs...)
		for _, s := range sb.DNSSearchDomains {
			if !contains(f.search, s) {
				f.search = append(f.search, s)
			}
		}
		for _, ifc := range sortedIfaces(sb) {
			for _, sn := range ifc.Subnets {
				a := sn.IPNet.Addr()
				f.ipv6 = f.ipv6 || a.Is6()
				if f.gw4 == "" && sn.Gateway != nil && sn.Gateway.IsValid() && sn.Gateway.Is4() {
					f.gw4 = sn.Gateway.String()
				}
				f.entries = append(f.entries, hostsfile.Entry{IP: a.String(), Names: []string{c.Config.Hostname, c.Config.Name}})
			}
		}
	}
	return f
}

// slirpFacts is slirp4netns's fixed layout: the container at .100, the
// host (gateway) at .2, the DNS forwarder at .3.
func slirpFacts(c *Container, f netFacts) netFacts {
	o, _ := runopts.ParseSlirpOptions(c.Config.Net.Target)
	cidr := o.CIDR
	if !cidr.IsValid() {
		cidr = netip.MustParsePrefix("10.0.2.0/24")
	}
	nth := func(n byte) netip.Addr {
		a := cidr.Masked().Addr().As4()
		a[3] += n
		return netip.AddrFrom4(a)
	}
	f.entries = []hostsfile.Entry{{IP: nth(100).String(), Names: []string{c.Config.Hostname, c.Config.Name}}}
	f.gw4 = nth(2).String()
	f.servers = []netip.Addr{nth(3)}
	return f
}

// hostsFile builds /etc/hosts: the host's (or the namespace owner's), the
// --add-host entries and the container's own names.
func (e *Engine) hostsFile(c *Container, owner *Container, f netFacts) ([]byte, error) {
	self := []hostsfile.Entry{{IP: "127.0.0.1", Names: []string{c.Config.Hostname, c.Config.Name}}}
	var base []byte
	if owner != nil {
		base, _ = os.ReadFile(filepath.Join(e.RunDir(owner.Config.ID), "hosts"))
		f.entries, f.gw4 = self, ""
	} else {
		base, _ = os.ReadFile(e.cfg.HostsFile)
	}
	switch c.Config.Net.Kind {
	case runopts.ModeNone:
		f.entries = self
	case runopts.ModeHost:
		f.entries = nil
	}
	var extra []hostsfile.Entry
	for _, h := range c.Config.AddHosts {
		ip := h.IP
		if ip == runopts.HostGateway {
			if f.gw4 == "" {
				return nil, fmt.Errorf("--add-host %s:host-gateway: the container has no bridge network gateway to use as the host's address", strings.Join(h.Names, ";"))
			}
			ip = f.gw4
		}
		extra = append(extra, hostsfile.Entry{IP: ip, Names: h.Names})
	}
	return hostsfile.Build(hostsfile.Params{Extra: extra, Base: base, HostContainersInternal: f.gw4, Container: f.entries}), nil
}

// resolvConf builds /etc/resolv.conf: the namespace owner's, else the
// host's merged with the networks' servers and the --dns options.
func (e *Engine) resolvConf(c *Container, owner *Container, f netFacts) []byte {
	if owner != nil {
		data, _ := os.ReadFile(filepath.Join(e.RunDir(owner.Config.ID), "resolv.conf"))
		return data
	}
	host, _ := os.ReadFile(e.cfg.ResolvConf)
	return resolvconf.Build(resolvconf.Params{
		Host:           resolvconf.Parse(host),
		PrivateNetNS:   c.Config.Net.Kind != runopts.ModeHost,
		IPv6:           f.ipv6,
		NetworkServers: f.servers,
		NetworkSearch:  f.search,
		Servers:        c.Config.DNS.Servers,
		Search:         c.Config.DNS.Search,
		Options:        c.Config.DNS.Options,
	}).Bytes()
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// networkOrder returns the status blocks' network names in the order the
// container asked for them (then any others, by name).
func networkOrder(c *Container, st State) []string {
	var out []string
	for _, r := range c.Config.Net.Networks {
		for name := range st.Networks {
			if name == r.Name && !contains(out, name) {
				out = append(out, name)
			}
		}
	}
	var rest []string
	for name := range st.Networks {
		if !contains(out, name) {
			rest = append(rest, name)
		}
	}
	sortStrings(rest)
	return append(out, rest...)
}

func sortedIfaces(sb network.StatusBlock) []network.Interface {
	var names []string
	for n := range sb.Interfaces {
		names = append(names, n)
	}
	sortStrings(names)
	var out []network.Interface
	for _, n := range names {
		out = append(out, sb.Interfaces[n])
	}
	return out
}

// NetworksChanged records networks a running container joined (add) or
// left (remove) and rewrites its /etc/hosts and /etc/resolv.conf in place,
// as Podman does on network connect and disconnect.
func (e *Engine) NetworksChanged(ref string, add map[string]network.StatusBlock, remove []string) error {
	c, err := e.Get(ref)
	if err != nil {
		return err
	}
	c, err = e.modify(c.Config.ID, func(c *Container) error {
		if c.State.Networks == nil {
			c.State.Networks = map[string]network.StatusBlock{}
		}
		for k, v := range add {
			c.State.Networks[k] = v
		}
		for _, k := range remove {
			delete(c.State.Networks, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !c.Running() {
		return nil
	}
	_, err = e.writeEtcFiles(c, c.State, true)
	return err
}
