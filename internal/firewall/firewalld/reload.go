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
	reloads, err := Reloads(ctx, address)
	if err != nil {
		return fmt.Errorf("firewalld reload listener: %w", err)
	}
	run(reapply, log)
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-reloads:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("firewalld reload listener: %w", ErrBusClosed)
			}
			log.Debug("got firewalld Reloaded signal")
			run(reapply, log)
		}
	}
}

// Reloads subscribes to firewalld's Reloaded signal on the bus at address
// ("" is SystemBusAddress). The channel gets a value after each reload
// (reloads that come while one waits to be read count once) and is closed
// when ctx ends or the bus connection does.
func Reloads(ctx context.Context, address string) (<-chan struct{}, error) {
	b, err := Dial(address)
	if err != nil {
		return nil, err
	}
	if err := b.conn.AddMatchSignal(dbus.WithMatchObjectPath(rootPath), dbus.WithMatchInterface(ifRoot), dbus.WithMatchMember("Reloaded")); err != nil {
		b.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", reloaded, err)
	}
	signals := make(chan *dbus.Signal, 16)
	b.conn.Signal(signals)
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		defer b.Close()
		defer b.conn.RemoveSignal(signals)
		for {
			select {
			case <-ctx.Done():
				return
			case s, ok := <-signals:
				if !ok {
					return
				}
				if s.Name != reloaded {
					continue
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out, nil
}

func run(reapply func() error, log *slog.Logger) {
	if err := reapply(); err != nil {
		log.Error("failed to reload firewall rules", "error", err)
		return
	}
	log.Info("Successfully reloaded firewall rules")
}
