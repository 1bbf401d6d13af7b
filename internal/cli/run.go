package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/berthnet/berth/internal/containersconf"
	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/monitor"
	"github.com/berthnet/berth/internal/rootless"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
)

// ctrFlags are the flags of run and create.
type ctrFlags struct {
	name, workdir, user, hostname string
	entrypoint                    string
	env, labels                   []string
	tty, interactive, rm, detach  bool
	rootfs, readOnly              bool
	stopSignal                    string
	stopTimeout                   uint
	pod                           string
	volumes, mounts, tmpfs        []string

	networks                           []string
	publish, expose                    []string
	publishAll                         bool
	ip, ip6, mac                       string
	aliases                            []string
	dns, dnsSearch, dnsOption, addHost []string
	noHosts                            bool

	rt   rtFlags
	pull pullFlags
}

func (f *ctrFlags) register(fl *pflag.FlagSet, withDetach bool) {
	fl.SetInterspersed(false)
	fl.StringVar(&f.name, "name", "", "name of the container (default: a random name)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "user (and group) to run as: USER[:GROUP], names or numbers")
	fl.StringVar(&f.hostname, "hostname", "", "container host name (default: the short container ID)")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "override the image's entrypoint: a command, or a JSON array of its words (\"\" clears it)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable KEY=VALUE (KEY alone takes the host's value)")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set a label KEY=VALUE")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	fl.BoolVar(&f.rootfs, "rootfs", false, "the first argument is a root filesystem directory, not an image")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the root filesystem read-only")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal that stops the container (default SIGTERM)")
	fl.UintVar(&f.stopTimeout, "stop-timeout", 10, "seconds to wait after the stop signal before SIGKILL")
	if withDetach {
		fl.BoolVarP(&f.detach, "detach", "d", false, "run in the background and print the container ID")
	}
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "mount a volume or host directory: [NAME|HOST-DIR:]CTR-DIR[:OPTIONS] (repeatable)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "mount: type=bind|volume|tmpfs,source=,target=[,ro,...] (repeatable)")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs: CTR-DIR[:OPTIONS] (repeatable)")
	fl.StringVar(&f.pod, "pod", "", "run the container in this pod (it shares the pod's network, IPC and UTS namespaces)")
	f.registerNet(fl)
	f.registerRuntime(fl)
	f.pull.register(fl)
}

// registerNet registers the network flags (run, create and pod create).
func (f *ctrFlags) registerNet(fl *pflag.FlagSet) {
	fl.StringArrayVar(&f.networks, "network", nil, "network mode: bridge, NAME[:ip=,ip6=,mac=,alias=,interface_name=] (repeatable), none, host, container:ID, ns:PATH")
	fl.StringArrayVar(&f.networks, "net", nil, "alias of --network")
	_ = fl.MarkHidden("net")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish ports: [[ip:][hostPort]:]containerPort[/proto], ranges 8080-8081:80-81, IPv6 as [::1]:8080:80")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish every exposed port to a random host port")
	fl.StringArrayVar(&f.expose, "expose", nil, "expose a port or range (port[-end][/proto]) for -P")
	fl.StringVar(&f.ip, "ip", "", "static IPv4 address on the container's network")
	fl.StringVar(&f.ip6, "ip6", "", "static IPv6 address on the container's network")
	fl.StringVar(&f.mac, "mac-address", "", "static MAC address of the container's interface")
	fl.StringArrayVar(&f.aliases, "network-alias", nil, "DNS alias on every network (repeatable)")
	fl.StringArrayVar(&f.dns, "dns", nil, "DNS server for the container (or none: no resolv.conf)")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "DNS search domain (. removes the search line)")
	fl.StringArrayVar(&f.dnsOption, "dns-option", nil, "resolver option (ndots:2, ...)")
	fl.StringArrayVar(&f.addHost, "add-host", nil, "add a line to /etc/hosts: NAME[;NAME2]:IP (IP may be host-gateway)")
	fl.BoolVar(&f.noHosts, "no-hosts", false, "do not create /etc/hosts")
}

// parseLabels reads --label KEY=VALUE flags (KEY alone: an empty value)
// into a map, nil without any.
func parseLabels(labels []string) (map[string]string, error) {
	var m map[string]string
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf("--label %q: want KEY=VALUE", l)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
}

