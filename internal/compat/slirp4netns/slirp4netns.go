// Package slirp4netns is berth's slirp4netns-compatible front-end: the
// command line Podman passes to its network_cmd_path
// (`slirp4netns --disable-host-loopback --mtu=65520 --enable-sandbox
// --enable-seccomp --enable-ipv6 -c -r 3 -e 4 --netns-type=path NETNS tap0`),
// the --help text Podman parses to detect features, the ready and exit
// file descriptors, and the JSON API socket (add_hostfwd, list_hostfwd,
// remove_hostfwd) with slirp4netns's replies and error strings. The network
// itself is internal/usernet.
package slirp4netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"strconv"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/usernet"
)

// Env is what the front-end reads from its process.
type Env struct {
	Stdout, Stderr io.Writer
	// LogLevel is the level of the diagnostics on Stderr (default info).
	LogLevel slog.Level
}

// Version is the slirp4netns release whose interface this front-end
// implements.
const Version = "1.2.0"

const usage = `Usage: slirp4netns [OPTION]... PID|PATH [TAPNAME]
User-mode networking for unprivileged network namespaces (berth, gVisor netstack).

-c, --configure          bring up the interface
-e, --exit-fd=FD         specify the FD for terminating slirp4netns
-r, --ready-fd=FD        specify the FD to write to when the network is configured
-m, --mtu=MTU            specify MTU (default=65520, max=65521)
-6, --enable-ipv6        enable IPv6
-a, --api-socket=PATH    specify API socket path
--cidr=CIDR              specify network address CIDR (default=10.0.2.0/24)
--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace
--netns-type=TYPE        specify network namespace type ([path|pid], default=pid)
--userns-path=PATH       specify user namespace path
--enable-sandbox         accepted for compatibility (berth needs no sandbox: no C parser in the packet path)
--enable-seccomp         accepted for compatibility
--outbound-addr=IPv4     sets outbound ipv4 address to bound to
--outbound-addr6=IPv6    sets outbound ipv6 address to bound to
--disable-dns            disables 10.0.2.3 (or configured internal ip) to host dns redirect
--macaddress=MAC         specify the MAC address of the TAP (only valid with -c)
--target-type=TYPE       specify the target type ([netns], default=netns)
-h, --help               show this help and exit
-v, --version            show version and exit
`

type options struct {
	configure, ipv6, noHostLoopback, sandbox, seccomp, noDNS, help, version bool

	exitFD, readyFD, mtu                                        int
	apiSocket, cidr, netnsType, usernsPath, outbound, outbound6 string
	mac, targetType                                             string

	target, tap string
	helperFD    int
	// joined: this process re-executed itself inside the target's user
	// namespace; args are the original arguments (for that re-exec).
	joined bool
	args   []string
}

