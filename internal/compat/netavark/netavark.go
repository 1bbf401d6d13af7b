// Package netavark is berth's netavark-compatible front-end: the command line
// Podman runs (`netavark --config DIR --rootless=false --aardvark-binary=PATH
// setup|teardown NETNS` with the JSON on stdin), its JSON output, and its
// error convention (one `{"error":"..."}` line on stdout, exit code 1; usage
// errors on stderr with exit code 2). It is a client of berth's public API, package
// berthnet (SetupNetavark, TeardownNetavark, ReloadFirewall,
// UpdateDNSServers).
package netavark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/firewall"
	"github.com/berthnet/berth/internal/netconf"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/safefile"
)

// DefaultAardvark is where netavark looks for aardvark-dns by default.
const DefaultAardvark = "/usr/libexec/podman/aardvark-dns"

// Env is the process environment the front-end reads; only Run reads it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// DHCP is the DHCP proxy client for networks whose IPAM driver is
	// dhcp; ServeDHCPProxy runs the proxy (the dhcp-proxy command). A build
	// without them (the small bin/netavark) hands such calls to Delegate.
	DHCP           core.DHCPClient
	ServeDHCPProxy func(context.Context, ProxyConfig) error
	// Delegate runs the same command line in the full berth binary with
	// input as its standard input and returns its exit code; it does not
	// return when it replaces the process.
	Delegate func(input []byte) (int, error)
	// FirewallWatcher is this program's executable, which a setup starts
	// as `FirewallWatcher firewall-watch --config DIR ...` when no
	// firewall watcher runs for the state directory; empty: none.
	FirewallWatcher string
}

type globals struct {
	config         string
	rootless       bool
	aardvark       string
	firewallDriver string
	pluginDirs     []string
	file           string
	// input is the JSON read from stdin or --file (kept for Delegate).
	input []byte
	// verb is the subcommand running, for netavark's wording of errors.
	verb string
}

// errDelegated ends a command whose work the full binary did; code is its
// exit code.
type errDelegated struct{ code int }

func (e errDelegated) Error() string { return fmt.Sprintf("delegated (exit code %d)", e.code) }

// delegate hands the call to the full binary.
func delegate(g *globals, env Env, why string) error {
	if env.Delegate == nil {
		return fmt.Errorf("%s: this build of netavark has no DHCP support and no berth binary to hand it to", why)
	}
	code, err := env.Delegate(g.input)
	if err != nil {
		return fmt.Errorf("%s: run berth: %w", why, err)
	}
	return errDelegated{code}
}

// needsDHCP tells whether any network of o leases its addresses by DHCP.
func needsDHCP(o *network.Options) bool {
	for _, n := range o.NetworkInfo {
		if n.IPAMDriver() == network.IPAMDHCP {
			return true
		}
	}
	return false
}

// usageError marks errors that are the caller's command-line mistakes.
type usageError struct{ error }

// Run executes the front-end with args (without the program name) and
// returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	g := &globals{}
	var out any
	root := rootCmd(g, env)
	root.AddCommand(
		setupCmd(g, env, &out),
		teardownCmd(g, env),
		versionCmd(env),
		updateCmd(g, env),
		dhcpProxyCmd(g, env),
		createCmd(g, env, &out),
		firewallReloadCmd(g, env),
		firewalldReloadCmd(g, env),
		firewallWatchCmd(g, env),
	)
	root.SetArgs(joinBoolValues(args))
	return exitCode(root.ExecuteContext(ctx), g.verb, out, env)
}