// options validates the flags into engine options; args are IMAGE|DIR
// then the command.
func (f *ctrFlags) options(cmd *cobra.Command, env Env, args []string) (engine.CreateOptions, error) {
	o := engine.CreateOptions{
		Name: f.name, WorkingDir: f.workdir, User: f.user, Hostname: f.hostname,
		Terminal: f.tty, Stdin: f.interactive, Remove: f.rm, ReadOnly: f.readOnly,
		StopSignal: f.stopSignal, NoHosts: f.noHosts,
	}
	if f.rootfs {
		o.Rootfs = args[0]
	} else {
		o.Image = args[0]
	}
	o.Args = args[1:]
	if cmd.Flags().Changed("entrypoint") {
		o.Entrypoint = runspec.ParseEntrypoint(f.entrypoint)
	}
	if cmd.Flags().Changed("stop-timeout") {
		t := f.stopTimeout
		o.StopTimeout = &t
	}
	if err := f.processOptions(env, &o); err != nil {
		return o, err
	}
	if err := f.storageOptions(&o); err != nil {
		return o, err
	}
	if err := f.runtimeOptions(cmd, &o); err != nil {
		return o, err
	}
	if f.pod != "" {
		for _, name := range []string{"network", "net", "publish", "publish-all", "expose", "ip", "ip6", "mac-address", "network-alias", "dns", "dns-search", "dns-option", "add-host", "no-hosts"} {
			if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
				return o, fmt.Errorf("--%s cannot be used with --pod: the pod's network is configured with pod create", name)
			}
		}
		o.Pod = f.pod
	}
	return o, f.networkOptions(env, &o)
}

// processOptions checks the name, working directory and stop signal and
// sets the environment (KEY alone takes the caller's value, if any) and
// labels.
func (f *ctrFlags) processOptions(env Env, o *engine.CreateOptions) error {
	if f.name != "" && !engine.ValidName(f.name) {
		return fmt.Errorf("--name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", f.name)
	}
	if f.workdir != "" && !strings.HasPrefix(f.workdir, "/") {
		return fmt.Errorf("--workdir %q: must be an absolute path", f.workdir)
	}
	for _, e := range f.env {
		k, _, hasValue := strings.Cut(e, "=")
		if k == "" {
			return fmt.Errorf("--env %q: want KEY=VALUE", e)
		}
		if !hasValue {
			v := env.getenv(k)
			if v == "" {
				continue
			}
			e = k + "=" + v
		}
		o.Env = append(o.Env, e)
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return err
	}
	o.Labels = labels
	if f.stopSignal != "" {
		if _, err := engine.ParseSignal(f.stopSignal); err != nil {
			return fmt.Errorf("--stop-signal: %w", err)
		}
	}
	return nil
}

// rootlessDefaultNet is the network of a rootless container given no
// --network: containers.conf's default_rootless_network_cmd.
func rootlessDefaultNet(env Env) (runopts.NetMode, error) {
	conf, err := containersconf.Load(containersconf.Env{Getenv: env.Getenv, Home: env.Home, Rootless: env.Rootless})
	if err != nil {
		return runopts.NetMode{}, err
	}
	if conf.Network.DefaultRootlessNetworkCmd == rootless.CmdSlirp {
		return runopts.NetMode{Kind: runopts.ModeSlirp}, nil
	}
	return runopts.NetMode{Kind: runopts.ModePasta}, nil
}

// networkOptions parses the network mode (a user-mode network of its
// own for a rootless container given none), addresses, published and
// exposed ports, DNS and extra hosts.
func (f *ctrFlags) networkOptions(env Env, o *engine.CreateOptions) error {
	var err error
	if o.Net, err = runopts.ParseNetworks(f.networks); err != nil {
		return err
	}
	if len(f.networks) == 0 && env.Rootless {
		// As rootless Podman 5: a user-mode network of the container's
		// own, pasta unless containers.conf names slirp4netns.
		if o.Net, err = rootlessDefaultNet(env); err != nil {
			return err
		}
	}
	if err := (runopts.Single{IP: f.ip, IP6: f.ip6, MAC: f.mac, Aliases: f.aliases}).Apply(&o.Net); err != nil {
		return err
	}
	for _, p := range f.publish {
		pms, err := runopts.ParsePublish(p)
		if err != nil {
			return err
		}
		o.Ports = append(o.Ports, pms...)
	}
	o.PublishAll = f.publishAll
	for _, x := range f.expose {
		ep, err := runopts.ParseExpose(x)
		if err != nil {
			return err
		}
		o.Expose = append(o.Expose, ep)
	}
	if o.DNS, err = runopts.ParseDNS(f.dns, f.dnsSearch, f.dnsOption, o.Net.Kind); err != nil {
		return err
	}
	if f.noHosts && len(f.addHost) > 0 {
		return errors.New("--no-hosts and --add-host cannot be set together")
	}
	for _, h := range f.addHost {
		eh, err := runopts.ParseAddHost(h)
		if err != nil {
			return err
		}
		o.AddHosts = append(o.AddHosts, eh)
	}
	return nil
}

