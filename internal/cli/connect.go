package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
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

A CONTAINER is a container of berth's engine (a created or stopped one
joins the network at its next start) or a network namespace berth does not
run, registered by its path. Name such a namespace and give its path the
first time:

  berth network connect --netns /run/netns/web NETWORK web

or refer to it by path as ns:PATH (its name is then the file's name). Later
commands use the name, the ID or an ID prefix. A registered namespace is
forgotten when it leaves its last network.`,
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

func (w *world) connect(cmd *cobra.Command, netRef, ctrRef string, f *connectFlags) error {
	r := engine.ConnectRequest{Network: netRef, NetNS: f.netns, Aliases: f.aliases, MAC: f.mac}
	// Everything the user asked for is checked before anything is saved.
	if f.ip != "" {
		a, err := netip.ParseAddr(f.ip)
		if err != nil || !a.Unmap().Is4() {
			return fmt.Errorf("--ip %s: not an IPv4 address", f.ip)
		}
		r.IPs = append(r.IPs, a.Unmap())
	}
	if f.ip6 != "" {
		a, err := netip.ParseAddr(f.ip6)
		if err != nil || !a.Is6() || a.Is4In6() {
			return fmt.Errorf("--ip6 %s: not an IPv6 address", f.ip6)
		}
		r.IPs = append(r.IPs, a)
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
	e, err := w.engine()
	if err != nil {
		return err
	}
	return e.Connect(cmd.Context(), ctrRef, r)
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
			return w.disconnect(cmd.Context(), args[0], args[1], force)
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "forget the attachment even if tearing it down fails")
	return c
}

func (w *world) disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	e, err := w.engine()
	if err != nil {
		return err
	}
	return e.Disconnect(ctx, ctrRef, netRef, force)
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
			e, err := w.engine()
			if err != nil {
				return err
			}
			ids, err := e.Reload(cmd.Context(), args, all, latest)
			for _, id := range ids {
				fmt.Fprintln(env.Stdout, id)
			}
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "reload every registered container")
	c.Flags().BoolVarP(&latest, "latest", "l", false, "reload the most recently registered container")
	return c
}
