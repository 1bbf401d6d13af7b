package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthnet/berth/internal/ctrlog"
	"github.com/berthnet/berth/internal/engine"
)

// logsFlags are the flags of berth logs (Podman's).
type logsFlags struct {
	follow, timestamps, names, latest bool
	tail                              int
	since, until                      string
}

func logsCmd(env Env, g *globals) *cobra.Command {
	var f logsFlags
	c := &cobra.Command{
		Use:   "logs [options] CONTAINER [CONTAINER...]",
		Short: "Print containers' output",
		Long: `Print containers' output, each line to the stream it was written to.
With more than one container, each line starts with its container's short
ID, or its name with --names. --since and --until take RFC 3339 times,
dates, Unix times or durations (10m: ten minutes before now for --since,
after now for --until).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.latest && len(args) > 0 {
				return errors.New("--latest and containers cannot be used together")
			}
			if !f.latest && len(args) == 0 {
				return errors.New("specify at least one container name or ID to log")
			}
			win, err := f.window(time.Now())
			if err != nil {
				return err
			}
			_, e, err := openEngine(env, g)
			if err != nil {
				return err
			}
			ctrs, err := logTargets(e, args, f.latest)
			if err != nil {
				return err
			}
			out := &logOut{stdout: env.Stdout, stderr: env.Stderr}
			printers := make([]*logPrinter, len(ctrs))
			for i, c := range ctrs {
				p, err := openLogPrinter(e, c, out, f, win, len(ctrs) > 1)
				if err != nil {
					return err
				}
				defer p.close()
				printers[i] = p
			}
			return printLogs(cmd.Context().Done(), e, printers, f)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep printing new output until the containers stop")
	fl.BoolVarP(&f.timestamps, "timestamps", "t", false, "prefix every line with its time")
	fl.BoolVarP(&f.names, "names", "n", false, "with several containers, start lines with the container's name instead of its ID")
	fl.BoolVarP(&f.latest, "latest", "l", false, "the most recently created container")
	fl.IntVar(&f.tail, "tail", -1, "print only the last N lines")
	fl.StringVar(&f.since, "since", "", "only lines written since this time")
	fl.StringVar(&f.until, "until", "", "only lines written before this time")
	return c
}

// logWindow is the time range of the lines to print (zero: open).
type logWindow struct{ since, until time.Time }

// window parses --since and --until against now.
func (f logsFlags) window(now time.Time) (logWindow, error) {
	var w logWindow
	var err error
	if f.since != "" {
		if w.since, err = parseLogTime(f.since, now, true); err != nil {
			return w, fmt.Errorf("--since %q: %w", f.since, err)
		}
	}
	if f.until != "" {
		if w.until, err = parseLogTime(f.until, now, false); err != nil {
			return w, fmt.Errorf("--until %q: %w", f.until, err)
		}
	}
	return w, nil
}

// parseLogTime reads a --since or --until value as Podman does: an RFC
// 3339 time or date, a Unix time (fractions allowed), else a duration
// before now (since) or after it (until).
func parseLogTime(s string, now time.Time, since bool) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05",
		"2006-01-02T15:04:05.999999999", "2006-01-02Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) &&
		math.Abs(f) < 1<<62/1e9 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, errors.New("unable to interpret time value")
	}
	if since {
		return now.Add(-d), nil
	}
	return now.Add(d), nil
}

// keeps reports whether a line written at ts (RFC 3339) is in the
// window; a line whose time cannot be read is kept.
func (w logWindow) keeps(ts string) bool {
	if w.since.IsZero() && w.until.IsZero() {
		return true
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return true
	}
	return !t.Before(w.since) && (w.until.IsZero() || !t.After(w.until))
}

// logTargets resolves the containers to print, in the order given, or
// the most recently created one.
func logTargets(e *engine.Engine, args []string, latest bool) ([]*engine.Container, error) {
	if latest {
		all, err := e.List()
		if err != nil {
			return nil, err
		}
		var last *engine.Container
		for _, c := range all {
			if last == nil || c.Config.Created.After(last.Config.Created) {
				last = c
			}
		}
		if last == nil {
			return nil, &exitError{code: 125, err: errors.New("no containers to get the latest of")}
		}
		return []*engine.Container{last}, nil
	}
	ctrs := make([]*engine.Container, 0, len(args))
	for _, a := range args {
		c, err := e.Get(a)
		if err != nil {
			return nil, notFound(err, 125)
		}
		ctrs = append(ctrs, c)
	}
	return ctrs, nil
}

// printLogs prints what each printer's container logged so far, one
// container after the other; with --follow, then every container's new
// lines as they come, until all have stopped (or --until has passed).
func printLogs(done <-chan struct{}, e *engine.Engine, printers []*logPrinter, f logsFlags) error {
	for _, p := range printers {
		p.printTail(f.tail)
	}
	if !f.follow {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(printers))
	for i, p := range printers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.follow(done, e)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logOut is the output of berth logs: whole lines, one at a time, from
// any number of printers.
type logOut struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
}

func (o *logOut) write(stream, s string) {
	w := o.stdout
	if stream == "stderr" {
		w = o.stderr
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = io.WriteString(w, s)
}

// logPrinter prints one container's log, each line to the stream it
// came from.
type logPrinter struct {
	out        *logOut
	id         string
	prefix     string // "<short ID> " or "<name> " with several containers
	timestamps bool
	win        logWindow
	r          *ctrlog.Reader
}

func openLogPrinter(e *engine.Engine, c *engine.Container, out *logOut, fl logsFlags, win logWindow, multi bool) (*logPrinter, error) {
	p := &logPrinter{out: out, id: c.Config.ID, timestamps: fl.timestamps, win: win, r: ctrlog.Open(e.LogPath(c.Config.ID))}
	if multi {
		p.prefix = c.ShortID() + " "
		if fl.names {
			p.prefix = c.Config.Name + " "
		}
	}
	return p, nil
}

func (p *logPrinter) close() { _ = p.r.Close() }

// emit prints one whole line, after the container's prefix and its time
// when asked, if it is in the window.
func (p *logPrinter) emit(l ctrlog.Line) error {
	if !p.win.keeps(l.Time) {
		return nil
	}
	s := p.prefix
	if p.timestamps {
		s += l.Time + " "
	}
	p.out.write(l.Stream, s+l.Text)
	return nil
}

// printTail prints the lines logged so far, only the last tail of them
// when tail is not negative.
func (p *logPrinter) printTail(tail int) { _ = p.r.Tail(tail, p.emit) }

// follow prints new lines every 100ms until the container is not
// running, --until has passed or done is closed.
func (p *logPrinter) follow(done <-chan struct{}, e *engine.Engine) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return p.r.Follow(ctx, 100*time.Millisecond, func() bool {
		cur, err := e.Get(p.id)
		return err == nil && cur.Running() && (p.win.until.IsZero() || time.Now().Before(p.win.until))
	}, p.emit)
}
