package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/ipam"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

type connectFlags struct {
	aliases []string
	ip, ip6 string
	mac     string
	netns   string
}

func connectCmd(env Env, g *globals) *cobra.Command {
	f := &connectFlags{}
	c := &cobra.Command{
		Use:   "connect [options] NETWORK CONTAINER",
		Short: "Add a container to a network",
		Long: `Attach a container's network namespace to a network: a new interface
(eth0, eth1, ...) with an address from the network, routes, firewall rules
and DNS names.

Until berth runs containers itself, a CONTAINER is a network namespace
registered with berth. Name it and give its path the first time:

  berth network connect --netns /run/netns/web NETWORK web

or refer to it by path as ns:PATH (its name is then the file's name). Later
commands use the name, the ID or an ID prefix. A container is forgotten when
it leaves its last network.`,
		Example: `  berth network connect --netns /run/netns/web --alias www --ip 198.19.5.10 web-net web
  berth network connect other-net web`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			return w.connect(cmd, args[0], args[1], f)
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
	fl := c.Flags()
	fl.StringArrayVar(&f.aliases, "alias", nil, "network-scoped DNS alias for the container (repeatable)")
	fl.StringVar(&f.ip, "ip", "", "static IPv4 address on this network")
	fl.StringVar(&f.ip6, "ip6", "", "static IPv6 address on this network")
	fl.StringVar(&f.mac, "mac-address", "", "static MAC address of the container's interface")
	fl.StringVar(&f.netns, "netns", "", "register CONTAINER as the network namespace at this path (berth)")
	return c
}

// resolveContainer finds the container ref names, or registers a new one
// when a namespace path is given.
func (w *world) resolveContainer(ref, nsPath string) (*container, bool, error) {
	all, err := w.ctrs.all()
	if err != nil {
		return nil, false, err
	}
	if nsPath != "" {
		if nsPath, err = filepath.Abs(nsPath); err != nil {
			return nil, false, err
		}
	}
	if p, ok := strings.CutPrefix(ref, "ns:"); ok {
		p, _ = filepath.Abs(p)
		if nsPath != "" && nsPath != p {
			return nil, false, fmt.Errorf("--netns %s and %s name different namespaces", nsPath, ref)
		}
		nsPath = p
		ref = filepath.Base(p)
		for _, c := range all {
			if c.NetNS == nsPath {
				return c, false, nil
			}
		}
	}
	if nsPath == "" {
		c, err := lookup(all, ref)
		if errors.Is(err, ErrNoSuchContainer) {
			// A running engine container on no network yet.
			if ec := w.engineContainer(ref); ec != nil && ec.Running() && ec.State.NetNS != "" {
				return &container{ID: ec.Config.ID, Name: ec.Config.Name, NetNS: ec.State.NetNS, Created: ec.Config.Created, Ports: ec.Config.Ports}, true, nil
			}
		}
		if errors.Is(err, ErrNoSuchContainer) {
			return nil, false, fmt.Errorf("%w (register a network namespace with --netns PATH or give ns:PATH)", err)
		}
		return c, false, err
	}
	// With a namespace path only an exact name or ID is the same container
	// (an ID prefix could be a new container's name).
	for _, c := range all {
		if c.Name == ref || c.ID == ref {
			if c.NetNS != nsPath {
				return nil, false, fmt.Errorf("container %s is registered with namespace %s, not %s", c.Name, c.NetNS, nsPath)
			}
			return c, false, nil
		}
	}
	if !validContainerName(ref) {
		return nil, false, fmt.Errorf("container name %q invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", ref)
	}
	abs, err := filepath.Abs(nsPath)
	if err != nil {
		return nil, false, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, false, fmt.Errorf("--netns %s: %w", nsPath, err)
	}
	return &container{ID: randomID(), Name: ref, NetNS: abs, Created: w.env.now().UTC()}, true, nil
}

func (w *world) connect(cmd *cobra.Command, netRef, ctrRef string, f *connectFlags) error {
	n, err := w.store.Get(netRef)
	if err != nil {
		return err
	}
	var ec *engine.Container
	if f.netns == "" && !strings.HasPrefix(ctrRef, "ns:") {
		ec = w.engineContainer(ctrRef)
	}
	if ec != nil {
		if ec.Config.Net.Kind != runopts.ModeBridge {
			return fmt.Errorf("container %s uses network mode %s: only containers on bridge networks can be connected", ec.Config.Name, ec.Config.Net.Kind)
		}
		if w.engineHasNetwork(ec, n.Name) {
			return fmt.Errorf("container %s is already connected to network %q: %w", ec.Config.ID, n.Name, ErrAlreadyConnected)
		}
		if !ec.Running() {
			// A created or stopped container joins at its next start.
			req := runopts.NetworkRequest{Name: n.Name, Aliases: f.aliases, MAC: f.mac}
			sn := runopts.Single{IP: f.ip, IP6: f.ip6, MAC: f.mac}
			m := runopts.NetMode{Kind: runopts.ModeBridge, Networks: []runopts.NetworkRequest{req}}
			if err := sn.Apply(&m); err != nil {
				return err
			}
			if err := ipam.Validate(n, m.Networks[0].IPs); err != nil {
				return err
			}
			return w.recordEngineNetwork(ec, &m.Networks[0], true)
		}
	}
	ctr, isNew, err := w.resolveContainer(ctrRef, f.netns)
	if err != nil {
		return err
	}
	if ctr.find(n.Name) >= 0 {
		return fmt.Errorf("container %s is already connected to network %q: %w", ctr.ID, n.Name, ErrAlreadyConnected)
	}
	// Everything the user asked for is checked before anything is saved.
	var static []netip.Addr
	if f.ip != "" {
		a, err := netip.ParseAddr(f.ip)
		if err != nil || !a.Unmap().Is4() {
			return fmt.Errorf("--ip %s: not an IPv4 address", f.ip)
		}
		static = append(static, a.Unmap())
	}
	if f.ip6 != "" {
		a, err := netip.ParseAddr(f.ip6)
		if err != nil || !a.Is6() || a.Is4In6() {
			return fmt.Errorf("--ip6 %s: not an IPv6 address", f.ip6)
		}
		static = append(static, a)
	}
	if len(static) > 0 && !ipam.Uses(n) {
		return fmt.Errorf("network %s does not hand out addresses (ipam driver %s): --ip and --ip6 cannot be used", n.Name, n.IPAMDriver())
	}
	if err := ipam.Validate(n, static); err != nil {
		return err
	}
	if f.mac != "" {
		if _, err := network.ParseMAC(f.mac); err != nil {
			return fmt.Errorf("--mac-address: %w", err)
		}
	}
	for _, a := range f.aliases {
		if a == "" || strings.ContainsAny(a, " ,\n\t") {
			return fmt.Errorf("--alias %q: must not be empty or contain spaces or commas", a)
		}
	}
	if n.Driver == network.DriverBridge && n.IPAMDriver() == network.IPAMDHCP && !n.Unmanaged() {
		return fmt.Errorf("network %s: dhcp needs a macvlan network", n.Name)
	}

	addrs, err := w.alloc.Allocate(ctr.ID, n, static)
	if err != nil {
		return err
	}
	release := func() {
		if err := w.alloc.Release(ctr.ID, n.Name); err != nil {
			w.log.Warn("release addresses after failed connect", "error", err)
		}
	}
	att := attached{Network: n, Opts: network.PerNetworkOptions{
		Aliases:   append(append([]string{}, f.aliases...), network.ShortID(ctr.ID)),
		StaticMAC: f.mac,
	}}
	for _, a := range addrs {
		att.Opts.StaticIPs = append(att.Opts.StaticIPs, a.Addr())
	}
	// Record the attachment first: this reserves the interface name, and a
	// concurrent connect of the same container to the same network fails.
	err = w.ctrs.update(func(all []*container) ([]*container, error) {
		cur := ctr
		for _, c := range all {
			if c.ID == ctr.ID {
				cur = c
			} else if isNew && c.Name == ctr.Name {
				return nil, fmt.Errorf("container name %s is already in use by %s", ctr.Name, c.ID)
			}
		}
		if cur.find(n.Name) >= 0 {
			return nil, fmt.Errorf("container %s is already connected to network %q: %w", cur.ID, n.Name, ErrAlreadyConnected)
		}
		att.Opts.InterfaceName = cur.nextInterface()
		cur.Networks = append(cur.Networks, att)
		ctr = cur
		return []*container{cur}, nil
	})
	if err != nil {
		release()
		return err
	}
	forget := func() {
		err := w.ctrs.update(func(all []*container) ([]*container, error) {
			for _, c := range all {
				if c.ID == ctr.ID {
					if i := c.find(n.Name); i >= 0 {
						c.Networks = append(c.Networks[:i], c.Networks[i+1:]...)
					}
					return []*container{c}, nil
				}
			}
			return nil, nil
		})
		if err != nil {
			w.log.Warn("forget attachment after failed connect", "error", err)
		}
	}
	m, err := w.manager()
	if err != nil {
		forget()
		release()
		return err
	}
	defer m.Close()
	res, err := m.SetupNetavark(cmd.Context(), ctr.NetNS, ctr.options([]attached{att}))
	if err != nil {
		forget()
		release()
		return fmt.Errorf("connect container %s to network %s: %w", ctr.Name, n.Name, err)
	}
	// Keep the MAC the kernel chose, so reload recreates the same interface.
	if sb, ok := res[n.Name]; ok {
		if ifc, ok := sb.Interfaces[att.Opts.InterfaceName]; ok && att.Opts.StaticMAC == "" {
			mac := ifc.MACAddress
			_ = w.ctrs.update(func(all []*container) ([]*container, error) {
				for _, c := range all {
					if c.ID == ctr.ID {
						if i := c.find(n.Name); i >= 0 {
							c.Networks[i].Opts.StaticMAC = mac
						}
						return []*container{c}, nil
					}
				}
				return nil, nil
			})
		}
	}
	w.log.Info("connected", "container", ctr.Name, "network", n.Name, "interface", att.Opts.InterfaceName, "addresses", addrs)
	if ec != nil {
		req := runopts.NetworkRequest{Name: n.Name, Aliases: f.aliases, MAC: f.mac, IPs: static, Interface: att.Opts.InterfaceName}
		if err := w.recordEngineNetwork(ec, &req, true); err != nil {
			return err
		}
		e, err := w.engine()
		if err != nil {
			return err
		}
		return e.NetworksChanged(ec.Config.ID, res, nil)
	}
	return nil
}

func disconnectCmd(env Env, g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "disconnect [options] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Long:  "Remove the container's interface on the network, its firewall rules and DNS names, and free its addresses.",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			return w.disconnect(cmd, args[0], args[1], force)
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "forget the attachment even if tearing it down fails")
	return c
}

