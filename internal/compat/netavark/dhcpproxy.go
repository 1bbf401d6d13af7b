package netavark

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthnet/berth/internal/sdactivation"
)

// The DHCP proxy's defaults (as in netavark; internal/dhcpproxy has the
// same values, a test keeps them equal).
const (
	DefaultProxyDir             = "/run/podman"
	DefaultProxyTimeout         = 8 * time.Second
	DefaultProxyActivityTimeout = 300 * time.Second
)

// ProxyConfig is what the dhcp-proxy command passes to Env.ServeDHCPProxy.
type ProxyConfig struct {
	// Dir holds the lease cache, SocketDir the socket (nv-proxy.sock).
	Dir, SocketDir string
	// Listener is the socket systemd passed; nil: listen in SocketDir.
	Listener        net.Listener
	Timeout         time.Duration
	ActivityTimeout time.Duration
	Logger          *slog.Logger
}

// dhcpProxyCmd is `netavark dhcp-proxy [--dir D] [--uds D] [--timeout S]
// [--activity-timeout S]`: the DHCP proxy server, on <uds>/nv-proxy.sock or
// on the socket systemd passes (LISTEN_FDS, fd 3). Env
// NETAVARK_PROXY_RUN_DIR_ENV overrides both directories, as in netavark.
//
// The command parses its own flags: netavark's short -a is
// --activity-timeout here (the systemd unit runs `dhcp-proxy -a 30`), while
// on the other commands it is the global --aardvark-binary.
func dhcpProxyCmd(g *globals, env Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "dhcp-proxy [--dir DIR] [--uds DIR] [--timeout SECONDS] [--activity-timeout SECONDS]",
		Short: "serve DHCP leases for containers on dhcp networks (netavark's gRPC API on a unix socket)",
		Long: "dhcp-proxy leases addresses for containers on macvlan networks whose IPAM driver is dhcp.\n" +
			"It listens on <uds>/nv-proxy.sock (or the socket systemd passes), runs a DHCP client\n" +
			"inside each container's namespace, keeps the leases renewed and caches them in\n" +
			"<dir>/nv-proxy.lease so a restarted proxy resumes them.",
		DisableFlagParsing: true,
	}
	var (
		dir, uds          string
		timeout, activity uint64
		help              bool
	)
	f := pflag.NewFlagSet("dhcp-proxy", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	f.StringVarP(&dir, "dir", "d", DefaultProxyDir, "directory of the lease cache (nv-proxy.lease)")
	f.StringVarP(&uds, "uds", "u", DefaultProxyDir, "directory of the socket (nv-proxy.sock)")
	f.Uint64VarP(&timeout, "timeout", "t", uint64(DefaultProxyTimeout/time.Second), "seconds to wait for a DHCP server's answer to a new lease")
	f.Uint64VarP(&activity, "activity-timeout", "a", uint64(DefaultProxyActivityTimeout/time.Second), "exit after this many seconds without leases or calls (0: never)")
	f.BoolVarP(&help, "help", "h", false, "help for dhcp-proxy")
	// The global flags may come along; they do not concern the proxy.
	var ignored string
	var ignoredList []string
	for _, name := range []string{"config", "aardvark-binary", "firewall-driver", "file"} {
		f.StringVar(&ignored, name, "", "")
		_ = f.MarkHidden(name)
	}
	f.StringArrayVar(&ignoredList, "plugin-directory", nil, "")
	_ = f.MarkHidden("plugin-directory")
	f.BoolVar(new(bool), "rootless", false, "")
	_ = f.MarkHidden("rootless")
	c.SetUsageTemplate("Usage:\n  {{.UseLine}}\n\nFlags:\n" + f.FlagUsages())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.Parse(args); err != nil {
			return usageError{fmt.Errorf("dhcp-proxy: %w", err)}
		}
		if help {
			return cmd.Help()
		}
		if f.NArg() > 0 {
			return usageError{fmt.Errorf("dhcp-proxy takes no arguments, got %q", f.Args())}
		}
		if d := env.Getenv("NETAVARK_PROXY_RUN_DIR_ENV"); d != "" {
			dir, uds = d, d
		}
		if env.ServeDHCPProxy == nil {
			return delegate(g, env, "dhcp-proxy")
		}
		ln, err := sdactivation.Listener(env.Getenv)
		if err != nil {
			return err
		}
		return env.ServeDHCPProxy(cmd.Context(), ProxyConfig{
			Dir:             dir,
			SocketDir:       uds,
			Listener:        ln,
			Timeout:         time.Duration(timeout) * time.Second,
			ActivityTimeout: time.Duration(activity) * time.Second,
			Logger:          logger(env),
		})
	}
	return c
}
