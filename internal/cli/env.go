package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/containersconf"
	"github.com/berthnet/berth/internal/core"
	"github.com/berthnet/berth/internal/dhcpproxy"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/firewall"

	"github.com/berthnet/berth/internal/netconf"
	"github.com/berthnet/berth/internal/netstore"
	"github.com/berthnet/berth/internal/rootless"
)

// HostLinks is what the host already uses: link names and the addresses
// (with prefix) configured on them. berth reads it, never changes it.
type HostLinks = engine.HostLinks

// Env is everything the berth command reads from its process: streams,
// environment, identity, the host's links and the clock. Main fills it from
// the real process; tests fill it with their own values.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads environment variables (CONTAINERS_CONF, HOME,
	// XDG_RUNTIME_DIR, XDG_DATA_HOME, NETAVARK_FW).
	Getenv func(string) string
	// Rootless selects the rootless directories and behaviour.
	Rootless bool
	// Home is the user's home directory.
	Home string
	// UID names the rootless run directory when XDG_RUNTIME_DIR is unset.
	UID int
	// Links reads the host's links; nil means none.
	Links func() (HostLinks, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Executable is the path of the berth binary (finds aardvark-dns).
	Executable string
	// FirewallWatcher is the berth binary that runs `firewall-watch`,
	// which a setup starts when none runs; empty: none.
	FirewallWatcher string
	// Firewall, when set, replaces the driver containers.conf names (tests).
	Firewall firewall.Driver
}

// ProcessEnv returns the Env of the running process.
func ProcessEnv(stdin io.Reader, stdout, stderr io.Writer) Env {
	home, _ := os.UserHomeDir()
	exe, _ := os.Executable()
	return Env{
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Getenv:     os.Getenv,
		Rootless:   os.Geteuid() != 0 || rootless.Inside(),
		Home:       home,
		UID:        rootless.RealUID(),
		Links:      engine.ReadHostLinks,
		Now:        time.Now,
		Executable: exe,
		// Not for rootless networks (see core.Config.FirewallWatcher).
		FirewallWatcher: exe,
	}
}

// globals are the root command's flags.
type globals struct {
	configDir string
	runDir    string
	logLevel  string
	// root and runRoot are the container engine's storage (images,
	// containers) and runtime state directories.
	root    string
	runRoot string
	// ctx is the command's context (cancelled by SIGINT and SIGTERM).
	ctx context.Context
}

// world is everything a command works on, resolved once per run.
type world struct {
	env    Env
	conf   *containersconf.Config
	store  *netstore.Store
	runDir string
	// root holds images and containers (--root, default /var/lib/berth,
	// rootless $XDG_DATA_HOME/berth); runRoot holds runtime state
	// (--runroot, default /run/berth, rootless $XDG_RUNTIME_DIR/berth).
	root, runRoot string
	// eng is the container engine, opened on first use.
	eng      *engine.Engine
	log      *slog.Logger
	logLevel slog.Level
	ctx      context.Context
}

var logLevels = map[string]slog.Level{
	"trace": slog.LevelDebug - 4, "debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
	"fatal": slog.LevelError + 4, "panic": slog.LevelError + 8,
}

func parseLogLevel(s string) (slog.Level, error) {
	l, ok := logLevels[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("log level %q is not supported, choose from: trace, debug, info, warn, error, fatal, panic", s)
	}
	return l, nil
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

func (e Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// openWorld resolves the configuration and directories for one command.
func openWorld(env Env, g *globals) (*world, error) {
	lvl, err := parseLogLevel(g.logLevel)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: lvl}))
	conf, err := containersconf.Load(containersconf.Env{Getenv: env.Getenv, Home: env.Home, Rootless: env.Rootless})
	if err != nil {
		return nil, err
	}
	for _, err := range conf.Skipped {
		log.Warn("containers.conf file skipped", "error", err)
	}
	cfgDir := g.configDir
	if cfgDir == "" {
		cfgDir = conf.Network.NetworkConfigDir
	}
	if cfgDir == "" {
		if env.Rootless {
			cfgDir = filepath.Join(graphRoot(env), "networks")
		} else {
			cfgDir = netstore.RootfulDir
		}
	}
	runDir := g.runDir
	if runDir == "" {
		if env.Rootless {
			runDir = filepath.Join(rootlessRuntimeDir(env.getenv, env.UID), "containers", "networks")
		} else {
			runDir = "/run/containers/networks"
		}
	}
	sub, _ := netipParsePrefix(conf.Network.DefaultSubnet)
	st, err := netstore.New(netstore.Config{Dir: cfgDir, DefaultName: conf.Network.DefaultNetwork, DefaultSubnet: sub, Logger: log, Now: env.now})
	if err != nil {
		return nil, err
	}
	root, runRoot := engineDirs(env, g)
	return &world{env: env, conf: conf, store: st, runDir: runDir, root: root, runRoot: runRoot, log: log, logLevel: lvl, ctx: g.ctx}, nil
}