func ctrCreateCmd(env Env, g *globals) *cobra.Command {
	f := &ctrFlags{}
	c := &cobra.Command{
		Use:   "create [options] IMAGE|--rootfs DIR [COMMAND [ARG...]]",
		Short: "Create a container without starting it",
		Long: `Create a container: its configuration, name and published host ports
(random ones are chosen now). berth start runs it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(cmd, env, args)
			if err != nil {
				return err
			}
			if err := rootlessReady(env); err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if err := f.pull.ensure(cmd, env, g, o.Image); err != nil {
				return err
			}
			c, warns, err := f.create(e, o)
			if err != nil {
				return err
			}
			for _, wm := range warns {
				fmt.Fprintln(env.Stderr, wm)
			}
			fmt.Fprintln(env.Stdout, c.Config.ID)
			return nil
		},
	}
	f.register(c.Flags(), false)
	registerUnsupported(c.Flags())
	return c
}

func runCmd(env Env, g *globals) *cobra.Command {
	f := &ctrFlags{}
	c := &cobra.Command{
		Use:   "run [options] IMAGE|--rootfs DIR [COMMAND [ARG...]]",
		Short: "Run a command in a new container",
		Long: `Create and start a container. In the foreground, its output is
attached and berth exits with the container's exit code; with -d the
container ID is printed and the container keeps running under its monitor.

Networking as Podman rootful: the default network (podman) unless --network
says otherwise; -p publishes ports (held open on the host while the
container runs); /etc/hosts and /etc/resolv.conf are generated.`,
		Example: `  berth run -d --name web -p 8080:80 --rootfs ./rootfs httpd -f -p 80
  berth run --rm --network mynet --rootfs ./rootfs sh -c 'ping -c1 web'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(cmd, env, args)
			if err != nil {
				return err
			}
			if err := rootlessReady(env); err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if err := f.pull.ensure(cmd, env, g, o.Image); err != nil {
				return err
			}
			c, warns, err := f.create(e, o)
			if err != nil {
				return err
			}
			for _, wm := range warns {
				fmt.Fprintln(env.Stderr, wm)
			}
			id := c.Config.ID
			if f.detach {
				if _, err := e.Start(id, engine.StartOptions{}); err != nil {
					if o.Remove {
						_, _ = e.Remove(id, true)
					}
					return startError(err)
				}
				fmt.Fprintln(env.Stdout, id)
				return nil
			}
			code, err := attachRun(e, id, env, o.Stdin)
			if err != nil {
				if o.Remove {
					_, _ = e.Remove(id, true)
				}
				return startError(err)
			}
			if o.Remove {
				// The monitor removes the container; run returns after it.
				e.WaitRemoved(id, 10*time.Second)
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f.register(c.Flags(), true)
	registerUnsupported(c.Flags())
	return c
}

// startError keeps Podman's exit codes for start failures (126/127 for a
// command that cannot run).
func startError(err error) error {
	var se *monitor.StartError
	if errors.As(err, &se) {
		return &exitError{code: se.Code, err: err}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		// Podman reports a busy host port from the runtime: 126.
		return &exitError{code: 126, err: err}
	}
	return err
}

// attachRun starts the container attached: output goes to the caller's
// streams, stdin (with -i) to the container; it returns the exit code.
func attachRun(e *engine.Engine, id string, env Env, stdin bool) (int, error) {
	var conn net.Conn
	_, err := e.Start(id, engine.StartOptions{Attach: func() error {
		c, err := monitor.DialUnix(e.AttachSocket(id))
		if err != nil {
			return err
		}
		conn = c
		return nil
	}})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return 0, err
	}
	// With -t -i on a terminal, keys (Ctrl-C too) go to the container raw.
	if c, err := e.Get(id); err == nil && c.Config.Terminal && stdin {
		if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			if st, err := term.MakeRaw(int(f.Fd())); err == nil {
				defer func() { _ = term.Restore(int(f.Fd()), st) }()
			}
		}
	}
	// Signals to berth go to the container (Podman's --sig-proxy).
	sigs := make(chan os.Signal, 8)
	done := make(chan struct{})
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	defer func() { signal.Stop(sigs); close(done) }()
	go func() {
		for {
			select {
			case s := <-sigs:
				if sig, ok := s.(syscall.Signal); ok {
					_, _ = e.Kill(id, strconv.Itoa(int(sig)))
				}
			case <-done:
				return
			}
		}
	}()
	return pumpAttach(e, id, conn, env, stdin)
}

