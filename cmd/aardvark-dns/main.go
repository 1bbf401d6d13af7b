// Command aardvark-dns is berth's DNS server for container networks, built
// as its own small binary (the multi-call berth binary carries the firewall,
// netlink, CNI and CLI code, whose pages a long-running DNS server need not
// keep resident).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthnet/berth/internal/compat/aardvark"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := aardvark.Run(ctx, os.Args[1:], aardvark.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