// joinBoolValues rewrites `--rootless true|false` (and `-r …`), the form
// netavark 2.x's parser takes besides `--rootless=…`, into the joined form
// the flag library expects; a bare `--rootless` still means true.
func joinBoolValues(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "--rootless" || a == "-r") && i+1 < len(args) && (args[i+1] == "true" || args[i+1] == "false") {
			out = append(out, "--rootless="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

// rootCmd is the bare `netavark` command with its global flags, which fill
// g.
func rootCmd(g *globals, env Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "netavark",
		Short:         "berth's netavark-compatible container network backend",
		Long:          "netavark (berth edition) sets up and tears down container networks for Podman.\nIt reads the network options as JSON on stdin (or --file) and prints the result as JSON.",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       buildinfo.NetavarkVersion,
	}
	root.SetVersionTemplate("netavark {{.Version}} (berth " + buildinfo.Version + ")\n")
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetIn(env.Stdin)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", "", "state directory (aardvark-dns configuration and berth's records)")
	pf.BoolVarP(&g.rootless, "rootless", "r", false, "run as a rootless backend (--rootless=<bool>)")
	pf.StringVarP(&g.aardvark, "aardvark-binary", "a", defaultAardvark(), "path of the aardvark-dns binary (default: berth's own, beside this program)")
	pf.StringVar(&g.firewallDriver, "firewall-driver", "", "firewall driver: nftables (default), iptables, firewalld or none (also env NETAVARK_FW)")
	pf.StringArrayVar(&g.pluginDirs, "plugin-directory", nil, "directory of plugin drivers: a network whose driver is not built in runs the executable of its name there")
	pf.StringVarP(&g.file, "file", "f", "", "read the network options from this file instead of stdin")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	return root
}

// exitCode reports the outcome of a command in netavark's convention and
// returns the exit code: a delegated call's own code; 2 with the message on
// stderr for usage errors; 1 with {"error":...} on stdout for failures,
// in netavark's words (wording) where berth knows them; otherwise 0, after
// printing out (when there is one) as JSON.
func exitCode(err error, verb string, out any, env Env) int {
	var de errDelegated
	if errors.As(err, &de) {
		return de.code
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
			fmt.Fprintf(env.Stderr, "error: %v\n\nFor more information, try '--help'.\n", err)
			return 2
		}
		printError(env, wording(verb, err))
		return 1
	}
	if out != nil {
		b, err := json.Marshal(out)
		if err != nil {
			printError(env, err.Error())
			return 1
		}
		fmt.Fprintln(env.Stdout, string(b))
	}
	return 0
}

// printError writes msg as netavark's one-line JSON error on stdout.
func printError(env Env, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	fmt.Fprintln(env.Stdout, string(b))
}

// setupCmd is `netavark setup NETNS`; its result goes to *out. berth's
// own networks are set up first, then the plugins' in order; when a
// plugin fails, everything set up is torn down.
func setupCmd(g *globals, env Env, out *any) *cobra.Command {
	return namespaceCmd(g, env, "setup", "attach the network namespace at NETNS to the networks given as JSON",
		func(ctx context.Context, m *berthnet.Host, nsPath string, o *network.Options, plugins []pluginNet) error {
			res := map[string]network.StatusBlock{}
			if len(o.Networks) > 0 {
				r, err := m.SetupNetavark(ctx, nsPath, o)
				if err != nil {
					return err
				}
				maps.Copy(res, r)
			}
			if err := setupPlugins(ctx, plugins, nsPath, res, env, logger(env)); err != nil {
				if len(o.Networks) > 0 {
					if terr := m.TeardownNetavark(ctx, nsPath, o); terr != nil {
						logger(env).Error(fmt.Sprintf("failed to cleanup networks after setup failed: %v", terr))
					}
				}
				return err
			}
			*out = res
			return nil
		})
}

// teardownCmd is `netavark teardown NETNS`: the plugins' networks and
// berth's own, carrying on past errors.
func teardownCmd(g *globals, env Env) *cobra.Command {
	return namespaceCmd(g, env, "teardown", "detach the network namespace at NETNS from the networks given as JSON",
		func(ctx context.Context, m *berthnet.Host, nsPath string, o *network.Options, plugins []pluginNet) error {
			err := teardownPlugins(ctx, plugins, nsPath, env)
			if len(o.Networks) > 0 || len(plugins) == 0 {
				err = errors.Join(err, m.TeardownNetavark(ctx, nsPath, o))
			}
			return err
		})
}

// namespaceCmd is `netavark VERB NETNS` with the network options as JSON:
// run does the work on the host (plugins are the networks plugin drivers
// drive, taken out of the options), unless a network leases its
// addresses by DHCP and this build cannot, when the full binary does it
// instead.
func namespaceCmd(g *globals, env Env, verb, short string, run func(context.Context, *berthnet.Host, string, *network.Options, []pluginNet) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NETNS",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.verb = verb
			m, o, plugins, err := prepare(g, env, args[0], verb)
			if err != nil {
				return err
			}
			if env.DHCP == nil && needsDHCP(o) {
				return delegate(g, env, "dhcp network")
			}
			defer m.Close()
			return run(cmd.Context(), m, args[0], o, plugins)
		},
	}
}

