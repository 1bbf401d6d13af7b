package engine

// --network pasta: a container's own user-mode network of pasta's model
// (the rootless default, as Podman 5), started with Podman's command line
// on bin/pasta. pasta quits when the namespace goes away; detach also
// stops it by its PID (checked against its command line).

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/berthnet/berth/internal/hostsfile"
	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/runopts"
)

// pastaPIDFile is where a container's pasta writes its PID.
func (e *Engine) pastaPIDFile(id string) string {
	return filepath.Join(e.cfg.RunRoot, "pasta", network.ShortID(id)+".pid")
}

// pastaCommand is the pasta command line of c on the namespace nsPath:
// containers.conf's pasta_options, then the container's own, then its
// published ports, in Podman's layout.
func (e *Engine) pastaCommand(c *Container, nsPath string) (rootless.PastaCommand, error) {
	opts, err := runopts.ParsePastaOptions(c.Config.Net.Target)
	if err != nil {
		return rootless.PastaCommand{}, fmt.Errorf("--network pasta: %w", err)
	}
	var conf []string
	if e.cfg.Network != nil {
		conf = e.cfg.Network.UserMode.PastaOptions
	}
	all := append(append([]string{}, conf...), opts...)
	return rootless.PastaArgs(rootless.PastaSetup{Options: all, Ports: c.Config.Ports, PIDFile: e.pastaPIDFile(c.Config.ID), NetNS: nsPath})
}

// attachPasta starts the container's pasta; it returns once the namespace
// is configured and the published ports listen.
func (e *Engine) attachPasta(c *Container, nsPath string) error {
	pc, err := e.pastaCommand(c, nsPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(e.pastaPIDFile(c.Config.ID)), 0o700); err != nil {
		return err
	}
	if _, err := rootless.StartPasta(e.cfg.Network.UserMode.Pasta, "", pc.Args, e.pastaPIDFile(c.Config.ID)); err != nil {
		return fmt.Errorf("--network pasta: %w", err)
	}
	return nil
}

// detachPasta stops the container's pasta.
func (e *Engine) detachPasta(c *Container) error {
	pidFile := e.pastaPIDFile(c.Config.ID)
	rootless.Stop(rootless.ReadPID(pidFile), e.NetNSPath(c.Config.ID))
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// pastaFacts is what the /etc files of a pasta container say, as Podman
// writes them: its names on the addresses pasta gave the namespace,
// host.containers.internal (and host-gateway) at the --map-guest-addr
// address, the --dns-forward address as first nameserver; each only for a
// family the namespace has.
func (e *Engine) pastaFacts(c *Container, st State, f netFacts) netFacts {
	pc, _ := e.pastaCommand(c, st.NetNS) // its error stopped the start
	addrs := namespaceAddrs(st.NetNS)
	return pastaFactsOf(c, pc, addrs, f)
}

// pastaFactsOf is pastaFacts for the namespace's addresses addrs.
func pastaFactsOf(c *Container, pc rootless.PastaCommand, addrs []netip.Addr, f netFacts) netFacts {
	var has4, has6 bool
	f.entries = nil
	for _, a := range addrs {
		has4, has6 = has4 || a.Is4(), has6 || a.Is6()
		f.entries = append(f.entries, hostsfile.Entry{IP: a.String(), Names: []string{c.Config.Hostname, c.Config.Name}})
	}
	f.ipv6 = has6
	f.servers, f.gw4 = nil, ""
	for _, s := range pc.DNSForward {
		if a, err := netip.ParseAddr(s); err == nil && ((a.Is4() && has4) || (a.Is6() && has6)) {
			f.servers = append(f.servers, a)
		}
	}
	for _, s := range pc.MapGuestAddr {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() && has4 && f.gw4 == "" {
			f.gw4 = a.String()
		}
	}
	return f
}

// namespaceAddrs lists the addresses of the namespace at path that
// /etc/hosts can name: no loopback, multicast or IPv6 link-local ones.
func namespaceAddrs(path string) []netip.Addr {
	ns, err := netns.Open(path)
	if err != nil {
		return nil
	}
	defer ns.Close()
	var out []netip.Addr
	_ = ns.Do(func() error {
		as, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLoopback() || ip.IsMulticast() || (ip.Is6() && ip.IsLinkLocalUnicast()) {
				continue
			}
			out = append(out, ip)
		}
		return nil
	})
	return out
}
