// Command pasta is berth's pasta(1)-compatible user-mode network for
// rootless containers (Podman 5 and 6 start it for every rootless
// container and as the uplink of their rootless network namespace), on
// berth's gVisor-based stack; see internal/compat/pasta.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthnet/berth/internal/compat/pasta"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := pasta.Run(ctx, os.Args[1:], pasta.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
