package rootless

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/berthnet/berth/internal/netns"
	"github.com/berthnet/berth/internal/network"
)

// User-mode network commands a rootless engine can use (containers.conf
// [network] default_rootless_network_cmd, Podman 5's key).
const (
	CmdPasta = "pasta"
	CmdSlirp = "slirp4netns"
)

// The addresses Podman (5.3 and later) gives pasta by default: the DNS
// forwarder, first nameserver of the container's resolv.conf, and the
// address that reaches the host (host.containers.internal).
const (
	PastaDNSForward   = "169.254.1.1"
	PastaMapGuestAddr = "169.254.1.2"
)

// NetworkCmd returns the rootless network command named by containers.conf
// (empty: pasta, as Podman 5).
func NetworkCmd(conf string) (string, error) {
	switch conf {
	case "", CmdPasta:
		return CmdPasta, nil
	case CmdSlirp:
		return CmdSlirp, nil
	}
	return "", fmt.Errorf("containers.conf [network] default_rootless_network_cmd %q: want pasta or slirp4netns", conf)
}

// PastaSetup is what a pasta command line is built from.
type PastaSetup struct {
	// Options are pasta's options from containers.conf (pasta_options)
	// followed by the container's (--network pasta:OPTIONS). "--map-gw"
	// is Podman's own: it drops the --no-map-gw otherwise given.
	Options []string
	// Ports are the container's published ports (-t/-u each).
	Ports []network.PortMapping
	// PIDFile is where pasta writes its PID (--pid).
	PIDFile string
	// NetNS is the namespace path (--netns).
	NetNS string
}

// PastaCommand is a pasta command line with the addresses it uses.
type PastaCommand struct {
	Args []string
	// DNSForward are the --dns-forward addresses (the container's
	// nameservers), MapGuestAddr the --map-guest-addr ones (the host).
	DNSForward, MapGuestAddr []string
}

// directions maps pasta's forward options to their short forms.
var directions = map[string]string{
	"-t": "-t", "--tcp-ports": "-t", "-u": "-u", "--udp-ports": "-u",
	"-T": "-T", "--tcp-ns": "-T", "-U": "-U", "--udp-ns": "-U",
}

// PastaArgs builds pasta's arguments in the layout of Podman 6
// (containers/common's createPastaArgs): --config-net, the options,
// -t/-u per published port, --dns-forward 169.254.1.1 unless given, "none"
// for each direction without forwards, --no-map-gw unless --map-gw,
// --quiet unless debugging, --map-guest-addr 169.254.1.2 unless given,
// --pid, --netns.
func PastaArgs(s PastaSetup) (PastaCommand, error) {
	var pc PastaCommand
	noMapGW, quiet := true, true
	given := map[string]bool{}
	args := []string{"--config-net"}
	for _, o := range s.Options {
		if o == "--map-gw" {
			noMapGW = false
			continue
		}
		args = append(args, o)
	}
	for i, o := range args {
		next := ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		switch o {
		case "-t", "--tcp-ports", "-u", "--udp-ports", "-T", "--tcp-ns", "-U", "--udp-ns":
			given[directions[o]] = true
		case "-d", "--debug", "--trace":
			quiet = false
		case "--dns-forward":
			if next != "" {
				pc.DNSForward = append(pc.DNSForward, next)
			}
		case "--map-guest-addr":
			if next != "" {
				pc.MapGuestAddr = append(pc.MapGuestAddr, next)
			}
		case "--pid", "-P":
			return PastaCommand{}, fmt.Errorf("cannot use %s in the pasta options: the pid file is %s", o, s.PIDFile)
		default:
			if strings.HasPrefix(o, "--pid=") || (strings.HasPrefix(o, "-P") && len(o) > 2) {
				return PastaCommand{}, fmt.Errorf("cannot use %s in the pasta options: the pid file is %s", o, s.PIDFile)
			}
		}
	}
	for _, pm := range s.Ports {
		for _, proto := range strings.Split(pm.Protocol, ",") {
			flag := map[string]string{"tcp": "-t", "udp": "-u"}[network.NormalizeProtocol(proto)]
			if flag == "" {
				return PastaCommand{}, fmt.Errorf("can't forward protocol: %s", proto)
			}
			addr := ""
			if pm.HostIP != "" {
				addr = pm.HostIP + "/"
			}
			n := pm.Range
			if n == 0 {
				n = 1
			}
			args = append(args, flag, fmt.Sprintf("%s%d-%d:%d-%d", addr, pm.HostPort, pm.HostPort+n-1, pm.ContainerPort, pm.ContainerPort+n-1))
			given[flag] = true
		}
	}
	if len(pc.DNSForward) == 0 {
		args = append(args, "--dns-forward", PastaDNSForward)
		pc.DNSForward = []string{PastaDNSForward}
	}
	for _, dir := range []string{"-t", "-u", "-T", "-U"} {
		if !given[dir] {
			args = append(args, dir, "none")
		}
	}
	if noMapGW {
		args = append(args, "--no-map-gw")
	}
	if quiet {
		args = append(args, "--quiet")
	}
	if len(pc.MapGuestAddr) == 0 {
		args = append(args, "--map-guest-addr", PastaMapGuestAddr)
		pc.MapGuestAddr = []string{PastaMapGuestAddr}
	}
	pc.Args = append(args, "--pid", s.PIDFile, "--netns", s.NetNS)
	return pc, nil
}

// pastaTimeout bounds pasta's start (it returns once the network is up).
const pastaTimeout = 30 * time.Second

// StartPasta runs pasta with args, as Podman does: pasta configures the
// namespace, forks to the background and exits; its PID is then read from
// pidFile. hostNS, when set, is the network namespace its sockets live in.
// A failure carries pasta's own message.
func StartPasta(p Program, hostNS string, args []string, pidFile string) (int, error) {
	_ = os.Remove(pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), pastaTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Path, args...)
	cmd.Args[0] = p.Argv0
	cmd.Dir = "/"
	run := func() error {
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("pasta failed with exit code %d: %s", ee.ExitCode(), strings.TrimSpace(string(out)))
		}
		if err != nil {
			return fmt.Errorf("start pasta (%s): %w", p.Path, err)
		}
		return nil
	}
	if hostNS != "" {
		ns, err := netns.Open(hostNS)
		if err != nil {
			return 0, err
		}
		defer ns.Close()
		if err := ns.Do(run); err != nil {
			return 0, err
		}
	} else if err := run(); err != nil {
		return 0, err
	}
	pid := ReadPID(pidFile)
	if pid <= 0 {
		return 0, fmt.Errorf("pasta wrote no PID to %s", pidFile)
	}
	return pid, nil
}