// versionCmd is `netavark version`: the version record as indented JSON.
func versionCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version as JSON",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := map[string]string{
				"version":           buildinfo.NetavarkVersion + "-berth." + buildinfo.Version,
				"commit":            buildinfo.Commit,
				"build_time":        buildinfo.BuildTime,
				"target":            runtime.GOARCH + "-unknown-" + runtime.GOOS + "-gnu",
				"default_fw_driver": firewall.DriverNftables,
			}
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintln(env.Stdout, string(b))
			return nil
		},
	}
}

// createCmd is `netavark create`: the completed network definition goes
// to *out. The definition is checked as netavark 2.1 checks it (a name and
// ID are required, the name must not be in used.names, ...) before berth
// completes it.
func createCmd(g *globals, env Env, out *any) *cobra.Command {
	return &cobra.Command{
		Use:   "create",
		Short: "complete and validate a new network definition (JSON on stdin or --file)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.verb = "create"
			var req netconf.Request
			if err := decodeInput(g, env, &req); err != nil {
				return err
			}
			if err := req.Network.CheckCreate(req.Used.Names); err != nil {
				return err
			}
			if d := req.Network.Driver; d != "" && !builtinDriver(d) {
				p := findPlugin(g.pluginDirs, d)
				switch {
				case len(g.pluginDirs) == 0:
					return errors.New("plugin directory not provided")
				case p == "":
					return fmt.Errorf("plugin for driver %q not found in plugin directories", d)
				}
				n, err := createWithPlugin(cmd.Context(), p, req.Network, env.Stderr)
				if err != nil {
					return err
				}
				*out = n
				return nil
			}
			n, err := netconf.Complete(req.Network, req.Used, req.Options, time.Now())
			if err != nil {
				return err
			}
			*out = n
			return nil
		},
	}
}

// firewallReloadCmd is `netavark firewall-reload`: it re-applies every
// container's firewall rules once.
func firewallReloadCmd(g *globals, env Env) *cobra.Command {
	return hostCmd(g, env, "firewall-reload", "re-apply the firewall rules of every container berth has set up",
		func(ctx context.Context, m *berthnet.Host) error {
			_, err := m.ReloadFirewall(ctx)
			return err
		})
}

// firewalldReloadCmd is `netavark firewalld-reload`: it stays running and
// re-applies every container's firewall rules at start and after each
// firewalld reload.
func firewalldReloadCmd(g *globals, env Env) *cobra.Command {
	return hostCmd(g, env, "firewalld-reload", "re-apply the firewall rules of every container after each firewalld reload",
		func(ctx context.Context, m *berthnet.Host) error { return m.FollowFirewalldReloads(ctx) })
}

// firewallWatchCmd is `netavark firewall-watch` (hidden): the firewall
// watcher of the --config directory, which a setup starts (Env.
// FirewallWatcher) and a service may run with --stay. It logs to stderr
// from info level, with times. Another watcher of the directory running
// is no error: it exits at once.
func firewallWatchCmd(g *globals, env Env) *cobra.Command {
	var port uint16
	var stay bool
	c := &cobra.Command{
		Use:    core.WatchCommand,
		Short:  "restore berth's firewall rules when someone else removes them (started by setup)",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.config == "" {
				g.config = "/run/containers/networks"
			}
			if port != 0 {
				get := env.Getenv
				env.Getenv = func(k string) string {
					if k == "NETAVARK_DNS_PORT" {
						return strconv.Itoa(int(port))
					}
					return get(k)
				}
			}
			m, err := newHost(g, env, core.WatchLogger(env.Stderr))
			if err != nil {
				return err
			}
			defer m.Close()
			err = m.WatchFirewall(cmd.Context(), stay)
			if errors.Is(err, berthnet.ErrWatcherRunning) {
				return nil
			}
			return err
		},
	}
	c.Flags().Uint16Var(&port, "dns-port", 0, "the DNS port the networks' rules redirect to (default: env NETAVARK_DNS_PORT, else 53)")
	c.Flags().BoolVar(&stay, "stay", false, "keep running while no network has containers (as a service)")
	return c
}