// netnsPath is the target namespace's path.
func (o *options) netnsPath() string {
	if o.netnsType == "pid" {
		return fmt.Sprintf("/proc/%s/ns/net", o.target)
	}
	return o.target
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{args: args}
	fs := pflag.NewFlagSet("slirp4netns", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.BoolVarP(&o.configure, "configure", "c", false, "")
	fs.IntVarP(&o.exitFD, "exit-fd", "e", -1, "")
	fs.IntVarP(&o.readyFD, "ready-fd", "r", -1, "")
	fs.IntVarP(&o.mtu, "mtu", "m", usernet.DefaultMTU, "")
	fs.BoolVarP(&o.ipv6, "enable-ipv6", "6", false, "")
	fs.StringVarP(&o.apiSocket, "api-socket", "a", "", "")
	fs.StringVar(&o.cidr, "cidr", "", "")
	fs.BoolVar(&o.noHostLoopback, "disable-host-loopback", false, "")
	fs.StringVar(&o.netnsType, "netns-type", "pid", "")
	fs.StringVar(&o.usernsPath, "userns-path", "", "")
	fs.BoolVar(&o.sandbox, "enable-sandbox", false, "")
	fs.BoolVar(&o.seccomp, "enable-seccomp", false, "")
	fs.StringVar(&o.outbound, "outbound-addr", "", "")
	fs.StringVar(&o.outbound6, "outbound-addr6", "", "")
	fs.BoolVar(&o.noDNS, "disable-dns", false, "")
	fs.StringVar(&o.mac, "macaddress", "", "")
	fs.StringVar(&o.targetType, "target-type", "netns", "")
	fs.IntVar(&o.helperFD, helperFlag, -1, "")
	fs.BoolVar(&o.joined, joinedFlag, false, "")
	fs.BoolVarP(&o.help, "help", "h", false, "")
	fs.BoolVarP(&o.version, "version", "v", false, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.help || o.version {
		return o, nil
	}
	rest := fs.Args()
	if len(rest) < 1 || len(rest) > 2 {
		return nil, errors.New("expected PID|PATH [TAPNAME]")
	}
	o.target, o.tap = rest[0], "tap0"
	if len(rest) == 2 {
		o.tap = rest[1]
	}
	switch o.netnsType {
	case "pid":
		if _, err := strconv.Atoi(o.target); err != nil {
			return nil, fmt.Errorf("PID %q: not a number (use --netns-type=path for a namespace path)", o.target)
		}
	case "path":
	default:
		return nil, fmt.Errorf("--netns-type %q: must be path or pid", o.netnsType)
	}
	if o.targetType != "netns" {
		return nil, fmt.Errorf("--target-type %q: only netns is supported", o.targetType)
	}
	if o.mtu <= 0 || o.mtu > usernet.MaxMTU {
		return nil, fmt.Errorf("MTU must be a positive integer (< %d)", usernet.MaxMTU+1)
	}
	if o.mac != "" && !o.configure {
		return nil, errors.New("--macaddress can only be used with --configure")
	}
	return o, nil
}

// config turns the options into a usernet configuration.
func (o *options) config(log *slog.Logger) (usernet.Config, net.HardwareAddr, error) {
	cfg := usernet.Config{
		MTU:                 o.mtu,
		IPv6:                o.ipv6,
		DisableHostLoopback: o.noHostLoopback,
		DisableDNS:          o.noDNS,
		Logger:              log,
	}
	if o.cidr != "" {
		p, err := netip.ParsePrefix(o.cidr)
		if err != nil {
			return cfg, nil, fmt.Errorf("--cidr %q: %w", o.cidr, err)
		}
		cfg.CIDR = p
	}
	var err error
	if cfg.OutboundAddr, err = outboundAddr(o.outbound, false); err != nil {
		return cfg, nil, fmt.Errorf("--outbound-addr: %w", err)
	}
	if cfg.OutboundAddr6, err = outboundAddr(o.outbound6, true); err != nil {
		return cfg, nil, fmt.Errorf("--outbound-addr6: %w", err)
	}
	var mac net.HardwareAddr
	if o.mac != "" {
		if mac, err = net.ParseMAC(o.mac); err != nil || len(mac) != 6 {
			return cfg, nil, fmt.Errorf("--macaddress %q: not a MAC address", o.mac)
		}
	}
	cfg, err = cfg.WithDefaults()
	return cfg, mac, err
}

// outboundAddr resolves an address or an interface name (its first
// address of the family) on the host.
func outboundAddr(s string, v6 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is4() == v6 {
			return netip.Addr{}, fmt.Errorf("%s is not an IPv%s address", s, map[bool]string{false: "4", true: "6"}[v6])
		}
		return a, nil
	}
	ifc, err := net.InterfaceByName(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is neither an address nor an interface", s)
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ip, _ := netip.AddrFromSlice(n.IP)
			ip = ip.Unmap()
			if ip.Is4() != v6 && !ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no usable address", s)
}

// Run executes slirp4netns with args and returns the exit code. It runs
// until the exit fd reports an event, ctx ends, or the TAP goes away.
func Run(ctx context.Context, args []string, env Env) int {
	o, err := parse(args, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "slirp4netns: %v\n\n%s", err, usage)
		return 1
	}
	if o.help {
		fmt.Fprint(env.Stdout, usage)
		return 0
	}
	if o.version {
		fmt.Fprintf(env.Stdout, "slirp4netns version %s (berth %s)\ncommit: %s\nlibslirp: none (gVisor netstack)\n", Version, buildinfo.Version, buildinfo.Commit)
		return 0
	}
	return runParsed(ctx, o, env, nil)
}

// runParsed runs with parsed options; adjust (tests) may change the
// network configuration before the stack starts.
func runParsed(ctx context.Context, o *options, env Env, adjust func(*usernet.Config)) int {
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: env.LogLevel}))
	if p := os.Getenv("BERTH_CPUPROFILE"); p != "" { // profiling the stack (bench)
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	if err := run(ctx, o, log, adjust); err != nil {
		fmt.Fprintf(env.Stderr, "slirp4netns: %v\n", err)
		return 1
	}
	return 0
}

