// Command slirp4netns is berth's user-mode network for rootless containers
// (slirp4netns-compatible, on gVisor's netstack), built as its own binary:
// one runs for every rootless container, so it carries only the stack and
// not the CLI, firewall and gRPC code of the multi-call berth binary (which
// also answers to the name slirp4netns).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthnet/berth/internal/compat/slirp4netns"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := slirp4netns.Run(ctx, os.Args[1:], slirp4netns.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
