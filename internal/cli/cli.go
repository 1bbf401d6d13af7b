// Package cli is berth's command line: the podman-style `berth` command
// tree, and the dispatch to the compatible front-ends when the binary is
// called by another name (netavark).
package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/buildinfo"
	"github.com/berthnet/berth/internal/compat/aardvark"
	"github.com/berthnet/berth/internal/compat/netavark"
)

// Main runs the program called name with args and returns the exit code.
func Main(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := netavark.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	switch name {
	case "netavark":
		return netavark.Run(ctx, args, env)
	case "aardvark-dns":
		return aardvark.Run(ctx, args, aardvark.Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv})
	}
	return runBerth(ctx, args, env)
}

func runBerth(ctx context.Context, args []string, env netavark.Env) int {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Linux container networking",
		Long:          "berth is Linux container networking in one binary: bridge and macvlan networks,\nNAT and published ports, and a drop-in backend for Podman (called as netavark).",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       buildinfo.Version,
	}
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetIn(env.Stdin)
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "print berth's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(env.Stdout, "berth %s\nnetavark interface %s\n", buildinfo.Version, buildinfo.NetavarkVersion)
			return nil
		},
	})
	code := 0
	root.AddCommand(&cobra.Command{
		Use:                "netavark [flags] COMMAND",
		Short:              "the netavark-compatible backend (same as running the binary as netavark)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, a []string) error {
			code = netavark.Run(cmd.Context(), a, env)
			return nil
		},
	})
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "Error: %v\n", err)
		return 125
	}
	return code
}
