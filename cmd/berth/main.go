// Command berth is Linux container networking in one binary. Called as
// "netavark" (through a symlink in Podman's helper_binaries_dir) it is the
// netavark-compatible backend; called as "berth" it is the CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/berthnet/berth/berthnet"
	"github.com/berthnet/berth/internal/cli"
)

func main() {
	berthnet.RunReaper() // a child deleting a link teardown retired
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal cancels ctx (waits end, operations roll back); a
	// second one kills the process.
	go func() { <-ctx.Done(); stop() }()
	code := cli.Main(ctx, filepath.Base(os.Args[0]), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
