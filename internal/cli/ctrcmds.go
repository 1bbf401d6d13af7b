package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/engine"
	"github.com/berthnet/berth/internal/network"
	"github.com/berthnet/berth/internal/runopts"
	"github.com/berthnet/berth/internal/runspec"
	"github.com/berthnet/berth/internal/safefile"
)

// notFound turns a missing container into Podman's exit code for the
// command (1 for rm, 125 elsewhere).
func notFound(err error, code int) error {
	if errors.Is(err, engine.ErrNoSuchContainer) {
		return &exitError{code: code, err: err}
	}
	return err
}

func stopCmd(env Env, g *globals) *cobra.Command {
	var timeout uint
	var all bool
	c := &cobra.Command{
		Use:   "stop [options] CONTAINER...",
		Short: "Stop one or more containers",
		Long:  "Send the stop signal (SIGTERM or the container's StopSignal), wait, then SIGKILL; the container's network is torn down.",
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if args, err = allOr(e, args, all, false); err != nil {
				return err
			}
			var t *uint
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			return forEach(env, args, func(a string) (string, error) {
				_, err := e.Stop(a, t)
				return a, notFound(err, 125)
			})
		},
	}
	c.Flags().UintVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	c.Flags().BoolVarP(&all, "all", "a", false, "stop every running container")
	return c
}

// allOr returns args, or every container's name with --all.
func allOr(e *engine.Engine, args []string, all, skipInfra bool) ([]string, error) {
	if all {
		if len(args) > 0 {
			return nil, errors.New("--all and container names cannot be used together")
		}
		cs, err := e.List()
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if skipInfra && c.Config.Infra {
				continue // goes with its pod
			}
			args = append(args, c.Config.Name)
		}
		return args, nil
	}
	if len(args) == 0 {
		return nil, errors.New("you must provide at least one container name or ID")
	}
	return args, nil
}

// errSkip tells forEach to print nothing and go on.
var errSkip = errors.New("skip")

// forEach runs fn on every argument and prints what it returns; errors
// are all printed and the last is returned, as Podman does.
func forEach(env Env, args []string, fn func(string) (string, error)) error {
	var errs []error
	for _, a := range args {
		out, err := fn(a)
		switch {
		case errors.Is(err, errSkip):
		case err != nil:
			errs = append(errs, err)
		default:
			fmt.Fprintln(env.Stdout, out)
		}
	}
	return lastError(env, errs)
}

// lastError prints every error but the last, which it returns.
func lastError(env Env, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs[:len(errs)-1] {
		fmt.Fprintf(env.Stderr, "Error: %v\n", err)
	}
	return errs[len(errs)-1]
}

