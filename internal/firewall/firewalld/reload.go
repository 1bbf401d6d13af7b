package firewalld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/godbus/dbus/v5"
)

// reloaded is the signal firewalld sends when it has reloaded: its runtime
// configuration, and with it the firewall rules of other programs, is
// rebuilt from scratch.
const reloaded = ifRoot + ".Reloaded"

// ErrBusClosed is returned by Listen when the bus connection ends.
var ErrBusClosed = errors.New("D-Bus connection closed")

// Listen calls reapply once, then again each time firewalld on the bus at
// address ("" is SystemBusAddress) reports a reload, until ctx ends (nil)
// or the connection does (ErrBusClosed). A failing reapply is logged and
// the listening goes on: the next reload tries again. It is what
// `netavark firewalld-reload` runs: started after firewalld, it also
// restores what a firewalld restart removed.
func Listen(ctx context.Context, address string, reapply func() error, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b, err := Dial(address)
	if err != nil {
		return fmt.Errorf("firewalld reload listener: %w", err)
	}
	defer b.Close()
	if err := b.conn.AddMatchSignal(dbus.WithMatchObjectPath(rootPath), dbus.WithMatchInterface(ifRoot), dbus.WithMatchMember("Reloaded")); err != nil {
		return fmt.Errorf("firewalld reload listener: subscribe to %s: %w", reloaded, err)
	}
	signals := make(chan *dbus.Signal, 16)
	b.conn.Signal(signals)
	defer b.conn.RemoveSignal(signals)
	run(reapply, log)
	for {
		select {
		case <-ctx.Done():
			return nil
		case s, ok := <-signals:
			if !ok {
				return fmt.Errorf("firewalld reload listener: %w", ErrBusClosed)
			}
			if s.Name != reloaded {
				continue
			}
			log.Debug("got firewalld Reloaded signal")
			drain(signals)
			run(reapply, log)
		}
	}
}

// drain drops the signals already queued: one reapply covers them.
func drain(signals <-chan *dbus.Signal) {
	for {
		select {
		case _, ok := <-signals:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

func run(reapply func() error, log *slog.Logger) {
	if err := reapply(); err != nil {
		log.Error("failed to reload firewall rules", "error", err)
		return
	}
	log.Info("Successfully reloaded firewall rules")
}
