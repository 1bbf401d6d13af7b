package shortlived

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Interruptible returns a context that SIGINT or SIGTERM cancels, so a
// command stops at its next check, rolls back and returns. A command that
// has not returned grace after the signal is blocked (waiting for a lock
// another process holds, say): the process then ends with 128+signal and a
// message on stderr naming prog, as if the signal had not been caught; what
// it changed is left for the next call's repair, as after a kill. stop
// ends the signal handling.
func Interruptible(prog string, grace time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			cancel()
			select {
			case <-time.After(grace):
				fmt.Fprintf(os.Stderr, "%s: %v: no clean stop within %v; exiting\n", prog, sig, grace)
				os.Exit(128 + int(sig.(syscall.Signal)))
			case <-done:
			}
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
