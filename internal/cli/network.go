package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/netconf"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
)

// exitError carries a specific exit code (Podman's: 1 for not found in
// exists and rm, 2 for a network in use).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ErrNetworkInUse: containers are attached to the network.
var ErrNetworkInUse = errors.New("network is being used")

// ErrAlreadyConnected: the container is on the network already.
var ErrAlreadyConnected = errors.New("network is already connected")

func networkCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "network",
		Short: "Manage networks",
		Long:  "Manage networks: Podman's network files, berth's address allocation, and attaching registered network namespaces.",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("missing command '%s COMMAND'", cmd.CommandPath())
		},
	}
	c.AddCommand(
		createCmd(env, g), lsCmd(env, g), inspectCmd(env, g), rmCmd(env, g), pruneCmd(env, g),
		existsCmd(env, g), updateCmd(env, g), connectCmd(env, g), disconnectCmd(env, g), reloadCmd(env, g),
		doctorCmd(env, g),
	)
	return c
}

// noArgs is Podman's validate.NoArgs.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 && cmd.HasAvailableSubCommands() {
		return unknownCommand(cmd, args[0])
	}
	if len(args) > 0 {
		return fmt.Errorf("`%s` takes no arguments", cmd.CommandPath())
	}
	return nil
}

// completeNetworks completes network names.
func completeNetworks(env Env, g *globals) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		w, err := openWorld(env, g)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		nets, err := w.store.List()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, n := range nets {
			if strings.HasPrefix(n.Name, prefix) {
				out = append(out, n.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// ---- create ----

type createFlags struct {
	driver, ipamDriver, ifName string
	opts, labels, routes       []string
	subnets, gateways, ranges  []string
	dns                        []string
	ipv6, internal, disableDNS bool
	ignore                     bool
}

func createCmd(env Env, g *globals) *cobra.Command {
	f := &createFlags{}
	c := &cobra.Command{
		Use:   "create [options] [NAME]",
		Short: "Create a network",
		Long: `Create a network configuration: <config dir>/NAME.json in Podman's format.
Without NAME the network is called podmanN (N the first number not used by a
network or interface); without --subnet it gets the first free /24 of the
subnet pools that is neither another network's nor on a host interface.`,
		Example: `  berth network create
  berth network create --subnet 198.19.5.0/24 --gateway 198.19.5.3 --ip-range 198.19.5.128/25 --label app=web web
  berth network create -d macvlan -o parent=eth0 --subnet 192.168.99.0/24 lan`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			n, err := f.network(name)
			if err != nil {
				return err
			}
			if err := rootlessDriverError(env.Rootless, n.Driver); err != nil {
				return err
			}
			out, err := w.create(n, f.ignore)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, out.Name)
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	fl := c.Flags()
	fl.StringVarP(&f.driver, "driver", "d", "bridge", "driver to manage the network: bridge, macvlan or ipvlan")
	fl.StringArrayVarP(&f.opts, "opt", "o", nil, "driver option KEY=VALUE (bridge: mtu, vlan, isolate, metric, no_default_route, vrf, mode; macvlan/ipvlan: parent, mode, mtu, metric, no_default_route, bclim)")
	fl.StringArrayVar(&f.subnets, "subnet", nil, "subnet in CIDR format (repeatable)")
	fl.Var((*ipArray)(&f.gateways), "gateway", "gateway of the subnet at the same position (repeatable)")
	fl.StringArrayVar(&f.ranges, "ip-range", nil, "allocate container addresses from this CIDR of the subnet at the same position (repeatable)")
	fl.BoolVar(&f.ipv6, "ipv6", false, "enable IPv6 (dual stack): adds the missing IPv4 or IPv6 subnet")
	fl.BoolVar(&f.internal, "internal", false, "restrict external access from this network")
	fl.BoolVar(&f.disableDNS, "disable-dns", false, "do not serve container names on this network")
	fl.StringSliceVar(&f.dns, "dns", nil, "upstream DNS servers the network's DNS server forwards to (comma-separated)")
	fl.StringVar(&f.ipamDriver, "ipam-driver", "", "IP address management driver: host-local, dhcp or none")
	fl.StringArrayVar(&f.labels, "label", nil, "network label KEY=VALUE (repeatable)")
	fl.StringVar(&f.ifName, "interface-name", "", "bridge name (bridge) or parent interface (macvlan, ipvlan)")
	fl.StringArrayVar(&f.routes, "route", nil, "static route DESTINATION,GATEWAY[,METRIC] added in containers (repeatable)")
	fl.BoolVar(&f.ignore, "ignore", false, "do not fail if the network exists; leave it unchanged")
	_ = c.RegisterFlagCompletionFunc("driver", cobra.FixedCompletions([]string{"bridge", "macvlan", "ipvlan"}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("ipam-driver", cobra.FixedCompletions([]string{"host-local", "dhcp", "none"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// parseCIDR parses a --subnet or --ip-range value with Podman's message.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR address: %s", s)
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), nil
}

// ipArray is a repeatable flag of IP addresses, checked as it is parsed
// (a bad value is a flag error, as in Podman).
type ipArray []string

func (a *ipArray) String() string { return "[" + strings.Join(*a, ",") + "]" }
func (a *ipArray) Type() string   { return "ipSlice" }

// Set adds one address.
func (a *ipArray) Set(s string) error {
	if _, err := netip.ParseAddr(strings.TrimSpace(s)); err != nil {
		return fmt.Errorf("invalid string being converted to IP address: %s", s)
	}
	*a = append(*a, s)
	return nil
}

func parseIPFlag(flag, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid argument %q for %q flag: invalid string being converted to IP address: %s", s, "--"+flag, s)
	}
	return a.Unmap(), nil
}

// network turns the flags into a network definition for netconf.Complete.
func (f *createFlags) network(name string) (network.Network, error) {
	n := network.Network{Name: name, Driver: f.driver, IPv6Enabled: f.ipv6, Internal: f.internal, DNSEnabled: !f.disableDNS, NetworkInterface: f.ifName}
	if name == "" && f.driver != network.DriverBridge {
		// Only bridges share their automatic name with the interface.
		n.Name = ""
	}
	if f.ipamDriver != "" {
		switch f.ipamDriver {
		case network.IPAMHostLocal, network.IPAMDHCP, network.IPAMNone:
		default:
			return n, fmt.Errorf("unsupported ipam driver %q (want host-local, dhcp or none)", f.ipamDriver)
		}
		n.IPAMOptions = map[string]string{"driver": f.ipamDriver}
	}
	for _, o := range f.opts {
		k, v, _ := strings.Cut(o, "=")
		if n.Options == nil {
			n.Options = map[string]string{}
		}
		n.Options[k] = v
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return n, fmt.Errorf("invalid label %q: want KEY=VALUE", l)
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = v
	}
	var err error
	if n.Subnets, err = f.subnetList(); err != nil {
		return n, err
	}
	if n.NetworkDNSServers, err = f.dnsServers(); err != nil {
		return n, err
	}
	for _, r := range f.routes {
		rt, err := parseRoute(r)
		if err != nil {
			return n, err
		}
		n.Routes = append(n.Routes, rt)
	}
	return n, nil
}

// subnetList pairs each --subnet with its --gateway and --ip-range, if
// given (in order; there may not be more of those than subnets).
func (f *createFlags) subnetList() ([]network.Subnet, error) {
	if len(f.gateways) > len(f.subnets) || len(f.ranges) > len(f.subnets) {
		if len(f.subnets) == 0 {
			return nil, errors.New("cannot set gateway or range without subnet")
		}
		if len(f.gateways) > len(f.subnets) {
			return nil, errors.New("cannot set more gateways than subnets")
		}
		return nil, errors.New("cannot set more ranges than subnets")
	}
	var subs []network.Subnet
	for i, s := range f.subnets {
		p, err := parseCIDR(s)
		if err != nil {
			return nil, err
		}
		sub := network.Subnet{Subnet: p.Masked()}
		if i < len(f.gateways) {
			gw, err := parseIPFlag("gateway", f.gateways[i])
			if err != nil {
				return nil, err
			}
			sub.Gateway = gw
		}
		if i < len(f.ranges) {
			r, err := parseCIDR(f.ranges[i])
			if err != nil {
				return nil, err
			}
			r = r.Masked()
			// Podman stores a CIDR range as first host .. last address.
			sub.LeaseRange = &network.LeaseRange{StartIP: r.Addr().Next(), EndIP: network.LastAddr(r)}
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// dnsServers parses the --dns values (each a comma-separated list).
func (f *createFlags) dnsServers() ([]netip.Addr, error) {
	var out []netip.Addr
	for _, d := range f.dns {
		for _, p := range strings.Split(d, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			a, err := netip.ParseAddr(p)
			if err != nil {
				return nil, fmt.Errorf("--dns %s: not an IP address (want e.g. --dns 1.1.1.1,9.9.9.9)", p)
			}
			out = append(out, a)
		}
	}
	return out, nil
}

func parseRoute(s string) (network.Route, error) {
	bad := func(why string) (network.Route, error) {
		return network.Route{}, fmt.Errorf("invalid route: %s (%s)\nFormat: --route <destination in CIDR>,<gateway>,<metric (optional)>", s, why)
	}
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want 2 or 3 comma-separated fields")
	}
	dst, err := netip.ParsePrefix(parts[0])
	if err != nil {
		return bad("destination is not a CIDR")
	}
	gw, err := netip.ParseAddr(parts[1])
	if err != nil {
		return bad("gateway is not an IP address")
	}
	r := network.Route{Destination: dst, Gateway: gw}
	if len(parts) == 3 {
		m, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil {
			return bad("metric is not a number 0-4294967295")
		}
		mm := uint32(m)
		r.Metric = &mm
	}
	return r, nil
}

// create completes n against what exists and writes it, under the store's
// lock so concurrent creates never pick the same name, bridge or subnet.
func (w *world) create(n network.Network, ignore bool) (network.Network, error) {
	unlock, err := w.store.Lock()
	if err != nil {
		return n, err
	}
	defer unlock()
	nets, err := w.store.List()
	if err != nil {
		return n, err
	}
	if n.Name != "" {
		if ex, err := netstore.Find(nets, n.Name); err == nil && ex.Name == n.Name {
			if ignore {
				return ex, nil
			}
			return n, fmt.Errorf("network name %s already used: %w", n.Name, netstore.ErrExists)
		}
	}
	host, err := w.hostLinks()
	if err != nil {
		return n, fmt.Errorf("read host interfaces: %w", err)
	}
	used := netconf.Used{Names: map[string]string{}, HostInterfaces: host.Names}
	used.Interfaces = append(used.Interfaces, host.Names...)
	for _, o := range nets {
		used.Names[o.Name] = o.ID
		if o.Driver == network.DriverBridge && o.NetworkInterface != "" {
			used.Interfaces = append(used.Interfaces, o.NetworkInterface)
		}
		for _, s := range o.Subnets {
			used.Subnets = append(used.Subnets, s.Subnet)
		}
	}
	used.Subnets = append(used.Subnets, host.Prefix...)
	opts := netconf.Options{SubnetPools: w.pools(), CheckUsedSubnets: true}
	out, err := netconf.Complete(n, used, opts, w.env.now())
	if err != nil {
		return n, err
	}
	if err := w.store.Create(out); err != nil {
		return n, err
	}
	w.networkEvent("create", out.ID, out.Name)
	w.log.Debug("created network", "name", out.Name, "file", w.store.Dir())
	return out, nil
}

// ---- ls ----

type filterSet map[string][]string

func parseFilters(in []string, valid ...string) (filterSet, error) {
	fs := filterSet{}
	for _, f := range in {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("filter input must be in the form of filter=value: %s is invalid", f)
		}
		okKey := false
		for _, x := range valid {
			if k == x {
				okKey = true
			}
		}
		if !okKey {
			return nil, fmt.Errorf("invalid filter %q (want %s)", k, strings.Join(valid, ", "))
		}
		fs[k] = append(fs[k], v)
	}
	return fs, nil
}

// parseUntil reads an until= value: a timestamp or a Go duration ago.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(s, 0), nil
	}
	return time.Time{}, fmt.Errorf("invalid until filter %q: want a timestamp (2006-01-02T15:04:05Z) or a duration (24h)", v)
}

// matchLabels: every label=k[=v] matches (AND).
func matchLabels(labels map[string]string, want []string) bool {
	for _, l := range want {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// listFiltered lists the networks that pass the filters, with the set of
// networks in use.
func (w *world) listFiltered(fs filterSet) ([]network.Network, map[string]bool, error) {
	nets, err := w.store.List()
	if err != nil {
		return nil, nil, err
	}
	use, _, err := w.inUse()
	if err != nil {
		return nil, nil, err
	}
	nets, err = w.filterNetworks(nets, fs, use)
	return nets, use, err
}

// filterNetworks applies Podman's network filters: the values of one key
// are alternatives (OR), different keys must all match (AND).
func (w *world) filterNetworks(nets []network.Network, fs filterSet, inUse map[string]bool) ([]network.Network, error) {
	var out []network.Network
	now := w.env.now()
	for _, n := range nets {
		keep := true
		for k, vals := range fs {
			m, err := w.networkMatches(n, k, vals, inUse, now)
			if err != nil {
				return nil, err
			}
			keep = keep && m
		}
		if keep {
			out = append(out, n)
		}
	}
	return out, nil
}

// networkMatches reports whether n passes the filter k with values vals
// (any of them for name, id and driver; all for the others).
func (w *world) networkMatches(n network.Network, k string, vals []string, inUse map[string]bool, now time.Time) (bool, error) {
	switch k {
	case "name":
		m := false
		for _, v := range vals {
			re, err := regexp.Compile(v)
			if err != nil {
				return false, fmt.Errorf("invalid name filter %q: %w", v, err)
			}
			if re.MatchString(n.Name) {
				m = true
			}
		}
		return m, nil
	case "id":
		return slices.ContainsFunc(vals, func(v string) bool { return strings.HasPrefix(n.ID, v) }), nil
	case "driver":
		return slices.Contains(vals, n.Driver), nil
	case "label":
		return matchLabels(n.Labels, vals), nil
	case "label!":
		return !slices.ContainsFunc(vals, func(v string) bool { return matchLabels(n.Labels, []string{v}) }), nil
	case "until":
		keep := true
		for _, v := range vals {
			t, err := parseUntil(v, now)
			if err != nil {
				return false, err
			}
			c, _ := time.Parse(time.RFC3339Nano, n.Created)
			if !c.Before(t) {
				keep = false
			}
		}
		return keep, nil
	case "dangling":
		keep := true
		for _, v := range vals {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, fmt.Errorf("invalid dangling filter value %q: want true or false", v)
			}
			dangling := !inUse[n.Name] && !w.store.IsDefault(n)
			if dangling != b {
				keep = false
			}
		}
		return keep, nil
	}
	return true, nil
}

// inUse returns the networks containers are attached to (and the attached
// containers and registered namespaces).
func (w *world) inUse() (map[string]bool, []*engine.Container, error) {
	e, err := w.engine()
	if err != nil {
		return nil, nil, err
	}
	ctrs, err := e.Attached()
	if err != nil {
		return nil, nil, err
	}
	m := map[string]bool{}
	for _, c := range ctrs {
		for _, a := range c.State.Attachments {
			m[a.Network.Name] = true
		}
	}
	// Engine containers use their configured networks even when stopped.
	ecs, err := e.List()
	if err != nil {
		return nil, nil, err
	}
	for _, c := range ecs {
		if c.Config.Net.Kind == runopts.ModeBridge {
			for _, r := range c.Config.Net.Networks {
				m[w.netName(r.Name)] = true
			}
		}
	}
	return m, ctrs, nil
}

// lsOptions are network ls' flags.
type lsOptions struct {
	format         string
	quiet, noTrunc bool
	noHeading      bool
	filters        []string
}

func lsCmd(env Env, g *globals) *cobra.Command {
	var o lsOptions
	c := &cobra.Command{
		Use:     "ls [options]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Long:    "List networks, sorted by name.",
		Example: `  berth network ls
  berth network ls --format 'table {{.ID}} {{.Name}} {{.Labels}}' --filter label=app
  berth network ls --format json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			fs, err := parseFilters(o.filters, "name", "id", "driver", "label", "label!", "until", "dangling")
			if err != nil {
				return err
			}
			nets, _, err := w.listFiltered(fs)
			if err != nil {
				return err
			}
			return printNetworks(cmd, env, &o, nets)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	fl := c.Flags()
	fl.StringVar(&o.format, "format", "", "pretty-print networks as JSON (json) or with a Go template ('table ...' keeps the headers)")
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "display only names")
	fl.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate the network ID")
	fl.BoolVarP(&o.noHeading, "noheading", "n", false, "do not print headers")
	fl.StringArrayVarP(&o.filters, "filter", "f", nil, "filter KEY=VALUE: name (regex), id (prefix), driver, label, label!, until, dangling")
	_ = c.RegisterFlagCompletionFunc("filter", cobra.FixedCompletions([]string{"name=", "id=", "driver=", "label=", "label!=", "until=", "dangling="}, cobra.ShellCompDirectiveNoSpace|cobra.ShellCompDirectiveNoFileComp))
	return c
}

// printNetworks prints the networks' names only (-q), as JSON, or as a
// table or template.
func printNetworks(cmd *cobra.Command, env Env, o *lsOptions, nets []network.Network) error {
	switch {
	case o.quiet:
		for _, n := range nets {
			fmt.Fprintln(env.Stdout, n.Name)
		}
		return nil
	case isJSON(o.format):
		if nets == nil {
			nets = []network.Network{}
		}
		b, err := json.MarshalIndent(nets, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(b))
		return nil
	}
	rows := make([]listRow, 0, len(nets))
	for _, n := range nets {
		rows = append(rows, listRow{netView: viewOf(n), noTrunc: o.noTrunc})
	}
	hdr := headers(listRow{}, map[string]string{"ID": "network id", "Labels": "labels"})
	return renderList(cmd, env.Stdout, "ls", o.format, "{{.ID}}\t{{.Name}}\t{{.Driver}}", hdr, rows, o.noHeading)
}

// ---- inspect ----

func inspectCmd(env Env, g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [options] NETWORK [NETWORK...]",
		Short: "Display details of one or more networks",
		Long:  "Display the configuration of networks as a JSON array (or through a Go template).",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			all, err := w.store.List()
			if err != nil {
				return err
			}
			found := []network.Network{}
			var missing error
			for _, a := range args {
				n, err := netstore.Find(all, a)
				if errors.Is(err, netstore.ErrNotFound) {
					missing = fmt.Errorf("inspecting object: network %s: %w", a, err)
					continue
				}
				if err != nil {
					return fmt.Errorf("inspecting network %s: %w", a, err)
				}
				found = append(found, n)
			}
			if format == "" || isJSON(format) {
				if err := inspectJSON(env.Stdout, found); err != nil {
					return err
				}
			} else {
				views := make([]netView, 0, len(found))
				for _, n := range found {
					views = append(views, viewOf(n))
				}
				rpt, err := parseReport("inspect", format, nil)
				if err != nil {
					return err
				}
				if err := rpt.render(env.Stdout, views, false); err != nil {
					return err
				}
			}
			return missing
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
	c.Flags().StringVarP(&format, "format", "f", "", "pretty-print the networks with a Go template, e.g. '{{range .Subnets}}{{.Subnet}}{{end}}'")
	return c
}

// ---- exists ----

func existsCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "exists NETWORK",
		Short: "Check if a network exists",
		Long:  "Exit 0 if the network (name or ID prefix) exists, 1 if it does not, 125 on other errors.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			_, err = w.store.Get(args[0])
			if errors.Is(err, netstore.ErrNotFound) {
				return &exitError{code: 1}
			}
			return err
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
}

// ---- rm, prune ----

func rmCmd(env Env, g *globals) *cobra.Command {
	var force bool
	var timeout int
	c := &cobra.Command{
		Use:     "rm [options] NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove networks",
		Long: `Remove networks: their file and their address records. A network that
registered containers use is refused (exit 2) unless -f, which first
detaches those containers from it. Not found: exit 1.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("time") && !force {
				return errors.New("--force option must be specified to use the --time option")
			}
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			var last error
			for _, a := range args {
				name, err := w.removeNetwork(cmd.Context(), a, force)
				if err != nil {
					if last != nil {
						fmt.Fprintf(env.Stderr, "Error: %v\n", last)
					}
					last = err
					continue
				}
				fmt.Fprintln(env.Stdout, name)
			}
			return last
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "detach the containers that use the network first")
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait for containers to stop (needs -f; berth detaches at once)")
	return c
}

// removeNetwork removes one network, returning its name.
func (w *world) removeNetwork(ctx context.Context, ref string, force bool) (string, error) {
	n, err := w.store.Get(ref)
	if errors.Is(err, netstore.ErrNotFound) {
		return "", &exitError{code: 1, err: err}
	}
	if err != nil {
		return "", err
	}
	ecs, e, err := w.engineUsers(n.Name)
	if err != nil {
		return "", err
	}
	if len(ecs) > 0 && !force {
		return "", &exitError{code: 2, err: fmt.Errorf("%q has associated containers with it. Use -f to forcibly delete containers and pods: %w", n.Name, ErrNetworkInUse)}
	}
	// -f removes the engine containers on the network, as Podman does.
	for _, c := range ecs {
		if c.Config.Infra {
			if _, err := e.RemovePod(c.Config.Pod, true); err != nil && !errors.Is(err, engine.ErrNoSuchPod) {
				return "", fmt.Errorf("remove pod %s: %w", c.Config.Pod, err)
			}
			continue
		}
		if _, err := e.Remove(c.Config.ID, true); err != nil && !errors.Is(err, engine.ErrNoSuchContainer) {
			return "", fmt.Errorf("remove container %s: %w", c.Config.Name, err)
		}
	}
	_, ctrs, err := w.inUse()
	if err != nil {
		return "", err
	}
	var users []*engine.Container
	for _, c := range ctrs {
		for _, a := range c.State.Attachments {
			if a.Network.Name == n.Name {
				users = append(users, c)
			}
		}
	}
	if len(users) > 0 {
		if !force {
			return "", &exitError{code: 2, err: fmt.Errorf("%q has associated containers with it. Use -f to forcibly delete containers and pods: %w", n.Name, ErrNetworkInUse)}
		}
		for _, c := range users {
			if err := w.disconnect(ctx, n.Name, c.Config.ID, true); err != nil {
				return "", err
			}
		}
	}
	if w.store.IsDefault(n) {
		return "", fmt.Errorf("default network %s cannot be removed", n.Name)
	}
	unlock, err := w.store.Lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := w.store.Remove(n.Name); err != nil {
		if errors.Is(err, netstore.ErrNotFound) {
			return "", &exitError{code: 1, err: err}
		}
		return "", err
	}
	w.networkEvent("remove", n.ID, n.Name)
	if err := w.forgetAddresses(n.Name); err != nil {
		return "", err
	}
	return n.Name, nil
}

func pruneCmd(env Env, g *globals) *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [options]",
		Short: "Remove networks no container uses",
		Long:  "Remove every network that no registered container uses, except the default network, and print their names.",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			fs, err := parseFilters(filters, "label", "label!", "until")
			if err != nil {
				return err
			}
			if !force {
				fmt.Fprint(env.Stdout, "WARNING! This will remove all networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")
				ans, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
					return nil
				}
			}
			nets, use, err := w.listFiltered(fs)
			if err != nil {
				return err
			}
			var errs []error
			for _, n := range nets {
				if use[n.Name] || w.store.IsDefault(n) {
					continue
				}
				name, err := w.removeNetwork(cmd.Context(), n.Name, false)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(env.Stdout, name)
			}
			return errors.Join(errs...)
		},
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "filter KEY=VALUE: label, label!, until")
	return c
}

// ---- update ----

func updateCmd(env Env, g *globals) *cobra.Command {
	var add, drop []string
	c := &cobra.Command{
		Use:   "update [options] NETWORK",
		Short: "Update a network's upstream DNS servers",
		Long: `Change network_dns_servers, the upstream servers the network's DNS server
forwards to: drop, then add, then remove duplicates. Running DNS servers
pick the change up at once.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(add) == 0 && len(drop) == 0 {
				return errors.New("nothing to update: give --dns-add or --dns-drop")
			}
			addA, err := parseDNSFlag("dns-add", add)
			if err != nil {
				return err
			}
			dropA, err := parseDNSFlag("dns-drop", drop)
			if err != nil {
				return err
			}
			w, err := openWorld(env, g)
			if err != nil {
				return err
			}
			n, err := w.updateDNSServers(args[0], addA, dropA)
			if err != nil {
				return err
			}
			if m, err := w.manager(); err == nil {
				if err := m.UpdateDNSServers(n.Name, n.NetworkDNSServers); err != nil {
					w.log.Warn("network updated, but the running DNS server was not", "network", n.Name, "error", err)
				}
				m.Close()
			}
			fmt.Fprintln(env.Stdout, n.Name)
			return nil
		},
		ValidArgsFunction: completeNetworks(env, g),
	}
	c.Flags().StringSliceVar(&add, "dns-add", nil, "add DNS servers (comma-separated)")
	c.Flags().StringSliceVar(&drop, "dns-drop", nil, "remove DNS servers (comma-separated)")
	return c
}

// parseDNSFlag parses the addresses given to --flag.
func parseDNSFlag(flag string, vals []string) ([]netip.Addr, error) {
	out, err := network.ParseAddrList(vals)
	var bad *network.AddrError
	if errors.As(err, &bad) {
		return nil, fmt.Errorf("--%s %s: not an IP address", flag, bad.Value)
	}
	return out, err
}

// updateDNSServers, under the store's lock, sets the named network's
// upstream DNS servers to its current ones and add, less drop, without
// duplicates, and returns the updated network.
func (w *world) updateDNSServers(name string, add, drop []netip.Addr) (network.Network, error) {
	unlock, err := w.store.Lock()
	if err != nil {
		return network.Network{}, err
	}
	defer unlock()
	n, err := w.store.Get(name)
	if err != nil {
		return n, err
	}
	if !n.DNSEnabled {
		return n, fmt.Errorf("cannot set NetworkDNSServers if DNS is not enabled for the network %s: %w", n.Name, network.ErrInvalid)
	}
	var servers []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range append(n.NetworkDNSServers, add...) {
		if !slices.Contains(drop, s) && !seen[s] {
			seen[s] = true
			servers = append(servers, s)
		}
	}
	n.NetworkDNSServers = servers
	return n, w.store.Update(n)
}
