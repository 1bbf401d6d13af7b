// Package overlay is the front-end of berth's multi-host overlay network:
// the CNI plugin berth-overlay (spec 1.1: ADD, DEL, CHECK, STATUS, GC,
// VERSION) and the command line of the per-host agent (`berth-overlay
// agent`, package overlay/agent).
//
// The plugin never talks to etcd: it reads the agent's state file and has
// berth's attach service (package berthnet) attach the container to the
// agent's bridge as an unmanaged bridge network on the host's subnet, which
// allocates the address and creates the veth. The pure parts (leases,
// subnet choice, the forwarding plan) live in overlay/lease.
package overlay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/spf13/pflag"

	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/overlay/agent"
)

// Main runs berth-overlay with its command-line arguments: `agent ...`
// runs the per-host agent, anything else is a CNI plugin call (the verb
// comes from CNI_COMMAND). It returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[1] == "agent" {
		return agentMain(args[2:], stdout, stderr)
	}
	if e := skel.PluginMainFuncsWithError(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus},
		version.All, "berth-overlay "+buildinfo.Version+": VXLAN overlay on etcd subnet leases (run `berth-overlay agent --help` for the host agent)"); e != nil {
		if err := e.Print(); err != nil {
			fmt.Fprintln(stderr, "write error:", err)
		}
		return 1
	}
	return 0
}

// agentMain runs `berth-overlay agent` with its arguments until SIGINT or
// SIGTERM; it returns the exit code.
func agentMain(args []string, stdout, stderr io.Writer) int {
	fs, a := agentFlagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "berth-overlay agent:", err)
		return 1
	}
	cfg, err := a.config(stderr)
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx, cfg); err != nil {
		return fail(err)
	}
	return 0
}

// agentFlags are the agent's flags: those agent.Config takes as they are,
// and the raw text of the rest.
type agentFlags struct {
	cfg                   agent.Config
	endpoints             []string
	rangeS, subnetS, pubS string
	caFile, cert, key     string
	logLevel              string
}

// agentFlagSet declares the agent's flags; usage goes to stderr.
func agentFlagSet(stderr io.Writer) (*pflag.FlagSet, *agentFlags) {
	fs := pflag.NewFlagSet("berth-overlay agent", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: berth-overlay agent --network NAME --etcd-endpoints URL[,URL...] --range CIDR --vni N [flags]\n\n"+
			"Keeps this host's share of an overlay network: a subnet lease in etcd, the VXLAN\n"+
			"device and bridge, and routes to every other host's subnet. Runs until SIGINT/SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	a := &agentFlags{}
	cfg := &a.cfg
	fs.StringVar(&cfg.Network, "network", "", "network name: the CNI conflist's \"name\"")
	fs.StringSliceVar(&a.endpoints, "etcd-endpoints", nil, "etcd client URLs (comma-separated)")
	fs.StringVar(&cfg.Prefix, "etcd-prefix", "", "etcd key prefix (default /berth/overlay/NETWORK)")
	fs.StringVar(&a.caFile, "etcd-cafile", "", "CA bundle to verify etcd's certificate")
	fs.StringVar(&a.cert, "etcd-certfile", "", "client certificate for etcd")
	fs.StringVar(&a.key, "etcd-keyfile", "", "client key for etcd")
	fs.StringVar(&a.rangeS, "range", "", "the network's address range, e.g. 10.78.0.0/16 (all hosts must agree)")
	fs.IntVar(&cfg.Overlay.SubnetLen, "subnet-len", 24, "prefix length of each host's subnet")
	fs.IntVar(&cfg.Overlay.VNI, "vni", 1, "VXLAN network identifier")
	fs.IntVar(&cfg.Overlay.Port, "port", 4789, "VXLAN UDP port")
	fs.StringVar(&a.subnetS, "subnet", "", "claim exactly this subnet (refused if another host holds it)")
	fs.StringVar(&cfg.Iface, "iface", "", "underlay interface (default: the default route's)")
	fs.StringVar(&a.pubS, "public-ip", "", "address other hosts reach this one at (default: the interface's first IPv4)")
	fs.DurationVar(&cfg.TTL, "lease-ttl", 20*time.Second, "etcd lease TTL: how long routes to a dead host remain")
	fs.DurationVar(&cfg.Resync, "resync", time.Minute, "interval of full re-reads of etcd and the kernel")
	fs.StringVar(&cfg.StateDir, "state-dir", agent.DefaultStateDir, "directory shared with the plugin (its stateDir)")
	fs.StringVar(&cfg.VXLAN, "vxlan", "", "VXLAN device name (default berth.VNI)")
	fs.StringVar(&cfg.Bridge, "bridge", "", "container bridge name (default berthbrVNI)")
	fs.IntVar(&cfg.MTU, "mtu", 0, "overlay MTU (default: the underlay's less 50)")
	fs.StringVar(&cfg.Host, "hostname", "", "host name recorded in the lease (default: hostname)")
	fs.BoolVar(&cfg.ReleaseOnExit, "release-on-exit", false, "delete the lease on SIGTERM (other hosts withdraw routes at once)")
	fs.StringVar(&a.logLevel, "log-level", "info", "debug, info, warn or error")
	return fs, a
}

// config checks the parsed flags and completes the agent's configuration,
// logging to stderr.
func (a *agentFlags) config(stderr io.Writer) (agent.Config, error) {
	cfg := a.cfg
	var err error
	if cfg.Endpoints, err = agent.ParseEndpoints(a.endpoints); err != nil {
		return cfg, err
	}
	if a.rangeS == "" {
		return cfg, fmt.Errorf("--range: give the network's address range, e.g. 10.78.0.0/16")
	}
	if cfg.Overlay.Network, err = netip.ParsePrefix(a.rangeS); err != nil {
		return cfg, fmt.Errorf("--range %q: want a CIDR such as 10.78.0.0/16", a.rangeS)
	}
	if a.subnetS != "" {
		if cfg.Subnet, err = netip.ParsePrefix(a.subnetS); err != nil {
			return cfg, fmt.Errorf("--subnet %q: want a CIDR such as 10.78.3.0/24", a.subnetS)
		}
	}
	if a.pubS != "" {
		if cfg.PublicIP, err = netip.ParseAddr(a.pubS); err != nil || !cfg.PublicIP.Is4() {
			return cfg, fmt.Errorf("--public-ip %q: want an IPv4 address", a.pubS)
		}
	}
	if a.caFile != "" || a.cert != "" {
		if cfg.TLS, err = tlsConfig(a.caFile, a.cert, a.key); err != nil {
			return cfg, err
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(a.logLevel))); err != nil {
		return cfg, fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("network", cfg.Network)
	return cfg, nil
}

func tlsConfig(caFile, cert, key string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cafile: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--etcd-cafile %s: no PEM certificate in it", caFile)
		}
	}
	if cert != "" || key != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--etcd-certfile/--etcd-keyfile: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}