// run builds the network configuration, opens the TAP device in the
// guest's namespace (from inside the container's user namespace when
// that can be joined), serves the user-mode stack on it and returns when
// ctx ends, the exit fd fires or the TAP device goes away.
func run(ctx context.Context, o *options, log *slog.Logger, adjust func(*usernet.Config)) error {
	cfg, mac, err := o.config(log)
	if err != nil {
		return err
	}
	if adjust != nil {
		adjust(&cfg)
	}
	if o.helperFD >= 0 {
		return runHelper(o, cfg, mac)
	}
	enterUserns(o, log)
	fd, err := openTAP(o, &cfg, mac)
	if err != nil {
		return err
	}
	ep, tapClosed, err := usernet.NewTAPEndpoint(fd, cfg)
	if err != nil {
		unix.Close(fd)
		return err
	}
	st, err := usernet.New(cfg, ep)
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("starting berth user-mode network", "mtu", cfg.MTU, "cidr", cfg.CIDR, "ipv6", cfg.IPv6)

	if o.apiSocket != "" {
		_ = os.Remove(o.apiSocket) // as slirp4netns: avoid EADDRINUSE
		ln, err := net.Listen("unix", o.apiSocket)
		if err != nil {
			return fmt.Errorf("api socket %s: %w", o.apiSocket, err)
		}
		defer func() {
			ln.Close()
		}()
		go serveAPI(ln, st, log)
	}
	if o.readyFD >= 0 {
		if _, err := unix.Write(o.readyFD, []byte("1")); err != nil {
			return fmt.Errorf("write ready fd %d: %w", o.readyFD, err)
		}
		unix.Close(o.readyFD)
	}
	waitForExit(ctx, o, tapClosed, log)
	return nil
}

// enterUserns picks the user namespace to join (a PID target's own,
// as slirp4netns does, when none was given) and tries to join it.
func enterUserns(o *options, log *slog.Logger) {
	if o.netnsType == "pid" && o.usernsPath == "" {
		// As slirp4netns: a PID target's user namespace is joined too.
		p := fmt.Sprintf("/proc/%s/ns/user", o.target)
		theirs, err1 := os.Readlink(p)
		ours, err2 := os.Readlink("/proc/self/ns/user")
		if err1 == nil && err2 == nil && theirs != ours {
			o.usernsPath = p
		}
	}
	if o.usernsPath != "" && !o.joined {
		// Best: live in the container's user namespace (its root), in the
		// host's network namespace, as root of the guest's namespaces;
		// port forwards then take the kernel path. Returns only when that
		// is not possible; the TAP helper below is the fallback.
		if err := joinUserns(o, log); err != nil {
			log.Info("staying outside the container's user namespace", "err", err)
		}
	}
}

// openTAP opens the TAP device in the guest's network namespace: directly
// when this process can enter it, else through the helper in the
// container's user namespace.
func openTAP(o *options, cfg *usernet.Config, mac net.HardwareAddr) (int, error) {
	if (o.usernsPath == "" || o.joined) && o.configure {
		// Forwards to the address --configure gives the TAP may take the
		// kernel path in the guest's namespace.
		cfg.GuestNetNS = o.netnsPath()
	}
	if o.usernsPath != "" && !o.joined {
		return openTAPInUserns(o)
	}
	return usernet.OpenTAPAt(o.netnsPath(), o.tap, o.configure, *cfg, mac)
}

// waitForExit blocks until ctx ends, the exit fd (if any) fires or the
// TAP device is closed.
func waitForExit(ctx context.Context, o *options, tapClosed <-chan struct{}, log *slog.Logger) {
	exit := make(chan struct{})
	if o.exitFD >= 0 {
		go func() {
			waitFD(o.exitFD)
			close(exit)
		}()
	}
	select {
	case <-ctx.Done():
	case <-exit:
	case <-tapClosed:
		log.Info("TAP device closed")
	}
}

// waitFD blocks until a poll event (data, hang-up or error) happens on fd,
// which is how slirp4netns treats its exit fd.
func waitFD(fd int) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLHUP}}
	for {
		n, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n > 0 {
			return
		}
	}
}
