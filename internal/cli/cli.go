// Package cli is berth's command line: the podman-style `berth` command
// tree (berth network create|ls|inspect|rm|prune|exists|update|connect|
// disconnect|reload, the container engine's run|create|start|stop|kill|rm|
// ps|logs|exec|inspect|port|restart|wait|pause|unpause|rename|attach|cp|
// top|stats and pod commands, berth info, berth system
// reset, berth completion), and the dispatch to the compatible front-ends
// when the binary is called by another name (netavark, aardvark-dns,
// slirp4netns, pasta).
//
// Errors print as "Error: ..." on stderr with Podman's exit codes: 125 for
// a general error, 1 for "not found" in exists and rm, 2 for a network in
// use.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/compat/aardvark"
	"github.com/berthnet/berth/internal/compat/netavark"
	"github.com/berthnet/berth/internal/compat/netavark/withdhcp"
	"github.com/berthnet/berth/internal/compat/pasta"
	"github.com/berthnet/berth/internal/compat/slirp4netns"
	"github.com/berthnet/berth/internal/rootless"
)

// Main runs the program called name with args and returns the exit code.
func Main(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch name {
	case "netavark":
		exe, _ := os.Executable()
		return netavark.Run(ctx, args, withdhcp.Env(netavark.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, FirewallWatcher: exe}))
	case "aardvark-dns":
		return aardvark.Run(ctx, args, aardvark.Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv})
	case "slirp4netns":
		return slirp4netns.Run(ctx, args, slirp4netns.Env{Stdout: stdout, Stderr: stderr})
	case "pasta":
		return pasta.Run(ctx, args, pasta.Env{Stdout: stdout, Stderr: stderr})
	}
	if len(args) > 0 && args[0] == rootless.PauseArg {
		return rootless.Pause()
	}
	if os.Geteuid() != 0 && !rootless.Inside() && needsUserNS(args) {
		err := joinUserNS(args)
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 125
	}
	return Run(ctx, args, ProcessEnv(stdin, stdout, stderr))
}

// Run executes the berth command tree with args and returns the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	g := &globals{}
	code := 0
	root := newRoot(env, g, &code)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintf(env.Stderr, "Error: %v\n", ee.err)
			}
			return ee.code
		}
		fmt.Fprintf(env.Stderr, "Error: %v\n", err)
		return 125
	}
	return code
}

// newRoot builds the command tree; the netavark subcommand leaves its exit
// code in *code.
func newRoot(env Env, g *globals, code *int) *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Linux container networking",
		Long: "berth is Linux container networking in one binary: bridge, macvlan and ipvlan\n" +
			"networks, NAT and published ports, Podman's network files, and a drop-in\n" +
			"backend for Podman (called as netavark), and a small container engine that runs\n" +
			"containers and pods with runc on those networks.",
		SilenceErrors:              true,
		SilenceUsage:               true,
		SuggestionsMinimumDistance: 2,
		Version:                    buildinfo.Version,
		Args:                       noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.ctx = cmd.Context()
			_, err := parseLogLevel(g.logLevel)
			return err
		},
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetIn(env.Stdin)
	pf := root.PersistentFlags()
	pf.StringVar(&g.configDir, "network-config-dir", "", "directory of the network files (default: containers.conf network_config_dir, else /etc/containers/networks, rootless ~/.local/share/containers/storage/networks)")
	pf.StringVar(&g.runDir, "network-run-dir", "", "directory of address records and runtime state (default /run/containers/networks, rootless $XDG_RUNTIME_DIR/containers/networks)")
	pf.StringVar(&g.root, "root", "", "storage directory of images and containers (default $BERTH_ROOT, else /var/lib/berth, rootless $XDG_DATA_HOME/berth)")
	pf.StringVar(&g.runRoot, "runroot", "", "runtime state directory of containers and pods (default $BERTH_RUNROOT, else /run/berth, rootless $XDG_RUNTIME_DIR/berth)")
	pf.StringVar(&g.logLevel, "log-level", "warn", "log messages at and above this level: trace, debug, info, warn, error, fatal, panic")
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"trace", "debug", "info", "warn", "error", "fatal", "panic"}, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help'", err, cmd.CommandPath())
	})

	root.AddCommand(
		networkCmd(env, g),
		runCmd(env, g),
		ctrCreateCmd(env, g),
		startCmd(env, g),
		stopCmd(env, g),
		killCmd(env, g),
		ctrRmCmd(env, g),
		psCmd(env, g),
		logsCmd(env, g),
		eventsCmd(env, g),
		execCmd(env, g),
		ctrInspectCmd(env, g, inspectAll),
		portCmd(env, g),
		podCmd(env, g),
		restartCmd(env, g), waitCmd(env, g), pauseCmd(env, g), unpauseCmd(env, g),
		renameCmd(env, g), attachCmd(env, g), cpCmd(env, g), topCmd(env, g), statsCmd(env, g),
		volumeCmd(env, g),
		containerCmd(env, g),
		monitorCmd(env, g),
		healthHelperCmd(env, g),
		healthcheckCmd(env, g),
		firewallWatchCmd(env, g),
		infoCmd(env, g),
		systemCmd(env, g),
		unshareCmd(env, g),
		&cobra.Command{
			Use:   "version",
			Short: "Print berth's version",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fmt.Fprintf(env.Stdout, "berth %s\nnetavark interface %s\n", buildinfo.Version, buildinfo.NetavarkVersion)
				return nil
			},
		},
		&cobra.Command{
			Use:                "netavark [flags] COMMAND",
			Short:              "The netavark-compatible backend (same as running the binary as netavark)",
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, a []string) error {
				*code = netavark.Run(cmd.Context(), a, withdhcp.Env(netavark.Env{Stdin: env.Stdin, Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv, FirewallWatcher: env.FirewallWatcher}))
				return nil
			},
		},
	)
	// After the container commands: "pss" suggests ps before push.
	root.AddCommand(imageCmds(env, g)...)
	if c, _, err := root.Find([]string{"container"}); err == nil && c != root {
		c.AddCommand(commitCmd(env, g), exportCmd(env, g))
	}
	return root
}

// unknownCommand is Podman's error for an unknown command: the closest
// commands' names (cobra's suggestions) and exit code 125.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unrecognized command `%s %s`", cmd.CommandPath(), name)
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return &exitError{code: 125, err: fmt.Errorf("%s\n\nTry '%s --help' for more information", msg, cmd.CommandPath())}
}