// engineDirs resolves the engine's storage and runtime directories from the
// flags, BERTH_ROOT/BERTH_RUNROOT, then the defaults.
func engineDirs(env Env, g *globals) (root, runRoot string) {
	root, runRoot = g.root, g.runRoot
	if root == "" {
		root = env.getenv("BERTH_ROOT")
	}
	if runRoot == "" {
		runRoot = env.getenv("BERTH_RUNROOT")
	}
	if root == "" {
		if env.Rootless {
			base := env.getenv("XDG_DATA_HOME")
			if base == "" {
				base = filepath.Join(env.Home, ".local", "share")
			}
			root = filepath.Join(base, "berth")
		} else {
			root = "/var/lib/berth"
		}
	}
	if runRoot == "" {
		if env.Rootless {
			runRoot = filepath.Join(rootlessRuntimeDir(env.getenv, env.UID), "berth")
		} else {
			runRoot = "/run/berth"
		}
	}
	return root, runRoot
}

func netipParsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }

// graphRoot is the rootless storage root ($XDG_DATA_HOME/containers/storage).
func graphRoot(env Env) string {
	base := env.getenv("XDG_DATA_HOME")
	if base == "" {
		base = filepath.Join(env.Home, ".local", "share")
	}
	return filepath.Join(base, "containers", "storage")
}

// pools returns the subnet pools from containers.conf or Podman's defaults.
func (w *world) pools() []netconf.SubnetPool {
	var out []netconf.SubnetPool
	for _, p := range w.conf.Network.DefaultSubnetPools {
		out = append(out, netconf.SubnetPool{Base: p.Base, Size: p.Size})
	}
	return out
}

// hostLinks reads the host's links (none when Env has no reader).
func (w *world) hostLinks() (HostLinks, error) {
	if w.env.Links == nil {
		return HostLinks{}, nil
	}
	return w.env.Links()
}

// hostConfig configures the service that attaches namespaces — berth's
// public API (package berthnet) in Podman's model, with the firewall
// driver and DNS port containers.conf names; the engine opens it.
func (w *world) hostConfig() (berthnet.Config, error) {
	fw := w.env.Firewall
	if fw == nil && !w.rootlessBridges() {
		name := w.conf.Network.FirewallDriver
		if v := w.env.getenv("NETAVARK_FW"); v != "" {
			name = v
		}
		d, err := core.NewFirewall(name, nil)
		if err != nil {
			return berthnet.Config{}, fmt.Errorf("containers.conf firewall_driver: %w", err)
		}
		fw = d
	}
	// A rootless engine's bridge networks live in the rootless netns
	// (the engine sets HostNetns); its firewall is nftables bound to it
	// (berthnet's default for a host namespace).
	return berthnet.Config{
		StateDir:       w.runDir,
		AardvarkBinary: w.aardvarkBinary(),
		DNSPort:        w.conf.Network.DNSBindPort,
		Rootless:       w.env.Rootless,
		FirewallDriver: fw,
		RuntimeSysctlD: true,
		Logger:         w.log,
		DHCP:           dhcpproxy.Leaser{},
		// The first firewalled setup starts `berth firewall-watch` for
		// the run directory (rootful only: core ignores it rootless).
		FirewallWatcher: w.env.FirewallWatcher,
		// Teardown deletes each veth pair in one step rather than
		// retiring its two ends for a reaper process (the netavark
		// front-end's BackgroundLinkRemoval): a command killed between
		// retiring the container's end and its host end would leave a
		// host end that no later teardown finds by the container's
		// interface name, and the next setup of that attachment would
		// fail on it. The engine's teardowns are not latency-bound (a
		// monitor's cleanup, rm, disconnect), so it waits the kernel's
		// 15-25 ms per pair.
	}, nil
}

// forgetAddresses drops the address records of removed networks through
// the attach service (without starting the engine: system reset has
// removed its storage by then).
func (w *world) forgetAddresses(names ...string) error {
	cfg, err := w.hostConfig()
	if err != nil {
		return err
	}
	h, err := berthnet.New(cfg)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	for _, n := range names {
		errs = append(errs, h.ForgetNetworkAddresses(n))
	}
	return errors.Join(errs...)
}

// manager opens the attach service through the engine (which starts a
// rootless engine's rootless netns). Callers Close it.
func (w *world) manager() (*berthnet.Host, error) {
	e, err := w.engine()
	if err != nil {
		return nil, err
	}
	return e.OpenHost()
}

// aardvarkBinary is berth's own DNS server beside the binary, else the one
// in helper_binaries_dir, else Podman's default path.
func (w *world) aardvarkBinary() string {
	var dirs []string
	if w.env.Executable != "" {
		dirs = append(dirs, filepath.Dir(w.env.Executable))
	}
	dirs = append(dirs, w.conf.Engine.HelperBinariesDir...)
	for _, d := range dirs {
		p := filepath.Join(d, "aardvark-dns")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return netavark.DefaultAardvark
}