// hostCmd is a command without arguments that runs fn with the Host of
// the --config directory (Podman's /run/containers/networks by default).
func hostCmd(g *globals, env Env, use, short string, fn func(context.Context, *berthnet.Host) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.config == "" {
				g.config = "/run/containers/networks"
			}
			m, err := manager(g, env)
			if err != nil {
				return err
			}
			defer m.Close()
			return fn(cmd.Context(), m)
		},
	}
}

// exactArgs requires n positional arguments; otherwise a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d (usage: %s)", cmd.Name(), n, len(args), cmd.UseLine())}
		}
		return nil
	}
}

// updateCmd is `netavark update NETWORK --network-dns-servers LIST`.
func updateCmd(g *globals, env Env) *cobra.Command {
	var servers []string
	c := &cobra.Command{
		Use:   "update NETWORK --network-dns-servers LIST",
		Short: "change a network's upstream DNS servers while containers run",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addrs, err := network.ParseAddrList(servers)
			if err != nil {
				return fmt.Errorf("--network-dns-servers: %w", err)
			}
			if g.config == "" {
				return errors.New("--config not specified but required for netavark update")
			}
			m, err := manager(g, env)
			if err != nil {
				return err
			}
			defer m.Close()
			return m.UpdateDNSServers(args[0], addrs)
		},
	}
	c.Flags().StringSliceVar(&servers, "network-dns-servers", nil, "comma-separated DNS servers; an empty value clears them")
	return c
}

// prepare checks the namespace path, reads the options, takes out the
// networks of plugin drivers and builds the manager, in netavark's order.
func prepare(g *globals, env Env, nsPath, verb string) (*berthnet.Host, *network.Options, []pluginNet, error) {
	if nsPath == "" {
		return nil, nil, nil, errors.New("invalid namespace path: empty")
	}
	if verb == "setup" {
		if err := checkNamespacePath(nsPath); err != nil {
			return nil, nil, nil, err
		}
	}
	var o network.Options
	if err := decodeInput(g, env, &o); err != nil {
		return nil, nil, nil, err
	}
	dropInvalidAliases(&o, logger(env))
	plugins := splitPlugins(&o, g.pluginDirs)
	if verb == "setup" && (len(o.Networks) > 0 || len(plugins) == 0) {
		// Podman never sets up a container without a network; an input
		// without one is a mistake, not a request to do nothing.
		if err := o.ValidateSetup(); err != nil {
			return nil, nil, nil, err
		}
	}
	if g.config == "" {
		g.config = "/tmp"
	}
	m, err := manager(g, env)
	if err != nil {
		return nil, nil, nil, err
	}
	return m, &o, plugins, nil
}

// namespaceError: the namespace path given to setup cannot be opened.
type namespaceError struct{ err error }

func (e *namespaceError) Error() string { return "invalid namespace path: " + e.err.Error() }
func (e *namespaceError) Unwrap() error { return e.err }

// checkNamespacePath fails, as netavark does before it reads its input,
// when the namespace file cannot be opened.
func checkNamespacePath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return &namespaceError{err}
	}
	f.Close()
	return nil
}

// dropInvalidAliases removes the aliases that cannot be DNS names, as
// netavark does, with a warning where netavark gives one (a bridge
// network with DNS); berth's own front-ends refuse them instead.
func dropInvalidAliases(o *network.Options, log *slog.Logger) {
	for i := range o.Networks {
		a := &o.Networks[i]
		n := o.NetworkInfo[a.Name]
		kept := a.Aliases[:0]
		for _, al := range a.Aliases {
			err := network.CheckAlias(al)
			if err == nil {
				kept = append(kept, al)
				continue
			}
			if n.Driver == network.DriverBridge && n.DNSEnabled {
				log.Warn(fmt.Sprintf("invalid network alias %q: %s, ignoring this name", al, aliasReason(err)), targetKey, "netavark::network::bridge")
			}
		}
		a.Aliases = kept
	}
}