func (w *world) disconnect(cmd *cobra.Command, netRef, ctrRef string, force bool) error {
	all, err := w.ctrs.all()
	if err != nil {
		return err
	}
	ctr, err := lookup(all, ctrRef)
	if ec := w.engineContainer(ctrRef); ec != nil && (err != nil || !ec.Running()) {
		// Not attached now: only the configuration changes.
		n, nerr := w.store.Get(netRef)
		if nerr != nil {
			return nerr
		}
		if !w.engineHasNetwork(ec, n.Name) {
			return fmt.Errorf("container %s is not connected to network %s", ctrRef, n.Name)
		}
		return w.recordEngineNetwork(ec, &runopts.NetworkRequest{Name: n.Name}, false)
	}
	if err != nil {
		return err
	}
	netName := netRef
	if n, err := w.store.Get(netRef); err == nil {
		netName = n.Name
	} else if !errors.Is(err, netstore.ErrNotFound) {
		return err
	}
	i := ctr.find(netName)
	if i < 0 {
		if _, err := w.store.Get(netRef); err != nil {
			return err
		}
		return fmt.Errorf("container %s is not connected to network %s", ctrRef, netName)
	}
	att := ctr.Networks[i]
	m, err := w.manager()
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.TeardownNetavark(cmd.Context(), ctr.NetNS, ctr.options([]attached{att})); err != nil {
		if !force {
			return fmt.Errorf("disconnect container %s from network %s: %w", ctr.Name, netName, err)
		}
		w.log.Warn("teardown failed; forgetting the attachment (-f)", "container", ctr.Name, "network", netName, "error", err)
	}
	if err := w.alloc.Release(ctr.ID, netName); err != nil {
		return err
	}
	if ec := w.engineContainer(ctr.ID); ec != nil {
		if err := w.recordEngineNetwork(ec, &runopts.NetworkRequest{Name: netName}, false); err != nil {
			return err
		}
		if e, err := w.engine(); err == nil {
			if err := e.NetworksChanged(ec.Config.ID, nil, []string{netName}); err != nil {
				return err
			}
		}
	}
	return w.ctrs.update(func(all []*container) ([]*container, error) {
		for _, c := range all {
			if c.ID == ctr.ID {
				if i := c.find(netName); i >= 0 {
					c.Networks = append(c.Networks[:i], c.Networks[i+1:]...)
				}
				return []*container{c}, nil
			}
		}
		return nil, nil
	})
}