func killCmd(env Env, g *globals) *cobra.Command {
	var sig string
	var all bool
	c := &cobra.Command{
		Use:   "kill [options] CONTAINER...",
		Short: "Send a signal to one or more containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := engine.ParseSignal(sig); err != nil {
				return fmt.Errorf("--signal: %w", err)
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if all && len(args) > 0 {
				return errors.New("--all and container names cannot be used together")
			}
			if all {
				args, err = killAll(e)
			} else if len(args) == 0 {
				err = errors.New("you must provide at least one container name or ID")
			}
			if err != nil {
				return err
			}
			return forEach(env, args, func(a string) (string, error) {
				_, err := e.Kill(a, sig)
				return a, notFound(err, 125)
			})
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send (name or number)")
	c.Flags().BoolVarP(&all, "all", "a", false, "signal every running container")
	return c
}

func ctrRmCmd(env Env, g *globals) *cobra.Command {
	var force, all, volumes bool
	c := &cobra.Command{
		Use:   "rm [options] CONTAINER...",
		Short: "Remove one or more containers",
		Long:  "Remove containers: their network, addresses, namespace, root filesystem, logs and records. A running container needs -f.",
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			if args, err = allOr(e, args, all, true); err != nil {
				return err
			}
			return forEach(env, args, func(a string) (string, error) {
				_, err := e.RemoveWith(a, force, volumes)
				switch {
				case err == nil:
					return a, nil
				case (all || force) && errors.Is(err, engine.ErrNoSuchContainer):
					return "", errSkip // removed meanwhile (--rm), or -f of a missing one
				case errors.Is(err, engine.ErrRunning):
					return "", &exitError{code: 2, err: err}
				}
				return "", notFound(err, 1)
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill and remove running containers")
	c.Flags().BoolVarP(&all, "all", "a", false, "remove every container")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove the containers' anonymous volumes too")
	return c
}

// printList prints the rows of a ps-like command: IDs with -q, JSON, or
// a Go template (def when none is given).
func printList[T any](env Env, name string, rows []T, id func(T) string, quiet bool, format, def string, hdrs map[string]string) error {
	if quiet {
		for _, r := range rows {
			fmt.Fprintln(env.Stdout, id(r))
		}
		return nil
	}
	if isJSON(format) {
		if rows == nil {
			rows = []T{}
		}
		return inspectJSON(env.Stdout, rows)
	}
	if format == "" {
		format = def
	}
	r, err := parseReport(name, format, hdrs)
	if err != nil {
		return err
	}
	return r.render(env.Stdout, rows, r.table)
}

func imageName(c *engine.Container) string {
	if c.Config.Infra {
		return "berth-infra (catatonit)"
	}
	if c.Config.Image != "" {
		return c.Config.Image
	}
	return c.Config.Rootfs
}

func hostIPOrAny(pm network.PortMapping) string {
	if pm.HostIP == "" {
		return "0.0.0.0"
	}
	if strings.Contains(pm.HostIP, ":") {
		return "[" + pm.HostIP + "]"
	}
	return pm.HostIP
}

func portRange(start uint16, n int) string {
	if n <= 1 {
		return strconv.Itoa(int(start))
	}
	return fmt.Sprintf("%d-%d", start, int(start)+n-1)
}

// formatPorts renders mappings as ps does: 0.0.0.0:8080->80/tcp.
func formatPorts(pms []network.PortMapping) string {
	var out []string
	for _, pm := range pms {
		out = append(out, fmt.Sprintf("%s:%s->%s/%s", hostIPOrAny(pm), portRange(pm.HostPort, pm.Ports()), portRange(pm.ContainerPort, pm.Ports()), network.NormalizeProtocol(pm.Protocol)))
	}
	return strings.Join(out, ", ")
}

func portCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List a container's published ports",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			c, err := e.Get(args[0])
			if err != nil {
				return notFound(err, 125)
			}
			var want *network.PortMapping
			if len(args) == 2 {
				ep, err := runopts.ParseExpose(args[1])
				if err != nil {
					return err
				}
				want = &ep
			}
			found := false
			for _, pm := range network.ExpandPorts(publishedPorts(e, c)...) {
				cp, hp, proto := pm.ContainerPort, pm.HostPort, pm.Protocol
				host := strings.Trim(hostIPOrAny(pm), "[]")
				if want != nil {
					if want.ContainerPort == cp && want.Protocol == proto {
						fmt.Fprintf(env.Stdout, "%s\n", net2(host, hp))
						found = true
					}
					continue
				}
				fmt.Fprintf(env.Stdout, "%d/%s -> %s\n", cp, proto, net2(host, hp))
			}
			if want != nil && !found {
				return fmt.Errorf("failed to find published port %q", args[1])
			}
			return nil
		},
	}
	return c
}

func net2(host string, port uint16) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func execCmd(env Env, g *globals) *cobra.Command {
	var interactive, tty, detach bool
	var envs []string
	var workdir, user string
	c := &cobra.Command{
		Use:   "exec [options] CONTAINER COMMAND [ARG...]",
		Short: "Run a process in a running container",
		Long:  "Run a process in a running container through runc exec; berth exits with its exit code (126: cannot be run, 127: not found).",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			p := runspec.Process{Args: args[1:], Cwd: workdir, Terminal: tty}
			for _, kv := range envs {
				k, _, ok := strings.Cut(kv, "=")
				if k == "" {
					return fmt.Errorf("--env %q: want KEY=VALUE", kv)
				}
				if !ok {
					kv = k + "=" + env.getenv(k)
				}
				p.Env = append(p.Env, kv)
			}
			if workdir != "" && !strings.HasPrefix(workdir, "/") {
				return fmt.Errorf("--workdir %q: must be an absolute path", workdir)
			}
			if user != "" {
				c, err := e.Get(args[0])
				if err != nil {
					return notFound(err, 125)
				}
				passwd, _ := safefile.ReadInRoot(c.State.Mounted, "etc/passwd", safefile.DefaultLimit)
				group, _ := safefile.ReadInRoot(c.State.Mounted, "etc/group", safefile.DefaultLimit)
				if p.UID, p.GID, err = runspec.ResolveUser(user, passwd, group); err != nil {
					return fmt.Errorf("--user: %w", err)
				}
			}
			var in io.Reader
			if interactive {
				in = env.Stdin
			}
			code, err := e.Exec(args[0], p, detach, in, env.Stdout, env.Stderr)
			if err != nil {
				return &exitError{code: code, err: err}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.SetInterspersed(false)
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.BoolVarP(&detach, "detach", "d", false, "run in the background")
	fl.StringArrayVarP(&envs, "env", "e", nil, "set an environment variable KEY=VALUE")
	fl.StringVarP(&workdir, "workdir", "w", "", "working directory")
	fl.StringVarP(&user, "user", "u", "", "user to run as")
	return c
}

// containerCmd is `berth container ...`: the container commands under
// one name, as in Podman (ps is also ls and list).
func containerCmd(env Env, g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "container",
		Short: "Manage containers",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	ls := psCmd(env, g)
	ls.Aliases = []string{"ls", "list"}
	c.AddCommand(runCmd(env, g), ctrCreateCmd(env, g), startCmd(env, g), stopCmd(env, g), killCmd(env, g),
		ctrRmCmd(env, g), ls, logsCmd(env, g), execCmd(env, g), ctrInspectCmd(env, g, inspectContainerType), portCmd(env, g),
		restartCmd(env, g), waitCmd(env, g), pauseCmd(env, g), unpauseCmd(env, g), renameCmd(env, g), attachCmd(env, g), cpCmd(env, g),
		topCmd(env, g), statsCmd(env, g))
	return c
}
