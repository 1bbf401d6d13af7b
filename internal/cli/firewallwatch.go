package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/containersconf"
	"github.com/berthnet/berth/internal/core"
)

// firewallWatchCmd is `berth firewall-watch` (hidden): the firewall
// watcher of a network run directory, which restores berth's rules
// within a second when someone else removes them. The first firewalled
// setup starts it (Env.FirewallWatcher); the berth-firewall.service unit
// runs it with --stay. It logs to stderr from info level. Another watcher
// of the directory running is no error: without --stay it exits at once,
// with --stay it waits for that one to end.
func firewallWatchCmd(env Env, g *globals) *cobra.Command {
	var dir, driver string
	var port uint16
	var stay bool
	c := &cobra.Command{
		Use:    core.WatchCommand,
		Short:  "Restore berth's firewall rules when someone else removes them (a service; started by setup)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if env.Rootless {
				return errors.New("the firewall watcher is for rootful networks")
			}
			conf, err := containersconf.Load(containersconf.Env{Getenv: env.Getenv, Home: env.Home})
			if err != nil {
				return err
			}
			if dir == "" {
				dir = g.runDir
			}
			if dir == "" {
				dir = "/run/containers/networks"
			}
			if driver == "" {
				driver = conf.Network.FirewallDriver
				if v := env.getenv("NETAVARK_FW"); v != "" {
					driver = v
				}
			}
			if port == 0 {
				port = conf.Network.DNSBindPort
			}
			fw, err := core.NewFirewall(driver, nil)
			if err != nil {
				return err
			}
			h, err := berthnet.New(berthnet.Config{StateDir: dir, FirewallDriver: fw, DNSPort: port, Logger: core.WatchLogger(env.Stderr)})
			if err != nil {
				return err
			}
			defer h.Close()
			err = h.WatchFirewall(cmd.Context(), stay)
			if errors.Is(err, berthnet.ErrWatcherRunning) {
				return nil
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "config", "", "state directory to watch (default: --network-run-dir, /run/containers/networks)")
	f.StringVar(&driver, "firewall-driver", "", "firewall driver (default: containers.conf firewall_driver or NETAVARK_FW, else nftables)")
	f.Uint16Var(&port, "dns-port", 0, "the DNS port the networks' rules redirect to (default: containers.conf dns_bind_port, else 53)")
	f.BoolVar(&stay, "stay", false, "keep running while no network has containers (as a service)")
	return c
}
