package dhcp

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Exchanger performs the DHCP transactions of one interface. Each call may
// open and close its own socket.
type Exchanger interface {
	// Acquire runs DISCOVER, OFFER, REQUEST, ACK until ctx ends and returns
	// the lease; ErrNoAnswer when no server answered, ErrNAK on a DHCPNAK.
	Acquire(ctx context.Context, id Identity) (*Lease, error)
	// Extend asks for more time for l: unicast to l.Server when renewing,
	// broadcast to any server when rebinding. It returns the new lease, or
	// ErrNAK, or ErrNoAnswer.
	Extend(ctx context.Context, id Identity, l *Lease, rebind bool) (*Lease, error)
	// Release gives l back (DHCPRELEASE; there is no answer).
	Release(id Identity, l *Lease) error
}

// Binder configures a lease on the interface.
type Binder interface {
	// Bind configures next; prev (nil on the first bind) is what is
	// configured now and is replaced when the address changed.
	Bind(prev, next *Lease) error
	// Unbind removes what Bind configured for l.
	Unbind(l *Lease) error
}

// Clock is the keeper's time source.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Keeper holds one lease over its life: it renews at T1, rebinds at T2,
// and when the lease is lost (expired, or refused with DHCPNAK) removes the
// address and acquires a new lease.
type Keeper struct {
	ID     Identity
	Ex     Exchanger
	Binder Binder
	// Changed is called after every change: a new or extended lease, or nil
	// when the lease was lost.
	Changed func(*Lease)
	Clock   Clock
	Timing  Timing
	// MinRetry is the shortest wait between unanswered requests (RFC 2131
	// suggests 60 s).
	MinRetry time.Duration
	// TryTimeout bounds one transaction (default 10 s).
	TryTimeout time.Duration
	Logger     *slog.Logger
}

func (k *Keeper) defaults() {
	if k.Clock == nil {
		k.Clock = SystemClock{}
	}
	if k.MinRetry <= 0 {
		k.MinRetry = 60 * time.Second
	}
	if k.TryTimeout <= 0 {
		k.TryTimeout = 10 * time.Second
	}
	if k.Logger == nil {
		k.Logger = slog.New(slog.DiscardHandler)
	}
	if k.Changed == nil {
		k.Changed = func(*Lease) {}
	}
}

// Run keeps l (nil: acquire one first) until ctx ends or the interface is
// gone. It returns ctx's error or ErrGone; it never releases the lease,
// which is the caller's choice.
func (k *Keeper) Run(ctx context.Context, l *Lease) error {
	k.defaults()
	backoff := k.MinRetry
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if l == nil {
			if l, backoff, err = k.acquire(ctx, backoff); err != nil {
				return err
			}
			continue
		}
		now := k.Clock.Now()
		switch ph := k.Timing.Phase(l, now); ph {
		case Bound:
			if l.Duration == Infinite {
				<-ctx.Done()
				return ctx.Err()
			}
			if !k.sleepUntil(ctx, k.Timing.RenewAt(l)) {
				return ctx.Err()
			}
		case Renewing, Rebinding:
			if l, err = k.extend(ctx, l, ph, now); err != nil {
				return err
			}
		case Expired:
			k.Logger.Warn("lease expired; removing the address", "addr", l.Addr)
			k.lose(l)
			l = nil
		}
	}
}

// acquire tries once to get and configure a new lease. On failure it
// waits backoff and returns no lease and the next, doubled backoff (at
// most ten times MinRetry); the error is ErrGone or ctx's.
func (k *Keeper) acquire(ctx context.Context, backoff time.Duration) (*Lease, time.Duration, error) {
	next, err := k.try(ctx, time.Time{}, func(c context.Context) (*Lease, error) { return k.Ex.Acquire(c, k.ID) })
	if errors.Is(err, ErrGone) {
		return nil, backoff, err
	}
	if err != nil {
		k.Logger.Warn("no new lease yet", "error", err, "retry_in", backoff)
		if !k.sleep(ctx, backoff) {
			return nil, backoff, ctx.Err()
		}
		return nil, min(backoff*2, 10*k.MinRetry), nil
	}
	if err := k.Binder.Bind(nil, next); err != nil {
		k.Logger.Warn("configure new lease", "addr", next.Addr, "error", err)
	}
	k.Changed(next)
	k.Logger.Info("lease acquired", "addr", next.Addr)
	return next, k.MinRetry, nil
}

// extend tries to renew or rebind l (phase ph at now) and returns the
// lease to keep: the extended one, nil when the server refused it (the
// address is removed), or l itself after waiting to retry. The error is
// ErrGone or ctx's.
func (k *Keeper) extend(ctx context.Context, l *Lease, ph Phase, now time.Time) (*Lease, error) {
	rebind := ph == Rebinding
	next, err := k.try(ctx, k.Timing.PhaseEnd(l, now), func(c context.Context) (*Lease, error) { return k.Ex.Extend(c, k.ID, l, rebind) })
	switch {
	case err == nil:
		if berr := k.Binder.Bind(l, next); berr != nil {
			k.Logger.Warn("configure extended lease", "addr", next.Addr, "error", berr)
		}
		k.Logger.Info("lease extended", "phase", ph, "addr", next.Addr, "duration", next.Duration)
		k.Changed(next)
		return next, nil
	case errors.Is(err, ErrGone):
		return l, err
	case errors.Is(err, ErrNAK):
		k.Logger.Warn("lease refused; removing the address", "addr", l.Addr, "phase", ph)
		k.lose(l)
		return nil, nil
	default:
		if ctx.Err() != nil {
			return l, ctx.Err()
		}
		at := k.Timing.Retry(l, k.Clock.Now(), k.MinRetry)
		k.Logger.Info("lease not extended yet", "phase", ph, "error", err, "retry_at", at)
		if !k.sleepUntil(ctx, at) {
			return l, ctx.Err()
		}
		return l, nil
	}
}

func (k *Keeper) lose(l *Lease) {
	if err := k.Binder.Unbind(l); err != nil {
		k.Logger.Warn("remove lost lease", "addr", l.Addr, "error", err)
	}
	k.Changed(nil)
}

// try runs one transaction bounded by TryTimeout and, when set, by end
// (the end of the lease's phase). The deadline is on the real clock: it
// bounds socket waits.
func (k *Keeper) try(ctx context.Context, end time.Time, f func(context.Context) (*Lease, error)) (*Lease, error) {
	d := k.TryTimeout
	if !end.IsZero() {
		d = min(d, max(end.Sub(k.Clock.Now()), time.Second))
	}
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(c)
}

func (k *Keeper) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-k.Clock.After(d):
		return true
	}
}

func (k *Keeper) sleepUntil(ctx context.Context, t time.Time) bool {
	return k.sleep(ctx, t.Sub(k.Clock.Now()))
}