// MaxInput is the largest network options input read: 64 MiB, room for
// thousands of networks and port mappings.
const MaxInput = 64 << 20

// inputError: the input could not be read or decoded; what names it
// ("network options", "network create").
type inputError struct {
	what string
	err  error
}

func (e *inputError) Error() string { return "failed to load " + e.what + ": " + e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// decodeInput reads the JSON input from --file or stdin.
func decodeInput(g *globals, env Env, v any) error {
	what := "network options"
	if g.verb == "create" {
		what = "network create"
	}
	var b []byte
	var err error
	if g.file != "" && g.file != "-" {
		b, err = readInputFile(g.file)
	} else {
		b, err = readLimited(env.Stdin, "standard input")
	}
	if err != nil {
		return &inputError{what, err}
	}
	g.input = b
	if err := json.Unmarshal(b, v); err != nil {
		return &inputError{what, err}
	}
	return nil
}

// readInputFile reads the file the caller named with --file: a regular
// file (safefile.Read), or a pipe or FIFO, read like standard input (a
// shell's `--file <(...)`); directories, devices and sockets are refused.
func readInputFile(p string) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return safefile.Read(p, MaxInput)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if st.Mode()&os.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("%s: %w (it is a %s)", p, safefile.ErrNotRegular, safefile.Kind(st.Mode()))
	}
	return readLimited(f, p)
}

// readLimited reads r to its end, failing past MaxInput bytes; name names
// it in errors.
func readLimited(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err == nil && len(b) > MaxInput {
		err = fmt.Errorf("%s: %w (more than %d bytes)", name, safefile.ErrTooLarge, MaxInput)
	}
	return b, err
}

// manager builds the berthnet host from the global flags and the
// environment (NETAVARK_DNS_PORT, NETAVARK_FW, RUST_LOG).
func manager(g *globals, env Env) (*berthnet.Host, error) {
	return newHost(g, env, logger(env))
}

// newHost is manager with the logger log.
func newHost(g *globals, env Env, log *slog.Logger) (*berthnet.Host, error) {
	port := uint16(53)
	if v := env.Getenv("NETAVARK_DNS_PORT"); v != "" {
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("invalid NETAVARK_DNS_PORT %s: want a port number 1-65535", v)
		}
		port = uint16(p)
	}
	name := g.firewallDriver
	if name == "" {
		name = env.Getenv("NETAVARK_FW")
	}
	fw, err := core.NewFirewall(name, nil)
	if err != nil {
		return nil, fmt.Errorf("--firewall-driver (or NETAVARK_FW): %w", err)
	}
	log.Info(firewallLine(fw.Name()), targetKey, "netavark::firewall")
	// The front-end is a client of berth's public API (package berthnet),
	// in Podman's model: Podman keeps the network files and allocates
	// the addresses.
	return berthnet.New(berthnet.Config{
		StateDir:       g.config,
		AardvarkBinary: g.aardvark,
		DNSPort:        port,
		Rootless:       g.rootless,
		FirewallDriver: fw,
		Logger:         log,
		AardvarkEnv:    aardvarkEnv(env),
		DHCP:           env.DHCP,
		// Teardown retires the container's links and a child deletes
		// them: Podman's stop and rm do not wait the 15-25 ms the kernel
		// spends on each veth (cmd/netavark and cmd/berth run the child).
		BackgroundLinkRemoval: true,
		RuntimeSysctlD:        true,
		FirewallWatcher:       env.FirewallWatcher,
	})
}

// firewallLine is netavark's log line naming the firewall driver in use.
func firewallLine(driver string) string {
	if driver == firewall.DriverNone {
		return "Not using firewall"
	}
	return "Using " + driver + " firewall driver"
}

// defaultAardvark prefers the aardvark-dns next to this program (berth's
// own DNS server in bin/), then the standard path.
func defaultAardvark() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "aardvark-dns")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return DefaultAardvark
}

// aardvarkEnv passes RUST_LOG's level on to aardvark-dns.
func aardvarkEnv(env Env) []string {
	if v := env.Getenv("RUST_LOG"); v != "" {
		if i := strings.LastIndex(v, "="); i >= 0 {
			v = v[i+1:]
		}
		return []string{"RUST_LOG=" + v}
	}
	return nil
}