// pumpAttach copies frames until the exit frame and returns the code.
func pumpAttach(e *engine.Engine, id string, conn net.Conn, env Env, stdin bool) (int, error) {
	defer conn.Close()
	var once sync.Once
	if stdin && env.Stdin != nil {
		go func() {
			_, _ = io.Copy(conn, env.Stdin)
			once.Do(func() {
				if uc, ok := conn.(*net.UnixConn); ok {
					_ = uc.CloseWrite()
				}
			})
		}()
	}
	for {
		stream, data, err := monitor.ReadFrame(conn)
		if err != nil {
			break
		}
		switch stream {
		case monitor.StreamStdout:
			_, _ = env.Stdout.Write(data)
		case monitor.StreamStderr:
			_, _ = env.Stderr.Write(data)
		case monitor.StreamExit:
			var code int
			if _, err := fmt.Sscan(string(data), &code); err == nil {
				return code, nil
			}
		}
	}
	// No exit frame: ask the record.
	c, err := e.Wait(id)
	if err != nil {
		if errors.Is(err, engine.ErrNoSuchContainer) {
			return 0, nil
		}
		return 0, err
	}
	return c.State.ExitCode, nil
}

func openEngine(env Env, g *globals) (*world, *engine.Engine, error) {
	w, err := openWorld(env, g)
	if err != nil {
		return nil, nil, err
	}
	e, err := w.engine()
	if err != nil {
		return nil, nil, err
	}
	return w, e, nil
}

func startCmd(env Env, g *globals) *cobra.Command {
	var attach, interactive, all bool
	var filters []string
	c := &cobra.Command{
		Use:   "start [options] CONTAINER...",
		Short: "Start one or more containers",
		Long: "Start created or exited containers and print their names; with -a attach to one and exit with its exit code.\n" +
			"--all starts every container (those --filter matches: `--all --filter restart-policy=always` at boot) and prints their IDs.",
		RunE: func(cmd *cobra.Command, args []string) error {
			w, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if all || len(filters) > 0 {
				return startAll(env, g, w, e, args, filters, attach)
			}
			if len(args) == 0 {
				return errors.New("start requires at least one argument")
			}
			if attach {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				c, err := e.Get(args[0])
				if err != nil {
					return err
				}
				code, err := attachRun(e, c.Config.ID, env, interactive && c.Config.Stdin)
				if err != nil {
					return startError(err)
				}
				if code != 0 {
					return &exitError{code: code}
				}
				return nil
			}
			return forEach(env, args, func(a string) (string, error) {
				if _, err := e.Start(a, engine.StartOptions{}); err != nil {
					return "", startError(err)
				}
				return a, nil
			})
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "attach the container's output and exit with its exit code")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach stdin (with -a)")
	c.Flags().BoolVar(&all, "all", false, "start all containers (that --filter matches)")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "start the containers that match (ps's filters, e.g. restart-policy=always)")
	return c
}

// storageOptions parses -v, --mount and --tmpfs; a destination may be
// given once.
func (f *ctrFlags) storageOptions(o *engine.CreateOptions) error {
	for _, p := range []struct {
		vals  []string
		parse func(string) (runopts.Mount, error)
	}{{f.mounts, runopts.ParseMount}, {f.volumes, runopts.ParseVolume}, {f.tmpfs, runopts.ParseTmpfs}} {
		for _, v := range p.vals {
			m, err := p.parse(v)
			if err != nil {
				return err
			}
			o.Mounts = append(o.Mounts, m)
		}
	}
	return runopts.CheckMounts(o.Mounts)
}