func reloadCmd(env Env, g *globals) *cobra.Command {
	var all, latest bool
	c := &cobra.Command{
		Use:   "reload [options] [CONTAINER...]",
		Short: "Reload the network of containers",
		Long: `Tear down and set up again the networks of containers, with the same
interfaces, addresses and MAC addresses: restores bridges, firewall rules
and DNS entries after the host firewall was flushed (nft flush ruleset,
iptables -F, a firewalld reload). Prints the IDs of the reloaded containers.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !all && !latest && len(args) == 0 {
				return errors.New("you must provide at least one name or id")
			}
			if (all || latest) && len(args) > 0 {
				return errors.New("--all and --latest cannot be used with container names")
			}
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			ctrs, err := w.ctrs.all()
			if err != nil {
				return err
			}
			var sel []*container
			switch {
			case all:
				sel = ctrs
			case latest:
				for _, c := range ctrs {
					if len(sel) == 0 || c.Created.After(sel[0].Created) {
						sel = []*container{c}
					}
				}
			default:
				for _, a := range args {
					c, err := lookup(ctrs, a)
					if err != nil {
						return err
					}
					sel = append(sel, c)
				}
			}
			m, err := w.manager()
			if err != nil {
				return err
			}
			defer m.Close()
			var errs []error
			for _, c := range sel {
				o := c.options(c.Networks)
				if err := m.TeardownNetavark(cmd.Context(), c.NetNS, o); err != nil {
					w.log.Info("tearing down network namespace configuration before reload", "container", c.Name, "error", err)
				}
				if _, err := m.SetupNetavark(cmd.Context(), c.NetNS, o); err != nil {
					errs = append(errs, fmt.Errorf("reload container %s: %w", c.Name, err))
					continue
				}
				fmt.Fprintln(env.Stdout, c.ID)
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "reload every registered container")
	c.Flags().BoolVarP(&latest, "latest", "l", false, "reload the most recently registered container")
	return c
}
